"""Two routing benchmarks' published results: LLMRouterBench's per-model JSON runs and RouterEval's router datasets.

Each is read into a plain pandas frame that :func:`cascjax.io._formats.to_wide` finishes — LLMRouterBench's
records become the long format's rows, RouterEval's candidate pools a wide frame — so the wide reader's checks
and messages apply to them unchanged. Written from the layouts the benchmarks document; no code is shared.

* **LLMRouterBench** (Li et al., 2026, "LLMRouterBench: A Massive Benchmark and Unified Framework for LLM
  Routing", arXiv:2601.07206; github.com/ynulihao/LLMRouterBench, first published as OpenRouterBench):
  ``results/bench/<dataset>/<split>/<model>/<dataset>-<split>-<model>-<YYYYMMDD_HHMMSS>.json`` (its
  ``data_collector/storage.py``), one run of a model on a dataset's split: an object with the run's totals
  (``performance``, ``cost``, ``model_name``, ``dataset_name``, ``split``, ``demo`` ...) and ``records``, one per
  query, with ``index`` (the query's 1-based position in the dataset, the same for every model), ``score`` (0/1,
  or in [0, 1]; ``null`` where the evaluator gives none or the call failed), ``cost`` (US dollars),
  ``prompt_tokens``, ``completion_tokens``, ``prediction`` (the answer the evaluator extracted from the output),
  ``raw_output``, ``prompt``, ``origin_query``, ``ground_truth``.
* **RouterEval** (Huang et al., 2025, "RouterEval: A Comprehensive Benchmark for Routing LLMs to Explore
  Model-level Scaling Up in LLMs", arXiv:2503.10657; github.com/MilkThink-Lab/RouterEval):
  ``router_dataset/<benchmark>_router_dataset.pkl`` (its ``get_router_dataset.py``), a pickled dict: candidate
  pools ``[difficulty][size][group]`` (``easy`` 3, 5 and ``hard`` 10, 100, 1000 models; groups ``all_strong``,
  ``all_weak``, ``strong_to_weak``), each ``{"data": {"train_score", "val_score", "test_score"}, "model":
  names}`` with [queries, models] scores over one query split shared by every pool, plus per split
  ``prompt[<split>_prompt]``, ``split_index[<split>_indices]`` and ``embedding``. No costs, no responses.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from .._errors import CascjaxError
from ._wide import _read_object

#: A record's id: the first of these fields it has (LLMRouterBench's is ``index``).
RECORD_IDS = ("index", "id", "query_id", "sample_id")
#: RouterEval's splits, in the order they are read.
ROUTEREVAL_SPLITS = ("train", "val", "test")
_RUN_STAMP = re.compile(r"(\d{8})_(\d{6})\.json$")
_LAYOUT = "<dataset>/<split>/<model>/*.json, as under LLMRouterBench's results/bench"


# -- LLMRouterBench ----------------------------------------------------------------------------------------------

def bench_root(path: str) -> str:
    """``path``'s ``results/bench`` (or ``bench``) subfolder where it has one, else ``path``."""
    for sub in (os.path.join("results", "bench"), "bench"):
        if os.path.isdir(os.path.join(path, sub)):
            return os.path.join(path, sub)
    return path


def _result_folders(root: str) -> dict:
    """(dataset, split, model) -> the JSON files of every folder under ``root`` holding some: the folder is the
    model, its parent the split, its grandparent the dataset (so ``root`` may be the bench, a dataset or a split)."""
    found = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))  # .ipynb_checkpoints, .cache ...
        names = sorted(f for f in files if f.lower().endswith(".json") and not f.startswith("."))
        if names:
            parts = ["", "", ""] + os.path.abspath(folder).split(os.sep)
            found[tuple(parts[-3:])] = [os.path.join(folder, f) for f in names]
    return found


def _load_json(file: str):
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:  # json.JSONDecodeError is a ValueError
        raise CascjaxError(f"{file}: is not valid JSON ({e})") from None
    except OSError as e:
        raise CascjaxError(f"{file}: cannot be read ({type(e).__name__}: {e})") from None


def _run_order(file: str):
    """Newest last: the timestamp in the file name, as LLMRouterBench's loader orders runs; files without one
    count as older, ordered by modification time."""
    stamp = _RUN_STAMP.search(os.path.basename(file))
    return (1, stamp.group(1) + stamp.group(2)) if stamp else (0, os.path.getmtime(file))


def _folder_records(files: list) -> list:
    """(file, records) of one model's folder: its newest run that is not a demo run (LLMRouterBench keeps
    earlier runs beside it), and every file holding a list of records or one record."""
    runs, loose = [], []
    for file in files:
        doc = _load_json(file)
        if isinstance(doc, dict) and "records" in doc:
            if not isinstance(doc["records"], list):
                raise CascjaxError(f"{file}: 'records' is a JSON {type(doc['records']).__name__}, not a list")
            if not doc.get("demo", False):  # a demo run holds only the first few queries
                runs.append((_run_order(file), file, doc["records"]))
        elif isinstance(doc, list):
            loose.append((file, doc))
        elif isinstance(doc, dict):
            loose.append((file, [doc]))
        else:
            raise CascjaxError(f"{file}: holds a JSON {type(doc).__name__}, not LLMRouterBench results (an object "
                               "with 'records', a list of records, or one record)")
    if runs:
        _, file, records = max(runs, key=lambda run: run[0])
        loose.insert(0, (file, records))
    return loose


def _number(value):
    """A score, cost or token count as the frame holds it: null is missing, true/false are 1/0, anything else
    stays as it is for the wide reader to check (and name, if it is not a number)."""
    if value is None:
        return np.nan
    if isinstance(value, bool):
        return float(value)
    return value


def _text(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def llmrouterbench_long(path: str, *, split: str | None = None, models=None, need_cost: bool = True):
    """The records under ``path`` as long rows: ``query_id`` (``<dataset>/<split>/<id>``), ``model``,
    ``quality``, ``cost``, ``input_tokens``, ``output_tokens``, ``answer`` and ``model_response`` (both the
    prediction), ``eval_name`` (the dataset), ``split``; blocks in (dataset, split) order, queries in the order
    the models' records list them (the first model folder's first)."""
    import pandas as pd

    if not os.path.isdir(path):
        raise CascjaxError(f"{path}: no such folder (LLMRouterBench's results are a folder: {_LAYOUT})")
    found = _result_folders(bench_root(path))
    if not found:
        raise CascjaxError(f"{path}: holds no LLMRouterBench results (JSON files in {_LAYOUT})")
    if split is not None:
        splits = sorted({key[1] for key in found})
        found = {key: files for key, files in found.items() if key[1] == split}
        if not found:
            raise CascjaxError(f"{path}: has no split {split!r} (its splits: {', '.join(splits)})")
    if models is not None:
        wanted = {str(m) for m in models}
        found = {key: files for key, files in found.items() if key[2] in wanted}
        if not found:
            raise CascjaxError(f"{path}: has results for none of the models {', '.join(map(str, models))}")
    columns = {c: [] for c in ("query_id", "model", "quality", "cost", "input_tokens", "output_tokens", "answer",
                               "eval_name", "split")}
    present = set()
    for (dataset, part, model), files in sorted(found.items()):
        seen = {}
        folder = os.path.dirname(files[0])
        for file, records in _folder_records(files):
            for i, record in enumerate(records):
                if not isinstance(record, dict):
                    raise CascjaxError(f"{file}: record {i} is a JSON {type(record).__name__}, not an object")
                key = next((k for k in RECORD_IDS if k in record), None)
                if key is None:
                    raise CascjaxError(f"{file}: record {i} has no id field ({', '.join(RECORD_IDS)})")
                rid = str(record[key])
                if rid in seen:
                    also = "" if seen[rid] == file else f" (also in {seen[rid]})"
                    raise CascjaxError(f"{file}: model {model!r} has record {key} {rid!r} twice{also}")
                seen[rid] = file
                if "score" not in record:
                    raise CascjaxError(f"{file}: record {key} {rid!r} has no 'score'")
                if "cost" in record:
                    present.add("cost")
                elif need_cost:
                    raise CascjaxError(f"{file}: record {key} {rid!r} has no 'cost' (or give a price table to cost "
                                       "its prompt_tokens and completion_tokens: prices=..., CLI: --prices)")
                for field, column in (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens"),
                                      ("prediction", "answer")):
                    if field in record:
                        present.add(column)
                columns["query_id"].append(f"{dataset}/{part}/{rid}")
                columns["model"].append(model)
                columns["quality"].append(_number(record["score"]))
                columns["cost"].append(_number(record.get("cost")))
                columns["input_tokens"].append(_number(record.get("prompt_tokens")))
                columns["output_tokens"].append(_number(record.get("completion_tokens")))
                columns["answer"].append(_text(record.get("prediction")))
                columns["eval_name"].append(dataset)
                columns["split"].append(part)
        if not seen:
            raise CascjaxError(f"{folder}: holds no records for model {model!r} (only demo runs, or empty ones)")
    if "answer" in present:  # the wide format's name for a model's answer text, beside the features' one
        columns["model_response"], present = columns["answer"], present | {"model_response"}
    optional = ("cost", "input_tokens", "output_tokens", "answer", "model_response")
    return pd.DataFrame({c: v for c, v in columns.items() if c not in optional or c in present})


def looks_like_llmrouterbench(path: str, exclude=()) -> bool:
    """Whether the folder ``path`` is (or holds) LLMRouterBench results: a ``results/bench`` or ``bench``
    subfolder, or JSON files in subfolders at most three deep and none of them named in ``exclude`` (the
    paper's layout keeps its JSON files in the folder itself or in train/ and test/)."""
    if bench_root(path) != path or os.path.basename(os.path.normpath(path)) == "bench":
        return True
    found, base = False, os.path.normpath(path).count(os.sep)
    for folder, subfolders, files in os.walk(path):
        depth = os.path.normpath(folder).count(os.sep) - base
        if depth >= 3:
            subfolders[:] = []
        if any(f in exclude for f in files):
            return False
        found = found or (depth >= 1 and any(f.lower().endswith(".json") for f in files))
    return found


# -- RouterEval --------------------------------------------------------------------------------------------------

def is_routereval(obj) -> bool:
    """Whether an unpickled object is a RouterEval router dataset (a dict of candidate pools)."""
    return isinstance(obj, dict) and ("easy" in obj or "hard" in obj)


def _pools(obj, source: str) -> dict:
    """``"<difficulty>/<size>/<group>"`` -> (model names, the pool's ``data`` dict), in the file's order."""
    pools = {}
    for difficulty in ("easy", "hard"):
        sizes = obj.get(difficulty)
        if sizes is None:
            continue
        if not isinstance(sizes, dict):
            raise CascjaxError(f"{source}: {difficulty!r} holds a {type(sizes).__name__}, not RouterEval's "
                               "{size: {group: pool}} dict")
        for size, groups in sizes.items():
            for group, pool in (groups.items() if isinstance(groups, dict) else [(None, groups)]):
                name = f"{difficulty}/{size}/{group}"
                if not isinstance(pool, dict) or not isinstance(pool.get("data"), dict) or pool.get("model") is None:
                    raise CascjaxError(f"{source}: pool {name} needs 'data' (train_score, val_score, test_score) "
                                       "and 'model' (its model names)")
                names = tuple(str(m) for m in np.asarray(pool["model"]).ravel())
                twice = [m for i, m in enumerate(names) if m in names[:i]]
                if twice:
                    raise CascjaxError(f"{source}: pool {name} lists model {twice[0]!r} twice")
                pools[name] = (names, pool["data"])
    if not pools:
        raise CascjaxError(f"{source}: holds no candidate pools (RouterEval's [easy|hard][size][group])")
    return pools


def _same(a, b) -> bool:
    try:
        return bool(np.array_equal(a, b, equal_nan=True))
    except TypeError:  # non-numeric values: compared as they are (the wide reader names them)
        return bool(np.array_equal(a, b))


def _per_split(obj, section: str, key: str, counts: dict, source: str):
    """``obj[section][<split>_<key>]`` for the splits of ``counts``, concatenated; None where the file has none."""
    table = obj.get(section)
    if not isinstance(table, dict) or any(table.get(f"{s}_{key}") is None for s in counts):
        return None
    parts = []
    for s, n in counts.items():
        values = np.asarray(table[f"{s}_{key}"]).ravel()
        if len(values) != n:
            raise CascjaxError(f"{source}: {section}[{s}_{key}] has {len(values)} entries but the pools have {n} "
                               f"{s} queries")
        parts.append(values)
    return np.concatenate(parts)


def routereval_frame(obj, source: str, *, split: str | None = None, models=None):
    """The wide frame (no costs) of a RouterEval router dataset, and its models: ``sample_id`` (the query's
    index in the benchmark), ``split``, ``eval_name`` (the benchmark, from the file name), ``prompt``, and a
    quality column per model of any pool (or of ``models``); rows train, val, test (or ``split``'s)."""
    import pandas as pd

    if split is not None and split not in ROUTEREVAL_SPLITS:
        raise CascjaxError(f"{source}: unknown split {split!r} for a RouterEval file; choose train, val or test "
                           "(or none: all three)")
    splits = ROUTEREVAL_SPLITS if split is None else (split,)
    wanted = None if models is None else {str(m) for m in models}
    quality, first, counts = {}, {}, None
    for name, (names, data) in _pools(obj, source).items():
        blocks = []
        for s in splits:
            scores = data.get(f"{s}_score")
            if scores is None:
                raise CascjaxError(f"{source}: pool {name} has no {s}_score")
            scores = np.asarray(scores)
            if scores.ndim != 2 or scores.shape[1] != len(names):
                raise CascjaxError(f"{source}: pool {name}'s {s}_score has shape {scores.shape}; expected [queries, "
                                   f"{len(names)}] (a column per model)")
            blocks.append(scores)
        sizes = {s: b.shape[0] for s, b in zip(splits, blocks)}
        if counts is None:
            counts = sizes
        elif sizes != counts:
            raise CascjaxError(f"{source}: pool {name} has {sizes} queries per split, the pools before it {counts}; "
                               "RouterEval's pools share one query split")
        scores = np.concatenate(blocks, axis=0)
        for j, m in enumerate(names):
            if wanted is not None and m not in wanted:
                continue
            if m not in quality:
                quality[m], first[m] = scores[:, j], name
            elif not _same(quality[m], scores[:, j]):
                raise CascjaxError(f"{source}: model {m!r} has different scores in pools {first[m]} and {name}")
    if not quality:
        raise CascjaxError(f"{source}: no pool holds any of the models {', '.join(map(str, models))}")
    n = sum(counts.values())
    ids = _per_split(obj, "split_index", "indices", counts, source)
    frame = {"sample_id": np.arange(n) if ids is None else ids,
             "split": np.repeat(list(counts), list(counts.values())),
             "eval_name": re.sub(r"(_router_dataset)?(\.pkl|\.pickle)?$", "", os.path.basename(source)) or "routereval"}
    prompts = _per_split(obj, "prompt", "prompt", counts, source)
    if prompts is not None:
        frame["prompt"] = prompts
    frame.update(quality)
    return pd.DataFrame(frame), list(quality)


def routereval_pools(path, *, allow_pickle: bool = False) -> dict:
    """The candidate pools of a RouterEval router dataset and their models, to read one of them.

    RouterEval's ``<benchmark>_router_dataset.pkl`` holds 15 pools over the same queries (``easy``: 3 and 5
    models, ``hard``: 10, 100 and 1000; each ``all_strong``, ``all_weak`` and ``strong_to_weak``).
    :func:`cascjax.read` reads every model of any pool unless ``models=`` names some; pass a pool's models
    (and a price table for them: the file has no costs).

    Args:
      path: the ``.pkl`` file.
      allow_pickle: must be True to read it: loading a pickle runs whatever code it holds.

    Returns:
      ``{"<difficulty>/<size>/<group>": (model names, ...)}`` in the file's order.

    Example:
      >>> import os, pickle, tempfile, numpy as np, cascjax
      >>> from cascjax.io import routereval_pools
      >>> scores = {f"{s}_score": np.eye(2) for s in ("train", "val", "test")}
      >>> data = {"easy": {3: {"all_strong": {"data": scores, "model": np.array(["org/a", "org/b"])}}},
      ...         "prompt": {f"{s}_prompt": np.array(["short", "a longer prompt"]) for s in ("train", "val", "test")}}
      >>> path = os.path.join(tempfile.mkdtemp(), "gsm8k_router_dataset.pkl")
      >>> with open(path, "wb") as f:
      ...     pickle.dump(data, f)
      >>> pools = routereval_pools(path, allow_pickle=True)
      >>> pools
      {'easy/3/all_strong': ('org/a', 'org/b')}
      >>> ds = cascjax.read(path, models=pools["easy/3/all_strong"], prices={"org/a": 1.0, "org/b": 3.0},
      ...                   split="test", allow_pickle=True, sort=False)
      >>> ds.quality.tolist(), ds.group_names
      ([[1.0, 0.0], [0.0, 1.0]], ('gsm8k',))
    """
    path = os.fspath(path)
    obj = _read_object(path, allow_pickle)
    if not is_routereval(obj):
        raise CascjaxError(f"{path}: holds a {type(obj).__name__}, not a RouterEval router dataset (a dict of "
                           "candidate pools 'easy' and 'hard')")
    return {name: names for name, (names, _) in _pools(obj, path).items()}
