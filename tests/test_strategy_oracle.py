"""The section-4 loop oracle for cascades and cascade routing, checked on its own properties.

The JAX strategy kernels (issue 3) are to be compared with ``oracle.reference_sweep``; these tests pin the oracle
itself to the paper's identities first, so that a disagreement later points at the kernel.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from . import oracle


@st.composite
def small(draw, perfect=False):
    n, m = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    q4 = st.integers(0, 4).map(lambda v: v / 4)

    def arr(elems):
        return np.array(draw(st.lists(elems, min_size=n * m, max_size=n * m)), float).reshape(n, m)

    quality, cost = arr(q4), arr(st.integers(0, 8).map(lambda v: v / 8))
    if perfect:
        zero = np.zeros_like(quality)
        est = dict(mu_ante=quality, mu_post=quality, sd_ante=zero, sd_post=zero, c_ante=cost, c_post=cost)
    else:
        est = dict(mu_ante=arr(q4), mu_post=arr(q4), sd_ante=arr(q4), sd_post=np.zeros_like(quality),
                   c_ante=arr(st.integers(0, 8).map(lambda v: v / 8)), c_post=cost)
    z = np.array(draw(st.lists(st.integers(-4, 4).map(lambda v: v / 2), min_size=2 * m, max_size=2 * m)))
    return quality, cost, est, z.reshape(2, m)


LAMS = [0.0, 0.1, 0.3, 0.5, 1.0, 2.0, 5.0]


@pytest.mark.parametrize("tie", ["min", "max"])
@given(small())
def test_the_two_routing_oracles_agree(tie, inst):
    quality, cost, est, z = inst
    c, q, ran, _ = oracle.reference_sweep(quality, cost, est, LAMS, "routing", tie=tie, z=z)
    ref_c, ref_q, _ = oracle.reference_routing(quality, cost, est["mu_ante"], est["c_ante"], LAMS, tie)
    np.testing.assert_allclose(c, ref_c, atol=1e-12)
    np.testing.assert_allclose(q, ref_q, atol=1e-12)
    np.testing.assert_array_equal(ran, 1.0)


@pytest.mark.parametrize("tie", ["min", "max"])
@given(small())
def test_cascade_routing_of_depth_one_is_routing(tie, inst):
    quality, cost, est, z = inst
    a = oracle.reference_sweep(quality, cost, est, LAMS, "cascade_routing", tie=tie, max_depth=1, z=z)
    b = oracle.reference_sweep(quality, cost, est, LAMS, "routing", tie=tie, z=z)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-12)


@pytest.mark.parametrize("tie", ["min", "max"])
@given(small(perfect=True))
def test_with_perfect_estimates_cascade_routing_is_routing(tie, inst):
    """At every λ for MIN; for MAX at every λ > 0. At λ = 0 cost does not count, so MAX takes the most
    expensive of the supermodels that all reach the best quality — it may run models that cannot help (the
    realised quality is the same, the cost higher): a property of the decision rule, not of an implementation."""
    quality, cost, est, z = inst
    lams = LAMS if tie == "min" else LAMS[1:]
    a = oracle.reference_sweep(quality, cost, est, lams, "cascade_routing", tie=tie, z=z)
    b = oracle.reference_sweep(quality, cost, est, lams, "routing", tie=tie, z=z)
    np.testing.assert_allclose(a[0], b[0], atol=1e-12)
    np.testing.assert_allclose(a[1], b[1], atol=1e-12)
    if tie == "max":
        a0 = oracle.reference_sweep(quality, cost, est, [0.0], "cascade_routing", tie=tie, z=z)
        b0 = oracle.reference_sweep(quality, cost, est, [0.0], "routing", tie=tie, z=z)
        np.testing.assert_allclose(a0[1], b0[1], atol=1e-12)
        assert a0[0][0] >= b0[0][0] - 1e-12


@pytest.mark.parametrize("kind", ["cascade", "cascade_routing", "threshold_cascade"])
@given(small())
def test_a_constant_per_step_vector_is_the_scalar(kind, inst):
    quality, cost, est, z = inst
    m = quality.shape[1]
    vec = [[lam] * m for lam in LAMS]
    for x, y in zip(oracle.reference_sweep(quality, cost, est, LAMS, kind, z=z),
                    oracle.reference_sweep(quality, cost, est, vec, kind, z=z)):
        np.testing.assert_array_equal(x, y)


@given(small())
def test_cascades_run_a_prefix_and_greedy_force_order_runs_ascending(inst):
    quality, cost, est, z = inst
    for i in range(quality.shape[0]):
        one = {k: v[i] for k, v in est.items()}
        for lam in LAMS:
            run, answer = oracle.reference_run(one, lam, "cascade", z=z)
            assert run == list(range(len(run))) and answer in run
            run, _ = oracle.reference_run(one, lam, "cascade_routing", force_order=True, greedy=True, z=z)
            assert run == sorted(run) and len(set(run)) == len(run)
            run, _ = oracle.reference_run(one, lam, "cascade_routing", max_depth=2, z=z)
            assert 1 <= len(run) <= 2


def test_threshold_cascade_stops_at_the_first_confident_model():
    est = dict(mu_post=np.array([0.2, 0.6, 0.9]))
    assert oracle.reference_run(est, -1.0, "threshold_cascade") == ([0], 0)
    assert oracle.reference_run(est, 0.5, "threshold_cascade") == ([0, 1], 1)
    assert oracle.reference_run(est, [0.1, 0.7, 0.0], "threshold_cascade") == ([0], 0)
    assert oracle.reference_run(est, [0.3, 0.7, 0.0], "threshold_cascade") == ([0, 1, 2], 2)
    assert oracle.reference_run(est, 2.0, "threshold_cascade", max_depth=2) == ([0, 1], 1)


def test_a_hand_worked_cascade_routing_decision():
    """Two models, λ = 0.5: running the cheap model first and stopping if it is good beats going straight to
    the expensive one, once its post-hoc estimate is known."""
    est = dict(mu_ante=np.array([0.5, 0.8]), mu_post=np.array([0.9, 0.8]), sd_ante=np.array([0.0, 0.0]),
               sd_post=np.zeros(2), c_ante=np.array([0.1, 0.4]), c_post=np.array([0.1, 0.4]))
    # R = ∅: {0}: 0.5 − 0.05 = 0.45; {1}: 0.8 − 0.2 = 0.6; {0,1}: 0.8 − 0.25 = 0.55 → {1}: run model 1;
    # R = {1}: {1}: 0.8 − 0.2 = 0.6 (stop); {0,1}: max(0.5, 0.8) − 0.25 = 0.55 → stop.
    assert oracle.reference_run(est, 0.5, "cascade_routing") == ([1], 1)
    # λ = 0.2: {0}: 0.48, {1}: 0.72, {0,1}: 0.8 − 0.1 = 0.7 → {1} and stop ({0,1} at R={1}: 0.8 − 0.1 < 0.72).
    assert oracle.reference_run(est, 0.2, "cascade_routing") == ([1], 1)
    # With deviation on model 0 (σ = 0.6, points ±1): Q({0,1}) = mean(max(1.1, 0.8), max(−0.1, 0.8)) = 0.95.
    est["sd_ante"] = np.array([0.6, 0.0])
    z = np.array([[1.0, 0.0], [-1.0, 0.0]])
    # λ = 0.2: {0,1}: 0.95 − 0.1 = 0.85 beats {1}: 0.72 → run model 0 first (lowest index of T*),
    # then R = {0} (post 0.9): {0}: 0.9 − 0.02 = 0.88 vs {0,1}: 0.9 − 0.1 = 0.8 → stop, answer model 0.
    assert oracle.reference_run(est, 0.2, "cascade_routing", z=z) == ([0], 0)
