"""The paper's optimal cascade against the section-4 loop oracle (same shared normal points)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import cascjax
from cascjax._cascade import cascade_sweep
from cascjax._supermodels import normal_points

from . import oracle


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
    return oracle.strategy(ds.quality, ds.cost, loop_est, lam, "cascade", tie=tie, max_depth=depth, z=z,
                           no_deviation=no_deviation)


@pytest.mark.parametrize("tie", ["min", "max"])
@given(cases())
def test_matches_the_loop_oracle(tie, case):
    ds, est, depth, k, lam = case
    curve = cascjax.sweep(ds, est, lam, "cascade", tie=tie, max_depth=depth, samples=k)
    c, q, ran, answered = _oracle(ds, est, lam, depth, k, tie)
    np.testing.assert_allclose(curve.cost, c, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.quality, q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.ran, ran, rtol=1e-12)
    np.testing.assert_allclose(curve.answered, answered, atol=1e-12)


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
    before = cascade_sweep._cache_size()
    cascjax.sweep(ds, est, lam * 1.5, "cascade", samples=8, return_choices=True)
    assert cascade_sweep._cache_size() == before


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
