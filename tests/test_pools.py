"""Pool and order search (``cascjax.search_pools``): every pool's curve against the section-4 loop oracle on
that pool's columns in its order, and against a plain sweep of ``ds.select(pool, sort=False)``; the pools
enumerated; the frontier, the best pool per budget and the cheapest-first default against brute-force loops;
bad input; ``cascjax pools``."""

import itertools
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
from cascjax._supermodels import normal_points

from . import oracle
from ._instances import STRATEGIES, instance, lambdas, options as sweep_options

fewer = settings(max_examples=max(6, settings.default.max_examples // 3))


@st.composite
def cases(draw):
    ds, est = instance(draw, 6)
    strategy = draw(st.sampled_from(STRATEGIES))
    lam = lambdas(draw, strategy)
    depth = None if strategy == "routing" else draw(st.sampled_from([None, 1, 2]))
    return ds, est, strategy, lam, depth, draw(st.integers(1, 3))


@given(cases(), st.sampled_from(["min", "max"]))
@fewer
def test_every_pool_equals_the_loop_oracle_on_its_columns(case, tie):
    ds, est, strategy, lam, depth, k = case
    options = sweep_options(strategy, depth, k)
    found = cascjax.search_pools(ds, est, lam, strategy, tie=tie, **options)
    ordered = strategy in ("cascade", "threshold_cascade")
    make = itertools.permutations if ordered else itertools.combinations
    assert list(found.members) == [p for size in range(1, ds.n_models + 1) for p in make(range(ds.n_models), size)]
    q, c = np.asarray(ds.quality), np.asarray(ds.cost)
    for p, pool in enumerate(found.members):
        cols = list(pool)
        if len(cols) == 1:  # one model answers every query
            np.testing.assert_allclose(found.cost[p], c[:, cols[0]].mean())
            np.testing.assert_allclose(found.quality[p], q[:, cols[0]].mean())
            continue
        e = [np.asarray(a)[:, cols] for a in est[:6]]
        loop_est = dict(mu_ante=e[0], mu_post=e[1], sd_ante=e[2], sd_post=e[3], c_ante=e[4], c_post=e[5])
        rest = {} if strategy == "routing" else dict(max_depth=min(depth or len(cols), len(cols)))
        z = np.asarray(normal_points(k, len(cols)))
        want = oracle.reference_sweep(q[:, cols], c[:, cols], loop_est, lam, strategy, tie=tie, z=z, **rest)
        np.testing.assert_allclose(found.cost[p], want[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(found.quality[p], want[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_pool_is_a_plain_sweep_of_its_selection(strategy):
    """float32 on the example, 3 models: every pool (order) of 2 and 3 models against ``sweep`` on
    ``ds.select(pool, sort=False)`` — the same decisions; the sums per pool within a few ulps."""
    ds = cascjax.load_example().select(["llama-3.1-8b-instruct", "qwen1.5-72b-chat", "gemini-1.5-pro-002"])
    ds = ds.take(np.arange(600))
    est = cascjax.noisy_estimates(ds, jax.random.key(3), "low")
    options = {} if strategy == "routing" else dict(max_depth=2)
    if strategy in ("cascade", "cascade_routing"):
        options["samples"] = 8
    found = cascjax.search_pools(ds, est, 12, strategy, min_size=2, **options)
    for p, pool in enumerate(found.members):
        sub = ds.select(list(pool), sort=False)
        sub_est = cascjax.Estimates(*(np.asarray(a)[:, list(pool)] for a in est[:6]))
        opts = dict(options)
        if "max_depth" in opts:
            opts["max_depth"] = 2
        curve = cascjax.sweep(sub, sub_est, found.lam, strategy, **opts)
        np.testing.assert_allclose(found.cost[p], np.asarray(curve.cost, np.float64), rtol=2e-6)
        np.testing.assert_allclose(found.quality[p], np.asarray(curve.quality, np.float64), rtol=2e-6, atol=1e-7)


def _upper(c, q):
    h = cascjax.model_hull((c, q))
    return c[h], q[h]


def test_frontier_best_pool_and_default_against_loops():
    ds = cascjax.load_example().select(["llama-3.1-8b-instruct", "mixtral-8x7b-instruct", "llama-3.1-70b-instruct",
                                        "gemini-1.5-pro-002"])
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "medium")
    found = cascjax.search_pools(ds, est, 24, "threshold_cascade")
    assert len(found.members) == 4 + 12 + 24 + 24
    budgets = np.geomspace(found.cost.min() * 1.01, found.cost.max(), 6)
    front = cascjax.pool_frontier(found, budgets)
    # brute force: every point of every pool, the hull; each pool's quality at each budget
    c, q = found.cost.ravel(), found.quality.ravel()
    hc, hq = _upper(c, q)
    np.testing.assert_array_equal(front.cost, hc)
    np.testing.assert_array_equal(front.quality, hq)
    for b, budget in enumerate(budgets):
        best, where = -np.inf, None
        for p in range(len(found.members)):
            value = cascjax.quality_at(_upper(found.cost[p], found.quality[p]), [budget])[0]
            np.testing.assert_array_equal(front.pool_quality[p, b], value)
            if value > best:
                best, where = value, p
        assert front.best_quality[b] == best and front.best_at[b] == where
        assert front.frontier_quality[b] >= best - 1e-12
    default = found.members.index((0, 1, 2, 3))  # cheapest first: ds is sorted by mean cost
    assert found.names[default] == ">".join(ds.models)
    np.testing.assert_array_equal(front.default_quality,
                                  cascjax.quality_at(_upper(found.cost[default], found.quality[default]), budgets))
    assert front.default_auc == found.auc()[default] and front.best_auc == found.auc().max()
    assert front.auc >= front.best_auc >= front.default_auc


def test_bad_input():
    ds = cascjax.Dataset.from_arrays(np.eye(9)[:3], np.ones((3, 9)))
    with pytest.raises(CascjaxError, match="at most 8 models"):
        cascjax.search_pools(ds, cascjax.perfect_estimates(ds), [0.0])
    ds = ds.select([0, 1, 2])
    est = cascjax.perfect_estimates(ds)
    with pytest.raises(CascjaxError, match="1 <= min_size <= max_size <= 3, got 2..5"):
        cascjax.search_pools(ds, est, [0.0], min_size=2, max_size=5)
    with pytest.raises(CascjaxError, match="unknown strategy"):
        cascjax.search_pools(ds, est, [0.0], "cascades")
    with pytest.raises(CascjaxError, match="one λ"):
        cascjax.search_pools(ds, est, [[0.0, 1.0]])
    with pytest.raises(CascjaxError, match="max_depth must be in 1..3"):
        cascjax.search_pools(ds, est, [0.0], max_depth=4)
    covariance = cascjax.fit_covariances(est)
    with pytest.raises(CascjaxError, match="no covariance table"):
        cascjax.search_pools(ds, est._replace(covariance=covariance), [0.0])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cascjax.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "CASCJAX_NOTEBOOK_SMALL": "1"})


def test_pools_command(tmp_path):
    out = tmp_path / "o"
    ran = _cli("pools", "--models", "llama-3.1-8b-instruct,mixtral-8x7b-instruct,gemini-1.5-pro-002", "--strategy",
               "routing,threshold-cascade", "--lambdas", "8", "--budgets", "1e-4,3e-4", "--out", str(out), "--quiet",
               "--json")
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert [r["strategy"] for r in doc["summary"]] == ["routing", "threshold-cascade"]
    pools = pd.read_csv(out / "pools.csv")
    assert len(pools) == 7 + 15 and {"strategy", "pool", "size", "auc", "quality_at_0.0001"} <= set(pools.columns)
    assert set(pd.read_csv(out / "frontier.csv").columns) >= {"strategy", "cost", "quality", "pool"}
    assert (out / "pools.png").stat().st_size > 0
    bad = _cli("pools", "--max-size", "9", "--out", str(tmp_path / "x"), "--quiet")
    assert bad.returncode == 2 and "max_size" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x").exists()
