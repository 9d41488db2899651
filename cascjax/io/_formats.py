"""The data formats people already have, each turned into the wide interchange frame (DESIGN section 1).

Every loader here returns a pandas DataFrame in the wide layout (``<model>``, ``<model>|total_cost`` and,
where the source has them, ``<model>|quality_ante`` ... estimate columns), so that :func:`cascjax.read` and
:func:`cascjax.read_estimates` validate every format with the same code and the same messages.

Formats (``format=``):

* ``wide`` — the interchange format; RouterBench's ``routerbench_0shot.pkl`` and ``routerbench_5shot.pkl``
  are wide files (``routerbench`` is accepted as a name for it).
* ``long`` — one row per (query, model): ``query_id, model, quality, cost`` (plus optional estimate columns
  ``quality_ante`` ... ``cost_post``, token counts ``input_tokens``/``output_tokens`` and a group column).
* ``paper`` — the paper's per-dataset JSON layout (eth-sri/cascade-routing): a folder with
  ``qualities.json`` and ``costs.json`` (DataFrames written by ``DataFrame.to_json``: one column per model),
  optionally in ``train/`` and ``test/`` subfolders.
* ``routellm`` — RouteLLM's evaluation CSVs: ``prompt``, one True/False column per model (usually two:
  the strong and the weak model), optionally ``<model>_response``; no costs, so a price table is needed.
* ``llmrouterbench`` — LLMRouterBench's (formerly OpenRouterBench's) results folder,
  ``results/bench/<dataset>/<split>/<model>/*.json``: per model and split a run object whose ``records`` hold
  ``index``, ``score``, ``cost``, ``prompt_tokens``, ``completion_tokens`` and ``prediction`` per query (a file
  may also hold a list of records, or one). Records are matched across models by their id; the dataset is the
  group (``eval_name``); ``split=`` picks a split folder; ``prediction`` becomes ``<model>|answer`` and
  ``<model>|model_response``. Read by :mod:`cascjax.io._suites`, which says more.
* ``routereval`` — RouterEval's ``<benchmark>_router_dataset.pkl`` (a pickled dict of candidate pools over one
  train/val/test query split): every pool's models (or ``models=``'s), ``split=`` train, val or test; no costs
  and no responses, so a price table of input prices is needed (costs from the prompts' lengths).

Costs from token counts × a price table (``prices=``): a CSV (or DataFrame, or mapping) with columns
``model, input, output`` — US dollars per million input and output tokens. Token counts come from the
columns ``<model>|input_tokens`` / ``<model>|output_tokens`` (wide; a shared ``input_tokens`` column serves
every model), ``input_tokens`` / ``output_tokens`` (long), ``prompt_tokens`` / ``completion_tokens``
(LLMRouterBench), or, where a file has none, are approximated from the text as ⌈characters / 4⌉ (the prompt,
and the model's response).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .._errors import CascjaxError
from ._prices import apply_prices, read_prices
from ._suites import is_routereval, llmrouterbench_long, looks_like_llmrouterbench, routereval_frame
from ._wide import _GROUP_COLUMNS, ESTIMATE_SUFFIXES, _as_frame, _read_object

FORMATS = ("auto", "wide", "routerbench", "long", "paper", "routellm", "llmrouterbench", "routereval")
LONG_REQUIRED = ("query_id", "model", "quality")
#: A second cost per row of the long format (:func:`cascjax.read_latency`), pivoted to ``<model>|latency`` ...
LATENCY_COLUMNS = ("latency", "latency_ante", "latency_post")
#: RouteLLM's correctness values (1 and 0 are True and False as dict keys too).
_TRUTH = {True: 1.0, False: 0.0, "True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}
_PAPER_FILES = ("qualities.json", "costs.json")


def to_wide(path, *, format: str = "auto", prices=None, split: str | None = None, allow_pickle: bool = False,
            models=None):
    """The wide frame of ``path`` and the format it was read as (``"auto"`` resolved).

    The step every reader shares (:func:`cascjax.read` then validates the frame): each format's columns become
    ``<model>``, ``<model>|total_cost`` (from ``prices`` where given) and, where the source has them,
    ``<model>|answer`` / ``<model>|model_response`` (what the model answered: LLMRouterBench's ``prediction``,
    read by :func:`cascjax.estimators.read_features` for the answer-agreement features), token counts and a
    group column. ``models`` limits the formats that read model by model (LLMRouterBench's folders, RouterEval's
    pools) to those models; the others load every column and leave the choice to the wide reader.

    Example:
      >>> import json, os, tempfile
      >>> from cascjax.io import to_wide
      >>> root = tempfile.mkdtemp()
      >>> for model, scores in (("small", [0, 1]), ("big", [1, 1])):
      ...     folder = os.path.join(root, "results", "bench", "gsm8k", "test", model)
      ...     os.makedirs(folder)
      ...     records = [{"index": i + 1, "score": s, "cost": 0.001 * (1 + (model == "big")),
      ...                 "prediction": str(40 + i + s)} for i, s in enumerate(scores)]
      ...     with open(os.path.join(folder, f"gsm8k-test-{model}-20250101_120000.json"), "w") as f:
      ...         json.dump({"model_name": model, "records": records}, f)
      >>> frame, fmt = to_wide(root)
      >>> fmt, frame["sample_id"].tolist(), frame["small|answer"].tolist(), frame["eval_name"].tolist()
      ('llmrouterbench', ['gsm8k/test/1', 'gsm8k/test/2'], ['40', '42'], ['gsm8k', 'gsm8k'])
    """
    if format not in FORMATS:
        raise CascjaxError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    path = os.fspath(path)
    models = None if models is None else [str(m) for m in models]
    fmt = format
    if fmt == "auto" and (os.path.isdir(path) or os.path.basename(path) in _PAPER_FILES):
        paper_names = _PAPER_FILES + ("queries.json",)
        fmt = "llmrouterbench" if os.path.isdir(path) and looks_like_llmrouterbench(path, paper_names) else "paper"
    priced = None  # the models a price table must cover, where the frame has no suffixed column to find them by
    if fmt == "paper":
        if split is not None and split not in ("train", "test"):
            raise CascjaxError(f"unknown split {split!r}; choose train or test (or none: both)")
        df = _paper(path, split)
    elif fmt == "llmrouterbench":
        long = llmrouterbench_long(path, split=split, models=models, need_cost=prices is None)
        splits = dict(zip(long["query_id"], long["split"]))
        df = _long(long, path, text=("answer", "model_response")).rename(columns={"query_id": "sample_id"})
        df.insert(1, "split", df["sample_id"].map(splits).to_numpy())
    else:
        if split is not None and fmt != "routereval" and not path.lower().endswith((".pkl", ".pickle")):
            _no_split(path, split)  # before reading: only a pickle may be RouterEval's
        obj = _read_object(path, allow_pickle)
        if fmt in ("auto", "routereval") and is_routereval(obj):
            fmt = "routereval"
            df, priced = routereval_frame(obj, path, split=split, models=models)
        elif fmt == "routereval":
            raise CascjaxError(f"{path}: holds a {type(obj).__name__}, not a RouterEval router dataset (a dict of "
                               "candidate pools 'easy' and 'hard')")
        else:
            if split is not None:
                _no_split(path, split)
            df = _as_frame(obj, path)
            if fmt == "auto":
                fmt = detect(df)
            if fmt == "long":
                if "cost" not in map(str, df.columns) and prices is None:
                    raise CascjaxError(f"{path}: the long format needs a 'cost' column, or token counts (input_tokens, "
                                       "output_tokens) and a price table (prices=..., CLI: --prices prices.csv)")
                df = _long(df, path)
            elif fmt == "routellm":
                df = _routellm(df, path)
            elif fmt == "routerbench":
                fmt = "wide"
    if prices is not None:
        if fmt == "routereval":
            _no_output_prices(prices, priced, path)
        if priced is None and fmt == "routellm":
            priced = _routellm_models(df)
        df = apply_prices(df, prices, path, models=priced)
    elif fmt in ("routellm", "routereval"):
        name = "RouteLLM" if fmt == "routellm" else "RouterEval"
        hint = "" if fmt == "routellm" else (" for the models you read (models=..., CLI: --models; "
                                             "cascjax.io.routereval_pools lists each pool's models)")
        raise CascjaxError(f"{path}: {name} files have no costs; give a price table{hint} (prices=..., CLI: --prices "
                           "prices.csv with columns model,input,output in USD per million tokens)")
    return df, fmt


def _no_split(path, split):
    raise CascjaxError(f"{path}: split={split!r} applies to the paper's JSON layout only (and to LLMRouterBench's "
                       "and RouterEval's splits)")


def _no_output_prices(prices, models, source):
    """RouterEval has prompts but no responses: only input tokens can be priced."""
    table = read_prices(prices)
    paid = [m for m in models if m in table and table[m][1] != 0.0]
    if paid:
        raise CascjaxError(f"{source}: RouterEval files hold no responses, so only input tokens are priced; model "
                           f"{paid[0]!r} has an output price of {table[paid[0]][1]} (give 0)")


def detect(df) -> str:
    """``long``, ``wide`` or ``routellm`` from a frame's columns."""
    columns = [str(c) for c in df.columns]
    if all(c in columns for c in LONG_REQUIRED):
        return "long"
    if any(c.endswith("|total_cost") or c.endswith("|input_tokens") or c.endswith("|output_tokens")
           for c in columns):
        return "wide"
    if "prompt" in columns and _routellm_models(df):
        return "routellm"
    return "wide"  # the wide reader's messages say what is missing


# -- long ------------------------------------------------------------------------------------------------------

def _long(df, source, text=()):
    """The wide frame of long rows; ``text`` names per-(query, model) text columns to carry as
    ``<model>|<name>`` (LLMRouterBench's answers)."""
    import pandas as pd

    df = df.rename(columns=str)
    missing = [c for c in LONG_REQUIRED if c not in df.columns]
    if missing:
        raise CascjaxError(f"{source}: the long format needs columns {', '.join(LONG_REQUIRED)} (and cost, or token "
                           f"counts with a price table); missing: {', '.join(missing)}")
    if df["query_id"].isna().any() or df["model"].isna().any():
        column = "query_id" if df["query_id"].isna().any() else "model"
        raise CascjaxError(f"{source}: column {column!r} has a missing value at row "
                           f"{int(np.nonzero(df[column].isna().to_numpy())[0][0])}")
    df = df.assign(model=df["model"].astype(str))
    dup = df.duplicated(["query_id", "model"])
    if dup.any():
        row = df[dup].iloc[0]
        raise CascjaxError(f"{source}: query {row['query_id']!r} has more than one row for model {row['model']!r}")
    queries = pd.unique(df["query_id"])
    models = list(pd.unique(df["model"]))
    values = [c for c in ("quality", "cost", "input_tokens", "output_tokens") + ESTIMATE_SUFFIXES + LATENCY_COLUMNS
              if c in df.columns]
    wide = df.pivot(index="query_id", columns="model", values=values).reindex(queries)
    text = [c for c in text if c in df.columns]  # pivoted apart: mixed with text, numbers would become objects
    words = df.pivot(index="query_id", columns="model", values=text).reindex(queries) if text else None
    counts = df.groupby("query_id", sort=False)["model"].size().reindex(queries)
    incomplete = counts.to_numpy() < len(models)
    if incomplete.any():  # name the first hole; the wide reader then fails or drops (dropna) those queries
        q = queries[int(np.nonzero(incomplete)[0][0])]
        have = set(df.loc[df["query_id"] == q, "model"])
        absent = [m for m in models if m not in have]
        warnings.warn(f"{source}: {int(incomplete.sum())} queries lack a row for some model (first: query {q!r} has "
                      f"no row for model {absent[0]!r}); they count as missing values", stacklevel=4)
    out = {}
    for m in models:
        out[m] = wide[("quality", m)].to_numpy()
        if "cost" in values:
            out[f"{m}|total_cost"] = wide[("cost", m)].to_numpy()
        for c in values[1:]:
            if c != "cost":
                out[f"{m}|{c}"] = wide[(c, m)].to_numpy()
        for c in text:
            out[f"{m}|{c}"] = words[(c, m)].to_numpy()
    frame = pd.DataFrame(out)
    group = next((g for g in _GROUP_COLUMNS if g in df.columns), None)
    if group is not None:
        labels = df.groupby("query_id", sort=False)[group].nunique(dropna=False).reindex(queries)
        if (labels > 1).any():
            q = labels.index[int(np.nonzero(labels.to_numpy() > 1)[0][0])]
            raise CascjaxError(f"{source}: query {q!r} has more than one value in the group column {group!r}")
        frame[group] = df.groupby("query_id", sort=False)[group].first().reindex(queries).to_numpy()
    frame.insert(0, "query_id", queries)
    return frame


# -- the paper's JSON layout -------------------------------------------------------------------------------------

def _paper(path, split):
    import pandas as pd

    if os.path.isfile(path):
        path = os.path.dirname(path) or "."
    if not os.path.isdir(path):
        raise CascjaxError(f"{path}: no such folder (the paper's layout is a folder with qualities.json and "
                           "costs.json)")
    if all(os.path.isfile(os.path.join(path, f)) for f in _PAPER_FILES):
        if split is not None:
            raise CascjaxError(f"{path}: has no train/ and test/ subfolders; split={split!r} does not apply")
        return _paper_folder(path)
    splits = [s for s in ("train", "test") if all(os.path.isfile(os.path.join(path, s, f)) for f in _PAPER_FILES)]
    if not splits:
        raise CascjaxError(f"{path}: expected qualities.json and costs.json in it, or in its train/ and test/ "
                           "subfolders (the paper's per-dataset layout)")
    if split is not None:
        if split not in splits:
            raise CascjaxError(f"{path}: has no {split}/ subfolder with qualities.json and costs.json")
        return _paper_folder(os.path.join(path, split))
    frames = [_paper_folder(os.path.join(path, s)).assign(split=s) for s in splits]
    if len(frames) == 2 and list(frames[0].columns) != list(frames[1].columns):
        raise CascjaxError(f"{path}: train/ and test/ have different models")
    return pd.concat(frames, ignore_index=True)


def _paper_folder(folder):
    import pandas as pd

    parts = {}
    for name in _PAPER_FILES:
        file = os.path.join(folder, name)
        try:
            frame = pd.read_json(file)
        except ValueError as e:
            raise CascjaxError(f"{file}: cannot be read as a JSON table ({e})") from None
        if not isinstance(frame, pd.DataFrame) or frame.shape[1] == 0 or len(frame) == 0:
            raise CascjaxError(f"{file}: holds no table (one column per model, one row per query)")
        frame.columns = [str(c) for c in frame.columns]
        try:
            frame = frame.sort_index()
        except TypeError:
            pass
        parts[name] = frame
    q, c = parts["qualities.json"], parts["costs.json"]
    if set(q.columns) != set(c.columns):
        only = sorted(set(q.columns) ^ set(c.columns))
        raise CascjaxError(f"{folder}: qualities.json and costs.json name different models (e.g. {only[0]!r})")
    if len(q) != len(c) or not q.index.equals(c.index):
        raise CascjaxError(f"{folder}: qualities.json has {len(q)} queries and costs.json {len(c)}, or their query "
                           "indices differ")
    out = {}
    for m in q.columns:
        out[m] = q[m].to_numpy()
        out[f"{m}|total_cost"] = c[m].to_numpy()
    return pd.DataFrame(out)


# -- RouteLLM ----------------------------------------------------------------------------------------------------

def _is_boolean(col) -> bool:
    values = col.dropna()
    if values.empty:
        return False
    if col.dtype == bool:
        return True
    try:
        return bool(values.isin([*_TRUTH, 0, 1, 0.0, 1.0]).all())
    except TypeError:
        return False


def _routellm_models(df) -> list[str]:
    return [str(c) for c in df.columns
            if str(c) != "prompt" and not str(c).endswith("_response") and _is_boolean(df[c])]


def _routellm(df, source):
    import pandas as pd

    df = df.rename(columns=str)
    if "prompt" not in df.columns:
        raise CascjaxError(f"{source}: a RouteLLM file needs a 'prompt' column")
    models = _routellm_models(df)
    if len(models) < 2:
        raise CascjaxError(f"{source}: a RouteLLM file needs True/False correctness columns for at least two models; "
                           f"found {models}")
    out = {"prompt": df["prompt"].to_numpy()}
    for m in models:
        out[m] = df[m].map(lambda v: _TRUTH.get(v, np.nan) if v == v else np.nan).to_numpy(dtype=np.float64)
        if f"{m}_response" in df.columns:
            out[f"{m}|model_response"] = df[f"{m}_response"].to_numpy()
    return pd.DataFrame(out)


# -- prices ------------------------------------------------------------------------------------------------------
