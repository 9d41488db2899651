"""What learned estimators read: query features, and per model its answer and numeric answer features.

A features file (CSV, Parquet, ... as :func:`cascjax.read`; or a pandas DataFrame) holds, per query:
* ``<model>|answer`` for every model of the dataset: what the model answered, categorical (equal values =
  agreement; empty = no answer could be extracted);
* ``<model>|<name>`` numeric answer features (e.g. ``output_chars``, a confidence), each for every model;
* query feature columns without ``|``: categorical ones (text) one-hot, numeric ones as numbers;
* optionally ``sample_id``, to join the file with the dataset's rows (``sample_ids=``).
Numeric features that are never negative (lengths, counts) are taken as log(1 + x); the fit standardises
them. Reading never runs code from the file; a missing, partial or non-numeric column is an error naming it.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from .._data import Dataset
from .._errors import CascjaxError

#: Columns of the dataset's own format, never features.
_NOT_FEATURES = ("total_cost", "quality_ante", "quality_post", "quality_sd_ante", "quality_sd_post", "cost_ante",
                 "cost_post", "input_tokens", "output_tokens", "model_response")


class Features(NamedTuple):
    """Features of N queries and M models (the dataset's order), NumPy arrays.

    Attributes:
      query: [N, Fq] query features (one-hot categories, numeric columns).
      model: [N, M, Fm] each model's numeric answer features, the last one 1 where an answer was extracted.
      answer: [N, M] int32 answer codes, equal codes = the same answer, −1 = none extracted.
      query_names: the Fq query feature names (``column=value`` for one-hot ones).
      model_names: the Fm per-model feature names.

    Example:
      >>> import cascjax
      >>> from cascjax import estimators
      >>> f = estimators.example_features()
      >>> f.query.shape[0], f.model.shape[1:], f.model_names
      (12020, (6, 2), ('output_chars', 'extracted'))
    """

    query: np.ndarray
    model: np.ndarray
    answer: np.ndarray
    query_names: tuple
    model_names: tuple

    def take(self, rows) -> "Features":
        """The features of the queries at ``rows`` (indices or an [N] boolean mask)."""
        rows = np.asarray(rows)
        rows = np.nonzero(rows)[0] if rows.dtype == bool else rows
        return Features(self.query[rows], self.model[rows], self.answer[rows], self.query_names, self.model_names)


def read_features(source, ds: Dataset, *, query_features=None, sample_ids=None, allow_pickle: bool = False
                  ) -> Features:
    """Reads the features of ``ds``'s queries and models from a file or a DataFrame.

    Args:
      source: a path (any format :func:`cascjax.read` reads) or a pandas DataFrame.
      ds: the dataset the features belong to: its models are looked up as ``<model>|answer`` ...
      query_features: the query feature columns to use (default: every column without ``|`` except
        ``sample_id`` and the dataset's own columns: the models' quality columns, ``category``).
      sample_ids: the dataset's rows as ``sample_id`` values: the file's rows are joined on them (every id must
        be in the file once). Default: the file has exactly the dataset's rows, in its order.
      allow_pickle: read a ``.pkl``/``.pickle`` file (off by default: loading a pickle runs any code it holds).

    Returns:
      :class:`Features`.

    Example:
      >>> import pandas as pd, cascjax
      >>> from cascjax import estimators
      >>> ds = cascjax.Dataset.from_arrays([[1, 0], [1, 1]], [[1, 2]] * 2, models=["a", "b"], sort=False)
      >>> frame = pd.DataFrame({"topic": ["x", "y"], "a|answer": ["A", "B"], "b|answer": ["A", None],
      ...                       "a|chars": [10, 20], "b|chars": [30, 40]})
      >>> f = estimators.read_features(frame, ds)
      >>> f.query_names, f.model_names, f.answer.tolist()
      (('topic=x', 'topic=y'), ('chars', 'extracted'), [[0, 0], [1, -1]])
    """
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        frame, where = source, "the features frame"
    else:
        from ..io._wide import _read_frame

        frame, where = _read_frame(source, allow_pickle), os.fspath(source)
    frame = _aligned(frame, ds.n_queries, sample_ids, where)
    models = list(ds.models)
    per_model = {}
    for col in frame.columns:
        if isinstance(col, str) and "|" in col:
            model, name = col.split("|", 1)
            per_model.setdefault(name, set()).add(model)
    if "answer" not in per_model:
        raise CascjaxError(f"{where}: no <model>|answer columns (what each model answered) for {models}")
    names = sorted(n for n in per_model if n != "answer" and n not in _NOT_FEATURES)
    for name in ["answer"] + names:
        missing = [m for m in models if m not in per_model[name]]
        if missing:
            raise CascjaxError(f"{where}: column {missing[0]}|{name} is missing (every model needs its "
                               f"{name!r} column: {', '.join(missing)})")
    codes = _answer_codes(frame, models)
    numeric = [np.stack([_numeric(frame, f"{m}|{name}", where) for m in models], axis=1) for name in names]
    extracted = (codes >= 0).astype(np.float64)
    model = np.stack(numeric + [extracted], axis=2)
    query, query_names = _query_matrix(frame, ds, query_features, where)
    return Features(query, model, codes, tuple(query_names), tuple(names) + ("extracted",))


def _aligned(frame, n, sample_ids, where):
    if sample_ids is None:
        if len(frame) != n:
            raise CascjaxError(f"{where}: {len(frame):,} rows but the dataset has {n:,} queries (give sample_ids= to "
                               "join on sample_id)")
        return frame.reset_index(drop=True)
    if "sample_id" not in frame.columns:
        raise CascjaxError(f"{where}: no sample_id column to join on")
    ids = frame["sample_id"].astype(str)
    if ids.duplicated().any():
        raise CascjaxError(f"{where}: sample_id {str(ids[ids.duplicated()].iloc[0])!r} appears more than once")
    want = np.asarray(sample_ids).astype(str)
    if want.shape != (n,):
        raise CascjaxError(f"sample_ids must list the dataset's {n:,} queries, got shape {want.shape}")
    at = frame.set_index(ids).index.get_indexer(want)
    if (at < 0).any():
        raise CascjaxError(f"{where}: sample_id {str(want[np.argmax(at < 0)])!r} of the dataset is not in the file "
                           f"({int((at < 0).sum()):,} missing)")
    return frame.iloc[at].reset_index(drop=True)


def _answer_codes(frame, models):
    import pandas as pd

    values = pd.concat([frame[f"{m}|answer"] for m in models], ignore_index=True)
    text = values.astype("string").str.strip()
    blank = text.isna() | (text == "")
    codes, _ = pd.factorize(text.where(~blank), use_na_sentinel=True)
    return np.asarray(codes, np.int32).reshape(len(models), len(frame)).T


def _numeric(frame, col, where):
    import pandas as pd

    values = pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise CascjaxError(f"{where}: column {col} must hold finite numbers; row {int(np.argmax(bad))} holds "
                           f"{frame[col].iloc[int(np.argmax(bad))]!r}")
    return np.log1p(values) if (values >= 0).all() else values


def _query_matrix(frame, ds, chosen, where):
    own = set(ds.models) | {"sample_id", "category"}
    if chosen is None:
        chosen = [c for c in frame.columns if isinstance(c, str) and "|" not in c and c not in own]
    columns, names = [], []
    for col in chosen:
        if col not in frame.columns:
            raise CascjaxError(f"{where}: query feature column {col!r} is missing")
        values = frame[col]
        if values.dtype.kind in "biuf":
            columns.append(_numeric(frame, col, where)[:, None])
            names.append(col)
        else:
            text = values.astype("string").fillna("")
            levels = sorted(set(text))
            columns.append((text.to_numpy()[:, None] == np.asarray(levels, object)[None]).astype(np.float64))
            names += [f"{col}={v}" for v in levels]
    if not columns:
        return np.zeros((len(frame), 0)), []
    return np.concatenate(columns, axis=1), names


def example_features() -> Features:
    """The embedded example's answers (``mmlu_pro_6models_answers.csv.gz``, the same 12,020 questions in the same
    order as :func:`cascjax.load_example`; provenance in ``cascjax/data/README.md``): query features ``src``
    (91 subsets, one-hot), ``n_options`` and ``question_chars``; per model its letter and ``output_chars``.

    Example:
      >>> from cascjax import estimators
      >>> f = estimators.example_features()
      >>> f.answer.shape, len(f.query_names)
      ((12020, 6), 93)
    """
    from importlib import resources

    from ..io import load_example

    ds = load_example()
    return read_features(str(resources.files("cascjax") / "data" / "mmlu_pro_6models_answers.csv.gz"), ds)
