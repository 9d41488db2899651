"""A second cost (``cascjax.surface``): every (weight, λ) point against the section-4 loop oracle run on the
combined cost estimates (the realised cost and latency summed by the oracle's own choices), weight 0 against
the one-cost sweep to the bit, the vmapped weights against each weight alone; the three-way Pareto points and
two-budget choice against brute-force loops; reading latency columns; bad input; ``cascjax surface``."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax._errors import CascjaxError
from cascjax._latency import pareto
from cascjax._supermodels import normal_points

from . import oracle
from ._instances import dyadic, instance, lambdas, options as _options

fewer = settings(max_examples=max(6, settings.default.max_examples // 3))
STRATEGIES = ["routing", "cascade", "cascade_routing"]


@st.composite
def cases(draw):
    ds, est = instance(draw, 7)
    n, m = ds.n_queries, ds.n_models
    latency = dyadic(draw, n, m, 4)
    lat = cascjax.Latency(latency, dyadic(draw, n, m, 4), latency) if draw(st.booleans()) else latency
    strategy = draw(st.sampled_from(STRATEGIES))
    depth = 1 if strategy == "routing" else draw(st.integers(1, m))
    lam = lambdas(draw, strategy)  # the direct grids, and the event routes
    weights = np.array(draw(st.lists(st.sampled_from([0.0, 0.25, 1.0, 4.0, np.inf]), min_size=1, max_size=4)))
    return ds, est, lat, strategy, depth, draw(st.integers(1, 3)), lam, weights


@given(cases(), st.sampled_from(["min", "max"]))
@fewer
def test_every_point_equals_the_loop_oracle_on_the_combined_costs(case, tie):
    ds, est, lat, strategy, depth, k, lam, weights = case
    options = _options(strategy, depth, k)
    s = cascjax.surface(ds, est, lat, lam, weights, strategy, tie, **options)
    lat = lat if isinstance(lat, cascjax.Latency) else cascjax.Latency.perfect(lat)
    z = np.asarray(normal_points(k, ds.n_models))
    assert s.cost.shape == (weights.size, lam.size)
    for i, w in enumerate(weights):
        if np.isinf(w):  # latency alone: λ is μ
            ante, post = lat.latency_ante, lat.latency_post
            np.testing.assert_array_equal(s.lam[i], 0.0)
            np.testing.assert_array_equal(s.mu[i], lam)
        else:
            ante = np.asarray(est.cost_ante) + w * lat.latency_ante
            post = np.asarray(est.cost_post) + w * lat.latency_post
            np.testing.assert_array_equal(s.lam[i], lam)
            np.testing.assert_array_equal(s.mu[i], w * lam)
        loop_est = dict(mu_ante=est.quality_ante, mu_post=est.quality_post, sd_ante=est.sd_ante,
                        sd_post=est.sd_post, c_ante=ante, c_post=post)
        rest = {k_: v for k_, v in options.items() if k_ != "samples"}
        paid = oracle.reference_sweep(ds.quality, ds.cost, loop_est, lam, strategy, tie=tie, z=z, **rest)
        waited = oracle.reference_sweep(ds.quality, lat.latency, loop_est, lam, strategy, tie=tie, z=z, **rest)
        np.testing.assert_allclose(s.cost[i], paid[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(s.quality[i], paid[1], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(s.latency[i], waited[0], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("strategy,count", [("routing", 40), ("routing", 5), ("cascade", 40), ("cascade", 3),
                                            ("cascade_routing", 6)])
def test_weight_zero_is_the_one_cost_sweep_and_each_weight_itself_alone_to_the_bit(strategy, count):
    """float32 on the example: weight 0 makes the plain sweep's decisions and sums, bit for bit; the vmapped
    weights equal each weight's surface computed alone."""
    ds = cascjax.load_example().take(np.arange(700))
    est = cascjax.noisy_estimates(ds, jax.random.key(2), "low")
    latency = np.random.default_rng(0).gamma(2.0, 0.5, ds.cost.shape)
    options = {} if strategy == "routing" else dict(max_depth=2 if strategy == "cascade_routing" else 3)
    if strategy in ("cascade", "cascade_routing"):
        options["samples"] = 8
    lam = cascjax.lambda_grid(est, count)
    weights = np.array([0.0, 1e-4, 3e-3, np.inf])
    s = cascjax.surface(ds, est, latency, lam, weights, strategy, **options)
    plain = cascjax.sweep(ds, est, lam, strategy, **options)
    np.testing.assert_array_equal(s.cost[0], np.asarray(plain.cost, np.float64))
    np.testing.assert_array_equal(s.quality[0], np.asarray(plain.quality, np.float64))
    for i, w in enumerate(weights):
        alone = cascjax.surface(ds, est, latency, lam, [w], strategy, **options)
        for a, b in zip(alone[3:], s[3:]):
            np.testing.assert_array_equal(a[0], b[i])


def test_a_higher_weight_never_raises_the_mean_latency_at_one_lambda():
    """Perfect estimates, routing: the objective's optimum moves toward faster answers as latency's price rises
    (the exact per-query optimum, so the mean latency is monotone in the weight at every λ)."""
    ds = cascjax.load_example().take(np.arange(2000))
    latency = np.random.default_rng(1).gamma(2.0, 1.0, ds.cost.shape) * np.arange(1, 7)[::-1]
    s = cascjax.surface(ds, cascjax.perfect_estimates(ds), latency, [1e-3, 1e3], [0.0, 1e-5, 1e-3, 1e-1, 10.0])
    assert (np.diff(s.latency, axis=0) <= 1e-12).all()


def _pareto_loop(c, lat, q):
    keep = []
    for i in range(len(c)):
        dominated = False
        for j in range(len(c)):
            weak = c[j] <= c[i] and lat[j] <= lat[i] and q[j] >= q[i]
            strict = c[j] < c[i] or lat[j] < lat[i] or q[j] > q[i]
            if weak and (strict or j < i):
                dominated = True
        if not dominated:
            keep.append(i)
    return sorted(keep)


def _best_pair_loop(c, lat, q, bc, bl):
    """max over pairs (i, j) and γ in [0, 1] of the mixture's quality within both budgets, by the interval of
    γ each budget allows (a loop over every pair of points)."""
    best = -np.inf
    for i in range(len(c)):
        for j in range(len(c)):
            lo, hi = 0.0, 1.0
            for a, b in ((c, bc), (lat, bl)):
                d = a[j] - a[i]
                if d > 0:
                    hi = min(hi, (b - a[i]) / d)
                elif d < 0:
                    lo = max(lo, (b - a[i]) / d)
                elif a[i] > b:
                    hi = -1.0
            if lo <= hi:
                best = max(best, q[i] + lo * (q[j] - q[i]), q[i] + hi * (q[j] - q[i]))
    return best


points = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=14)


@given(points, st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), min_size=1, max_size=5))
@settings(max_examples=60, deadline=None)
def test_pareto_points_and_two_budget_choice_equal_brute_force_loops(pts, budgets):
    c, lat, q = (np.array(v, float) / d for v, d in zip(zip(*pts), (2, 3, 6)))
    assert sorted(pareto((c, lat, q)).tolist()) == _pareto_loop(c, lat, q)
    s = cascjax.Surface(np.zeros(1), np.arange(c.size, dtype=float)[None], np.zeros((1, c.size)), c[None],
                        lat[None], q[None])
    bc, bl = (np.array(v, float) / 2 for v in zip(*budgets))
    choice = cascjax.at_budgets(s, bc, bl, evaluate_on=s)
    for b in range(bc.size):
        want = _best_pair_loop(c, lat, q, bc[b], bl[b])
        assert choice.feasible[b] == np.isfinite(want)
        if np.isfinite(want):
            assert choice.quality[b] == pytest.approx(want, abs=1e-12)
            assert choice.cost[b] <= bc[b] + 1e-12 and choice.latency[b] <= bl[b] + 1e-12
            g = choice.gamma[b]
            mixed = (1 - g) * q[choice.lo[b]] + g * q[choice.hi[b]]
            assert mixed == pytest.approx(choice.quality[b]) and choice.test_quality[b] == pytest.approx(mixed)
            assert choice.lam_lo[b] == choice.lo[b] and choice.lam_hi[b] == choice.hi[b]


def test_fit_on_one_split_evaluate_on_another():
    ds = cascjax.load_example()
    latency = np.random.default_rng(3).gamma(3.0, 0.3, ds.cost.shape) * np.arange(6, 0, -1)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    fit_rows, test_rows = ds.split_indices(0.2, 1)
    weights = [0.0, 1e-4, 1e-3, np.inf]
    fit = cascjax.surface(ds.take(fit_rows), est.take(fit_rows), latency[fit_rows], 32, weights)
    test = cascjax.surface(ds.take(test_rows), est.take(test_rows), latency[test_rows], fit.lam[0], weights)
    budget_c, budget_l = float(np.median(fit.cost)), float(np.median(fit.latency))
    choice = cascjax.at_budgets(fit, budget_c, budget_l, evaluate_on=test)
    assert choice.feasible[0] and choice.cost[0] <= budget_c + 1e-12 and choice.latency[0] <= budget_l + 1e-12
    # the mixture's test point, from the test surface's two points
    g = choice.gamma[0]
    want = (1 - g) * test.points()[2][choice.lo[0]] + g * test.points()[2][choice.hi[0]]
    assert choice.test_quality[0] == pytest.approx(want)
    # no single fit point within both budgets beats the mixture
    c, lat, q = fit.points()
    assert choice.quality[0] >= q[(c <= budget_c) & (lat <= budget_l)].max() - 1e-12


def _wide_with_latency(tmp_path, n=8):
    rng = np.random.default_rng(4)
    frame = {}
    for j, m in enumerate(["small", "mid", "big"]):
        frame[m] = rng.integers(0, 2, n).astype(float)
        frame[f"{m}|total_cost"] = (j + 1) * 1e-3 * (1 + rng.random(n))
        frame[f"{m}|latency"] = (3 - j) * (1 + rng.random(n)).round(3)
    frame["mid|latency_ante"] = np.full(n, 2.5)
    path = tmp_path / "wide.csv"
    pd.DataFrame(frame).to_csv(path, index=False)
    return path, pd.DataFrame(frame)


def test_read_latency_wide_and_long(tmp_path):
    path, frame = _wide_with_latency(tmp_path)
    ds = cascjax.read(path)
    lat = cascjax.read_latency(path, ds)
    for j, m in enumerate(ds.models):
        np.testing.assert_array_equal(lat.latency[:, j], frame[f"{m}|latency"])
        want = frame[f"{m}|latency_ante"] if m == "mid" else frame[f"{m}|latency"]
        np.testing.assert_array_equal(lat.latency_ante[:, j], want)
        np.testing.assert_array_equal(lat.latency_post[:, j], frame[f"{m}|latency"])
    rows = [dict(query_id=i, model=m, quality=frame[m][i], cost=frame[f"{m}|total_cost"][i],
                 latency=frame[f"{m}|latency"][i]) for i in range(len(frame)) for m in ("small", "mid", "big")]
    long = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(long, index=False)
    lat_long = cascjax.read_latency(long, cascjax.read(long))
    np.testing.assert_array_equal(lat_long.latency, lat.latency)


def test_bad_input(tmp_path):
    path, frame = _wide_with_latency(tmp_path)
    ds = cascjax.read(path)
    frame.drop(columns=["big|latency"]).to_csv(tmp_path / "no.csv", index=False)
    with pytest.raises(CascjaxError, match="no latency column for model 'big'"):
        cascjax.read_latency(tmp_path / "no.csv", cascjax.read(tmp_path / "no.csv"))
    frame.assign(**{"mid|latency": -1.0}).to_csv(tmp_path / "neg.csv", index=False)
    with pytest.raises(CascjaxError, match="'mid\\|latency' has 8 missing, non-finite or negative"):
        cascjax.read_latency(tmp_path / "neg.csv", cascjax.read(tmp_path / "neg.csv"))
    est = cascjax.perfect_estimates(ds)
    lat = cascjax.read_latency(path, ds)
    with pytest.raises(CascjaxError, match=r"latency must be \[N = 8, M = 3\]"):
        cascjax.surface(ds, est, np.ones((8, 2)), [0.0])
    with pytest.raises(CascjaxError, match="latency: model 'small', query 0 has nan"):
        cascjax.surface(ds, est, np.full((8, 3), np.nan), [0.0])
    with pytest.raises(CascjaxError, match="weights must be numbers >= 0"):
        cascjax.surface(ds, est, lat, [0.0], [-1.0])
    with pytest.raises(CascjaxError, match="threshold cascade decides by thresholds"):
        cascjax.surface(ds, est, lat, [0.0], [0.0], "threshold_cascade")
    with pytest.raises(CascjaxError, match="one λ per point"):
        cascjax.surface(ds, est, lat, [[0.0, 1.0]], [0.0])
    small = cascjax.Dataset.from_arrays(np.array([[0, 1]], np.float32), [[1, 2]], sort=False)
    with pytest.raises(CascjaxError, match="overflows float32"):
        cascjax.surface(small, cascjax.perfect_estimates(small), [[1.0, 1.0]], [0.0], [1e39])
    with pytest.raises(CascjaxError, match="not NaN"):
        cascjax.at_budgets(cascjax.surface(ds, est, lat, [0.0], [0.0]), np.nan, 1.0)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cascjax.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "CASCJAX_NOTEBOOK_SMALL": "1"})


def test_surface_command(tmp_path):
    path, _ = _wide_with_latency(tmp_path, n=40)
    out = tmp_path / "o"
    ran = _cli("surface", str(path), "--strategy", "routing,cascade", "--weights", "0,0.001,inf", "--lambdas", "8",
               "--budgets", "0.004:4,0.002:3", "--estimates", "perfect", "--out", str(out), "--quiet", "--json")
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert [r["strategy"] for r in doc["summary"]] == ["routing", "cascade"]
    table = pd.read_csv(out / "surface.csv")
    assert len(table) == 2 * 3 * 8 and set(table.columns) >= {"weight", "lambda", "mu", "cost", "latency", "quality",
                                                              "pareto"}
    budgets = pd.read_csv(out / "budgets.csv")
    assert len(budgets) == 4 and (budgets.cost[budgets.feasible] <= budgets.cost_budget[budgets.feasible] + 1e-9).all()
    assert (out / "surface.png").stat().st_size > 0
    bad = _cli("surface", "--quiet", "--out", str(tmp_path / "x"))  # the example has no latency columns
    assert bad.returncode == 2 and "no latency column for model" in bad.stderr and "Traceback" not in bad.stderr
    bad = _cli("surface", str(path), "--weights", "1:0:3", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--weights must be" in bad.stderr
    bad = _cli("surface", str(path), "--strategy", "threshold-cascade", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "threshold cascade" in bad.stderr
    assert not (tmp_path / "x").exists()
