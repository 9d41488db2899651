"""State-dependent estimates (StateEstimates, issue 20): random tables against the NumPy loop oracle for every
strategy, ``Estimates.to_states()`` bit for bit against the separable form (sweeps, exact paths, fit), the
covariance fit on a table, and bad tables."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax._supermodels import normal_points

from . import oracle
from .test_cascade_routing import _assert_matches
from .test_estimates import random_covariances

# Fixed shapes keep the compilations few: each (strategy, depth, options, tie) compiles once.
N_QUERIES, N_LAMBDAS, N_MODELS = 5, 4, 3
fewer = settings(max_examples=max(3, settings.default.max_examples // 10))


@pytest.fixture(autouse=True)
def _fresh_compilation_cache():
    jax.clear_caches()


def _grid(draw, shape, lo, hi, denom):
    """Values on a coarse grid (ties on purpose)."""
    size = int(np.prod(shape))
    ints = st.integers(int(lo * denom), int(hi * denom))
    return np.array(draw(st.lists(ints, min_size=size, max_size=size)), float).reshape(shape) / denom


@st.composite
def tables(draw, deviation=None):
    """A dataset and a random table over information states — not separable: every row of every query has
    its own values."""
    n, m = N_QUERIES, N_MODELS
    shape = (n, 1 << m, m)
    quality, cost = _grid(draw, (n, m), 0, 1, 4), _grid(draw, (n, m), 0, 1, 8)
    deviation = draw(st.booleans()) if deviation is None else deviation
    est = cascjax.StateEstimates(jnp.asarray(_grid(draw, shape, 0, 1, 4)), jnp.asarray(_grid(draw, shape, 0, 1, 8)),
                                 jnp.asarray(_grid(draw, shape, 0, 1, 4)) if deviation else None)
    return cascjax.Dataset.from_arrays(quality, cost, sort=False), est


def _lambdas(draw, depth, per_step):
    dyadic = st.integers(0, 16).map(lambda v: v / 8)
    size = N_LAMBDAS * (depth if per_step else 1)
    lam = np.array(draw(st.lists(dyadic, min_size=size, max_size=size)))
    return lam.reshape(N_LAMBDAS, depth) if per_step else lam


@pytest.mark.parametrize("tie", ["min", "max"])
@pytest.mark.parametrize("strategy", ["routing", "threshold_cascade", "cascade", "cascade_routing"])
@given(tables(), st.data())
@fewer
def test_random_tables_match_the_loop_oracle(strategy, tie, case, data):
    """Every strategy on a random state table equals the loop (which reads row R of the table in state R):
    ties on purpose, σ = 0 and σ > 0 (the same shared points), scalar and per-step λ, cascade routing's
    options."""
    ds, est = case
    depth = 1 if strategy == "routing" else data.draw(st.integers(1, N_MODELS))
    lam = _lambdas(data.draw, depth, strategy != "routing" and data.draw(st.booleans()))
    k = data.draw(st.integers(1, 3))
    options = {}
    if strategy == "cascade_routing":
        options = dict(force_order=data.draw(st.booleans()), greedy=data.draw(st.booleans()),
                       prune=data.draw(st.booleans()))
    kw = {} if strategy == "routing" else dict(max_depth=depth)
    if strategy in ("cascade", "cascade_routing"):
        kw["samples"] = k
    curve = cascjax.sweep(ds, est, lam, strategy, tie=tie, **kw, **options)
    options.pop("prune", None)  # pruning never changes a decision: the oracle has none
    z = np.asarray(normal_points(k, ds.n_models))
    expected = oracle.reference_sweep(ds.quality, ds.cost, oracle.estimates_row(est), lam, strategy, tie=tie,
                                      max_depth=depth, z=z, **options)
    _assert_matches(curve, expected)


@st.composite
def separable(draw):
    n, m = N_QUERIES, N_MODELS
    arr = lambda lo, hi, d: _grid(draw, (n, m), lo, hi, d)  # noqa: E731
    est = cascjax.Estimates(*(jnp.asarray(a) for a in (arr(0, 1, 4), arr(0, 1, 4), arr(0, 1, 4),
                                                       arr(0, 0.5, 4), arr(0, 1, 8), arr(0, 1, 8))))
    return cascjax.Dataset.from_arrays(arr(0, 1, 4), arr(0, 1, 8), sort=False), est


def _same(a, b):
    for field, x, y in zip(a._fields, a, b):
        if x is not None or y is not None:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=field)


@pytest.mark.parametrize("tie", ["min", "max"])
@pytest.mark.parametrize("strategy", ["routing", "threshold_cascade", "cascade", "cascade_routing"])
@given(separable(), st.data())
@fewer
def test_to_states_is_the_separable_form_bit_for_bit(strategy, tie, case, data):
    """``Estimates.to_states()`` decides exactly as the separable estimates: every field of the curve and the
    per-query choices and costs, with independent σ or a covariance per run-pattern; the grids too."""
    ds, est = case
    if strategy in ("cascade", "cascade_routing") and data.draw(st.booleans()):
        est = est._replace(covariance=jnp.asarray(random_covariances(data.draw(st.integers(0, 2**31)),
                                                                     ds.n_models)))
    table = est.to_states()
    if strategy == "threshold_cascade":
        grid, other = cascjax.threshold_grid(est, 8), cascjax.threshold_grid(table, 8)
    else:
        grid, other = cascjax.lambda_grid(est, 8), cascjax.lambda_grid(table, 8)
    np.testing.assert_array_equal(grid, other)
    kw = {} if strategy == "routing" else dict(max_depth=data.draw(st.integers(1, N_MODELS)))
    if strategy in ("cascade", "cascade_routing"):
        kw["samples"] = data.draw(st.integers(1, 4))
    mid = len(grid) // 2
    for lam in (grid[:N_LAMBDAS], grid[mid:mid + 1]):  # several λ and one (cascade routing's one-λ route)
        _same(cascjax.sweep(ds, est, lam, strategy, tie=tie, return_choices=True, **kw),
              cascjax.sweep(ds, table, lam, strategy, tie=tie, return_choices=True, **kw))


def test_exact_paths_fit_and_evaluate_take_tables():
    """The exact paths and fit/evaluate give the separable form's bits on its table."""
    ds = cascjax.synthetic(0, 40, 3)
    est = cascjax.noisy_estimates(ds, jax.random.key(1), "medium")
    table = est.to_states()
    _same(cascjax.routing_path(ds, est), cascjax.routing_path(ds, table))
    _same(cascjax.cascade_path(ds, est, samples=8), cascjax.cascade_path(ds, table, samples=8))
    _same(cascjax.cascade_routing_path(ds, est, samples=8, max_depth=3),
          cascjax.cascade_routing_path(ds, table, samples=8, max_depth=3))
    budgets = np.asarray([1.5, 3.0]) * float(np.mean(ds.cost))
    for strategy in ("routing", "threshold_cascade", "cascade", "cascade_routing"):
        opts = dict(samples=4, max_depth=2) if strategy in ("cascade", "cascade_routing") else {}
        a, b = cascjax.fit(ds, est, budgets, strategy, **opts), cascjax.fit(ds, table, budgets, strategy, **opts)
        np.testing.assert_array_equal(a.lo, b.lo)
        np.testing.assert_array_equal(a.gamma, b.gamma)
        ea, eb = cascjax.evaluate(a, ds, est), cascjax.evaluate(b, ds, table)
        np.testing.assert_array_equal(np.asarray(ea.quality), np.asarray(eb.quality))
        np.testing.assert_array_equal(np.asarray(ea.cost), np.asarray(eb.cost))


def test_agreement_changes_the_decision():
    """What a table can say and the separable form cannot: model 1's ex-ante estimate depends on model 0's
    answer. Where it agrees (row {0} says model 1 is likely right too) the cascade stops after model 0;
    where it disagrees it runs model 1."""
    q = np.array([[1.0, 1.0], [0.0, 1.0]])  # query 0: both right; query 1: only model 1
    ds = cascjax.Dataset.from_arrays(q, [[1.0, 4.0]] * 2, sort=False)
    mu = np.array([[[0.5, 0.6], [0.9, 0.9], [0.5, 0.9], [0.9, 0.9]],   # after model 0: 0.9 / 0.9 → stop
                   [[0.5, 0.6], [0.2, 0.95], [0.5, 0.95], [0.2, 0.95]]])  # after model 0: 0.2 / 0.95 → go on
    cost = np.broadcast_to(np.array([1.0, 4.0]), (2, 4, 2))
    est = cascjax.StateEstimates(jnp.asarray(mu), jnp.asarray(cost))
    curve = cascjax.sweep(ds, est, [[0.1, 0.1]], "cascade", max_depth=2, return_choices=True)
    assert curve.query_cost.tolist() == [[1.0, 5.0]] and curve.choice.tolist() == [[0, 1]]


def test_fit_covariances_on_a_table():
    """Σ(R) of a table: the covariance over queries of row R minus the last row (every model run); on
    ``to_states()`` it is the separable fit's."""
    ds = cascjax.synthetic(1, 40, 3)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    a = cascjax.fit_covariances(est).covariance
    b = cascjax.fit_covariances(est.to_states()).covariance
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-15)
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(40, 8, 3))
    table = cascjax.StateEstimates(jnp.asarray(mu), jnp.ones((40, 8, 3)))
    got = np.asarray(cascjax.fit_covariances(table, queries=np.arange(30)).covariance)
    for r in range(8):
        np.testing.assert_allclose(got[r], np.cov((mu[:30, r] - mu[:30, 7]).T), rtol=1e-10, atol=1e-12)


def test_take_keeps_rows():
    ds = cascjax.synthetic(0, 10, 3)
    table = cascjax.perfect_estimates(ds).to_states()
    part = table.take([4, 1])
    assert part.quality.shape == (2, 8, 3) and part.sd.shape == (2, 8, 3)
    np.testing.assert_array_equal(np.asarray(part.cost), np.asarray(table.cost)[[4, 1]])
    assert table.take(np.arange(10) < 3).quality.shape[0] == 3


def test_bad_tables():
    ds = cascjax.synthetic(0, 6, 3)
    good = cascjax.perfect_estimates(ds).to_states()
    lam = [0.0, 1.0]
    cases = [
        (good._replace(quality=good.quality[:, :4]), r"StateEstimates.quality must have shape \[N, 2\^M, M\]"),
        (good._replace(cost=good.cost[:5]), r"StateEstimates.cost must have shape"),
        (good._replace(quality=good.quality.at[2, 5, 1].set(np.nan)),
         r"StateEstimates.quality must be finite: query 2, state 5, model 'm01'"),
        (good._replace(sd=good.sd.at[0, 3, 2].set(-0.5)), r"StateEstimates.sd must be a finite number >= 0"),
        (good._replace(covariance=jnp.zeros((4, 3, 3))), r"covariance must have shape"),
    ]
    for bad, match in cases:
        with pytest.raises(cascjax.CascjaxError, match=match):
            cascjax.sweep(ds, bad, lam, "cascade")
    with pytest.raises(cascjax.CascjaxError, match="Estimates or cascjax.StateEstimates"):
        cascjax.sweep(ds, good.quality, lam)
    wide = cascjax.synthetic(0, 2, 17)
    with pytest.raises(cascjax.CascjaxError, match="at most 16 models"):
        cascjax.perfect_estimates(wide).to_states()


@given(tables(deviation=False), st.data())
@settings(max_examples=max(3, settings.default.max_examples // 20), deadline=None)
def test_the_theorem_properties_hold_on_state_tables(case, data):
    """The suite's properties (cascjax.testing) on random, non-separable state tables: Theorem 1 on row ∅, the
    pruning lemma against enumeration, depth one = routing, prefixes = the cascade, fitted budgets, and jit /
    vmap / sharding transforms."""
    import cascjax.testing as ct

    ds, est = case
    instance = ct.Instance(ds, est)
    lam = _lambdas(data.draw, N_MODELS, False)
    ct.check_pruning(instance, lam, samples=2)
    ct.check_depth_one(instance, lam)
    ct.check_prefix(instance, lam, samples=2)
    mean_cost = float(np.mean(np.asarray(ds.cost)))
    ct.check_theorem1(instance, [0.5 * mean_cost, mean_cost, 2 * mean_cost])
    ct.check_fit_budget(instance, [mean_cost, 2 * mean_cost], "cascade_routing", samples=2, max_depth=2)
    ct.check_transforms(instance, lam, "cascade_routing", samples=2, max_depth=2, eager=False)
    ct.check_sharded(instance, lam, "cascade", samples=2)


def test_the_properties_catch_a_kernel_that_ignores_the_state(broken):
    """A cascade-routing kernel that reads row ∅ of the table in every state fails the pruning property (the
    loop reads row R), so the property is not blind to the state."""
    import cascjax.testing as ct
    from cascjax import _cascade_routing, _views

    rng = np.random.default_rng(0)
    n, m = 5, 3
    ds = cascjax.Dataset.from_arrays(rng.integers(0, 5, (n, m)) / 4, rng.integers(1, 9, (n, m)) / 8, sort=False)
    est = cascjax.StateEstimates(jnp.asarray(rng.integers(0, 5, (n, 8, m)) / 4),
                                 jnp.asarray(rng.integers(1, 9, (n, 8, m)) / 8))
    lam = [0.0, 0.25, 0.5, 1.0]
    ct.check_pruning(ct.Instance(ds, est), lam, samples=2)
    broken(_cascade_routing, "visible", lambda e, rows, states: _views.visible(e, rows, states * 0))
    with pytest.raises(ct.PropertyFailed, match=r"\[pruning\]"):
        ct.check_pruning(ct.Instance(ds, est), lam, samples=2)
