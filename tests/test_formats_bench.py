"""LLMRouterBench's results folders and RouterEval's router datasets: each gives the same Dataset as the equivalent
wide file, predictions reach the answer-agreement features, and bad input is one CascjaxError naming the file."""

import json
import math
import os
import pickle
import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax import CascjaxError, estimators
from cascjax.io import routereval_pools, to_wide

from .test_formats import _run, same, wide

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "llmrouterbench")
MODELS = ("qwen3-8b", "gpt-5-chat", "gemini-2.5-flash", "glm-4.6")


def prediction(model, i):
    """Models 0 and 2 give the same answers, 1 and 3 others: answer agreement to find."""
    return f"{i % 3}" if MODELS.index(model) % 2 == 0 else f"{i % 2}-{model}"


def write_llmrouterbench(root, df, models, layout="run", split="test", shuffle=None):
    """The wide frame as LLMRouterBench's results/bench: a dataset per eval_name value, a folder per model, its
    records as one run (layout "run", as LLMRouterBench writes), one list ("list") or a file each ("record")."""
    bench = root / "results" / "bench"
    for dataset, block in df.groupby("eval_name", sort=True):
        for m in models:
            records = [{"index": int(i) + 1, "origin_query": f"q{i}", "score": float(q), "cost": float(c),
                        "prompt_tokens": 100 + int(i), "completion_tokens": 10 * (int(i) + 1),
                        "prediction": prediction(m, int(i)), "raw_output": "...", "ground_truth": "0"}
                       for i, q, c in zip(block.sample_id, block[m], block[f"{m}|total_cost"])]
            if shuffle is not None and m != sorted(models)[0]:  # matched by id: only the first folder sets the order
                records = [records[k] for k in np.random.default_rng(shuffle).permutation(len(records))]
            folder = bench / dataset / split / m
            folder.mkdir(parents=True)
            if layout == "run":
                doc = {"performance": 0.5, "cost": 1.0, "model_name": m, "dataset_name": dataset, "split": split,
                       "demo": False, "records": records}
                (folder / f"{dataset}-{split}-{m}-20250101_120000.json").write_text(json.dumps(doc))
            elif layout == "list":
                (folder / "records.json").write_text(json.dumps(records))
            else:
                for r in records:
                    (folder / f"{r['index']}.json").write_text(json.dumps(r))
    return bench


def by_dataset(df):
    """The wide frame's rows in the order LLMRouterBench's layout reads them: dataset by dataset."""
    return df.iloc[np.argsort(df.eval_name.to_numpy(), kind="stable")].reset_index(drop=True)


# -- LLMRouterBench ----------------------------------------------------------------------------------------------

@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 9), n_models=st.integers(2, 4), seed=st.integers(0, 2**16),
       layout=st.sampled_from(["run", "list", "record"]), shuffle=st.booleans())
def test_llmrouterbench_equals_wide(tmp_path_factory, n, n_models, seed, layout, shuffle):
    models = MODELS[:n_models]
    df = wide(n, models, seed)
    root = tmp_path_factory.mktemp("lrb")
    write_llmrouterbench(root, df, models, layout, shuffle=seed if shuffle else None)
    ref = by_dataset(df)
    ref.to_csv(root / "wide.csv", index=False)
    expect = cascjax.read(root / "wide.csv")
    same(cascjax.read(root), expect)  # detected; costs survive JSON exactly
    same(cascjax.read(root / "results" / "bench", format="llmrouterbench", split="test"), expect)
    frame, fmt = to_wide(root)
    assert fmt == "llmrouterbench"
    assert frame.sample_id.tolist() == [f"{d}/test/{i + 1}" for d, i in zip(ref.eval_name, ref.sample_id)]
    for m in models:
        answers = [prediction(m, int(i)) for i in ref.sample_id]
        assert frame[f"{m}|answer"].tolist() == answers and frame[f"{m}|model_response"].tolist() == answers
        np.testing.assert_array_equal(frame[f"{m}|output_tokens"], 10 * (ref.sample_id + 1))


def test_llmrouterbench_fixture_features_and_prices():
    """The checked-in results (two datasets x three models): groups are the datasets, predictions feed the
    learned estimators' answer agreement, and prices cost the token counts instead of the records' costs."""
    ds = cascjax.read(FIXTURE)
    assert (ds.n_queries, ds.group_names) == (14, ("aime", "mmlu_pro"))
    assert set(ds.models) == {"qwen3-8b", "gemini-2.5-flash", "gpt-5-chat"}
    frame = to_wide(FIXTURE)[0]
    features = estimators.read_features(frame, ds)
    for j, m in enumerate(ds.models):
        answers = frame[f"{m}|answer"].to_numpy()
        for k, other in enumerate(ds.models):
            agree = answers == frame[f"{other}|answer"].to_numpy()
            np.testing.assert_array_equal(features.answer[:, j] == features.answer[:, k], agree)
    assert cascjax.read(os.path.join(FIXTURE, "results", "bench", "aime")).group_names == ("aime",)
    assert cascjax.read(FIXTURE, split="test").group_names == ("mmlu_pro",)
    prices = {"qwen3-8b": (0.05, 0.4), "gemini-2.5-flash": (0.3, 2.5), "gpt-5-chat": (1.25, 10.0)}
    with pytest.warns(UserWarning, match="price table replaces the costs in the data for 3 models"):
        priced = cascjax.read(FIXTURE, prices=prices)
    for j, m in enumerate(priced.models):
        tokens = frame[f"{m}|input_tokens"] * prices[m][0] + frame[f"{m}|output_tokens"] * prices[m][1]
        np.testing.assert_allclose(np.asarray(priced.cost[:, j]), tokens / 1e6, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(priced.cost), np.asarray(ds.cost), atol=1e-9)  # the records' own


def test_llmrouterbench_folders_runs_and_holes(tmp_path):
    df = wide(6, MODELS[:3], 5)
    bench = write_llmrouterbench(tmp_path, df, MODELS[:3])
    expect = cascjax.Dataset.from_frame(by_dataset(df))
    for path in (tmp_path, tmp_path / "results", bench):  # the repository, results/ or results/bench
        same(cascjax.read(path), expect)
    x = df[df.eval_name == "x"].reset_index(drop=True)
    for path in (bench / "x", bench / "x" / "test"):  # a dataset's folder, or its split's: that dataset only
        same(cascjax.read(path), cascjax.Dataset.from_frame(x))
    with pytest.raises(CascjaxError, match=r"has no split 'dev' \(its splits: test\)"):
        cascjax.read(tmp_path, split="dev")
    # models= reads only those folders; a price table then needs only their prices
    assert set(cascjax.read(tmp_path, models=MODELS[:2]).models) == set(MODELS[:2])
    with pytest.raises(CascjaxError, match="has results for none of the models nope"):
        cascjax.read(tmp_path, models=["nope"])
    # LLMRouterBench keeps earlier runs beside the newest; the newest that is not a demo run is read
    folder = bench / "x" / "test" / MODELS[0]
    run = json.loads((folder / f"x-test-{MODELS[0]}-20250101_120000.json").read_text())
    old = dict(run, records=[dict(r, score=1.0 - r["score"]) for r in run["records"]])
    (folder / f"x-test-{MODELS[0]}-20240101_120000.json").write_text(json.dumps(old))
    (folder / f"x-test-{MODELS[0]}-20260101_120000.json").write_text(json.dumps(dict(old, demo=True)))
    same(cascjax.read(tmp_path), expect)
    # a record missing for one model is a hole: a warning naming it, then missing values (dropna drops them)
    (folder / f"x-test-{MODELS[0]}-20250101_120000.json").write_text(json.dumps(dict(run, records=run["records"][1:])))
    with pytest.warns(UserWarning, match=f"query 'x/test/1' has no row for model '{MODELS[0]}'"), \
            pytest.raises(CascjaxError, match="1 rows have missing"):
        cascjax.read(tmp_path)
    with pytest.warns(UserWarning) as caught:
        assert cascjax.read(tmp_path, dropna=True).n_queries == 5
    assert any("dropped 1 of 6 rows" in str(w.message) for w in caught)


def _rewrite(file, edit):
    doc = json.loads(file.read_text())
    file.write_text(json.dumps(edit(doc)) if not isinstance(edit, str) else edit)


@pytest.mark.parametrize("edit, message", [
    (lambda d: {**d, "records": [{k: v for k, v in r.items() if k != "score"} for r in d["records"]]},
     r"x-test-qwen3-8b-\S+\.json: record index '1' has no 'score'"),
    (lambda d: {**d, "records": [{k: v for k, v in r.items() if k != "cost"} for r in d["records"]]},
     r"qwen3-8b-\S+\.json: record index '1' has no 'cost' \(or give a price table"),
    (lambda d: {**d, "records": [{k: v for k, v in r.items() if k != "index"} for r in d["records"]]},
     r"qwen3-8b-\S+\.json: record 0 has no id field \(index, id, query_id, sample_id\)"),
    (lambda d: {**d, "records": d["records"] + d["records"][-1:]},
     r"qwen3-8b-\S+\.json: model 'qwen3-8b' has record index '3' twice"),
    (lambda d: {**d, "records": {"index": 1}}, r"qwen3-8b-\S+\.json: 'records' is a JSON dict, not a list"),
    (lambda d: {**d, "records": [1, 2]}, r"qwen3-8b-\S+\.json: record 0 is a JSON int, not an object"),
    (lambda d: 3, r"qwen3-8b-\S+\.json: holds a JSON int, not LLMRouterBench results"),
    (lambda d: {**d, "records": []}, r"test/qwen3-8b: holds no records for model 'qwen3-8b'"),
    ('{"records": [', r"qwen3-8b-\S+\.json: is not valid JSON \(Expecting value: line 1"),
    (lambda d: {**d, "records": [dict(r, score="high") for r in d["records"]]},
     r"column 'qwen3-8b' has a non-numeric value 'high' at row 0"),  # the wide reader's own checks
    (lambda d: {**d, "records": [dict(r, score=None) for r in d["records"]]},
     r"3 rows have missing or infinite values \(first: column 'qwen3-8b' at row 0\)"),
    (lambda d: {**d, "records": [dict(r, cost=-1.0) for r in d["records"]]},
     r"column 'qwen3-8b\|total_cost' has a negative cost"),
])
def test_llmrouterbench_bad_input(tmp_path, edit, message):
    df = wide(3, MODELS[:2], 1).assign(eval_name="x")
    bench = write_llmrouterbench(tmp_path, df, MODELS[:2])
    _rewrite(bench / "x" / "test" / "qwen3-8b" / "x-test-qwen3-8b-20250101_120000.json", edit)
    with pytest.raises(CascjaxError, match=message):
        cascjax.read(tmp_path, format="llmrouterbench")


def test_llmrouterbench_missing_cost_with_prices_and_folders(tmp_path):
    df = wide(3, MODELS[:2], 1).assign(eval_name="x")
    bench = write_llmrouterbench(tmp_path, df, MODELS[:2], layout="record")
    for f in bench.rglob("*.json"):
        _rewrite(f, lambda r: {k: v for k, v in r.items() if k != "cost"})
    ds = cascjax.read(tmp_path, prices={m: (1.0, 2.0) for m in MODELS[:2]})
    np.testing.assert_allclose(np.asarray(ds.cost[:, 0]), [(100 + i + 2 * 10 * (i + 1)) / 1e6 for i in range(3)])
    shutil.copy(bench / "x" / "test" / "qwen3-8b" / "1.json", bench / "x" / "test" / "qwen3-8b" / "1-again.json")
    with pytest.raises(CascjaxError, match=r"1.json: model 'qwen3-8b' has record index '1' twice \(also in .*1-again"):
        cascjax.read(tmp_path, prices={m: (1.0, 2.0) for m in MODELS[:2]})
    (tmp_path / "empty").mkdir()
    with pytest.raises(CascjaxError, match=r"empty: holds no LLMRouterBench results \(JSON files in <dataset>"):
        cascjax.read(tmp_path / "empty", format="llmrouterbench")
    with pytest.raises(CascjaxError, match=r"nowhere: no such folder \(LLMRouterBench's results are a folder"):
        cascjax.read(tmp_path / "nowhere", format="llmrouterbench")
    with pytest.raises(CascjaxError, match="expected qualities.json and costs.json"):  # auto: not taken for it
        cascjax.read(tmp_path / "empty")


def test_cli_llmrouterbench(tmp_path, capsys):
    rc, out, err = _run(["frontier", FIXTURE, "--format", "llmrouterbench", "--strategy", "routing", "--lambdas", "8",
                         "--estimates", "perfect", "--json", "--quiet", "--out", tmp_path / "o"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["format"] == "llmrouterbench" and doc["queries"] == 14 and len(doc["models"]) == 3
    assert (tmp_path / "o" / "summary.csv").exists()
    rc, out, err = _run(["frontier", FIXTURE, "--split", "dev", "--out", tmp_path / "bad"], capsys)
    assert rc == 2 and "has no split 'dev' (its splits: test, total)" in err and "Traceback" not in err


# -- RouterEval --------------------------------------------------------------------------------------------------

def write_routereval(path, df, pools, prompts):
    """The wide frame as RouterEval's <benchmark>_router_dataset.pkl: pools of models over one train/val/test
    split of the rows (in order), with the prompts and the rows' indices."""
    n = len(df)
    cut = [0, math.ceil(0.6 * n), math.ceil(0.8 * n), n]
    parts = dict(zip(("train", "val", "test"), (slice(cut[k], cut[k + 1]) for k in range(3))))
    obj = {"split_index": {f"{s}_indices": df.sample_id.to_numpy()[p] for s, p in parts.items()},
           "prompt": {f"{s}_prompt": np.asarray(prompts, dtype=object)[p] for s, p in parts.items()},
           "embedding": {f"{s}_embed": np.zeros((p.stop - p.start, 4)) for s, p in parts.items()}}
    for name, models in pools.items():
        difficulty, size, group = name.split("/")
        scores = df[list(models)].to_numpy()
        obj.setdefault(difficulty, {}).setdefault(int(size), {})[group] = {
            "data": {f"{s}_score": scores[p] for s, p in parts.items()}, "model": np.array(models)}
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return parts


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 9), n_models=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_routereval_equals_wide(tmp_path_factory, n, n_models, seed):
    models = MODELS[:n_models]
    rng = np.random.default_rng(seed)
    df = wide(n, models, seed).assign(eval_name="gsm8k")
    prompts = [f"question {'x' * int(k)}" for k in rng.integers(0, 60, n)]
    pools = {"easy/3/all_strong": models[:2], "hard/10/strong_to_weak": models[1:][::-1]}
    path = tmp_path_factory.mktemp("re") / "gsm8k_router_dataset.pkl"
    parts = write_routereval(path, df, pools, prompts)
    prices = {m: (0.5 * (k + 1), 0.0) for k, m in enumerate(models)}
    tokens = np.ceil(np.array([len(p) for p in prompts]) / 4.0)
    ref = df.assign(**{f"{m}|total_cost": tokens * prices[m][0] / 1e6 for m in models})
    same(cascjax.read(path, prices=prices, allow_pickle=True), cascjax.Dataset.from_frame(ref), atol=1e-15)
    assert routereval_pools(path, allow_pickle=True) == {k: tuple(v) for k, v in pools.items()}
    val = ref.iloc[parts["val"]].reset_index(drop=True)
    if len(val):
        same(cascjax.read(path, format="routereval", split="val", prices=prices, allow_pickle=True),
             cascjax.Dataset.from_frame(val), atol=1e-15)
    frame, fmt = to_wide(path, prices=prices, allow_pickle=True, models=models[:2])  # one pool: only its prices
    assert fmt == "routereval" and frame.sample_id.tolist() == df.sample_id.tolist()
    assert [c for c in frame.columns if "|" not in c][4:] == list(models[:2])


def test_routereval_bad_input(tmp_path):
    df = wide(5, MODELS[:3], 2).assign(eval_name="mmlu")
    pools = {"easy/3/all_strong": MODELS[:2], "easy/3/all_weak": MODELS[1:3]}
    path = tmp_path / "mmlu_router_dataset.pkl"
    write_routereval(path, df, pools, ["p"] * 5)
    prices = {m: (1.0, 0.0) for m in MODELS[:3]}
    with pytest.raises(CascjaxError, match="is a pickle, and loading a pickle runs any code it holds"):
        cascjax.read(path, prices=prices)
    with pytest.raises(CascjaxError, match="RouterEval files have no costs; give a price table for the models you"):
        cascjax.read(path, allow_pickle=True)
    with pytest.raises(CascjaxError, match="only input tokens are priced; model 'gpt-5-chat' has an output price"):
        cascjax.read(path, prices={**prices, "gpt-5-chat": (1.0, 2.0)}, allow_pickle=True)
    with pytest.raises(CascjaxError, match="unknown split 'dev' for a RouterEval file; choose train, val or test"):
        cascjax.read(path, split="dev", prices=prices, allow_pickle=True)
    with pytest.raises(CascjaxError, match="no pool holds any of the models nope"):
        cascjax.read(path, models=["nope"], prices=prices, allow_pickle=True)
    with pytest.raises(CascjaxError, match="the price table has no row for model 'gemini-2.5-flash'"):
        cascjax.read(path, prices={m: (1.0, 0.0) for m in MODELS[:2]}, allow_pickle=True)
    with open(path, "rb") as f:
        obj = pickle.load(f)
    obj["easy"][3]["all_weak"]["data"]["val_score"] = obj["easy"][3]["all_weak"]["data"]["val_score"] * 0 + 0.5
    for broken, message in [
        (obj, "model 'gpt-5-chat' has different scores in pools easy/3/all_strong and easy/3/all_weak"),
        ({"easy": {3: {"all_strong": {"data": {}, "model": np.array(["a", "b"])}}}},
         "pool easy/3/all_strong has no train_score"),
        ({"easy": {3: {"all_strong": {"data": {"train_score": np.zeros((2, 3))}, "model": np.array(["a", "b"])}}}},
         r"pool easy/3/all_strong's train_score has shape \(2, 3\); expected \[queries, 2\]"),
        ({"easy": {3: {"all_strong": {"model": np.array(["a"])}}}}, "pool easy/3/all_strong needs 'data'"),
        ({"easy": {}}, "holds no candidate pools"),
    ]:
        with open(tmp_path / "broken.pkl", "wb") as f:
            pickle.dump(broken, f)
        with pytest.raises(CascjaxError, match=message):
            cascjax.read(tmp_path / "broken.pkl", prices=prices, allow_pickle=True)
    with open(tmp_path / "frame.pkl", "wb") as f:
        pickle.dump(df, f)
    with pytest.raises(CascjaxError, match="holds a DataFrame, not a RouterEval router dataset"):
        cascjax.read(tmp_path / "frame.pkl", format="routereval", allow_pickle=True)
    with pytest.raises(CascjaxError, match="holds a DataFrame, not a RouterEval router dataset"):
        routereval_pools(tmp_path / "frame.pkl", allow_pickle=True)
    same(cascjax.read(tmp_path / "frame.pkl", allow_pickle=True), cascjax.Dataset.from_frame(df))  # still wide
    with pytest.raises(CascjaxError, match="split='val' applies to the paper's JSON layout only"):
        cascjax.read(tmp_path / "frame.pkl", split="val", allow_pickle=True)
