"""The paper's calibrated noise model: synthetic estimates from the truth (DESIGN section 2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _compile
from ._data import Dataset
from ._errors import CascjaxError
from ._estimates import Estimates

# Noise levels of the paper (quality sd ante, post; cost sd ante, post). Cost levels are absolute USD on
# RouterBench, whose mean cost per query and model is about 1.3e-3; see `noisy_estimates`.
NOISE_LEVELS = {
    "low": ((0.6, 0.3), (2e-4, 5e-5)),
    "medium": ((1.6, 0.8), (4e-4, 1e-4)),
    "high": ((2.4, 1.2), (100.0, 100.0)),
}
ROUTERBENCH_MEAN_COST = 1.3e-3

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

    Returns:
      :class:`Estimates` with every field [N, M] (the dataset's dtype): ``sd_ante`` is the same for every
      query (one σ per model), ``sd_post`` is 0; no covariance.

    Example:
      >>> import jax, cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]] * 4, [[1, 2]] * 16)   # N = 16, M = 2
      >>> est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
      >>> est.quality_ante.shape, bool((est.sd_post == 0).all()), bool((est.sd_ante == est.sd_ante[:1]).all())
      ((16, 2), True, True)
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
    q_noise = jnp.asarray(q_noise, ds.quality.dtype)
    c_noise = jnp.asarray(c_noise, ds.quality.dtype) * cost_scale
    if ds.quality.nbytes < _compile.PAD_BYTES:  # one program for every field (one per new N)
        return Estimates(*_noisy(ds.quality, ds.cost, key, q_noise, c_noise))
    # Large inputs: quality and cost in separate programs, so that one's noise draws and temporaries are freed
    # before the other's (100,000 x 1,000 models: 6.3 GB of temporaries in one program, 3.4 GB in each of two).
    # The same operations: the same bits.
    kq, kc = _split_program(key)
    return Estimates(*_quality_program(ds.quality, kq, q_noise), *_cost_program(ds.cost, kc, c_noise))


def _split(key):
    return tuple(jax.random.split(key))


def _quality_estimates(truth, key, noise):
    """quality_ante, quality_post, sd_ante (per model, the std over queries of ante − post, for every query) and
    sd_post (0)."""
    q_ante, q_post = _calibrated_draws(truth, key, noise)
    sd = jnp.std(q_ante - q_post, axis=0, keepdims=True)
    return q_ante, q_post, jnp.broadcast_to(sd, truth.shape), jnp.zeros_like(truth)


def _calibrated_draws(truth, key, noise):
    """Two noisy draws (ante, post) of ``truth`` [N, M], each replaced by its least-squares calibration."""
    # Not _compile.normal (the same draws, a faster compile): the calibration's reductions, fused with the flat
    # draw, rounded 2-36 % of the estimates differently in the last bit (benchmarks/README.md, "Compile once").
    eps = jax.random.normal(key, (2,) + truth.shape, truth.dtype)
    noisy = truth[None] + noise.reshape(2, 1, 1) * eps
    return tuple(_calibrate(noisy[i], truth) for i in range(2))


@jax.jit
def _noisy(quality, cost, key, q_noise, c_noise):
    """All six fields in one program: quality's four, then cost's calibrated draws (costs have no σ)."""
    kq, kc = _split(key)
    return _quality_estimates(quality, kq, q_noise) + _calibrated_draws(cost, kc, c_noise)


_split_program = jax.jit(_split)
_quality_program = jax.jit(_quality_estimates)
_cost_program = jax.jit(_calibrated_draws)


def _calibrate(x, y):
    """Per column: the least-squares prediction of y from x (a·x + b), or mean(y) where x is constant."""
    xc = x - jnp.mean(x, axis=0, keepdims=True)
    yc = y - jnp.mean(y, axis=0, keepdims=True)
    var = jnp.sum(xc * xc, axis=0, keepdims=True)
    slope = jnp.where(var > 0, jnp.sum(xc * yc, axis=0, keepdims=True) / jnp.where(var > 0, var, 1.0), 0.0)
    return jnp.mean(y, axis=0, keepdims=True) + slope * xc
