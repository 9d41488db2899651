"""Reading the wide interchange format (DESIGN section 1). pandas is imported here only, lazily."""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources

import numpy as np

from ._data import Dataset
from ._errors import CascjaxError
from ._estimates import Estimates

COST_SUFFIX = "|total_cost"
ESTIMATE_SUFFIXES = ("quality_ante", "quality_post", "quality_sd_ante", "quality_sd_post", "cost_ante",
                     "cost_post")
_MODEL_SUFFIXES = (COST_SUFFIX, "|model_response", "|input_tokens", "|output_tokens") + tuple(
    "|" + s for s in ESTIMATE_SUFFIXES)
_GROUP_COLUMNS = ("eval_name", "category", "group")
EXAMPLE = "mmlu_pro_6models.csv.gz"


def read(path, models: Sequence[str] | None = None, *, format: str = "auto", prices=None, split: str | None = None,
         group: str | None = "auto", sort: bool = True, dropna: bool = False) -> Dataset:
    """Reads a dataset (N queries × M models) from the formats people have, into one :class:`Dataset`.

    The wide interchange format: one row per query; for every model a column ``<model>`` with the true
    quality and a column ``<model>|total_cost`` with the true cost. Other columns (ids, prompts,
    ``<model>|model_response``) are ignored. RouterBench's ``routerbench_0shot.pkl`` and
    ``routerbench_5shot.pkl`` are wide files and load as they are. Other formats (``format=``, detected
    from the file when ``"auto"``): ``long`` — one row per (query, model) with columns ``query_id, model,
    quality, cost``; ``paper`` — the paper's per-dataset JSON layout, a folder with ``qualities.json`` and
    ``costs.json`` (or ``train/`` and ``test/`` subfolders holding them); ``routellm`` — RouteLLM's
    evaluation CSVs (``prompt`` and one True/False column per model; they have no costs, so pass
    ``prices``).

    Args:
      path: a ``.csv`` (optionally ``.gz``/``.zip``/``.bz2``/``.xz``), ``.parquet``/``.pq`` (needs pyarrow)
        or ``.pkl``/``.pickle`` file holding a DataFrame, or a folder in the paper's JSON layout.
      models: the models to load (default: every model with a ``|total_cost`` column).
      format: ``"auto"``, ``"wide"``, ``"routerbench"`` (= wide), ``"long"``, ``"paper"`` or ``"routellm"``.
      prices: costs from token counts × prices, replacing any costs in the file: a CSV path, DataFrame or
        dict with, per model, US dollars per million input and output tokens (columns ``model, input,
        output``). Token counts: columns ``<model>|input_tokens``/``<model>|output_tokens`` (a shared
        ``input_tokens`` column serves every model; long format: ``input_tokens``/``output_tokens``), else
        ⌈characters / 4⌉ of the ``prompt`` and of the model's response column.
      split: the paper's layout only: ``"train"`` or ``"test"`` (default: both, train rows first).
      group: the column of per-query group labels; ``"auto"`` takes the first of ``eval_name``,
        ``category``, ``group`` that exists, ``None`` loads no groups.
      sort: order models by ascending mean cost (the paper's cascade order).
      dropna: drop queries with a missing or infinite quality/cost instead of raising (a warning says how
        many).

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
    from ._formats import to_wide

    df, _ = to_wide(path, format=format, prices=prices, split=split)
    return frame_to_dataset(df, models, group=group, sort=sort, dropna=dropna, source=str(path))[0]


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
                   dropna: bool = False) -> Estimates:
    """Reads a user's estimator outputs for ``ds`` from the same file the dataset came from.

    Columns ``<model>|quality_ante``, ``<model>|quality_post``, ``<model>|quality_sd_ante``,
    ``<model>|quality_sd_post``, ``<model>|cost_ante``, ``<model>|cost_post`` for the models of ``ds`` (long
    format: columns ``quality_ante`` ... ``cost_post``). A missing column means: quality estimate = the true
    quality, standard deviation = 0, cost estimate = the true cost. Rows are matched by position, so pass
    the same ``format``, ``prices``, ``split`` and ``dropna`` that :func:`read` used.

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

    from ._formats import to_wide

    with warnings.catch_warnings():  # reading the dataset already reported what converting the file reports
        warnings.simplefilter("ignore", UserWarning)
        df, _ = to_wide(path, format=format, prices=prices, split=split)
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
    import jax.numpy as jnp

    return Estimates(*(jnp.asarray(fields[s], dtype=ds.quality.dtype) for s in ESTIMATE_SUFFIXES))


# -- internals ------------------------------------------------------------------------------------------------

def _read_frame(path):
    import pandas as pd

    path = os.fspath(path)
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
            df = pd.read_csv(path)
            # pandas renames a repeated header name 'a' to 'a.1'; catch it from the raw header row.
            header = pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0].tolist()
            _check_unique_columns(header, path)
        elif lower.endswith((".parquet", ".pq")):
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise CascjaxError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
            df = pd.read_parquet(path)
        elif lower.endswith((".pkl", ".pickle")):
            df = pd.read_pickle(path)
        else:
            raise CascjaxError(f"{path}: unknown file type; use .csv, .parquet or .pkl")
    except pd.errors.EmptyDataError:
        raise CascjaxError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as e:
        raise CascjaxError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(df, pd.DataFrame):
        raise CascjaxError(f"{path}: holds a {type(df).__name__}, not a pandas DataFrame")
    if len(df) == 0:
        raise CascjaxError(f"{path}: has no rows")
    _check_unique_columns([str(c) for c in df.columns], path)
    return df


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
    quality = np.stack([_numeric_column(df, m, source) for m in models], axis=1)
    cost = np.stack([_numeric_column(df, m + COST_SUFFIX, source) for m in models], axis=1)
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
    try:
        ds = Dataset.from_arrays(quality[finite], cost[finite], models=models, group=labels, sort=sort)
    except CascjaxError as e:
        raise CascjaxError(f"{source}: {e}") from None
    return ds, finite
