"""The paper's evaluation protocol: pools, budget grid, split, paired bootstrap, reproduce, and the CLI commands.

The fits here reuse tests/test_fit.py's shapes (120 fit and 120 test queries of 3 models, 19 budgets, cascade
routing at depth 2 with 8 samples, 64 search candidates), so its kernels are compiled once per process.
"""

import functools
import json
import math
import os
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cascjax
from cascjax._protocol import (
    PAPER_POOLS,
    ROUTERBENCH_MODELS,
    ROWS,
    Outcomes,
    baseline_outcomes,
    bootstrap,
    curve_auc,
    markdown,
    paper_budgets,
    pool_models,
    reproduce,
)

from .test_fit import CR_DEPTH, SAMPLES, SPLIT_SEED, data
from .test_cli import _run, wide_frame

LABELS = [label for label, _ in ROWS]
REFERENCE = "cascade routing"


# -- pools ------------------------------------------------------------------------------------------------------

@functools.cache
def routerbench_like():
    """RouterBench's 11 model names (random numbers), stored in ascending mean cost, not the paper's order."""
    rng = np.random.default_rng(0)
    return cascjax.Dataset.from_arrays(rng.random((4, 11)), rng.random((4, 11)), models=ROUTERBENCH_MODELS)


def test_pool_models_on_routerbench_names():
    ds = routerbench_like()
    assert ds.models != ROUTERBENCH_MODELS  # (sorted by cost: the pools go by name, not column)
    names = lambda *idx: tuple(ROUTERBENCH_MODELS[i] for i in idx)
    assert pool_models(ds, "3") == names(9, 4, 5) == ("mistralai/mixtral-8x7b-chat", "gpt-3.5-turbo-1106",
                                                      "gpt-4-1106-preview")
    assert pool_models(ds, "5") == names(0, 9, 4, 3, 5)
    assert pool_models(ds, "all") == ds.models and len(pool_models(ds, "all")) == 11
    assert pool_models(ds, "9+4+5") == pool_models(ds, "3")
    assert pool_models(ds, " 10 + 0 ") == names(10, 0)
    assert pool_models(ds, "claude-v2+gpt-4-1106-preview") == ("claude-v2", "gpt-4-1106-preview")
    assert pool_models(ds, "1+meta/llama-2-70b-chat") == ("claude-instant-v1", "meta/llama-2-70b-chat")
    assert PAPER_POOLS["3"] == (9, 4, 5)
    for spec, message in [("11+0", "RouterBench index 11 is out of range 0..10"),
                          ("4+4", "at least two different models"),
                          ("4", "at least two different models"),
                          ("claude-v2+claude-v9", "unknown model 'claude-v9'")]:
        with pytest.raises(cascjax.CascjaxError, match=message):
            pool_models(ds, spec)


def test_pool_models_on_other_data():
    ds = cascjax.synthetic(0, 5, 3)
    assert pool_models(ds, "all") == ("m00", "m01", "m02")
    assert pool_models(ds, "m02+m00") == ("m02", "m00")
    with pytest.raises(cascjax.CascjaxError, match="unknown model 'nobody'") as info:
        pool_models(ds, "m00+nobody")
    assert "m01" in str(info.value)  # lists the models there are
    for spec in ("3", "5"):
        with pytest.raises(cascjax.CascjaxError, match="RouterBench's 11 models; name the models instead"):
            pool_models(ds, spec)
    with pytest.raises(cascjax.CascjaxError, match="unknown model '9'"):  # indices only on RouterBench data
        pool_models(ds, "9+4+5")


# -- the paper's budget grid ------------------------------------------------------------------------------------

def _hull_vertices(cost, quality):
    """Brute force: a model is on the upper hull unless a single model or a mixture of two others gives at
    least its quality for at most its cost (exact rational arithmetic: collinear models are not vertices)."""
    out = []
    order = list(range(cost.size))
    cost, quality = [Fraction(float(c)) for c in cost], [Fraction(float(q)) for q in quality]
    for i in order:
        others = [j for j in order if j != i]
        beaten = any(cost[j] <= cost[i] and quality[j] >= quality[i] for j in others)
        for a in others:
            for b in others:
                if cost[a] < cost[i] < cost[b]:
                    g = (cost[i] - cost[a]) / (cost[b] - cost[a])
                    beaten |= (1 - g) * quality[a] + g * quality[b] >= quality[i]
        if not beaten:
            out.append(i)
    return sorted(out, key=lambda i: cost[i])


@given(st.lists(st.integers(0, 60), min_size=2, max_size=7, unique=True), st.data(), st.integers(2, 7))
def test_paper_budgets(costs, draw, per_segment):
    cost = np.array(costs, float) / 16
    # dyadic values: the library's hull test is exact on them, so collinear models are decided alike
    quality = np.array(draw.draw(st.lists(st.integers(0, 16), min_size=cost.size, max_size=cost.size)), float) / 16
    ds = cascjax.Dataset.from_arrays(quality[None], cost[None])  # one query: the means are the values
    hull = _hull_vertices(ds.model_costs(), ds.model_qualities())
    hc = ds.model_costs()[hull]
    b = paper_budgets(ds, per_segment)
    assert b.dtype == np.float64
    if hc.size == 1:
        np.testing.assert_array_equal(b, hc)
        return
    k = per_segment - 1
    assert b.shape == ((hc.size - 1) * k + 1,)  # per_segment per pair, the joints once
    assert b[0] == hc[0] == ds.model_costs().min()  # the cheapest model
    assert b[-1] == hc[-1] and ds.model_qualities()[hull[-1]] == ds.model_qualities().max()  # the best
    np.testing.assert_array_equal(b[::k], hc)  # the joints are the hull models' costs
    assert np.all(np.diff(b) > 0)
    for s in range(hc.size - 1):  # evenly spaced inside each segment
        np.testing.assert_allclose(np.diff(b[s * k:(s + 1) * k + 1]), (hc[s + 1] - hc[s]) / k, rtol=1e-9)


def test_paper_budgets_needs_two_per_segment():
    with pytest.raises(cascjax.CascjaxError, match="per_segment must be at least 2, got 1"):
        paper_budgets(cascjax.synthetic(0, 5, 3), 1)


# -- the fit/test split -----------------------------------------------------------------------------------------

def _numpy_dataset(quality):
    """A dataset on NumPy arrays (no device arrays: no compilation per shape in the examples below)."""
    return cascjax.Dataset(quality=quality, cost=np.ones_like(quality), models=("a", "b"))


@given(st.integers(1, 400), st.integers(1, 99), st.integers(0, 2**32 - 1))
def test_split_indices_partition_the_rows(n, percent, seed):
    ds = _numpy_dataset(np.arange(2.0 * n).reshape(n, 2))
    fraction = percent / 100
    n_test = math.ceil(Fraction(100 - percent, 100) * n)
    if n_test >= n or n_test < 1:
        with pytest.raises(cascjax.CascjaxError, match=f"cannot split {n} queries"):
            ds.split_indices(fraction, seed)
        return
    fit, test = ds.split_indices(fraction, seed)
    assert test.size == n_test and fit.size == n - n_test
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, test])), np.arange(n))  # a partition
    assert np.all(np.diff(fit) > 0) and np.all(np.diff(test) > 0)  # ascending: the data's row order
    again = ds.split_indices(fraction, seed)
    np.testing.assert_array_equal(again[0], fit)
    np.testing.assert_array_equal(again[1], test)
    # the documented permutation: RandomState(seed), the first ceil((1 − f)·N) rows are the test split
    np.testing.assert_array_equal(test, np.sort(np.random.RandomState(seed).permutation(n)[:n_test]))
    fit_ds, test_ds = ds.split(fraction, seed)
    np.testing.assert_array_equal(np.asarray(fit_ds.quality)[:, 0], 2.0 * fit)
    np.testing.assert_array_equal(np.asarray(test_ds.quality)[:, 0], 2.0 * test)


def test_split_indices_paper_sizes_and_seeds():
    ds = _numpy_dataset(np.zeros((1000, 2)))
    for n in (20, 21, 39, 40, 41, 999, 1000):
        fit, test = _numpy_dataset(np.zeros((n, 2))).split_indices(0.05, 42)
        assert test.size == math.ceil(Fraction(95, 100) * n) and fit.size + test.size == n
    splits = {tuple(ds.split_indices(0.05, s)[0]) for s in range(5)}
    assert len(splits) == 5  # another seed, another split
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(cascjax.CascjaxError, match="fit_fraction must lie strictly between 0 and 1"):
            ds.split_indices(bad, 42)


# -- the paired bootstrap ---------------------------------------------------------------------------------------

def test_bootstrap_is_paired_and_seeded():
    ds = cascjax.synthetic(5, 80, 3, binary=False)
    budgets = paper_budgets(ds, 6)
    assert budgets[0] == ds.model_costs().min()  # the budgets span the whole range from c_min
    ref = baseline_outcomes(ds, budgets)
    ref2 = baseline_outcomes(ds, paper_budgets(ds, 4))
    assert np.isfinite(ref.cost).all()
    delta = 0.0371
    rng = np.random.default_rng(3)
    jitter = rng.normal(0.0, 0.1, ds.n_queries)[None]  # per query, the same at every budget
    outcomes = {
        REFERENCE: ref,
        "same": Outcomes(ref.cost.copy(), ref.quality.copy()),
        "shifted": Outcomes(ref.cost, ref.quality + delta),
        "different": Outcomes(ref.cost, ref.quality + jitter),
    }
    a = bootstrap(outcomes, ds, n_boot=200, seed=1)
    b = bootstrap(outcomes, ds, n_boot=200, seed=1)
    c = bootstrap(outcomes, ds, n_boot=200, seed=2)
    assert set(a) == set(outcomes)
    for k in outcomes:
        assert a[k]["draws"].shape == (200,)
        np.testing.assert_array_equal(a[k]["draws"], b[k]["draws"])  # same seed, same draws
        assert a[k]["low"] == b[k]["low"] and a[k]["high"] == b[k]["high"]
    for k in (REFERENCE, "same"):  # identical outcomes: every resample's difference is exactly 0
        np.testing.assert_array_equal(a[k]["draws"], 0.0)
        assert a[k]["diff"] == a[k]["low"] == a[k]["high"] == 0.0
    # A constant shift δ on every query: paired, every resample's difference is exactly 100·δ.
    np.testing.assert_allclose(a["shifted"]["draws"], 100 * delta, rtol=0, atol=1e-9)
    np.testing.assert_allclose([a["shifted"]["diff"], a["shifted"]["low"], a["shifted"]["high"]], 100 * delta,
                               rtol=0, atol=1e-9)
    # The resamples really differ (so the zero spread above is the pairing, not a degenerate resample) ...
    assert np.std(a["different"]["draws"]) > 0.05
    assert a["different"]["low"] < a["different"]["diff"] < a["different"]["high"]
    # ... and another seed draws other resamples.
    assert not np.array_equal(a["different"]["draws"], c["different"]["draws"])
    np.testing.assert_allclose(c["shifted"]["draws"], 100 * delta, rtol=0, atol=1e-9)
    # Several noise seeds per strategy: the difference is averaged over seeds on the same resample.
    many = bootstrap({REFERENCE: [ref, ref2], "shifted": [Outcomes(ref.cost, ref.quality + delta),
                                                          Outcomes(ref2.cost, ref2.quality + delta)]},
                     ds, n_boot=50, seed=0)
    np.testing.assert_allclose(many["shifted"]["draws"], 100 * delta, rtol=0, atol=1e-9)
    with pytest.raises(cascjax.CascjaxError, match="the bootstrap reference 'nobody' is not among"):
        bootstrap(outcomes, ds, reference="nobody", n_boot=10)


# -- reproduce --------------------------------------------------------------------------------------------------

@functools.cache
def small_reproduce():
    ds, _, _ = data()
    messages = []
    cells = reproduce(ds, pools=("all",), noises=("low",), seeds=2, fit_fraction=0.5, split_seed=SPLIT_SEED,
                      per_segment=10, max_depth=CR_DEPTH, samples=SAMPLES, candidates=64, grid=32, n_boot=50,
                      progress=messages.append)
    return cells, messages


def test_reproduce_small():
    ds, _, test_rows = data()
    cells, messages = small_reproduce()
    assert len(cells) == 1
    cell = cells[0]
    assert (cell.pool, cell.noise, cell.models) == ("all", "low", ds.models)
    assert cell.test.n_queries == test_rows.size == 120
    assert len(messages) == 2 * len(LABELS)  # seeds x rows
    assert [r["strategy"] for r in cell.rows] == LABELS
    keys = {"pool", "noise", "models", "seeds", "strategy", "auc", "auc_sd", "diff", "ci_low", "ci_high",
            "auc_constant", "fit_gain", "seconds"}
    by = {}
    for row in cell.rows:
        assert keys <= set(row), set(row)
        assert (row["pool"], row["noise"], row["models"], row["seeds"]) == ("all", "low", 3, 2)
        assert np.isfinite([row["auc"], row["auc_sd"], row["diff"], row["ci_low"], row["ci_high"]]).all(), row
        assert 0 < row["auc"] < 100
        assert row["ci_low"] <= row["diff"] <= row["ci_high"], row
        by[row["strategy"]] = row
    ref = by[REFERENCE]
    assert ref["diff"] == ref["ci_low"] == ref["ci_high"] == 0.0
    for label in LABELS:
        np.testing.assert_allclose(by[label]["diff"], by[label]["auc"] - ref["auc"], rtol=1e-9, atol=1e-9)
    # the constant-λ comparison exists for the per-step strategies only; per-step search never loses on the fit
    for label in ("threshold cascade", "cascade", "cascade routing"):
        assert np.isfinite(by[label]["auc_constant"]) and by[label]["fit_gain"] >= -1e-9
    for label in ("linear interpolation", "routing"):
        assert np.isnan(by[label]["auc_constant"]) and np.isnan(by[label]["fit_gain"])
    # the baseline row is the linear interpolation of the test split's hull models at the paper's budgets
    test_ds = cell.test
    base = baseline_outcomes(test_ds, paper_budgets(test_ds, 10))
    np.testing.assert_allclose(by["linear interpolation"]["auc"],
                               curve_auc(base.cost.mean(axis=1), base.quality.mean(axis=1), test_ds), rtol=1e-12)
    assert by["linear interpolation"]["auc_sd"] == 0.0  # no noise in the baseline
    assert set(cell.curves) == set(LABELS)
    for x, y in cell.curves.values():
        assert x.shape == y.shape == (19,)

    md = markdown(cells)
    lines = md.splitlines()
    for label in LABELS:
        assert sum(line.startswith(f"| {label} | ") for line in lines) == (1 if label == REFERENCE else 2), label
    assert "| strategy | all, low |" in md and "mean over 2 noise seeds" in md
    assert f"| cascade | {by['cascade']['auc']:.2f}" in md or f"| cascade | **{by['cascade']['auc']:.2f}**" in md
    assert markdown([]) == ""


def test_reproduce_bad_input():
    ds = cascjax.synthetic(0, 20, 3)
    # 20 queries, fit_fraction 0.06: 19 test queries and a single fit query
    with pytest.raises(cascjax.CascjaxError, match=r"pool 'all': the split leaves 1 fit and 19 test queries"):
        reproduce(ds, pools=("all",), noises=("low",), fit_fraction=0.06)
    with pytest.raises(cascjax.CascjaxError, match="cannot split 20 queries"):
        reproduce(ds, pools=("all",), noises=("low",), fit_fraction=0.01)
    with pytest.raises(cascjax.CascjaxError, match="unknown model 'm07'"):
        reproduce(ds, pools=("m00+m07",), noises=("low",))
    with pytest.raises(cascjax.CascjaxError, match="seeds must be at least 1"):
        reproduce(ds, pools=("all",), seeds=0)


# -- the command line -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    """tests/test_fit.py's 240 x 3 dataset as a wide CSV (the CLI reads the same shapes)."""
    ds, _, _ = data()
    df = wide_frame(ds)
    path = tmp_path_factory.mktemp("data") / "data.csv"
    df.to_csv(path, index=False)
    return path


#: CLI options giving the shapes of tests/test_fit.py (a 50/50 split of 240 queries, depth 2, K = 8).
SMALL = ["--samples", SAMPLES, "--max-depth", CR_DEPTH, "--candidates", 64, "--fit-fraction", 0.5, "--quiet"]


def test_cli_reproduce(data_csv, tmp_path, capsys):
    out = tmp_path / "rep"
    rc, stdout, err = _run(["reproduce", data_csv, "--noise", "low", "--bootstrap", 20, *SMALL, "--out", out], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(out)) == ["frontier_all_low.png", "table.csv", "table.md"]  # no temporary files
    table = pd.read_csv(out / "table.csv")
    assert list(table.strategy) == LABELS
    assert set(table.pool.astype(str)) == {"all"} and set(table.noise) == {"low"}
    assert np.isfinite(table[["auc", "diff", "ci_low", "ci_high"]].to_numpy()).all()
    ref = table[table.strategy == REFERENCE].iloc[0]
    assert ref["diff"] == ref["ci_low"] == ref["ci_high"] == 0
    assert (table.ci_low <= table["diff"] + 1e-4).all() and (table["diff"] <= table.ci_high + 1e-4).all()
    # the baseline row does not depend on the fits: the same as the API's on the same split and budgets
    cells, _ = small_reproduce()
    base = {r["strategy"]: r["auc"] for r in cells[0].rows}["linear interpolation"]
    np.testing.assert_allclose(table[table.strategy == "linear interpolation"].auc.item(), base, rtol=1e-5)
    md = (out / "table.md").read_text()
    for label in LABELS:
        assert f"| {label} | " in md
    assert md.strip() in stdout
    assert (out / "frontier_all_low.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_ablate_noise(data_csv, tmp_path, capsys):
    out = tmp_path / "abl"
    rc, stdout, err = _run(["ablate", data_csv, "--what", "noise", "--step", 1.5, "--max", 1.5, *SMALL,
                            "--json", "--out", out], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(out)) == ["ablation.csv", "heatmap_routing.png", "heatmap_threshold.png"]
    frame = pd.read_csv(out / "ablation.csv")
    assert list(zip(frame.sigma_ante, frame.sigma_post)) == [(0.0, 0.0), (1.5, 0.0), (1.5, 1.5)]
    aucs = frame[["auc_routing", "auc_threshold_cascade", "auc_cascade_routing"]].to_numpy()
    assert np.isfinite(aucs).all() and (aucs > 0).all() and (aucs < 100).all()
    np.testing.assert_allclose(frame.cr_minus_routing, frame.auc_cascade_routing - frame.auc_routing, atol=1e-3)
    np.testing.assert_allclose(frame.cr_minus_threshold, frame.auc_cascade_routing - frame.auc_threshold_cascade,
                               atol=1e-3)
    # noise-free estimates (σ = 0) route better than noisy ones
    assert frame.auc_routing[0] > frame.auc_routing[2]
    assert frame.auc_routing[1] == frame.auc_routing[2]  # routing never looks at the post-hoc estimates
    for name in ("heatmap_routing.png", "heatmap_threshold.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(stdout)  # --json: stdout is one JSON document, the same numbers as ablation.csv
    assert doc["command"] == "ablate" and doc["variants"] is None and len(doc["files"]) == 3
    np.testing.assert_allclose([r["auc_routing"] for r in doc["noise_grid"]], frame.auc_routing, rtol=1e-5)


@pytest.mark.parametrize("args, message", [
    (["reproduce", "--pools", "m00+nobody"], "unknown model 'nobody'"),
    (["ablate", "--pool", "3"], "RouterBench's 11 models"),
    (["reproduce", "--fit-fraction", "0.001"], "cannot split 240 queries"),
])
def test_cli_bad_input(data_csv, tmp_path, capsys, args, message):
    out = tmp_path / "o"
    rc, _, err = _run([args[0], data_csv, *args[1:], "--quiet", "--out", out], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cascjax: error: ") and message in lines[0], err
    assert not out.exists()
