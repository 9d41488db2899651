"""The paper's optimal cascade against the section-4 loop oracle (same shared normal points)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax._compile import programs
from cascjax._supermodels import normal_points

from . import oracle
from .test_estimates import random_covariances

#: Examples for the costlier properties (each example runs the oracle and several sweeps): a third of the profile.
fewer = settings(max_examples=max(6, settings.default.max_examples // 3))


@st.composite
def cases(draw):
    n, m = draw(st.integers(1, 6)), draw(st.integers(2, 4))

    def arr(lo, hi, denom):
        ints = st.integers(int(lo * denom), int(hi * denom))
        return np.array(draw(st.lists(ints, min_size=n * m, max_size=n * m)), float).reshape(n, m) / denom

    quality, cost = arr(0, 1, 4), arr(0, 1, 8)
    deviation = draw(st.booleans())
    sd = arr(0, 1, 4) if deviation else np.zeros((n, m))
    est = cascjax.Estimates(*(jnp.asarray(a) for a in (arr(0, 1, 4), arr(0, 1, 4), sd, np.zeros((n, m)),
                                                       arr(0, 1, 8), cost)))
    depth = draw(st.integers(1, m))
    k = draw(st.integers(1, 5))
    dyadic = st.integers(0, 16).map(lambda v: v / 8)
    if draw(st.booleans()):
        lam = np.array(draw(st.lists(dyadic, min_size=1, max_size=6)))
    else:
        rows = draw(st.integers(1, 4))
        lam = np.array(draw(st.lists(dyadic, min_size=rows * depth, max_size=rows * depth))).reshape(rows, depth)
    return cascjax.Dataset.from_arrays(quality, cost, sort=False), est, depth, k, lam


def _oracle(ds, est, lam, depth, k, tie, no_deviation=False):
    loop_est = dict(mu_ante=est.quality_ante, mu_post=est.quality_post, sd_ante=est.sd_ante,
                    sd_post=est.sd_post, c_ante=est.cost_ante, c_post=est.cost_post)
    z = np.asarray(normal_points(k, ds.n_models))
    factor = None if est.covariance is None else np.asarray(cascjax.covariance_factors(est.covariance))
    return oracle.reference_sweep(ds.quality, ds.cost, loop_est, lam, "cascade", tie=tie, max_depth=depth, z=z,
                           no_deviation=no_deviation, factor=factor)


@pytest.mark.parametrize("tie", ["min", "max"])
@given(cases(), st.integers(0, 2**31), st.sampled_from([None, False, True]))
def test_matches_the_loop_oracle(tie, case, seed, correlated):
    """Independent σ, or a covariance per run-pattern (random PSD; ``True``: some singular), where the oracle
    draws L(R) z in state R."""
    ds, est, depth, k, lam = case
    if correlated is not None:
        est = est._replace(covariance=jnp.asarray(random_covariances(seed, ds.n_models, correlated)))
    curve = cascjax.sweep(ds, est, lam, "cascade", tie=tie, max_depth=depth, samples=k)
    c, q, ran, answered = _oracle(ds, est, lam, depth, k, tie)
    np.testing.assert_allclose(curve.cost, c, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.quality, q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.ran, ran, rtol=1e-12)
    np.testing.assert_allclose(curve.answered, answered, atol=1e-12)
    if correlated is not None:  # no deviation ignores the covariance too
        no_dev = cascjax.sweep(ds, est, lam, "cascade", tie=tie, max_depth=depth, samples=k, no_deviation=True)
        plain = cascjax.sweep(ds, est._replace(covariance=None), lam, "cascade", tie=tie, max_depth=depth,
                              samples=k, no_deviation=True)
        np.testing.assert_array_equal(no_dev.cost, plain.cost)


def test_diagonal_covariance_is_independent_sigma():
    """Σ(R) = diag(σ²) over the models not run gives bit-identical decisions to the independent σ."""
    ds = cascjax.load_example().take(np.arange(200))
    est = cascjax.noisy_estimates(ds, jax.random.key(1), "medium")  # σ per model, 0 once run
    m = ds.n_models
    free = (np.arange(1 << m)[:, None] >> np.arange(m)) & 1 == 0
    cov = np.diag(np.asarray(est.sd_ante)[0] ** 2)[None] * (free[:, :, None] & free[:, None, :])
    lam = cascjax.lambda_grid(est, 16)
    for strategy, depth in (("cascade", None), ("cascade_routing", 3)):
        a = cascjax.sweep(ds, est, lam, strategy, max_depth=depth, return_choices=True)
        b = cascjax.sweep(ds, est._replace(covariance=jnp.asarray(cov)), lam, strategy, max_depth=depth,
                          return_choices=True)
        np.testing.assert_array_equal(a.choice, b.choice)
        np.testing.assert_array_equal(a.cost, b.cost)


@given(cases())
def test_no_deviation_is_zero_sigma(case):
    ds, est, depth, k, lam = case
    a = cascjax.sweep(ds, est, lam, "cascade", max_depth=depth, samples=k, no_deviation=True)
    c, q, _, _ = _oracle(ds, est, lam, depth, k, "min", no_deviation=True)
    np.testing.assert_allclose(a.cost, c, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.quality, q, rtol=1e-12, atol=1e-15)
    zero = est._replace(sd_ante=jnp.zeros_like(est.sd_ante))
    b = cascjax.sweep(ds, zero, lam, "cascade", max_depth=depth, samples=k)
    np.testing.assert_array_equal(a.cost, b.cost)


def test_the_example_cascade():
    """Monotone in λ under perfect estimates; per-step constants equal the scalar; one model at huge λ."""
    ds = cascjax.load_example()
    est = cascjax.perfect_estimates(ds)
    lam = cascjax.lambda_grid(est, 32)
    curve = cascjax.sweep(ds, est, lam, "cascade", return_choices=True)
    assert np.all(np.diff(np.asarray(curve.ran)) <= 1e-6)
    np.testing.assert_allclose(curve.ran[-1], 1.0)
    per_step = cascjax.sweep(ds, est, np.repeat(lam[:, None], 6, axis=1), "cascade")
    np.testing.assert_array_equal(curve.cost, per_step.cost)
    np.testing.assert_array_equal(curve.quality, per_step.quality)
    assert curve.choice.shape == (32, ds.n_queries)


def test_jit_equals_eager_and_no_recompilation():
    ds = cascjax.synthetic(seed=7, n_queries=40, n_models=4)
    est = cascjax.noisy_estimates(ds, jax.random.key(2), "medium")
    lam = cascjax.lambda_grid(est, 8)
    jitted = cascjax.sweep(ds, est, lam, "cascade", samples=8, return_choices=True)
    with jax.disable_jit():
        eager = cascjax.sweep(ds, est, lam, "cascade", samples=8, return_choices=True)
    np.testing.assert_array_equal(jitted.choice, eager.choice)
    np.testing.assert_allclose(jitted.cost, eager.cost, rtol=1e-12)
    cascjax.sweep(ds, est, lam, "cascade", samples=8, return_choices=True)  # (the eager run may clear caches)
    before = programs()["total"]
    cascjax.sweep(ds, est, lam * 1.5, "cascade", samples=8, return_choices=True)
    assert programs()["total"] == before  # no new program of any kind


def test_float32_and_float64_agree_on_the_example():
    ex = cascjax.load_example()
    est = cascjax.noisy_estimates(ex, jax.random.key(0), "low")
    ds, ds64 = (cascjax.Dataset.from_arrays(np.asarray(ex.quality, t), np.asarray(ex.cost, t), models=ex.models,
                                            sort=False) for t in (np.float32, np.float64))
    est32, est64 = (jax.tree.map(lambda a: jnp.asarray(a, t), est) for t in (jnp.float32, jnp.float64))
    lam = cascjax.lambda_grid(est, 32)
    a = cascjax.sweep(ds, est32, lam, "cascade")
    b = cascjax.sweep(ds64, est64, lam, "cascade")
    assert a.cost.dtype == jnp.float32 and b.cost.dtype == jnp.float64
    assert abs(cascjax.auc(a, ds) - cascjax.auc(b, ds64)) < 1e-3


@pytest.mark.parametrize("kwargs,message", [
    (dict(lambdas=[0.5, -1.0]), "non-negative"),
    (dict(lambdas=[0.5, np.nan]), "finite"),
    (dict(lambdas=np.zeros((2, 3))), r"\[L\] or \[L, D\] with D = max_depth = 4; got shape \(2, 3\)"),
    (dict(lambdas=np.zeros((2, 2, 4))), r"got shape \(2, 2, 4\)"),
    (dict(lambdas=[0.5], max_depth=7), "max_depth must be an integer in 1..4"),
    (dict(lambdas=[0.5], samples=0), "samples"),
    (dict(lambdas=[0.5], tie="mid"), "unknown tie rule"),
])
def test_bad_input(kwargs, message):
    ds = cascjax.synthetic(seed=1, n_queries=10, n_models=4)
    with pytest.raises(cascjax.CascjaxError, match=message):
        cascjax.sweep(ds, cascjax.perfect_estimates(ds), strategy="cascade", **kwargs)


# -- the exact λ-path ------------------------------------------------------------------------------------------

@given(cases(), st.integers(0, 2**31), st.booleans(), st.booleans())
@fewer
def test_exact_path_matches_the_oracle_between_and_the_sweep_at_its_vertices(case, seed, correlated, negative):
    """Between vertices the path is the cascade (loop oracle); at a vertex λ_k MIN realises vertex k and MAX
    vertex k − 1 (the tolerant sweep agrees: there the tied choices are exactly tied). Negative cost
    estimates (calibrated estimates can be) make a step's stop set an interval, not a ray."""
    ds, est, depth, k, _ = case
    if negative:
        est = est._replace(cost_ante=est.cost_ante - 0.25)
    if correlated:
        est = est._replace(covariance=jnp.asarray(random_covariances(seed, ds.n_models)))
    path = cascjax.cascade_path(ds, est, max_depth=depth, samples=k)
    lam = np.asarray(path.lam)
    assert lam[0] == 0 and np.all(np.diff(lam[1:]) > 0)
    between = np.concatenate([(lam[:-1] + lam[1:]) / 2, [2 * lam[-1] + 1]])
    between = between[between > 0]
    c, q, ran, _ = _oracle(ds, est, between, depth, k, "min")
    at = cascjax.path_at(path, between, "min")
    np.testing.assert_allclose(at.cost, c, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(at.quality, q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(at.ran, ran, rtol=1e-12)
    for tie in ("min", "max"):
        grid = cascjax.sweep(ds, est, lam, "cascade", tie=tie, max_depth=depth, samples=k)
        at = cascjax.path_at(path, lam, tie)
        np.testing.assert_allclose(at.cost, grid.cost, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(at.quality, grid.quality, rtol=1e-12, atol=1e-15)
    if depth == 1:
        assert lam.shape == (1,) and float(path.ran[0]) == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(cases(), st.integers(0, 2**31), st.booleans(), st.sampled_from(["min", "max"]),
       st.sampled_from([None, 0.0, 1e-3]))
@fewer
def test_the_lambda_band_sweep_makes_path_ats_decisions(dtype, case, seed, negative, tie, rtol):
    """``tie_band="lambda"``: the cascade stops by path_at's rule on the path's own stop intervals, so the sweep
    equals ``path_at(cascade_path)`` at the breakpoints, at the edges of their tie band (λ·(1 ± rtol) = b, and
    one ulp either side) and between them, for both tie rules, any tolerance, float32 and float64 (up to how
    the two sum; the ``ran`` counts exactly)."""
    ds, est, depth, k, _ = case
    ds = cascjax.Dataset.from_arrays(np.asarray(ds.quality, dtype), np.asarray(ds.cost, dtype), sort=False)
    est = cascjax.Estimates(*(jnp.asarray(np.asarray(a), dtype) for a in est[:6]))
    if negative:
        est = est._replace(cost_ante=est.cost_ante - dtype(0.25))
    path = cascjax.cascade_path(ds, est, max_depth=depth, samples=k)
    breaks = np.asarray(path.lam)[1:]
    lam = oracle.band_grid(breaks, dtype, rtol)
    at = cascjax.path_at(path, lam, tie, tie_rtol=rtol)
    grid = cascjax.sweep(ds, est, lam, "cascade", tie=tie, max_depth=depth, samples=k, tie_rtol=rtol,
                         tie_band="lambda")
    close = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(np.asarray(grid.ran), np.asarray(at.ran), rtol=close)
    np.testing.assert_allclose(np.asarray(grid.quality), np.asarray(at.quality), rtol=close, atol=close)
    np.testing.assert_allclose(np.asarray(grid.cost), np.asarray(at.cost), rtol=close,
                               atol=close * float(np.max(np.abs(ds.cost))))


def test_exact_path_on_the_example():
    """The path evaluated on a 512-point grid is the grid sweep (noisy estimates, independent and correlated);
    the path's AUC is at least the grid's up to the grid's interpolation."""
    ds = cascjax.load_example().take(np.arange(3000))
    base = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    for est in (base, cascjax.fit_covariances(base)):
        path = cascjax.cascade_path(ds, est, max_depth=4)
        lam = cascjax.lambda_grid(est, 512)
        for tie in ("min", "max"):
            grid = cascjax.sweep(ds, est, lam, "cascade", tie=tie, max_depth=4)
            at = cascjax.path_at(path, lam, tie)
            np.testing.assert_allclose(at.cost, grid.cost, rtol=1e-12)
            np.testing.assert_allclose(at.quality, grid.quality, rtol=1e-12)
        assert np.all((np.asarray(path.ran) >= 1) & (np.asarray(path.ran) <= 4))
        beyond = cascjax.sweep(ds, est, [2 * float(path.lam[-1])], "cascade", max_depth=4)
        np.testing.assert_allclose(path.ran[-1], beyond.ran[0], rtol=1e-12)  # (> 1: some ĉ are negative)
        mix = cascjax.at_budget(path, [float(np.mean(path.cost))])  # Theorem 1 on the cascade's vertices
        np.testing.assert_allclose(mix.cost, np.mean(path.cost), rtol=1e-9)


def test_exact_path_bad_input():
    ds = cascjax.synthetic(seed=1, n_queries=10, n_models=4)
    est = cascjax.perfect_estimates(ds)
    for kwargs, message in [(dict(max_depth=7), "max_depth must be an integer in 1..4"),
                            (dict(samples=0), "samples"),
                            (dict(est=est._replace(cost_ante=est.cost_ante[:3])), "cost_ante has shape")]:
        with pytest.raises(cascjax.CascjaxError, match=message):
            cascjax.cascade_path(ds, kwargs.pop("est", est), **kwargs)


def test_caller_given_points_replace_the_seeded_ones():
    """``samples`` as a [K, M] array: the seeded points given explicitly reproduce ``samples=K``; other points
    change Q; bad arrays are refused with the expected shape named."""
    ds = cascjax.synthetic(seed=5, n_queries=40, n_models=3)
    est = cascjax.noisy_estimates(ds, jax.random.key(2), "low")
    lam = [0.0, 100.0, 1000.0]
    seeded = cascjax.sweep(ds, est, lam, "cascade", samples=8, return_choices=True)
    given = cascjax.sweep(ds, est, lam, "cascade", samples=np.asarray(normal_points(8, 3)), return_choices=True)
    np.testing.assert_array_equal(given.choice, seeded.choice)
    np.testing.assert_array_equal(given.cost, seeded.cost)
    wide = cascjax.cascade_path(ds, est, samples=np.asarray(normal_points(8, 3)) * 50)
    assert not np.array_equal(np.asarray(wide.cost), np.asarray(cascjax.cascade_path(ds, est, samples=8).cost))
    for bad, message in [(np.zeros((4, 2)), r"\[K, M\] array of points with M = 3; got shape \(4, 2\)"),
                         (np.zeros((0, 3)), r"got shape \(0, 3\)"), (True, "got True"),
                         (np.full((2, 3), np.nan), "must be finite")]:
        with pytest.raises(cascjax.CascjaxError, match=message):
            cascjax.sweep(ds, est, lam, "cascade", samples=bad)


# -- the event route of the grid sweep -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(cases(), st.data())
@fewer
def test_the_event_route_equals_the_direct_grid_to_the_bit(dtype, case, data):
    """Cascade sweeps of several λ go through each step's stop interval (cascjax._cascade_events): on random
    instances with ties (dyadic estimates, λ at and beside the exact path's breakpoints, where the tie band
    decides), constant and per-step λ, both tie rules, tolerances from 0 to large, negative cost estimates,
    correlated σ, several query chunks and a room for the rule's pairs that must grow, every decision and
    every sum is the direct grid's, bit for bit."""
    from cascjax import _cascade_events, _sweep

    ds, est, depth, k, lam = case
    if data.draw(st.booleans()):
        est = est._replace(cost_ante=est.cost_ante - 0.25)
    if data.draw(st.booleans()):
        est = est._replace(covariance=jnp.asarray(random_covariances(data.draw(st.integers(0, 99)), ds.n_models)))
    ds = cascjax.Dataset.from_arrays(np.asarray(ds.quality, dtype), np.asarray(ds.cost, dtype), sort=False)
    est = jax.tree.map(lambda a: jnp.asarray(a, dtype), est)
    breaks = np.asarray(cascjax.cascade_path(ds, est, max_depth=depth, samples=k).lam, np.float64)
    near = np.concatenate([breaks, breaks * (1 + 1e-7), breaks * (1 - 1e-7), (breaks[1:] + breaks[:-1]) / 2])
    if lam.ndim == 1:
        lam = np.concatenate([lam, near])
    else:
        lam = np.concatenate([lam, np.repeat(near[:, None], depth, 1)])
        lam[:, 1:] = np.asarray(data.draw(st.permutations(list(lam[:, 1:].ravel())))).reshape(lam.shape[0], -1)
    kw = dict(strategy="cascade", tie=data.draw(st.sampled_from(["min", "max"])), max_depth=depth, samples=k,
              tie_rtol=data.draw(st.sampled_from([None, 0.0, 1e-3])), return_choices=True,
              chunk_size=data.draw(st.sampled_from([None, 1, 2])))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_sweep, "CASCADE_EVENT_LAMBDAS", 10**9)
        direct = cascjax.sweep(ds, est, lam, **kw)
        mp.setattr(_sweep, "CASCADE_EVENT_LAMBDAS", 1)
        mp.setattr(_cascade_events, "FIRST_ROOM", 1)
        mp.setattr(_cascade_events, "_ROOMS", {})
        events = cascjax.sweep(ds, est, lam, **kw)
    for field in ("lam", "cost", "quality", "answered", "ran", "choice", "query_cost"):
        np.testing.assert_array_equal(np.asarray(getattr(events, field)), np.asarray(getattr(direct, field)), field)


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 40), st.integers(1, 7), st.integers(1, 20), st.booleans())
def test_the_table_by_prefixes_is_the_per_query_table(seed, n, m, k, x64):
    """``_cascade._independent_tables`` (prefix by prefix under a scan, models leading) against vmapping the
    per-query ``_prefix_values`` it replaced, on random (not dyadic) estimates with some deviations zero, in
    float32 and float64: the same C bits and the same maxima; each Monte-Carlo mean sums the same values in
    an order XLA picks per layout, so Q agrees to a few ulps (measured: equal bits at K 1, 2, 16 and 100 on
    synthetic data of 300 to 12,020 queries; 82 of 320 entries apart, by at most 2.4e-7, at N 20, M 4, K 13)."""
    from cascjax import _cascade
    from cascjax._views import prefix_view

    rng = np.random.default_rng(seed)
    dtype = jnp.float64 if x64 else jnp.float32
    fields = [rng.random((n, m)) for _ in range(6)]
    fields[2] = np.where(rng.random((n, m)) < 0.3, 0.0, fields[2])  # σ ante: some models deviate not at all
    est = tuple(jnp.asarray(a, dtype) for a in fields)
    depth = int(rng.integers(1, m + 1))
    z = normal_points(k, m, dtype=dtype)
    q = jnp.zeros((n, m), dtype)

    @jax.jit
    def per_query(est, z):
        mu, sd, c_hat = prefix_view(est, depth)
        return jax.vmap(_cascade._query_tables, in_axes=(0, 0, 0, None, None, None))(
            mu[:, :depth], sd[:, :depth], c_hat[:, :depth], z, None, depth)

    q_got, c_got = jax.jit(lambda est, z: _cascade._tables(q, q, est, z, None, depth)[:2])(est, z)
    q_want, c_want = per_query(est, z)
    np.testing.assert_array_equal(np.asarray(c_got), np.asarray(c_want))
    eps = float(jnp.finfo(dtype).eps)
    np.testing.assert_allclose(np.asarray(q_got), np.asarray(q_want), rtol=4 * eps, atol=4 * eps)
