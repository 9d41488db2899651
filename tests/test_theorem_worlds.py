"""Exact discrete worlds: the DP optimum, Pandora's box, and the paper's rule (loops and JAX kernel)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascjax import CascjaxError
from cascjax.testing._rule_worlds import dp_gap, rule_value, rule_values
from cascjax.testing._worlds import World, optimal_value, pandora_value, world_nodes

# Small lattices make exact ties (equal scores, equal costs, equal node values) common.
LATTICE = st.integers(-4, 4).map(lambda i: i / 4)
MEAN = st.one_of(LATTICE, st.floats(-2.0, 2.0))
SD = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 2.0))
COST = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0.0, 1.0))
LAM = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]), st.floats(0.0, 3.0))


@st.composite
def worlds(draw, n_models=None, batch=None, lattice=False):
    """A World with fields [M] (``batch`` None) or [batch, M]."""
    m = draw(st.integers(1, 4)) if n_models is None else n_models
    shape = (m,) if batch is None else (batch, m)
    size = int(np.prod(shape))
    fields = (LATTICE, st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.sampled_from([0.0, 0.25, 0.5, 1.0])) if lattice \
        else (MEAN, SD, COST)
    return World(*(np.array(draw(st.lists(s, min_size=size, max_size=size))).reshape(shape) for s in fields))


def enumerate_outcomes(world, k):
    """Every joint outcome of the discrete world, [k^M, M] values (by the definition, one row per outcome)."""
    z = world_nodes(k)
    mu, sd = np.asarray(world.mu, float), np.asarray(world.sd, float)
    return np.array([[mu[m] + sd[m] * z[q] for m, q in enumerate(combo)]
                     for combo in itertools.product(range(k), repeat=len(mu))])


def fixed_plans(world, lam, k):
    """{T: E[max_{m ∈ T} X_m] − λ·C(T)} for every non-empty set T: run T, then stop."""
    x = enumerate_outcomes(world, k)
    cost = np.asarray(world.cost, float)
    m = x.shape[1]
    return {t: float(np.mean(np.max(x[:, list(t)], axis=1))) - lam * float(sum(cost[list(t)]))
            for d in range(1, m + 1) for t in itertools.combinations(range(m), d)}


@given(st.integers(1, 12))
def test_nodes_are_standardised_quantiles(k):
    z = world_nodes(k)
    assert z.shape == (k,) and np.all(np.diff(z) > 0)
    assert abs(np.mean(z)) < 1e-15
    assert abs(np.mean(z * z) - 1.0) < 1e-14 if k > 1 else z[0] == 0.0
    np.testing.assert_array_equal(z, -z[::-1])


@given(worlds(), LAM, st.integers(1, 6))
def test_dp_equals_pandora(world, lam, k):
    """Two independent routes to the optimum: dynamic programming and Weitzman's reservation values."""
    assert optimal_value(world, lam, k) == pytest.approx(pandora_value(world, lam, k), abs=1e-9)


@given(worlds(batch=3), st.lists(LAM, min_size=3, max_size=3), st.integers(1, 4))
def test_batches_are_loops_of_single_worlds(batch, lams, k):
    lams = np.array(lams)
    values, first = optimal_value(batch, lams, k, return_first=True)
    rule, rule_first = rule_value(batch, lams, k, return_first=True)
    assert values.shape == first.shape == rule.shape == rule_first.shape == (3,)
    np.testing.assert_allclose(pandora_value(batch, lams, k), values, atol=1e-9)
    for i in range(3):
        one = World(*(f[i] for f in batch))
        assert optimal_value(one, lams[i], k, return_first=True) == (values[i], first[i])
        assert rule_value(one, lams[i], k, return_first=True) == (rule[i], rule_first[i])


@given(worlds(), LAM, st.integers(2, 3), st.sampled_from(["min", "max"]), st.booleans(), st.booleans(),
       st.integers(1, 4))
def test_optimum_bounds_the_rule_and_every_fixed_plan(world, lam, k, tie, force_order, greedy, depth):
    m = len(world.mu)
    depth = min(depth, m)
    best, first = optimal_value(world, lam, k, return_first=True)
    plans = fixed_plans(world, lam, k)
    assert best >= max(plans.values()) - 1e-9
    assert 0 <= first < m
    rule = rule_value(world, lam, k, tie, depth, force_order, greedy)
    assert best >= rule - 1e-9
    # The rule is adaptive: never worse than the best fixed plan among the candidates it scores at the start
    # (it only stops when stopping beats every allowed plan; running T*'s first model keeps T* allowed).
    allowed = [t for t in plans if len(t) <= depth and (not greedy or len(t) == 1)]
    assert rule >= max(plans[t] for t in allowed) - 1e-9


THOROUGH = settings.default.max_examples >= 1000
thorough_only = pytest.mark.skipif(not THOROUGH, reason="one more kernel compilation: thorough profile only")


@pytest.mark.parametrize("options", [{"tie": "min"}, pytest.param({"tie": "max"}, marks=thorough_only),
                                     pytest.param({"tie": "min", "max_depth": 2, "force_order": True},
                                                  marks=thorough_only)])
@settings(max_examples=200 if THOROUGH else 2)
@given(data=st.data())
def test_rule_loops_equal_the_jax_kernel(options, data):
    """Fixed shapes (8 worlds of 3 models, 4 nodes: 512 queries) so the kernel compiles once each: in ci one λ
    for all worlds (the shape of tests/test_theorems.py's optimal-policy checks), thorough one λ row per world."""
    batch = data.draw(worlds(n_models=3, batch=8, lattice=data.draw(st.booleans())))
    if options.get("max_depth"):  # per-step λ, [W, D], and the payoff's λ given separately
        lam = np.array(data.draw(st.lists(LAM, min_size=16, max_size=16))).reshape(8, 2)
        price = np.array(data.draw(st.lists(LAM, min_size=8, max_size=8)))
    elif THOROUGH:
        lam, price = np.array(data.draw(st.lists(LAM, min_size=8, max_size=8))), None
    else:
        lam, price = data.draw(LAM), None
    jax_values = rule_values(batch, lam, 4, price=price, **options)
    loop_values = rule_value(batch, lam, 4, price=price, **options)
    np.testing.assert_allclose(jax_values, loop_values, rtol=0, atol=1e-9)
    if price is None:
        assert np.all(dp_gap(batch, lam, 4, **options) >= -1e-9)


def test_one_model():
    world = World(mu=[0.3], sd=[0.7], cost=[0.2])
    for value in (optimal_value(world, 0.5), pandora_value(world, 0.5), rule_value(world, 0.5)):
        assert value == pytest.approx(0.3 - 0.5 * 0.2, abs=1e-12)
    with pytest.raises(CascjaxError, match="M >= 2"):
        rule_values(world, 0.5)


@given(worlds(lattice=True), LAM, st.sampled_from(["min", "max"]))
def test_known_qualities_run_the_single_best_model(world, lam, tie):
    """sd = 0: running a model reveals nothing, so the best plan is the single best mu_m − λ·cost_m."""
    world = world._replace(sd=np.zeros_like(world.sd))
    expected = float(np.max(world.mu - lam * world.cost))
    assert optimal_value(world, lam) == pytest.approx(expected, abs=1e-12)
    assert pandora_value(world, lam) == pytest.approx(expected, abs=1e-12)
    assert rule_value(world, lam, tie=tie) == pytest.approx(expected, abs=1e-12)


@given(worlds(), st.integers(1, 4), st.sampled_from(["min", "max"]))
def test_free_models_are_all_worth_running(world, k, tie):
    """λ = 0: the DP (and the rule, which only stops when no unrun model can beat max x_R) earns E[max_m X_m]."""
    expected = float(np.mean(np.max(enumerate_outcomes(world, k), axis=1)))
    assert optimal_value(world, 0.0, k) == pytest.approx(expected, abs=1e-12)
    assert rule_value(world, 0.0, k, tie=tie) == pytest.approx(expected, abs=1e-12)


def test_the_rule_can_be_strictly_suboptimal():
    # Two nodes (±1); costs ascending in index, as in the paper. X_0 ∈ {−0.75, 1.25}, cost 0.5;
    # X_1 ∈ {0.5, 1.5}, cost 1; λ = 1. The rule scores plans as if run to the end: {0}: −0.25, {1}: 0,
    # {0, 1}: 1.1875 − 1.5 = −0.3125; it runs model 1 and stops (value 0). The optimum runs model 0 and
    # runs model 1 only if X_0 = −0.75: 0.5·1.25 + 0.5·(1 − 1) − 0.5 = 0.125.
    world = World(mu=[0.25, 1.0], sd=[1.0, 0.5], cost=[0.5, 1.0])
    assert optimal_value(world, 1.0, 2, return_first=True) == pytest.approx((0.125, 0), abs=1e-12)
    assert pandora_value(world, 1.0, 2) == pytest.approx(0.125, abs=1e-12)
    for tie in ("min", "max"):
        value, first = rule_value(world, 1.0, 2, tie, return_first=True)
        assert first == 1 and value == pytest.approx(0.0, abs=1e-12)
        assert optimal_value(world, 1.0, 2) - value > 1e-6


@pytest.mark.parametrize("world, message", [
    (World([0.0, 1.0], [1.0, -0.5], [0.1, 0.2]), "field sd must be >= 0"),
    (World([0.0, 1.0], [1.0, 0.5], [0.1, -0.2]), "field cost must be >= 0"),
    (World([0.0, 1.0], [1.0, 0.5], [0.1]), "field cost has shape"),
    (World([0.0, np.nan], [1.0, 0.5], [0.1, 0.2]), "field mu must be finite"),
    (World(np.zeros(5), np.ones(5), np.ones(5)), "M = 5"),
    (World(np.zeros((2, 2, 2)), np.ones((2, 2, 2)), np.ones((2, 2, 2))), r"field mu must be \[M\] or \[W, M\]"),
    (World(["a", "b"], [1.0, 0.5], [0.1, 0.2]), "field mu must be numeric"),
])
def test_bad_worlds_are_refused(world, message):
    with pytest.raises(CascjaxError, match=message):
        world.validate()
    for fn in (optimal_value, pandora_value, rule_value):
        with pytest.raises(CascjaxError, match=message):
            fn(world, 0.5)


def test_bad_options_are_refused():
    world = World([0.0, 1.0], [1.0, 0.5], [0.1, 0.2])
    with pytest.raises(CascjaxError, match="finite and >= 0"):
        optimal_value(world, -1.0)
    with pytest.raises(CascjaxError, match="must be a scalar"):
        pandora_value(world, [0.5, 0.5])
    with pytest.raises(CascjaxError, match="nodes"):
        optimal_value(world, 0.5, nodes=0)
    with pytest.raises(CascjaxError, match="tie rule"):
        rule_value(world, 0.5, tie="middle")
    with pytest.raises(CascjaxError, match="max_depth"):
        rule_value(world, 0.5, max_depth=3)
    with pytest.raises(CascjaxError, match=r"\[D\] = \[2\]"):
        rule_value(world, [0.5, 0.5, 0.5])
    with pytest.raises(CascjaxError, match="price="):
        rule_value(world, [0.5, 1.0])
    assert rule_value(world, [0.5, 0.5]) == rule_value(world, 0.5)
