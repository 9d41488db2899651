"""Reading a dataset or its estimates from any supported file: :func:`read`, :func:`read_estimates`, the example.

Every format is first turned into the wide frame (:func:`cascjax.io._formats.to_wide`), then validated by the
one wide reader (:func:`cascjax.io._wide.frame_to_dataset`), so every format gets the same checks and messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np

from .._data import Dataset
from .._errors import CascjaxError
from .._estimates import Estimates
from ._formats import to_wide
from ._wide import ESTIMATE_SUFFIXES, _numeric_column, frame_to_dataset, release_arrow

EXAMPLE = "mmlu_pro_6models.csv.gz"


def read(path, models: Sequence[str] | None = None, *, format: str = "auto", prices=None, split: str | None = None,
         group: str | None = "auto", sort: bool = True, dropna: bool = False, allow_pickle: bool = False) -> Dataset:
    """Reads a dataset (N queries × M models) from the formats people have, into one :class:`Dataset`.

    The wide interchange format: one row per query; for every model a column ``<model>`` with the true
    quality and a column ``<model>|total_cost`` with the true cost. Other columns (ids, prompts,
    ``<model>|model_response``) are ignored. RouterBench's ``routerbench_0shot.pkl`` and
    ``routerbench_5shot.pkl`` are wide files and load as they are. Other formats (``format=``, detected
    from the file when ``"auto"``): ``long`` — one row per (query, model) with columns ``query_id, model,
    quality, cost``; ``paper`` — the paper's per-dataset JSON layout, a folder with ``qualities.json`` and
    ``costs.json`` (or ``train/`` and ``test/`` subfolders holding them); ``routellm`` — RouteLLM's
    evaluation CSVs (``prompt`` and one True/False column per model; they have no costs, so pass
    ``prices``); ``llmrouterbench`` — LLMRouterBench's (OpenRouterBench's) results folder
    ``results/bench/<dataset>/<split>/<model>/*.json`` (records with ``index``, ``score``, ``cost``,
    ``prediction``; the datasets are the groups; a dataset's folder reads that dataset only);
    ``routereval`` — RouterEval's ``<benchmark>_router_dataset.pkl`` (candidate pools; no costs, so pass
    ``prices`` with input prices; :func:`cascjax.io.routereval_pools` lists the pools' models).

    Args:
      path: a ``.csv`` (optionally ``.gz``/``.zip``/``.bz2``/``.xz``), ``.parquet``/``.pq`` (needs pyarrow)
        or ``.pkl``/``.pickle`` file holding a DataFrame (or RouterEval's dict), or a folder in the paper's JSON
        layout or LLMRouterBench's.
      models: the models to load (default: every model with a ``|total_cost`` column; LLMRouterBench: every
        model folder; RouterEval: every model of any pool).
      format: ``"auto"``, ``"wide"``, ``"routerbench"`` (= wide), ``"long"``, ``"paper"``, ``"routellm"``,
        ``"llmrouterbench"`` or ``"routereval"``.
      prices: costs from token counts × prices, replacing any costs in the file: a CSV path, DataFrame or
        dict with, per model, US dollars per million input and output tokens (columns ``model, input,
        output``). Token counts: columns ``<model>|input_tokens``/``<model>|output_tokens`` (a shared
        ``input_tokens`` column serves every model; long format: ``input_tokens``/``output_tokens``), else
        ⌈characters / 4⌉ of the ``prompt`` and of the model's response column.
      split: the paper's layout: ``"train"`` or ``"test"`` (default: both, train rows first); LLMRouterBench:
        a split folder's name (default: every split); RouterEval: ``"train"``, ``"val"`` or ``"test"``
        (default: all three, in that order).
      group: the column of per-query group labels; ``"auto"`` takes the first of ``eval_name``,
        ``category``, ``group`` that exists, ``None`` loads no groups.
      sort: order models by ascending mean cost (the paper's cascade order).
      dropna: drop queries with a missing or infinite quality/cost instead of raising (a warning says how
        many).
      allow_pickle: read ``.pkl``/``.pickle`` files (RouterBench's). Off by default, as NumPy's: loading a
        pickle runs whatever code it holds, so only allow files you trust.

    Example:
      >>> import cascjax
      >>> ds = cascjax.read(cascjax.example_path())
      >>> ds.n_models
      6
      >>> import os, tempfile, pandas as pd
      >>> long = pd.DataFrame({"query_id": [1, 1, 2, 2], "model": ["small", "big"] * 2,
      ...                      "quality": [0, 1, 1, 1], "cost": [1.0, 8.0, 1.0, 8.0]})
      >>> path = os.path.join(tempfile.mkdtemp(), "long.csv")
      >>> long.to_csv(path, index=False)
      >>> ds = cascjax.read(path)                      # detected: the long format
      >>> ds.models, ds.quality.shape
      (('small', 'big'), (2, 2))
    """
    df, _ = to_wide(path, format=format, prices=prices, split=split, allow_pickle=allow_pickle, models=models)
    ds = frame_to_dataset(df, models, group=group, sort=sort, dropna=dropna, source=str(path))[0]
    del df
    release_arrow()
    return ds


def example_path() -> str:
    """Path of the embedded MMLU-Pro example file (12,020 questions x 6 models; see its README).

    Example:
      >>> import cascjax
      >>> cascjax.example_path().endswith("mmlu_pro_6models.csv.gz")
      True
    """
    return str(resources.files("cascjax") / "data" / EXAMPLE)


def load_example(**kwargs) -> Dataset:
    """The embedded MMLU-Pro example: 12,020 questions x 6 models, groups = the 14 subject categories.

    Correctness from the MMLU-Pro authors' published outputs (TIGER-AI-Lab/MMLU-Pro, Apache-2.0 / MIT);
    costs derived from characters/4 x list price (see ``cascjax/data/README.md``). Keyword arguments go
    to :func:`read`.

    Returns:
      A :class:`Dataset`: quality and cost [12020, 6], models by ascending mean cost.

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> ds.quality.shape, ds.models[0], len(ds.group_names)
      ((12020, 6), 'llama-3.1-8b-instruct', 14)
    """
    return read(example_path(), **kwargs)


def read_estimates(path, ds: Dataset, *, format: str = "auto", prices=None, split: str | None = None,
                   dropna: bool = False, allow_pickle: bool = False) -> Estimates:
    """Reads a user's estimator outputs for ``ds`` from the same file the dataset came from.

    Columns ``<model>|quality_ante``, ``<model>|quality_post``, ``<model>|quality_sd_ante``,
    ``<model>|quality_sd_post``, ``<model>|cost_ante``, ``<model>|cost_post`` for the models of ``ds`` (long
    format: columns ``quality_ante`` ... ``cost_post``). A missing column means: quality estimate = the true
    quality, standard deviation = 0, cost estimate = the true cost. Rows are matched by position, so pass
    the same ``format``, ``prices``, ``split``, ``dropna`` and ``allow_pickle`` that :func:`read` used.

    Returns:
      :class:`cascjax.Estimates` with every field [N, M] in the order of ``ds.models``.

    Example:
      >>> import os, tempfile, pandas as pd, cascjax
      >>> frame = pd.DataFrame({"a": [0, 1], "a|total_cost": [1.0, 1.0], "a|quality_ante": [0.25, 0.75],
      ...                       "b": [1, 1], "b|total_cost": [4.0, 4.0]})
      >>> path = os.path.join(tempfile.mkdtemp(), "wide.csv")
      >>> frame.to_csv(path, index=False)
      >>> ds = cascjax.read(path)
      >>> est = cascjax.read_estimates(path, ds)
      >>> est.quality_ante.tolist()                    # b has no estimate column: its truth is used
      [[0.25, 1.0], [0.75, 1.0]]
    """
    import warnings

    with warnings.catch_warnings():  # reading the dataset already reported what converting the file reports
        warnings.simplefilter("ignore", UserWarning)
        df, _ = to_wide(path, format=format, prices=prices, split=split, allow_pickle=allow_pickle,
                        models=ds.models)
    with warnings.catch_warnings():  # reading the dataset already reported the dropped rows
        warnings.simplefilter("ignore", UserWarning)
        _, kept = frame_to_dataset(df, ds.models, group=None, sort=False, dropna=dropna, source=str(path))
    if int(kept.sum()) != ds.n_queries:
        raise CascjaxError(f"{path}: has {int(kept.sum())} usable rows but the dataset has {ds.n_queries} "
                           "queries; read the estimates from the file the dataset was read from")
    df = df.loc[kept]
    truth = {"quality": np.asarray(ds.quality), "cost": np.asarray(ds.cost)}
    fields = {}
    for suffix in ESTIMATE_SUFFIXES:
        kind = "cost" if suffix.startswith("cost") else "quality"
        default = np.zeros_like(truth["quality"]) if "_sd_" in suffix else truth[kind]
        cols = []
        for j, model in enumerate(ds.models):
            name = f"{model}|{suffix}"
            if name not in df.columns:
                cols.append(default[:, j])
                continue
            values = _numeric_column(df, name, str(path))
            bad = ~np.isfinite(values)
            if bad.any():
                raise CascjaxError(f"{path}: column {name!r} has {bad.sum()} missing or non-finite values "
                                   f"(first at row {int(np.nonzero(bad)[0][0])})")
            if ("_sd_" in suffix or kind == "cost") and (values < 0).any():
                what = "standard deviations" if "_sd_" in suffix else "cost estimates"
                raise CascjaxError(f"{path}: column {name!r} has negative {what}")
            cols.append(values)
        fields[suffix] = np.stack(cols, axis=1)
    del df
    release_arrow()
    import jax.numpy as jnp

    return Estimates(*(jnp.asarray(fields[s], dtype=ds.quality.dtype) for s in ESTIMATE_SUFFIXES))
