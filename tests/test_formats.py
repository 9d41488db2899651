"""Loaders for the formats people have (long, the paper's JSON layout, RouteLLM CSVs, RouterBench's 0- and
5-shot pickles, token counts × a price table): each gives the same Dataset as the equivalent wide file."""

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax import CascjaxError, cli
from cascjax.protocol import ROUTERBENCH_MODELS, pool_models

ESTIMATES = ("quality_ante", "quality_post", "quality_sd_ante", "quality_sd_post", "cost_ante", "cost_post")


def wide(n=6, models=("a", "b", "c"), seed=0, estimates=False):
    rng = np.random.default_rng(seed)
    data = {"sample_id": np.arange(n), "eval_name": np.array(["x", "y"])[np.arange(n) % 2]}
    for i, m in enumerate(models):
        data[m] = rng.integers(0, 2, n).astype(float)
        data[f"{m}|total_cost"] = (len(models) - i) * 1e-3 * (1 + rng.random(n))
        if estimates:
            for e in ESTIMATES:
                data[f"{m}|{e}"] = rng.random(n)
    return pd.DataFrame(data)


def to_long(df, models, estimates=False):
    """The wide frame as long rows: query_id, model, quality, cost (+ estimates), group."""
    rows = []
    for n in range(len(df)):
        for m in models:
            row = dict(query_id=f"q{df.sample_id[n]}", model=m, quality=df[m][n], cost=df[f"{m}|total_cost"][n],
                       eval_name=df.eval_name[n])
            if estimates:
                row.update({e: df[f"{m}|{e}"][n] for e in ESTIMATES})
            rows.append(row)
    return pd.DataFrame(rows)


def same(a, b, atol=0.0):
    assert a.models == b.models
    np.testing.assert_array_equal(np.asarray(a.quality), np.asarray(b.quality))
    np.testing.assert_allclose(np.asarray(a.cost), np.asarray(b.cost), rtol=0, atol=atol)
    assert a.group_names == b.group_names
    np.testing.assert_array_equal(np.asarray(a.group), np.asarray(b.group))


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 9), n_models=st.integers(2, 4), seed=st.integers(0, 2**16), shuffle=st.booleans())
def test_long_equals_wide(tmp_path_factory, n, n_models, seed, shuffle):
    models = tuple("abcd"[:n_models])
    df = wide(n, models, seed, estimates=True)
    long = to_long(df, models, estimates=True)
    if shuffle:  # rows of a query need not be adjacent; the query order is that of first appearance
        first = long.groupby("query_id", sort=False).head(1)
        long = pd.concat([first, long.drop(first.index).sample(frac=1.0, random_state=seed)])
    d = tmp_path_factory.mktemp("long")
    df.to_csv(d / "wide.csv", index=False)
    long.to_csv(d / "long.csv", index=False)
    a, b = cascjax.read(d / "wide.csv"), cascjax.read(d / "long.csv")
    same(a, b)
    assert cascjax.read(d / "long.csv", format="long").models == b.models
    ea, eb = cascjax.read_estimates(d / "wide.csv", a), cascjax.read_estimates(d / "long.csv", b)
    for x, y in zip(ea[:6], eb[:6]):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_long_bad_input(tmp_path):
    df = wide(4)
    long = to_long(df, ("a", "b", "c"))
    path = tmp_path / "l.csv"
    long.drop(columns=["quality"]).to_csv(path, index=False)
    with pytest.raises(CascjaxError, match="long format needs columns query_id, model, quality.*missing: quality"):
        cascjax.read(path, format="long")
    pd.concat([long, long.iloc[[3]]]).to_csv(path, index=False)
    with pytest.raises(CascjaxError, match="query 'q1' has more than one row for model 'a'"):
        cascjax.read(path)
    long.drop(index=[4]).to_csv(path, index=False)  # q1 has no row for model b
    with pytest.warns(UserWarning, match="query 'q1' has no row for model 'b'"), \
            pytest.raises(CascjaxError, match="1 rows have missing"):
        cascjax.read(path)
    with pytest.warns(UserWarning) as caught:
        assert cascjax.read(path, dropna=True).n_queries == 3
    assert any("dropped 1 of 4 rows" in str(w.message) for w in caught)
    long.assign(eval_name=["x"] * 11 + ["y"]).to_csv(path, index=False)
    with pytest.raises(CascjaxError, match="query 'q3' has more than one value in the group column 'eval_name'"):
        cascjax.read(path)
    long.drop(columns=["cost"]).to_csv(path, index=False)
    with pytest.raises(CascjaxError, match="long format needs a 'cost' column, or token counts"):
        cascjax.read(path)
    long.drop(columns=["cost"]).assign(input_tokens=10, output_tokens=20).to_csv(path, index=False)
    ds = cascjax.read(path, prices={"a": (1.0, 2.0), "b": (2.0, 4.0), "c": (4.0, 8.0)})
    np.testing.assert_allclose(np.asarray(ds.cost[0]), [50e-6, 100e-6, 200e-6])


def _paper_layout(folder, df, models):
    """The paper's layout, written as its scripts write it: DataFrame.to_json (one column per model)."""
    folder.mkdir(parents=True)
    df[list(models)].to_json(folder / "qualities.json")
    df[[f"{m}|total_cost" for m in models]].set_axis(list(models), axis=1).to_json(folder / "costs.json")
    pd.DataFrame(["query"] * len(df)).to_json(folder / "queries.json")


def test_paper_json_layout(tmp_path):
    models = ("gpt-4o", "llama-3.1-8b", "gemma-2-9b")
    train, test = wide(12, models, 1), wide(15, models, 2)  # > 10 rows: the JSON keys "10" sort after "9"
    _paper_layout(tmp_path / "mmlu" / "train", train, models)
    _paper_layout(tmp_path / "mmlu" / "test", test, models)
    ref_test = cascjax.Dataset.from_frame(test, group=None)
    tol = 1e-10  # DataFrame.to_json keeps 10 decimal places
    same(cascjax.read(tmp_path / "mmlu" / "test"), ref_test, tol)
    same(cascjax.read(tmp_path / "mmlu", split="test"), ref_test, tol)
    same(cascjax.read(tmp_path / "mmlu" / "test" / "qualities.json"), ref_test, tol)
    both = cascjax.read(tmp_path / "mmlu", format="paper")
    same(both, cascjax.Dataset.from_frame(pd.concat([train, test], ignore_index=True), group=None), tol)
    with pytest.raises(CascjaxError, match="unknown split 'dev'"):
        cascjax.read(tmp_path / "mmlu", split="dev")
    with pytest.raises(CascjaxError, match="expected qualities.json and costs.json"):
        cascjax.read(tmp_path)
    (tmp_path / "bad").mkdir()
    train[list(models)].to_json(tmp_path / "bad" / "qualities.json")
    train[[f"{m}|total_cost" for m in models[:2]]].set_axis(list(models[:2]), axis=1).to_json(
        tmp_path / "bad" / "costs.json")
    with pytest.raises(CascjaxError, match="name different models .*'gemma-2-9b'"):
        cascjax.read(tmp_path / "bad")
    (tmp_path / "bad" / "costs.json").write_text("not json")
    with pytest.raises(CascjaxError, match="costs.json: cannot be read as a JSON table"):
        cascjax.read(tmp_path / "bad")


def routellm_frame(n=5, seed=0, responses=True):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"prompt": [f"question {'x' * int(k)}" for k in rng.integers(0, 40, n)],
                       "mixtral-8x7b-instruct-v0.1": rng.integers(0, 2, n).astype(bool),
                       "gpt-4-1106-preview": rng.integers(0, 2, n).astype(bool)})
    if responses:
        for m in ("mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview"):
            df[f"{m}_response"] = [f"answer {'y' * int(k)}" for k in rng.integers(0, 200, n)]
    return df


def test_routellm_csv_with_prices(tmp_path):
    df = routellm_frame()
    df.to_csv(tmp_path / "gsm8k_responses.csv", index=False)
    prices = pd.DataFrame({"model": ["gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"], "input": [10.0, 0.24],
                           "output": [30.0, 0.24]})
    prices.to_csv(tmp_path / "prices.csv", index=False)
    with pytest.raises(CascjaxError, match="RouteLLM files have no costs; give a price table"):
        cascjax.read(tmp_path / "gsm8k_responses.csv")
    ds = cascjax.read(tmp_path / "gsm8k_responses.csv", prices=tmp_path / "prices.csv")
    assert ds.models == ("mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview")
    for j, m in enumerate(ds.models):
        p_in, p_out = prices.set_index("model").loc[m]
        expect = [(math.ceil(len(q) / 4) * p_in + math.ceil(len(r) / 4) * p_out) / 1e6
                  for q, r in zip(df.prompt, df[f"{m}_response"])]
        np.testing.assert_allclose(np.asarray(ds.cost[:, j]), expect, rtol=1e-12)
        np.testing.assert_array_equal(np.asarray(ds.quality[:, j]), df[m].astype(float))
    # a dict works as a price table; without responses the output price must be 0
    bare = routellm_frame(responses=False)
    bare.to_csv(tmp_path / "mmlu_anatomy.csv", index=False)
    with pytest.raises(CascjaxError, match="no output token counts for model"):
        cascjax.read(tmp_path / "mmlu_anatomy.csv", prices=tmp_path / "prices.csv")
    ds = cascjax.read(tmp_path / "mmlu_anatomy.csv", format="routellm",
                      prices={"gpt-4-1106-preview": (10.0, 0.0), "mixtral-8x7b-instruct-v0.1": 0.24})
    np.testing.assert_allclose(np.asarray(ds.cost[:, 1]), [math.ceil(len(q) / 4) * 10.0 / 1e6 for q in bare.prompt])


def test_token_counts_times_prices(tmp_path):
    df = wide(5).drop(columns=["a|total_cost", "b|total_cost", "c|total_cost"])
    df["input_tokens"] = [100, 200, 300, 400, 500]  # shared by every model
    for i, m in enumerate("abc"):
        df[f"{m}|output_tokens"] = np.arange(5) * (i + 1)
    df["c|input_tokens"] = 7  # a model's own column wins over the shared one
    df.to_csv(tmp_path / "tokens.csv", index=False)
    with pytest.raises(CascjaxError, match=r"missing cost column .*the file has token counts: give a price table"):
        cascjax.read(tmp_path / "tokens.csv")
    table = {"a": (3.0, 15.0), "b": (0.5, 1.5), "c": (0.1, 0.2)}
    ds = cascjax.read(tmp_path / "tokens.csv", prices=table, sort=False)
    for j, m in enumerate("abc"):
        tin = np.full(5, 7) if m == "c" else df.input_tokens
        np.testing.assert_allclose(np.asarray(ds.cost[:, j]),
                                   (tin * table[m][0] + df[f"{m}|output_tokens"] * table[m][1]) / 1e6)
    with pytest.raises(CascjaxError, match="price table has no row for model 'c'"):
        cascjax.read(tmp_path / "tokens.csv", prices={"a": (1, 1), "b": (1, 1)})
    with pytest.raises(CascjaxError, match="model 'b' has a negative or missing price"):
        cascjax.read(tmp_path / "tokens.csv", prices={"a": (1, 1), "b": (-1, 1), "c": (1, 1)})
    pd.DataFrame({"model": ["a"], "in": [1.0]}).to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(CascjaxError, match="needs columns model, input, output.*missing: input, output"):
        cascjax.read(tmp_path / "tokens.csv", prices=tmp_path / "p.csv")
    df.assign(input_tokens=["many"] + [1] * 4).to_csv(tmp_path / "bad_tokens.csv", index=False)
    with pytest.raises(CascjaxError, match="column 'input_tokens' has a non-numeric value 'many' at row 0"):
        cascjax.read(tmp_path / "bad_tokens.csv", prices=table)
    with pytest.raises(CascjaxError, match="no such price table"):
        cascjax.read(tmp_path / "tokens.csv", prices=tmp_path / "nope.csv")
    # prices replace costs that are in the data, with a warning
    wide(5).to_csv(tmp_path / "w.csv", index=False)
    with pytest.warns(UserWarning, match="replaces the costs in the data for 3 models"), \
            pytest.raises(CascjaxError, match="no input token counts for model 'a'"):
        cascjax.read(tmp_path / "w.csv", prices=table)


@pytest.mark.parametrize("shots", ["0shot", "5shot"])
def test_routerbench_pickles(tmp_path, shots):
    """RouterBench's routerbench_0shot.pkl / routerbench_5shot.pkl: the 11 models' columns after sample_id,
    prompt, eval_name, with |model_response and |total_cost, pickled as a DataFrame."""
    rng = np.random.default_rng(len(shots))
    n = 40
    data = {"sample_id": [f"mmlu.{i}" for i in range(n)], "prompt": ["p"] * n,
            "eval_name": rng.choice(["mmlu-x", "gsm8k", "mbpp"], n)}
    for i, m in enumerate(ROUTERBENCH_MODELS):
        data[m] = rng.random(n).round(1)
        data[f"{m}|model_response"] = ["r"] * n
        data[f"{m}|total_cost"] = (i + 1) * 1e-4 * (1 + rng.random(n))
    data["oracle_model_to_route_to"] = ROUTERBENCH_MODELS[5]
    with open(tmp_path / f"routerbench_{shots}.pkl", "wb") as f:
        pickle.dump(pd.DataFrame(data), f)
    ds = cascjax.read(tmp_path / f"routerbench_{shots}.pkl", format="routerbench", allow_pickle=True)
    assert ds.n_queries == n and set(ds.models) == set(ROUTERBENCH_MODELS) and len(ds.group_names) == 3
    assert pool_models(ds, "3") == ("mistralai/mixtral-8x7b-chat", "gpt-3.5-turbo-1106", "gpt-4-1106-preview")
    same(ds, cascjax.read(tmp_path / f"routerbench_{shots}.pkl", allow_pickle=True))


def test_unknown_format_and_split(tmp_path):
    wide(3).to_csv(tmp_path / "w.csv", index=False)
    with pytest.raises(CascjaxError, match="unknown format 'xml'"):
        cascjax.read(tmp_path / "w.csv", format="xml")
    with pytest.raises(CascjaxError, match="split='test' applies to the paper's JSON layout only"):
        cascjax.read(tmp_path / "w.csv", split="test")


def _run(args, capsys):
    try:
        rc = cli.main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    return (rc,) + capsys.readouterr()


def test_cli_formats_prices_json_quiet(tmp_path, capsys):
    df = routellm_frame(n=60, seed=3)
    df.to_csv(tmp_path / "r.csv", index=False)
    pd.DataFrame({"model": ["gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"], "input": [10.0, 0.24],
                  "output": [30.0, 0.24]}).to_csv(tmp_path / "prices.csv", index=False)
    rc, out, err = _run(["frontier", tmp_path / "r.csv", "--prices", tmp_path / "prices.csv", "--strategy", "routing",
                         "--lambdas", "8", "--budgets", "1e-5,1e-3", "--estimates", "perfect", "--json", "--quiet",
                         "--out", tmp_path / "o"], capsys)
    assert rc == 0, err
    doc = json.loads(out)  # stdout is exactly one JSON document
    assert doc["command"] == "frontier" and doc["format"] == "auto" and doc["queries"] == 60
    assert doc["models"] == ["mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview"]
    routing = next(r for r in doc["summary"] if r["name"] == "routing")
    assert routing["auc"] > 0
    assert next(r for r in doc["summary"] if r["kind"] == "model")["auc"] is None  # NaN -> null
    assert [b["budget"] for b in doc["budgets"] if b["strategy"] == "routing"] == [1e-5, 1e-3]
    assert sorted(p.rsplit("/", 1)[1] for p in doc["files"]) == ["budgets.csv", "curve.csv", "frontier.png",
                                                                   "summary.csv", "usage.png"]
    budgets = pd.read_csv(tmp_path / "o" / "budgets.csv")
    feasible = budgets[budgets.feasible]
    assert (feasible.cost <= feasible.budget * (1 + 1e-9)).all()
    # bad input: exit 2, one line naming the option / model, nothing written
    rc, out, err = _run(["frontier", tmp_path / "r.csv", "--out", tmp_path / "bad"], capsys)
    assert rc == 2 and "give a price table" in err and "Traceback" not in err
    pd.DataFrame({"model": ["gpt-4-1106-preview"], "input": [1.0], "output": [1.0]}).to_csv(tmp_path / "p1.csv",
                                                                                           index=False)
    rc, out, err = _run(["frontier", tmp_path / "r.csv", "--prices", tmp_path / "p1.csv", "--out", tmp_path / "bad"],
                        capsys)
    assert rc == 2 and "no row for model 'mixtral-8x7b-instruct-v0.1'" in err
    rc, out, err = _run(["frontier", tmp_path / "r.csv", "--format", "xml"], capsys)
    assert rc == 2 and "invalid choice: 'xml'" in err
    rc, out, err = _run(["frontier", "--budgets", "1,x"], capsys)
    assert rc == 2 and "--budgets must be comma-separated numbers" in err
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())
