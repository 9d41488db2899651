"""Readers: files in the formats people have (wide, long, the paper's JSON, RouteLLM, LLMRouterBench, RouterEval)
into a Dataset and Estimates.

``_wide`` reads the wide interchange format and turns a wide frame into a :class:`cascjax.Dataset`;
``_formats`` turns the other formats into the wide frame (``_suites``: LLMRouterBench's and RouterEval's
layouts); ``_read`` holds :func:`read`, :func:`read_estimates` and the embedded example, on top of both. pandas
(and pyarrow for Parquet) are imported lazily.
"""

from ._formats import FORMATS as FORMATS, to_wide as to_wide
from ._read import (
    example_path as example_path,
    load_example as load_example,
    read as read,
    read_estimates as read_estimates,
)
from ._suites import routereval_pools as routereval_pools
from ._latency import read_latency as read_latency
from ._wide import frame_to_dataset as frame_to_dataset
