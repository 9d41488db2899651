"""Estimates: the oracle, the paper's calibrated noise model, and user-supplied columns."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

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
