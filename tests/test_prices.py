"""What-if prices (``sweep(..., prices=P)``): every scenario of the vmapped call against the section-4 loop
oracle on that scenario's costs, a scenario of ones against the plain sweep to the bit, each scenario against a
plain sweep of its priced data to the bit; cost tables; bad prices; ``cascjax whatif``."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax._errors import CascjaxError
from cascjax._prices import price_scenarios
from cascjax._supermodels import normal_points

from . import oracle
from ._instances import STRATEGIES, instance, lambdas, options as _options

fewer = settings(max_examples=max(6, settings.default.max_examples // 3))


@st.composite
def cases(draw):
    ds, est = instance(draw, 7)
    m = ds.n_models
    strategy = draw(st.sampled_from(STRATEGIES))
    depth = 1 if strategy == "routing" else draw(st.integers(1, m))
    lam = lambdas(draw, strategy)  # the direct grids, and the event routes (routing from 32 λ)
    s = draw(st.integers(1, 4))
    prices = np.array(draw(st.lists(st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]), min_size=s * m,
                                    max_size=s * m))).reshape(s, m)
    return ds, est, strategy, depth, draw(st.integers(1, 3)), lam, prices


@given(cases(), st.sampled_from(["min", "max"]))
@fewer
def test_every_scenario_equals_the_loop_oracle_on_its_prices(case, tie):
    ds, est, strategy, depth, k, lam, prices = case
    options = _options(strategy, depth, k)
    curves = cascjax.sweep(ds, est, lam, strategy, tie, prices=prices, **options)
    assert len(curves) == prices.shape[0]
    z = np.asarray(normal_points(k, ds.n_models))
    for s, curve in enumerate(curves):
        loop_est = dict(mu_ante=est.quality_ante, mu_post=est.quality_post, sd_ante=est.sd_ante,
                        sd_post=est.sd_post, c_ante=np.asarray(est.cost_ante) * prices[s],
                        c_post=np.asarray(est.cost_post) * prices[s])
        want = oracle.reference_sweep(ds.quality, np.asarray(ds.cost) * prices[s], loop_est, lam, strategy, tie=tie,
                                      z=z, **{k_: v for k_, v in options.items() if k_ != "samples"})
        np.testing.assert_allclose(curve.cost, want[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(curve.quality, want[1], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(curve.ran, want[2], rtol=1e-12)


@pytest.mark.parametrize("strategy,count", [("routing", 40), ("routing", 5), ("threshold_cascade", 10),
                                            ("cascade", 40), ("cascade", 3), ("cascade_routing", 6)])
def test_ones_are_the_plain_sweep_and_each_scenario_its_priced_data_to_the_bit(strategy, count):
    """float32 on the example: the vmapped scenarios make the plain sweep's decisions and sums, bit for bit."""
    ds = cascjax.load_example().take(np.arange(900))
    est = cascjax.noisy_estimates(ds, jax.random.key(1), "low")
    options = {} if strategy == "routing" else dict(max_depth=2 if strategy == "cascade_routing" else 3)
    if strategy in ("cascade", "cascade_routing"):
        options["samples"] = 8
    lam = (cascjax.threshold_grid(est, count, max_depth=3) if strategy == "threshold_cascade" else
           cascjax.lambda_grid(est, count))
    prices = np.ones((3, ds.n_models))
    prices[1, -1], prices[2, 0] = 0.25, 4.0
    curves = cascjax.sweep(ds, est, lam, strategy, prices=prices, return_choices=True, **options)
    plain = cascjax.sweep(ds, est, lam, strategy, return_choices=True, **options)
    for a, b in zip(curves[0], plain):
        np.testing.assert_array_equal(a, b)
    for s in (1, 2):
        priced = cascjax.Dataset.from_arrays(ds.quality, np.asarray(ds.cost, np.float64) * prices[s],
                                             models=list(ds.models), sort=False)
        scaled = est._replace(cost_ante=np.asarray(est.cost_ante, np.float64) * prices[s],
                              cost_post=np.asarray(est.cost_post, np.float64) * prices[s])
        alone = cascjax.sweep(priced, scaled, lam, strategy, return_choices=True, **options)
        for a, b in zip(curves[s], alone):
            np.testing.assert_array_equal(a, b)


def test_cost_tables_move_the_estimates_with_the_costs():
    ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1]], [[1.0, 2.0], [0.0, 2.0], [1.0, 4.0]])
    est = cascjax.perfect_estimates(ds)._replace(cost_ante=np.array([[2.0, 2.0], [1.0, 2.0], [1.0, 2.0]]))
    table = np.array([[[3.0, 2.0], [5.0, 1.0], [1.0, 8.0]]])
    cost, ante, post = price_scenarios(ds, est, table, np.float64)
    np.testing.assert_array_equal(cost[0], table[0])
    # ratio table / cost per query; the free query (cost 0) takes the table's cost as its estimate.
    np.testing.assert_array_equal(ante[0], [[6.0, 2.0], [5.0, 1.0], [1.0, 4.0]])
    np.testing.assert_array_equal(post[0], table[0])
    curves = cascjax.sweep(ds, est, [0.0, 1.0], prices=table)
    alone = cascjax.sweep(cascjax.Dataset.from_arrays(ds.quality, table[0]), est._replace(
        cost_ante=ante[0], cost_post=post[0]), [0.0, 1.0])
    np.testing.assert_array_equal(curves[0].cost, alone.cost)


@pytest.mark.parametrize("prices,message", [
    (np.ones((2, 3)), r"multipliers \[S, M = 2\] or cost tables \[S, N = 4, M = 2\]"),
    ([[1.0, -1.0]], "model 'model1' has -1.0"),
    ([[1.0, np.nan]], "finite and > 0"),
    (np.full((1, 4, 2), -2.0), "query 0, model 'model0'"),
    ([["a", "b"]], "prices must be numbers"),
    ([[1.0, 1e39]], "overflow float32"),
])
def test_bad_prices(prices, message):
    ds = cascjax.Dataset.from_arrays(np.array([[0, 1], [1, 1], [0, 1], [1, 0]], np.float32), [[1, 2]] * 4,
                                     sort=False)
    with pytest.raises(CascjaxError, match=message):
        cascjax.sweep(ds, cascjax.perfect_estimates(ds), [0.0, 1.0], prices=prices)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cascjax.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "CASCJAX_NOTEBOOK_SMALL": "1"})


def test_whatif_command(tmp_path):
    ran = _cli("whatif", "--model", "gemini-1.5-pro-002", "--scale", "0.25:4:3", "--strategy", "routing,threshold-cascade",
               "--lambdas", "24", "--budget", "0.0002", "--out", str(tmp_path), "--json", "--quiet")
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    rows = doc["rows"]
    assert [r["scale"] for r in rows if r["strategy"] == "routing"] == [0.25, 1.0, 4.0]
    routing = {r["scale"]: r for r in rows if r["strategy"] == "routing"}
    # gemini dearer: at the same budget, no better; the threshold cascade does not look at prices.
    assert routing[4.0]["quality_at_budget"] <= routing[0.25]["quality_at_budget"] + 1e-9
    assert {"whatif.csv", "whatif.png"} <= set(os.listdir(tmp_path))
    bad = _cli("whatif", "--model", "nope", "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "'nope' is not in the data" in bad.stderr
    bad = _cli("whatif", "--model", "gemini-1.5-pro-002", "--scale", "4:1:0", "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "--scale" in bad.stderr


def test_scenario_counts_of_a_bucket_share_their_programs():
    """The scenario axis is padded to a shape bucket (copies of the last scenario, cut off): 3 scenarios after 4
    compile nothing, and padding changes no bit."""
    from cascjax._compile import programs

    ds = cascjax.synthetic(4, n_queries=90, n_models=3)
    est = cascjax.perfect_estimates(ds)
    prices = np.array([[1.0, 1.0, 1.0], [0.5, 1.0, 2.0], [2.0, 1.0, 1.0], [1.0, 3.0, 1.0]])
    four = cascjax.sweep(ds, est, [0.0, 0.5, 2.0], "cascade", max_depth=2, samples=4, prices=prices)
    before = programs()["total"]
    three = cascjax.sweep(ds, est, [0.0, 0.5, 2.0], "cascade", max_depth=2, samples=4, prices=prices[:3])
    assert programs()["total"] == before and len(three) == 3
    for a, b in zip(three, four):
        np.testing.assert_array_equal(a.cost, b.cost)
        np.testing.assert_array_equal(a.quality, b.quality)
