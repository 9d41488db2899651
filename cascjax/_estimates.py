"""What a strategy sees: estimates of quality, its uncertainty and cost (DESIGN section 2)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._data import Dataset
from ._errors import CascjaxError

# Noise levels of the paper (quality sd ante, post; cost sd ante, post). Cost levels are absolute USD on
# RouterBench, whose mean cost per query and model is about 1.3e-3; see `noisy_estimates`.
NOISE_LEVELS = {
    "low": ((0.6, 0.3), (2e-4, 5e-5)),
    "medium": ((1.6, 0.8), (4e-4, 1e-4)),
    "high": ((2.4, 1.2), (100.0, 100.0)),
}
ROUTERBENCH_MEAN_COST = 1.3e-3


class Estimates(NamedTuple):
    """Estimator outputs for every query and model, in the separable ante/post form. All fields [N, M].

    For a query whose set of already-run models is R, the estimate for model m is the ``*_post`` value if
    m ∈ R (made after seeing m's answer) and the ``*_ante`` value otherwise.

    Attributes:
      quality_ante: [N, M] ex-ante quality estimate μ.
      quality_post: [N, M] post-hoc quality estimate.
      sd_ante: [N, M] standard deviation of the ex-ante estimate (uncertainty while m has not run).
      sd_post: [N, M] standard deviation of the post-hoc estimate.
      cost_ante: [N, M] ex-ante cost estimate ĉ.
      cost_post: [N, M] post-hoc cost estimate.
    """

    quality_ante: jax.Array
    quality_post: jax.Array
    sd_ante: jax.Array
    sd_post: jax.Array
    cost_ante: jax.Array
    cost_post: jax.Array


def perfect_estimates(ds: Dataset) -> Estimates:
    """The oracle: every estimate equals the truth and every standard deviation is 0.

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> est = cascjax.perfect_estimates(ds)
      >>> bool((est.quality_ante == ds.quality).all())
      True
    """
    zeros = jnp.zeros_like(ds.quality)
    return Estimates(ds.quality, ds.quality, zeros, zeros, ds.cost, ds.cost)


def noisy_estimates(ds: Dataset, key: jax.Array, level: str | None = "low", *,
                    quality_noise: tuple[float, float] | None = None,
                    cost_noise: tuple[float, float] | None = None,
                    cost_scale: float | None = None) -> Estimates:
    """The paper's calibrated noise model (its ``GroundTruthQualityComputer`` / ``GroundTruthCostComputer``).

    For each model and phase (ante, post) it draws ``noisy = truth + N(0, s_phase²)`` per query, then
    calibrates: a least-squares line ``truth ≈ a·noisy + b`` is fitted per model and phase over all queries of
    ``ds`` and ``noisy`` is replaced by its prediction. The ex-ante standard deviation of model m is the std
    over queries of (calibrated ante − calibrated post); a run model's standard deviation is 0. Costs are
    treated the same way, without standard deviations.

    Noise levels (quality s_ante, s_post; cost s_ante, s_post): low (0.6, 0.3; 2e-4, 5e-5), medium
    (1.6, 0.8; 4e-4, 1e-4), high (2.4, 1.2; 100, 100). The cost levels are absolute USD on RouterBench (mean
    cost ≈ 1.3e-3 per query and model); for a named ``level`` they are multiplied by ``cost_scale``, by default
    mean(ds.cost) / 1.3e-3, so that "low" means the same relative noise on data with another cost scale
    (the MMLU-Pro example: ≈ 0.13). Explicit ``cost_noise`` values are used as given unless ``cost_scale``
    is passed too. Quality levels are in quality units and never scaled.

    The function is traceable in ``key`` (and in the noise values), so many seeds vmap:
    ``jax.vmap(lambda k: noisy_estimates(ds, k))(jax.random.split(key, 8))``.

    Args:
      ds: the dataset.
      key: a ``jax.random`` key.
      level: ``"low"``, ``"medium"`` or ``"high"``; overridden field by field by ``quality_noise`` and
        ``cost_noise``; ``None`` requires both of them.
      quality_noise: (s_ante, s_post) in quality units.
      cost_noise: (s_ante, s_post) in cost units.
      cost_scale: factor applied to the cost noise (see above).
    """
    if level is not None and level not in NOISE_LEVELS:
        raise CascjaxError(f"unknown noise level {level!r}; choose one of {sorted(NOISE_LEVELS)}")
    if level is None and (quality_noise is None or cost_noise is None):
        raise CascjaxError("with level=None both quality_noise and cost_noise must be given")
    q_noise = NOISE_LEVELS[level][0] if quality_noise is None else quality_noise
    c_noise = NOISE_LEVELS[level][1] if cost_noise is None else cost_noise
    for label, pair in (("quality_noise", q_noise), ("cost_noise", c_noise)):
        if len(pair) != 2:
            raise CascjaxError(f"{label} must be a pair (ante, post), got {pair!r}")
        for v in pair:
            if not isinstance(v, jax.core.Tracer) and not (float(v) >= 0.0):
                raise CascjaxError(f"{label} values must be non-negative numbers, got {pair!r}")
    if cost_scale is None:
        cost_scale = jnp.mean(ds.cost) / ROUTERBENCH_MEAN_COST if cost_noise is None else 1.0
    return _noisy(ds.quality, ds.cost, key, jnp.asarray(q_noise, ds.quality.dtype),
                  jnp.asarray(c_noise, ds.quality.dtype) * cost_scale)


@jax.jit
def _noisy(quality, cost, key, q_noise, c_noise):
    kq, kc = jax.random.split(key)
    q_ante, q_post = _calibrated_draws(quality, kq, q_noise)
    c_ante, c_post = _calibrated_draws(cost, kc, c_noise)
    sd = jnp.std(q_ante - q_post, axis=0, keepdims=True)
    sd_ante = jnp.broadcast_to(sd, quality.shape)
    return Estimates(q_ante, q_post, sd_ante, jnp.zeros_like(quality), c_ante, c_post)


def _calibrated_draws(truth, key, noise):
    """Two noisy draws (ante, post) of ``truth`` [N, M], each replaced by its least-squares calibration."""
    eps = jax.random.normal(key, (2,) + truth.shape, truth.dtype)
    noisy = truth[None] + noise.reshape(2, 1, 1) * eps
    return tuple(_calibrate(noisy[i], truth) for i in range(2))


def _calibrate(x, y):
    """Per column: the least-squares prediction of y from x (a·x + b), or mean(y) where x is constant."""
    xc = x - jnp.mean(x, axis=0, keepdims=True)
    yc = y - jnp.mean(y, axis=0, keepdims=True)
    var = jnp.sum(xc * xc, axis=0, keepdims=True)
    slope = jnp.where(var > 0, jnp.sum(xc * yc, axis=0, keepdims=True) / jnp.where(var > 0, var, 1.0), 0.0)
    return jnp.mean(y, axis=0, keepdims=True) + slope * xc
