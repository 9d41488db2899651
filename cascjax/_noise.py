"""The paper's calibrated noise model: synthetic estimates from the truth (DESIGN section 2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import _compile
from ._compile import tree_sum
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
    ``jax.vmap(lambda k: noisy_estimates(ds, k))(jax.random.split(key, 8))``. The query axis is padded to a
    shape bucket (:func:`cascjax._compile.bucket`), so any N of a bucket reuses one compiled program; the
    estimates are the unpadded call's to the bit (the draws are those of ``jax.random.normal(key, (2, N, M))``,
    every sum over queries a pairwise tree of the real rows).

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
    dtype = ds.quality.dtype
    # The mean cost of a named level's scale is taken inside the kernel (an eager mean compiled a program per N).
    auto = np.bool_(cost_scale is None and cost_noise is None)
    scale = jnp.asarray(1.0 if cost_scale is None else cost_scale, dtype)
    q_noise = jnp.asarray(q_noise, dtype)
    c_noise = jnp.asarray(c_noise, dtype)
    n = ds.n_queries
    if ds.quality.nbytes >= _compile.PAD_BYTES:
        # Large inputs, not padded: quality and cost in separate programs, so that one's noise draws and
        # temporaries are freed before the other's (100,000 x 1,000 models: 6.3 GB of temporaries in one
        # program, 3.4 GB in each of two). The same operations: the same bits.
        kq, kc = _split_program(key)
        q_ante, q_post = _quality_program(ds.quality, kq, q_noise, np.int32(n))
        return Estimates(q_ante, q_post, *_sigma(q_ante, q_post, np.int32(n)),
                         *_cost_program(ds.cost, kc, c_noise, scale, auto, np.int32(n)))
    # Shape buckets: the query axis padded (cascjax._compile.bucket), so any N of a bucket reuses one program.
    # Padding cannot change a bit: the draws are indexed as in the unpadded [2, N, M] draw and every sum over
    # queries is a pairwise tree over the real rows (see _calibrate). (JAX's older, non-partitionable threefry
    # numbers the draws by the total size: there the rows are not padded.)
    size = _compile.bucket(n) if jax.config.jax_threefry_partitionable else n
    quality, cost = _compile.pad_put((ds.quality, ds.cost), size)
    q_ante, q_post, c_ante, c_post = _noisy(quality, cost, key, q_noise, c_noise, scale, auto, np.int32(n))
    out = (q_ante, q_post, *_sigma(q_ante, q_post, np.int32(n)), c_ante, c_post)
    if size == n:
        return Estimates(*out)
    if any(isinstance(a, jax.core.Tracer) for a in out):  # under jax.vmap or jit: cut in the trace
        return Estimates(*(a[..., :n, :] for a in out))
    return Estimates(*(_compile.cut(a, n) for a in out))


def _split(key):
    return tuple(jax.random.split(key))


@jax.jit
def _sigma(q_ante, q_post, n):
    """sd_ante (per model, the std over the real queries of ante − post, for every query) and sd_post (0), in a
    program of their own: fused with the calibration that makes ante and post, their difference was computed
    from the unstored values and rounded differently in the padded and the unpadded program (measured)."""
    real = _real(q_ante, n)
    diff = jnp.where(real, q_ante - q_post, jnp.zeros((), q_ante.dtype))
    centred = jnp.where(real, diff - _mean(diff, n), jnp.zeros((), q_ante.dtype))
    sd = jnp.sqrt(_mean(_product(centred, centred, n), n))
    return jnp.broadcast_to(sd, q_ante.shape), jnp.zeros_like(q_ante)


def _cost_estimates(truth, key, noise, scale, auto, n):
    """cost_ante and cost_post; ``noise`` times ``scale``, or with ``auto`` times the mean real cost over
    RouterBench's (:data:`ROUTERBENCH_MEAN_COST`)."""
    real = _real(truth, n)
    mean_cost = tree_sum(tree_sum(jnp.where(real, truth, jnp.zeros((), truth.dtype))))
    mean_cost = mean_cost / (n.astype(truth.dtype) * truth.shape[1])
    return _calibrated_draws(truth, key, noise * jnp.where(auto, mean_cost / ROUTERBENCH_MEAN_COST, scale), n)


def _calibrated_draws(truth, key, noise, n):
    """Two noisy draws (ante, post) of ``truth`` [size, M] (its first ``n`` rows real), each replaced by its
    least-squares calibration over the real rows.

    The draws are those of ``jax.random.normal(key, (2, n, M))`` for the real rows whatever the padding: JAX's
    threefry numbers the elements in row-major order, so the post draw starts at element n·M of one flat draw."""
    size, m = truth.shape
    flat = jax.random.normal(key, (2 * size * m,), truth.dtype)
    ante = flat[:size * m]
    post = jax.lax.dynamic_slice(flat, (n * m,), (size * m,)) if size * m < 2**31 else flat[size * m:]
    real = _real(truth, n)
    return tuple(_calibrate(truth + _product(noise[i], e.reshape(size, m), n), truth, real, n)
                 for i, e in enumerate((ante, post)))


@jax.jit
def _noisy(quality, cost, key, q_noise, c_noise, scale, auto, n):
    """The calibrated draws, quality's then cost's, in one program (the σ: :func:`_sigma`)."""
    kq, kc = _split(key)
    return _calibrated_draws(quality, kq, q_noise, n) + _cost_estimates(cost, kc, c_noise, scale, auto, n)


_split_program = jax.jit(_split)
_quality_program = jax.jit(_calibrated_draws)
_cost_program = jax.jit(_cost_estimates)


def _real(x, n):
    """[size, 1]: which rows of ``x`` are real (the first ``n``)."""
    return (jnp.arange(x.shape[0]) < n)[:, None]


def _product(a, b, n):
    """a · b, computed apart from any addition that follows: LLVM contracts a product and an addition into one
    fused multiply-add in some programs and not in others (depending on how XLA fuses them, so on the shape),
    which changes the last bit. Computed in a branch of a ``cond`` on ``n > 0`` (always true, not known to the
    compiler), the product is stored before it is added. Measured: an ``optimization_barrier`` (XLA's CPU
    pipeline removes it before fusion) and a select between product and sum did not keep them apart."""
    shape = jnp.broadcast_shapes(jnp.shape(a), jnp.shape(b))
    return jax.lax.cond(n > 0, lambda a, b: jnp.broadcast_to(a * b, shape),
                        lambda a, b: jnp.zeros(shape, jnp.result_type(a, b)), a, b)


def _mean(x, n):
    """[1, ...] the mean over the first ``n`` rows of ``x`` (the rest exact zeros): a pairwise tree sum
    (:func:`cascjax._compile.tree_sum`), the same bits for every padded length (products: :func:`_product`)."""
    return (tree_sum(x) / n.astype(x.dtype))[None]


def _calibrate(x, y, real, n):
    """Per column, over the ``real`` rows: the least-squares prediction of y from x (a·x + b), or mean(y)
    where x is constant. Every sum over rows a pairwise tree of the real rows (padding rows count as exact
    zeros), so the result does not depend on the padding; XLA's own reductions regroup with the length."""
    zero = jnp.zeros((), x.dtype)
    means = _mean(jnp.where(real, jnp.concatenate([x, y], axis=1), zero), n)  # one tree for both
    mx, my = jnp.split(means, 2, axis=1)
    xc = jnp.where(real, x - mx, zero)
    yc = jnp.where(real, y - my, zero)
    sums = tree_sum(jnp.concatenate([_product(xc, xc, n), _product(xc, yc, n)], axis=1))[None]
    var, cov = jnp.split(sums, 2, axis=1)
    slope = jnp.where(var > 0, cov / jnp.where(var > 0, var, 1.0), 0.0)
    return my + _product(slope, xc, n)
