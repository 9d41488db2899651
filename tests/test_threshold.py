"""The threshold cascade (baseline) against the section-4 loop oracle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import cascjax
from cascjax._compile import programs

from . import oracle


@st.composite
def cases(draw):
    n, m = draw(st.integers(1, 8)), draw(st.integers(2, 5))
    eighths = st.integers(0, 8).map(lambda v: v / 8)

    def arr(elems):
        return np.array(draw(st.lists(elems, min_size=n * m, max_size=n * m)), float).reshape(n, m)

    quality, cost, post = arr(eighths), arr(eighths), arr(st.integers(-8, 16).map(lambda v: v / 8))
    ds = cascjax.Dataset.from_arrays(quality, cost, sort=False)
    z = jnp.zeros((n, m))
    est = cascjax.Estimates(z, jnp.asarray(post), z, z, z, z)
    depth = draw(st.integers(1, m))
    # Thresholds at, between and beyond the post-hoc estimates, so that "post == θ" (stop) is exercised.
    values = np.unique(np.concatenate([post.ravel(), post.ravel() + 1 / 16, [-np.inf, np.inf, -5.0]]))
    per_step = draw(st.booleans())
    shape = (draw(st.integers(1, 6)),) + ((depth,) if per_step else ())
    theta = np.array(draw(st.lists(st.sampled_from(list(values)), min_size=int(np.prod(shape)),
                                   max_size=int(np.prod(shape))))).reshape(shape)
    return ds, est, depth, theta


@given(cases())
def test_matches_the_loop_oracle(case):
    ds, est, depth, theta = case
    curve = cascjax.sweep(ds, est, theta, "threshold_cascade", max_depth=depth, return_choices=True)
    loop_est = dict(mu_post=np.asarray(est.quality_post))
    c, q, ran, answered = oracle.reference_sweep(ds.quality, ds.cost, loop_est, theta, "threshold_cascade",
                                          max_depth=depth)
    np.testing.assert_allclose(curve.cost, c, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.quality, q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.ran, ran, rtol=1e-12)
    np.testing.assert_allclose(curve.answered, answered, atol=1e-12)
    for row, th in zip(np.asarray(curve.choice), theta):
        for i, got in enumerate(row):
            _, ref = oracle.reference_run({"mu_post": np.asarray(est.quality_post)[i]}, th, "threshold_cascade",
                                      max_depth=depth)
            assert got == ref
    assert curve.lam.shape == (theta.shape[0], depth)


@given(cases())
def test_higher_thresholds_run_more_models(case):
    ds, est, depth, _ = case
    theta = np.array([-np.inf, -1.0, 0.0, 0.5, 1.0, 2.0, np.inf])
    curve = cascjax.sweep(ds, est, theta, "threshold_cascade", max_depth=depth)
    assert np.all(np.diff(np.asarray(curve.ran)) >= 0)
    np.testing.assert_allclose(curve.ran[0], 1.0)     # θ = −inf: the first model always suffices
    np.testing.assert_allclose(curve.ran[-1], depth)  # θ = +inf: never confident
    np.testing.assert_allclose(curve.cost[-1], np.asarray(ds.cost)[:, :depth].sum(axis=1).mean(), rtol=1e-12)


def test_constant_per_step_thresholds_equal_one_threshold():
    ds = cascjax.synthetic(seed=2, n_queries=200, n_models=4)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "medium")
    theta = np.linspace(-0.5, 1.5, 9)
    a = cascjax.sweep(ds, est, theta, "threshold_cascade")
    b = cascjax.sweep(ds, est, np.repeat(theta[:, None], 4, axis=1), "threshold_cascade")
    for x, y in zip(a[1:], b[1:]):
        if x is not None:
            np.testing.assert_array_equal(x, y)


def test_jit_equals_eager_float32_and_no_recompilation():
    ds = cascjax.synthetic(seed=5, n_queries=80, n_models=3)
    est = cascjax.noisy_estimates(ds, jax.random.key(1), "low")
    theta = np.linspace(0, 1, 8)
    jitted = cascjax.sweep(ds, est, theta, "threshold_cascade", return_choices=True)
    with jax.disable_jit():
        eager = cascjax.sweep(ds, est, theta, "threshold_cascade", return_choices=True)
    np.testing.assert_array_equal(jitted.choice, eager.choice)
    np.testing.assert_allclose(jitted.cost, eager.cost, rtol=1e-14)
    cascjax.sweep(ds, est, theta, "threshold_cascade", return_choices=True)  # (the eager run may clear caches)
    before = programs()["total"]
    cascjax.sweep(ds, est, theta + 0.01, "threshold_cascade", return_choices=True)
    assert programs()["total"] == before  # no new program of any kind
    ds32 = cascjax.Dataset.from_arrays(np.asarray(ds.quality, np.float32), np.asarray(ds.cost, np.float32),
                                       sort=False)
    est32 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), est)
    # Thresholds away from every estimate, so rounding to float32 cannot flip a comparison.
    theta = np.array([-1.0, 0.25 + 1e-3, 0.5 + 1e-3, 2.0])
    post = np.asarray(est.quality_post)
    assert np.min(np.abs(post[None] - theta[:, None, None])) > 1e-5
    a = cascjax.sweep(ds, est, theta, "threshold_cascade")
    b = cascjax.sweep(ds32, est32, theta, "threshold_cascade")
    assert b.cost.dtype == jnp.float32
    np.testing.assert_allclose(b.quality, a.quality, rtol=1e-6)
    np.testing.assert_allclose(b.cost, a.cost, rtol=1e-5)


@pytest.mark.parametrize("kwargs,message", [
    (dict(lambdas=[0.5, np.nan]), "thresholds must not be NaN"),
    (dict(lambdas=[]), "threshold list is empty"),
    (dict(lambdas=np.zeros((2, 3))), r"\[L\] or \[L, D\] with D = max_depth = 4; got shape \(2, 3\)"),
    (dict(lambdas=np.zeros((2, 2)), max_depth=3), r"D = max_depth = 3; got shape \(2, 2\)"),
    (dict(lambdas=np.zeros((2, 2, 2))), r"got shape \(2, 2, 2\)"),
    (dict(lambdas=[0.5], max_depth=0), "max_depth must be an integer in 1..4"),
    (dict(lambdas=[0.5], max_depth=5), "max_depth must be an integer in 1..4"),
])
def test_bad_input(kwargs, message):
    ds = cascjax.synthetic(seed=1, n_queries=10, n_models=4)
    with pytest.raises(cascjax.CascjaxError, match=message):
        cascjax.sweep(ds, cascjax.perfect_estimates(ds), strategy="threshold_cascade", **kwargs)


def test_routing_refuses_a_depth():
    ds = cascjax.synthetic(seed=1, n_queries=10, n_models=4)
    with pytest.raises(cascjax.CascjaxError, match="routing runs one model per query"):
        cascjax.sweep(ds, cascjax.perfect_estimates(ds), [0.1], max_depth=2)


def test_threshold_grid():
    ds = cascjax.load_example()
    grid = cascjax.threshold_grid(cascjax.perfect_estimates(ds), 16)
    np.testing.assert_array_equal(grid, [-np.inf, 0.0, 1.0, np.inf])  # 0/1 correctness: every value is a quantile
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    grid = cascjax.threshold_grid(est, 64)
    assert grid.size <= 64 and grid[0] == -np.inf and grid[-1] == np.inf and np.all(np.diff(grid) > 0)
    post = np.asarray(est.quality_post)[:, :-1]
    assert grid[1] == post.min() and grid[-2] == post.max()
    with pytest.raises(cascjax.CascjaxError, match="at least 3 points"):
        cascjax.threshold_grid(est, 2)
    shallow = cascjax.threshold_grid(est, 64, max_depth=2)  # only the first model's post-hoc estimate is compared
    assert shallow[1] == post[:, 0].min() and shallow[-2] == post[:, 0].max()
    with pytest.raises(cascjax.CascjaxError, match="max_depth"):
        cascjax.threshold_grid(est, 64, max_depth=7)
