"""Estimates: the oracle, the paper's calibrated noise model, and user-supplied columns."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax import CascjaxError


@pytest.fixture(scope="module")
def ds():
    return cascjax.synthetic(1, n_queries=3000, n_models=4)


def test_perfect_estimates(ds):
    est = cascjax.perfect_estimates(ds)
    np.testing.assert_array_equal(est.quality_ante, ds.quality)
    np.testing.assert_array_equal(est.quality_post, ds.quality)
    np.testing.assert_array_equal(est.cost_ante, ds.cost)
    assert float(jnp.abs(est.sd_ante).max()) == 0.0 and float(jnp.abs(est.sd_post).max()) == 0.0


def _oracle_noisy(ds, key, q_noise, c_noise):
    """The paper's noise model written out with NumPy: draw, then np.polyfit per model and phase."""
    kq, kc = jax.random.split(key)
    out = {}
    for name, truth, k, noise in (("quality", ds.quality, kq, q_noise), ("cost", ds.cost, kc, c_noise)):
        truth = np.asarray(truth, np.float64)
        eps = np.asarray(jax.random.normal(k, (2,) + truth.shape, truth.dtype))
        for phase in range(2):
            noisy = truth + noise[phase] * eps[phase]
            cal = np.empty_like(truth)
            for m in range(truth.shape[1]):
                a, b = np.polyfit(noisy[:, m], truth[:, m], 1)
                cal[:, m] = a * noisy[:, m] + b
            out[name, phase] = cal
    return out


def test_noisy_estimates_match_the_paper_model(ds):
    key = jax.random.key(5)
    est = cascjax.noisy_estimates(ds, key, quality_noise=(0.6, 0.3), cost_noise=(2e-4, 5e-5))
    ref = _oracle_noisy(ds, key, (0.6, 0.3), (2e-4, 5e-5))
    np.testing.assert_allclose(est.quality_ante, ref["quality", 0], atol=1e-10)
    np.testing.assert_allclose(est.quality_post, ref["quality", 1], atol=1e-10)
    np.testing.assert_allclose(est.cost_ante, ref["cost", 0], atol=1e-12)
    np.testing.assert_allclose(est.cost_post, ref["cost", 1], atol=1e-12)
    sigma = np.std(ref["quality", 0] - ref["quality", 1], axis=0)
    np.testing.assert_allclose(est.sd_ante, np.broadcast_to(sigma, ds.quality.shape), rtol=1e-10)
    assert float(jnp.abs(est.sd_post).max()) == 0.0


def test_calibration_is_least_squares(ds):
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "medium")
    truth = np.asarray(ds.quality)
    for field in (est.quality_ante, est.quality_post):
        cal = np.asarray(field)
        np.testing.assert_allclose(cal.mean(0), truth.mean(0), atol=1e-10)  # unbiased on average
        resid = truth - cal
        np.testing.assert_allclose((resid * (cal - cal.mean(0))).sum(0), 0.0, atol=1e-7)  # orthogonal


def test_noise_levels_order_the_information(ds):
    key = jax.random.key(2)
    truth = np.asarray(ds.quality)

    def corr(level):
        q = np.asarray(cascjax.noisy_estimates(ds, key, level).quality_ante)
        return np.mean([np.corrcoef(q[:, m], truth[:, m])[0, 1] for m in range(truth.shape[1])])

    assert corr("low") > corr("medium") > corr("high") > 0


def test_named_cost_levels_scale_with_the_data():
    """'low' means the same relative cost noise on data with another cost scale."""
    ds = cascjax.synthetic(4, n_queries=500, n_models=3)
    scaled = cascjax.Dataset.from_arrays(ds.quality, ds.cost * 10.0, models=ds.models)
    key = jax.random.key(1)
    a = cascjax.noisy_estimates(ds, key, "low")
    b = cascjax.noisy_estimates(scaled, key, "low")
    np.testing.assert_allclose(b.cost_ante, 10.0 * np.asarray(a.cost_ante), rtol=1e-9)
    np.testing.assert_allclose(b.quality_ante, a.quality_ante, rtol=1e-12)
    # explicit cost noise is absolute: the same noise on 10x costs is relatively smaller
    c = cascjax.noisy_estimates(ds, key, cost_noise=(1e-3, 1e-3))
    d = cascjax.noisy_estimates(scaled, key, cost_noise=(1e-3, 1e-3))
    assert not np.allclose(d.cost_ante, 10.0 * np.asarray(c.cost_ante))


def test_seeded_and_vmappable_over_keys(ds):
    keys = jax.random.split(jax.random.key(9), 3)
    batched = jax.vmap(lambda k: cascjax.noisy_estimates(ds, k, "low"))(keys)
    assert batched.quality_ante.shape == (3,) + ds.quality.shape
    for i in range(3):
        single = cascjax.noisy_estimates(ds, keys[i], "low")
        np.testing.assert_allclose(batched.quality_ante[i], single.quality_ante, rtol=1e-12)
        np.testing.assert_allclose(batched.cost_post[i], single.cost_post, rtol=1e-12)
    assert not np.allclose(batched.quality_ante[0], batched.quality_ante[1])
    again = cascjax.noisy_estimates(ds, keys[0], "low")
    np.testing.assert_array_equal(again.quality_ante, batched.quality_ante[0])


def test_noise_values_are_traceable(ds):
    """Noise levels are traced, so an ablation grid over levels is one vmap."""
    levels = jnp.array([0.2, 1.0, 3.0])
    key = jax.random.key(0)
    grid = jax.vmap(lambda s: cascjax.noisy_estimates(ds, key, quality_noise=(s, s / 2),
                                                      cost_noise=(0.0, 0.0)))(levels)
    single = cascjax.noisy_estimates(ds, key, quality_noise=(1.0, 0.5), cost_noise=(0.0, 0.0))
    np.testing.assert_allclose(grid.quality_ante[1], single.quality_ante, rtol=1e-12)
    np.testing.assert_allclose(grid.cost_ante[0], ds.cost, rtol=1e-12)  # zero noise: calibrated = truth


def test_large_inputs_draw_quality_and_cost_in_two_programs_with_the_same_bits(ds, monkeypatch):
    """Inputs of PAD_BYTES or more draw quality and cost in separate programs (memory), unpadded: every field the
    bits of the one padded program smaller inputs use, under vmap over keys too. Smaller inputs are padded to a
    shape bucket: a new N of a bucket already seen compiles nothing."""
    from cascjax import _compile

    keys = jax.random.split(jax.random.key(4), 2)
    one = cascjax.noisy_estimates(ds, keys[0], "medium")
    batch = jax.vmap(lambda k: cascjax.noisy_estimates(ds, k))(keys)
    cascjax.noisy_estimates(cascjax.synthetic(0, 97, 3), keys[0], "low")
    before = _compile.programs()["total"]
    for n in (65, 100, 128):  # the bucket of 97: 128
        cascjax.noisy_estimates(cascjax.synthetic(n, n, 3), keys[1], "low")
    assert _compile.programs()["total"] == before
    monkeypatch.setattr(_compile, "PAD_BYTES", 1)
    for a, b in zip(one[:6], cascjax.noisy_estimates(ds, keys[0], "medium")[:6]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(batch[:6], jax.vmap(lambda k: cascjax.noisy_estimates(ds, k))(keys)[:6]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 300), m=st.integers(2, 5), seed=st.integers(0, 2**31 - 1), f32=st.booleans(),
       level=st.sampled_from(["low", "high"]), constant=st.booleans())
def test_noisy_estimates_are_the_same_bits_padded_or_not(n, m, seed, f32, level, constant):
    """The query axis is padded to a shape bucket; the estimates of the real rows are the unpadded call's, to the
    bit (the draws indexed as unpadded, every sum over queries a pairwise tree of the real rows)."""
    from cascjax import _compile

    rng = np.random.default_rng(seed)
    dtype = np.float32 if f32 else np.float64
    quality = rng.integers(0, 2, (n, m)).astype(dtype) if not constant else np.ones((n, m), dtype)
    cost = (rng.random((n, m)) * 1e-3).astype(dtype)
    ds = cascjax.Dataset.from_arrays(quality, cost)
    key = jax.random.key(seed)
    padded = cascjax.noisy_estimates(ds, key, level)
    with _compile.buckets(False):
        plain = cascjax.noisy_estimates(ds, key, level)
    for name, a, b in zip(padded._fields, padded, plain):
        if a is not None:
            assert a.shape == (n, m) and a.dtype == dtype, name
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)


def test_float32(ds):
    ds32 = cascjax.Dataset.from_arrays(np.asarray(ds.quality, np.float32), np.asarray(ds.cost, np.float32),
                                       models=ds.models)
    e32 = cascjax.noisy_estimates(ds32, jax.random.key(0), "low")
    assert e32.quality_ante.dtype == jnp.float32 and e32.cost_ante.dtype == jnp.float32


@pytest.mark.parametrize("kwargs, message", [
    (dict(level="extreme"), "unknown noise level 'extreme'"),
    (dict(level=None, quality_noise=(0.1, 0.1)), "both quality_noise and cost_noise"),
    (dict(quality_noise=(-1.0, 0.1)), "non-negative"),
    (dict(cost_noise=(0.1,)), "pair"),
])
def test_noisy_bad_input(ds, kwargs, message):
    with pytest.raises(CascjaxError, match=message):
        cascjax.noisy_estimates(ds, jax.random.key(0), **kwargs)


def _frame_with_estimates(n=6):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.integers(0, 2, n).astype(float), "a|total_cost": 2.0 + rng.random(n),
                       "b": rng.integers(0, 2, n).astype(float), "b|total_cost": 1.0 + rng.random(n)})
    df["a|quality_ante"] = rng.random(n)
    df["a|quality_sd_ante"] = 0.1
    df["b|cost_ante"] = 1.5
    return df


def test_read_estimates_columns_and_defaults(tmp_path):
    df = _frame_with_estimates()
    path = tmp_path / "e.csv"
    df.to_csv(path, index=False)
    ds = cascjax.read(path)
    assert ds.models == ("b", "a")
    est = cascjax.read_estimates(path, ds)
    np.testing.assert_allclose(est.quality_ante[:, 1], df["a|quality_ante"])
    np.testing.assert_allclose(est.quality_ante[:, 0], df["b"])  # missing: the truth
    np.testing.assert_allclose(est.quality_post, ds.quality)
    np.testing.assert_allclose(est.sd_ante[:, 1], 0.1)
    np.testing.assert_allclose(est.sd_ante[:, 0], 0.0)
    np.testing.assert_allclose(est.cost_ante[:, 0], 1.5)
    np.testing.assert_allclose(est.cost_ante[:, 1], df["a|total_cost"])
    np.testing.assert_allclose(est.cost_post, ds.cost)


def test_read_estimates_with_dropped_rows(tmp_path):
    df = _frame_with_estimates()
    df.loc[2, "b"] = np.nan
    path = tmp_path / "e.csv"
    df.to_csv(path, index=False)
    with pytest.warns(UserWarning):
        ds = cascjax.read(path, dropna=True)
    est = cascjax.read_estimates(path, ds, dropna=True)
    np.testing.assert_allclose(est.quality_ante[:, 1], df["a|quality_ante"].to_numpy()[[0, 1, 3, 4, 5]])
    with pytest.raises(CascjaxError, match="has 5 usable rows but the dataset has 4 queries"):
        cascjax.read_estimates(path, ds.take(np.arange(4)), dropna=True)


@pytest.mark.parametrize("column, value, message", [
    ("a|quality_ante", np.nan, r"column 'a\|quality_ante' has 1 missing"),
    ("a|quality_sd_ante", -0.5, "negative standard deviations"),
    ("b|cost_ante", -1.0, "negative cost estimates"),
])
def test_read_estimates_bad_input(tmp_path, column, value, message):
    df = _frame_with_estimates()
    df.loc[3, column] = value
    path = tmp_path / "e.csv"
    df.to_csv(path, index=False)
    ds = cascjax.read(path)
    with pytest.raises(CascjaxError, match=message):
        cascjax.read_estimates(path, ds)


# -- correlated uncertainty: a covariance per run-pattern ---------------------------------------------------------

def random_covariances(seed, m, singular=True):
    """A random PSD table [2^M, M, M]: Σ(R) = A Aᵀ with small dyadic A, some rows zero (singular Σ, and
    models that do not deviate in a pattern)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, (1 << m, m, m)) / 4
    if singular:
        a[rng.random((1 << m, m)) < 0.3] = 0.0
    return a @ np.swapaxes(a, 1, 2)


def _paper_fit(ante, post):
    """The paper's fit_covariances by its definition: per run-pattern R, np.cov of μ(n, R) − μ(n, all)."""
    n, m = ante.shape
    out = np.zeros((1 << m, m, m))
    for r in range(1 << m):
        diffs = []
        for i in range(n):
            mu_r = [post[i, k] if r >> k & 1 else ante[i, k] for k in range(m)]
            diffs.append([mu_r[k] - post[i, k] for k in range(m)])
        out[r] = np.cov(np.array(diffs).T)
    return out


@given(st.integers(0, 2**31), st.integers(1, 4), st.integers(2, 9))
def test_fit_covariances_is_the_papers_fit(seed, m, n):
    rng = np.random.default_rng(seed)
    ante, post = rng.integers(0, 9, (n, m)) / 8, rng.integers(0, 9, (n, m)) / 8
    z = np.zeros((n, m))
    est = cascjax.Estimates(*(jnp.asarray(a) for a in (ante, post, z, z, z, z)))
    fitted = cascjax.fit_covariances(est)
    np.testing.assert_allclose(fitted.covariance, _paper_fit(ante, post).reshape(1 << m, m, m), atol=1e-12)
    assert fitted.quality_ante is est.quality_ante
    rows = rng.random(n) < 0.7
    if rows.sum() >= 2:
        sub = cascjax.fit_covariances(est, rows)
        np.testing.assert_allclose(sub.covariance, _paper_fit(ante[rows], post[rows]).reshape(1 << m, m, m),
                                   atol=1e-12)
        np.testing.assert_allclose(cascjax.fit_covariances(est, np.flatnonzero(rows)).covariance, sub.covariance)


@given(st.integers(0, 2**31), st.integers(1, 5), st.booleans())
def test_covariance_factors_are_square_roots(seed, m, singular):
    cov = random_covariances(seed, m, singular)
    factor = np.asarray(cascjax.covariance_factors(jnp.asarray(cov)))
    np.testing.assert_allclose(factor @ np.swapaxes(factor, 1, 2), cov, atol=1e-9)
    flat = np.diagonal(cov, axis1=1, axis2=2) == 0
    assert np.all(factor[flat] == 0)  # models that do not deviate have exactly zero rows
    for r in range(1 << m):  # positive definite: the (unique) lower-triangular Cholesky factor
        if np.linalg.eigvalsh(cov[r])[0] > 1e-9:
            np.testing.assert_allclose(factor[r], np.linalg.cholesky(cov[r]), atol=1e-12)


def test_diagonal_covariance_factor_is_sigma():
    sd = np.array([0.5, 0.0, 0.25])
    factor = cascjax.covariance_factors(jnp.asarray(np.diag(sd ** 2))[None])[0]
    np.testing.assert_array_equal(factor, np.diag(sd))


def test_covariance_bad_input():
    ds = cascjax.synthetic(1, n_queries=5, n_models=3)
    est = cascjax.perfect_estimates(ds)
    good = np.broadcast_to(np.eye(3), (8, 3, 3)).copy()
    cascjax.sweep(ds, est._replace(covariance=jnp.asarray(good)), [0.1], "cascade")
    name = ds.models[0]
    for cov, message in [
        (np.eye(3), r"shape \[2\^M, M, M\] = \(8, 3, 3\)"),
        (np.where(np.arange(8)[:, None, None] == 5, np.nan, good), rf"covariance\[5\] \(models run: {name}, "),
        (good + np.where(np.arange(8)[:, None, None] == 2, np.triu(np.ones((3, 3)), 1), 0),
         r"covariance\[2\] .* is not symmetric"),
        (good - np.where(np.arange(8)[:, None, None] == 0, 2 * np.eye(3), 0),
         r"covariance\[0\] \(models run: none\) is not positive semi-definite"),
    ]:
        with pytest.raises(CascjaxError, match=message):
            cascjax.sweep(ds, est._replace(covariance=jnp.asarray(cov)), [0.1], "cascade")
    with pytest.raises(CascjaxError, match="at least 2 queries"):
        cascjax.fit_covariances(est, [0])
    with pytest.raises(CascjaxError, match="boolean query mask must have shape"):
        cascjax.fit_covariances(est, np.ones(4, bool))
    with pytest.raises(CascjaxError, match=r"query indices must lie in 0..4"):
        cascjax.fit_covariances(est, [0, 7])
    big = cascjax.synthetic(1, n_queries=5, n_models=17)
    with pytest.raises(CascjaxError, match="at most 16 models"):
        cascjax.fit_covariances(cascjax.perfect_estimates(big))
