"""What a strategy sees: estimates of quality, its uncertainty and cost (DESIGN section 2)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _compile
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
#: The largest pool a covariance table (one [M, M] matrix per run-pattern, 2^M of them) is accepted for.
MAX_COVARIANCE_MODELS = 16


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
      covariance: optional [2^M, M, M]: Σ(R), the covariance of the quality estimates in the information state
        R (row R = the bitmask of the models run, bit m = model m), shared by all queries — the paper's
        correlated uncertainty (its ``fit_covariances``; see :func:`fit_covariances`). When given, cascades
        and cascade routing draw Y ~ N(μ(n, R), Σ(R)) for their expected maxima and ``sd_ante``/``sd_post``
        are not used; ``None`` (the default): independent deviations ``sd_ante``/``sd_post``. Routing and
        the threshold cascade never use uncertainty. At most ``MAX_COVARIANCE_MODELS`` (16) models.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> est = cascjax.perfect_estimates(ds)
      >>> [a.shape for a in est[:6]], est.covariance is None   # six [N, M] fields
      ([(4, 2), (4, 2), (4, 2), (4, 2), (4, 2), (4, 2)], True)
      >>> est._replace(sd_ante=est.sd_ante + 0.25).sd_ante[0].tolist()   # an immutable pytree: _replace
      [0.25, 0.25]
    """

    quality_ante: jax.Array
    quality_post: jax.Array
    sd_ante: jax.Array
    sd_post: jax.Array
    cost_ante: jax.Array
    cost_post: jax.Array
    covariance: jax.Array | None = None

    def take(self, rows) -> "Estimates":
        """The estimates of the queries at ``rows`` (as :meth:`Dataset.take`; the covariance table, shared by
        all queries, is kept).

        Args:
          rows: [R] integer indices (or a boolean mask [N]) of the queries to keep, in that order.

        Returns:
          :class:`Estimates` with every field [R, M].

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
          >>> fit_rows, test_rows = ds.split_indices(0.5, seed=0)
          >>> est = cascjax.perfect_estimates(ds).take(test_rows)
          >>> est.quality_ante.shape, bool((est.quality_ante == ds.take(test_rows).quality).all())
          ((2, 2), True)
        """
        import numpy as np

        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.nonzero(rows)[0]
        return Estimates(*(a[rows] for a in self[:6]), self.covariance)


def perfect_estimates(ds: Dataset) -> Estimates:
    """The oracle: every estimate equals the truth and every standard deviation is 0.

    Args:
      ds: the dataset, ``quality`` and ``cost`` [N, M].

    Returns:
      :class:`Estimates` with every field [N, M]: ``quality_ante = quality_post = ds.quality``, ``cost_ante =
      cost_post = ds.cost``, ``sd_ante = sd_post = 0``; no covariance.

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> est = cascjax.perfect_estimates(ds)
      >>> bool((est.quality_ante == ds.quality).all())
      True
    """
    zeros = jax.device_put(np.zeros(ds.quality.shape, ds.quality.dtype))  # (jnp.zeros_like: a program per shape)
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


def fit_covariances(est: Estimates, queries=None) -> Estimates:
    """``est`` with a covariance per run-pattern fitted as the paper's ``fit_covariances`` does.

    Σ(R) is the covariance over queries (unbiased, as ``np.cov``) of μ(n, R) − μ(n, all models run): the
    error of the estimates made in state R relative to the estimates made once every model has run. In the
    separable ante/post form that difference is ante − post for a model not in R and 0 for a run model, so
    Σ(R) is the covariance of (ante − post) with the rows and columns of the models in R zeroed. Unlike the
    independent ``sd_ante`` it keeps the correlations between the models' estimation errors.

    Args:
      est: estimates (their ``covariance``, if any, is replaced).
      queries: the queries to fit on (an index array or an [N] boolean mask, e.g. the fit split); default all.
        At least two are needed.

    Returns:
      ``est`` with ``covariance`` [2^M, M, M] (dtype of ``quality_ante``).

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> est = cascjax.fit_covariances(cascjax.noisy_estimates(ds, jax.random.key(0)))
      >>> est.covariance.shape
      (64, 6, 6)
    """
    ante, post = jnp.asarray(est.quality_ante), jnp.asarray(est.quality_post)
    n, m = ante.shape
    if m > MAX_COVARIANCE_MODELS:
        raise CascjaxError(f"a covariance per run-pattern needs 2^M matrices; at most {MAX_COVARIANCE_MODELS} models "
                           f"are supported, got {m} (select fewer models or use independent sd_ante)")
    if queries is not None:
        idx = np.asarray(queries)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise CascjaxError(f"a boolean query mask must have shape ({n},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        elif not np.issubdtype(idx.dtype, np.integer) or idx.ndim != 1:
            raise CascjaxError("queries must be a 1-D array of query indices or an [N] boolean mask")
        elif idx.size and (idx.min() < -n or idx.max() >= n):
            raise CascjaxError(f"query indices must lie in 0..{n - 1}")
        ante, post = ante[idx], post[idx]
    if ante.shape[0] < 2:
        raise CascjaxError(f"fitting a covariance needs at least 2 queries, got {ante.shape[0]}")
    diff = ante - post
    diff = diff - jnp.mean(diff, axis=0, keepdims=True)
    full = diff.T @ diff / (diff.shape[0] - 1)
    free = ~_run_patterns(m)  # [2^M, M]: model not run in pattern R
    return est._replace(covariance=full[None] * (free[:, :, None] & free[:, None, :]))


def _run_patterns(n_models: int) -> np.ndarray:
    """[2^M, M] bool: model m is run in pattern R (bit m of R)."""
    return (np.arange(1 << n_models)[:, None] >> np.arange(n_models)[None]) & 1 == 1


def check_covariance(cov, names) -> None:
    """Raises unless ``cov`` is a finite, symmetric, positive semi-definite [2^M, M, M] table; names the first
    offending run-pattern by its models."""
    m = len(names)
    if m > MAX_COVARIANCE_MODELS:
        raise CascjaxError(f"estimates.covariance: at most {MAX_COVARIANCE_MODELS} models are supported (2^M "
                           f"matrices), got {m}; select fewer models or use independent sd_ante/sd_post")
    shape = getattr(cov, "shape", None)
    if shape != (1 << m, m, m):
        raise CascjaxError(f"estimates.covariance must have shape [2^M, M, M] = {(1 << m, m, m)} (one matrix per "
                           f"run-pattern of the {m} models), got {shape}")
    cov = np.asarray(cov, np.float64)

    def pattern(r):
        run = [names[i] for i in range(m) if r >> i & 1]
        return f"covariance[{r}] (models run: {', '.join(run) if run else 'none'})"

    bad = ~np.isfinite(cov).all(axis=(1, 2))
    if bad.any():
        raise CascjaxError(f"estimates.{pattern(int(np.argmax(bad)))} has NaN or infinite entries")
    scale = np.maximum(np.abs(cov).max(axis=(1, 2)), np.finfo(np.float64).tiny)
    asym = np.abs(cov - np.swapaxes(cov, 1, 2)).max(axis=(1, 2)) > 1e-6 * scale
    if asym.any():
        raise CascjaxError(f"estimates.{pattern(int(np.argmax(asym)))} is not symmetric")
    lowest = np.linalg.eigvalsh(cov)[:, 0]
    neg = lowest < -1e-6 * scale
    if neg.any():
        r = int(np.argmax(neg))
        raise CascjaxError(f"estimates.{pattern(r)} is not positive semi-definite (smallest eigenvalue "
                           f"{lowest[r]:.3g})")


@jax.jit
def covariance_factors(cov: jax.Array) -> jax.Array:
    """A square root L(R) with L Lᵀ = Σ(R) for every run-pattern: [P, M, M] → [P, M, M].

    The Cholesky factor (lower triangular; for a diagonal Σ exactly diag(σ), so a diagonal covariance gives
    the same samples as independent deviations) of the block of models with positive variance; where that
    block is singular, V·diag(√max(w, 0)) from its eigendecomposition. Rows of zero-variance models are
    exactly zero (those models do not deviate: expected maxima over them alone are exact).

    Args:
      cov: [P, M, M] symmetric positive semi-definite matrices, e.g. ``Estimates.covariance`` (P = 2^M).

    Returns:
      [P, M, M] factors L (the dtype of ``cov``).

    Example:
      >>> import jax.numpy as jnp, cascjax
      >>> cov = jnp.array([[[4.0, 2.0], [2.0, 2.0]], [[0.0, 0.0], [0.0, 4.0]]])   # P = 2, M = 2
      >>> cascjax.covariance_factors(cov).tolist()   # Cholesky; model 0 has no variance in the second: row 0 is 0
      [[[2.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 2.0]]]
    """

    def one(s):
        zero = jnp.diagonal(s) <= 0
        block = jnp.where(zero[:, None] | zero[None, :], 0, s) + jnp.diag(zero.astype(s.dtype))
        chol = jnp.linalg.cholesky(block)
        w, v = jnp.linalg.eigh(block)
        root = v * jnp.sqrt(jnp.maximum(w, 0))[None]
        factor = jnp.where(jnp.all(jnp.isfinite(chol)), chol, root)
        return jnp.where(zero[:, None], 0, factor)

    return jax.vmap(one)(jnp.asarray(cov))
