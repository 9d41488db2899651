"""Reading a second cost (latency) and its estimates for a dataset: :func:`read_latency`."""

from __future__ import annotations

import warnings

import numpy as np

from .._data import Dataset
from .._errors import CascjaxError
from .._latency import Latency
from ._formats import LATENCY_COLUMNS, to_wide
from ._wide import _numeric_column, frame_to_dataset, release_arrow




def read_latency(path, ds: Dataset, *, format: str = "auto", split: str | None = None, dropna: bool = False,
                 allow_pickle: bool = False) -> Latency:
    """Reads a second cost per query and model (latency, or any other) for ``ds`` from the file it came from.

    Columns ``<model>|latency`` (the realised value; required for every model of ``ds``) and, optionally,
    ``<model>|latency_ante`` and ``<model>|latency_post`` (an estimator's predictions; a missing column means
    the truth). Long format: columns ``latency``, ``latency_ante``, ``latency_post``. Rows are matched by
    position, so pass the same ``format``, ``split``, ``dropna`` and ``allow_pickle`` as :func:`read`.

    Returns:
      A :class:`cascjax.Latency`, [N, M] float64 each, in the order of ``ds.models``.

    Example:
      >>> import os, tempfile, pandas as pd, cascjax
      >>> frame = pd.DataFrame({"a": [0, 1], "a|total_cost": [1.0, 1.0], "a|latency": [0.3, 0.4],
      ...                       "b": [1, 1], "b|total_cost": [4.0, 4.0], "b|latency": [2.0, 2.5]})
      >>> path = os.path.join(tempfile.mkdtemp(), "wide.csv")
      >>> frame.to_csv(path, index=False)
      >>> ds = cascjax.read(path)
      >>> cascjax.read_latency(path, ds).latency.tolist()
      [[0.3, 2.0], [0.4, 2.5]]
    """
    with warnings.catch_warnings():  # reading the dataset already reported what converting the file reports
        warnings.simplefilter("ignore", UserWarning)
        df, _ = to_wide(path, format=format, split=split, allow_pickle=allow_pickle)
        _, kept = frame_to_dataset(df, ds.models, group=None, sort=False, dropna=dropna, source=str(path))
    if int(kept.sum()) != ds.n_queries:
        raise CascjaxError(f"{path}: has {int(kept.sum())} usable rows but the dataset has {ds.n_queries} "
                           "queries; read the latency from the file the dataset was read from")
    df = df.loc[kept]
    absent = [m for m in ds.models if f"{m}|latency" not in df.columns]
    if absent:
        raise CascjaxError(f"{path}: no latency column for model {absent[0]!r}: give a column "
                           f"'{absent[0]}|latency' for every model (long format: a 'latency' column)")
    fields = []
    for suffix in LATENCY_COLUMNS:
        cols = []
        for j, model in enumerate(ds.models):
            name = f"{model}|{suffix}"
            if name not in df.columns:
                cols.append(fields[0][:, j])
                continue
            values = _numeric_column(df, name, str(path))
            bad = ~(np.isfinite(values) & (values >= 0))
            if bad.any():
                raise CascjaxError(f"{path}: column {name!r} has {int(bad.sum())} missing, non-finite or negative "
                                   f"values (first at row {int(np.nonzero(bad)[0][0])}); latencies must be >= 0")
            cols.append(values)
        fields.append(np.stack(cols, axis=1).astype(np.float64))
    del df
    release_arrow()
    return Latency(*fields)
