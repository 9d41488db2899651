"""The wide interchange format (DESIGN section 1): reading a file into a frame, and a wide frame into a Dataset.

One row per query; for every model a column ``<model>`` (true quality) and ``<model>|total_cost`` (true cost),
optionally estimate columns ``<model>|quality_ante`` ... ``<model>|cost_post``. :func:`frame_to_dataset` is the
reading part of :meth:`cascjax.Dataset.from_frame` and the last step of every reader (:mod:`cascjax.io._read`);
the other formats (:mod:`cascjax.io._formats`) reuse :func:`_read_frame` (:func:`_read_object` where a
pickle may hold something else than a DataFrame) and :func:`_numeric_column`. pandas is
imported lazily, inside the functions.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from .._data import Dataset, _does_not_fit
from .._errors import CascjaxError

COST_SUFFIX = "|total_cost"
ESTIMATE_SUFFIXES = ("quality_ante", "quality_post", "quality_sd_ante", "quality_sd_post", "cost_ante",
                     "cost_post")
_MODEL_SUFFIXES = (COST_SUFFIX, "|model_response", "|input_tokens", "|output_tokens") + tuple(
    "|" + s for s in ESTIMATE_SUFFIXES)
_GROUP_COLUMNS = ("eval_name", "category", "group")


def _read_frame(path, allow_pickle: bool = False):
    path = os.fspath(path)
    return _as_frame(_read_object(path, allow_pickle), path)


def _as_frame(obj, path):
    """``obj`` (read from ``path``) if it is a DataFrame with rows and unique column names."""
    import pandas as pd

    if not isinstance(obj, pd.DataFrame):
        raise CascjaxError(f"{path}: holds a {type(obj).__name__}, not a pandas DataFrame")
    if len(obj) == 0:
        raise CascjaxError(f"{path}: has no rows")
    _check_unique_columns([str(c) for c in obj.columns], path)
    return obj


def _read_object(path: str, allow_pickle: bool = False):
    """What a data file holds: a DataFrame (CSV, Parquet) or, for a pickle, whatever was pickled (RouterEval's
    router datasets are dicts)."""
    import pandas as pd

    if not os.path.exists(path):
        raise CascjaxError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CascjaxError(f"{path}: is a directory, not a data file")
    lower = path.lower()
    for ext in (".gz", ".bz2", ".zip", ".xz", ".zst"):
        if lower.endswith(ext):
            lower = lower[: -len(ext)]
    try:
        if lower.endswith(".csv"):
            obj = pd.read_csv(path)
            # pandas renames a repeated header name 'a' to 'a.1'; catch it from the raw header row.
            header = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].tolist()
            _check_unique_columns(header, path)
        elif lower.endswith((".parquet", ".pq")):
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise CascjaxError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
            try:
                obj = pd.read_parquet(path)
            except (OSError, ValueError, TypeError, ImportError) as e:  # pyarrow's ArrowInvalid is a ValueError
                raise CascjaxError(f"{path}: is not a readable Parquet file ({type(e).__name__}: "
                                   f"{str(e).splitlines()[0] if str(e) else ''})") from None
            release_arrow()  # the blocks the conversion freed: 2.50 -> 0.97 GB resident on 100,000 x 1,000
        elif lower.endswith((".pkl", ".pickle")):
            if not allow_pickle:  # as NumPy's allow_pickle=False: unpickling runs whatever code the file holds
                raise CascjaxError(f"{path}: is a pickle, and loading a pickle runs any code it holds; if you trust "
                                   "the file, pass --allow-pickle (Python: allow_pickle=True; a grid spec: "
                                   "allow_pickle = true in [data])")
            obj = pd.read_pickle(path)
        else:
            raise CascjaxError(f"{path}: unknown file type; use .csv, .parquet or .pkl")
    except pd.errors.EmptyDataError:
        raise CascjaxError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as e:
        raise CascjaxError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None
    return obj


def release_arrow() -> None:
    """Hands the memory pyarrow's pool keeps after freeing it back to the system (a Parquet frame's data lives
    in that pool; freed, its blocks stay resident: 1.5 GB after converting a 100,000 x 1,000-model table, the
    frame's own 0.8 GB after it is dropped). Nothing without pyarrow loaded."""
    import sys

    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()


def _check_unique_columns(columns, source):
    seen = set()
    for col in columns:
        if col in seen:
            raise CascjaxError(f"{source}: column {col!r} appears twice (duplicate model name?)")
        seen.add(col)


def _model_columns(df) -> list[str]:
    found = []
    for col in map(str, df.columns):
        for suffix in _MODEL_SUFFIXES:
            if col.endswith(suffix):
                model = col[: -len(suffix)]
                if model not in found:
                    found.append(model)
    return found


def _numeric_column(df, name: str, source: str) -> np.ndarray:
    import pandas as pd

    col = df[name]
    if col.dtype == bool:
        return col.to_numpy(dtype=np.float64)
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    non_numeric = np.isnan(values) & col.notna().to_numpy()
    if non_numeric.any():
        first = int(np.nonzero(non_numeric)[0][0])
        raise CascjaxError(f"{source}: column {name!r} has a non-numeric value {col.iloc[first]!r} at row {first}")
    return values


def frame_to_dataset(df, models=None, *, group="auto", sort=True, dropna=False, source="data frame"):
    """Dataset from a wide frame, plus the [rows] boolean mask of the rows kept."""
    import warnings

    if len(df) == 0:
        raise CascjaxError(f"{source}: has no rows")
    _check_unique_columns([str(c) for c in df.columns], source)
    df = df.rename(columns=str)
    if models is None:
        models = _model_columns(df)
        if not models:
            raise CascjaxError(f"{source}: no model columns found; expected '<model>' and "
                               f"'<model>{COST_SUFFIX}' for every model")
    models = [str(m) for m in models]
    if len(models) == 1:
        others = [c for c in df.columns if c not in models and not c.startswith(models[0] + "|")]
        hint = f"; is the cost column missing for one of {others[:5]}?" if others else ""
        raise CascjaxError(f"{source}: at least two models are needed, found only {models[0]!r} (a model needs "
                           f"columns '<model>' and '<model>{COST_SUFFIX}'){hint}")
    for model in models:
        if model not in df.columns:
            raise CascjaxError(f"{source}: missing quality column {model!r} for model {model!r}")
        if model + COST_SUFFIX not in df.columns:
            tokens = any(f"{model}|{t}_tokens" in df.columns for t in ("input", "output"))
            hint = ("; the file has token counts: give a price table (prices=..., CLI: --prices prices.csv)"
                    if tokens else "")
            raise CascjaxError(f"{source}: missing cost column {model + COST_SUFFIX!r} for model {model!r}{hint}")
    # Filled column by column, in the dtype the Dataset will hold (float32 unless JAX's x64 is on): a list of
    # float64 columns and a stack would hold each matrix three times (100,000 x 1,000 models: 0.8 GB each).
    dtype = jax.dtypes.canonicalize_dtype(np.float64)
    quality, cost = np.empty((len(df), len(models)), dtype), np.empty((len(df), len(models)), dtype)
    for j, m in enumerate(models):
        for name, out in ((m, quality), (m + COST_SUFFIX, cost)):
            values = _numeric_column(df, name, source)
            with np.errstate(over="ignore"):
                out[:, j] = values
            overflow = np.isinf(out[:, j]) & np.isfinite(values)
            if overflow.any():
                row = int(np.nonzero(overflow)[0][0])
                raise CascjaxError(f"{source}: column {name!r} has {values[row]} at row {row}, "
                                   + _does_not_fit(dtype))
    finite = np.isfinite(quality).all(axis=1) & np.isfinite(cost).all(axis=1)
    if not finite.all():
        bad = ~np.isfinite(np.concatenate([quality, cost], axis=1))
        rows, cols = np.nonzero(bad)
        names = models + [m + COST_SUFFIX for m in models]
        where = f"column {names[cols[0]]!r} at row {rows[0]}"
        if not dropna:
            raise CascjaxError(f"{source}: {int((~finite).sum())} rows have missing or infinite values (first: "
                               f"{where}); pass dropna=True (CLI: --dropna) to drop them")
        warnings.warn(f"{source}: dropped {int((~finite).sum())} of {len(finite)} rows with missing or infinite "
                      f"values (first: {where})", stacklevel=3)
        if not finite.any():
            raise CascjaxError(f"{source}: every row has a missing or infinite value")
    negative = (cost < 0) & finite[:, None]
    if negative.any():
        rows, cols = np.nonzero(negative)
        raise CascjaxError(f"{source}: column {models[cols[0]] + COST_SUFFIX!r} has a negative cost "
                           f"({cost[rows[0], cols[0]]}) at row {rows[0]}")
    if group == "auto":
        group = next((g for g in _GROUP_COLUMNS if g in df.columns), None)
    labels = None
    if group is not None:
        if group not in df.columns:
            raise CascjaxError(f"{source}: no group column {group!r}")
        labels = df[group].astype(str).to_numpy()[finite]
    if not finite.all():
        quality, cost = quality[finite], cost[finite]
    try:
        ds = Dataset.from_arrays(quality, cost, models=models, group=labels, sort=sort)
    except CascjaxError as e:
        raise CascjaxError(f"{source}: {e}") from None
    return ds, finite
