"""What a strategy sees: estimates of quality, its uncertainty and cost (DESIGN section 2)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._data import Dataset
from ._errors import CascjaxError

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
        rows = _rows(rows)
        return Estimates(*(a[rows] for a in self[:6]), self.covariance)

    def to_states(self) -> "StateEstimates":
        """The same estimates as a table over information states: row R of query n holds, for every model m,
        the post-hoc value if m ∈ R (bit m of R) and the ex-ante value otherwise. Every strategy decides on the
        table exactly as on ``self``, to the bit.

        Returns:
          :class:`StateEstimates` with ``quality``, ``cost``, ``sd`` [N, 2^M, M] (the covariance is kept).

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1]], [[1, 2]] * 2)
          >>> est = cascjax.perfect_estimates(ds)._replace(quality_ante=jnp.full((2, 2), 0.5))
          >>> table = est.to_states()
          >>> table.quality.shape, table.quality[0].tolist()   # rows R = {}, {0}, {1}, {0, 1}
          ((2, 4, 2), [[0.5, 0.5], [0.0, 0.5], [0.5, 1.0], [0.0, 1.0]])
        """
        m = np.shape(self.quality_ante)[1]
        if m > MAX_STATE_MODELS:
            raise CascjaxError(f"a table over information states has 2^M rows per query; at most {MAX_STATE_MODELS} "
                               f"models are supported, got {m}")
        ran = run_patterns(m)[None]  # [1, 2^M, M]
        # In NumPy, then placed: an eager jnp.where would compile a program per shape.
        table = lambda post, ante: jax.device_put(np.where(ran, np.asarray(post)[:, None],  # noqa: E731
                                                           np.asarray(ante)[:, None]))
        return StateEstimates(table(self.quality_post, self.quality_ante), table(self.cost_post, self.cost_ante),
                              table(self.sd_post, self.sd_ante), self.covariance)


class StateEstimates(NamedTuple):
    """Estimates that depend on the information state: a table over the 2^M sets of models already run.

    Row R (a bitmask, bit m = model m in the dataset's order) of query n holds what a strategy sees when the
    models of R have run: for m ∈ R the post-hoc estimate of m, for m ∉ R the ex-ante estimate of m *given R's
    answers* — the paper's learned estimators, whose predictions change with the agreement between the models
    already run (DESIGN section 2, "pattern table"). :meth:`Estimates.to_states` gives the table of separable
    estimates; every strategy decides on it exactly as on the separable form. Routing sees row 0; the threshold
    cascade compares ``quality[n, {0..j}, j]`` with θ_j; the cascade and cascade routing the rows of the
    states they reach, and the answer is the run model with the highest estimate in the final state's row.

    Attributes:
      quality: [N, 2^M, M] quality estimates μ(n, R).
      cost: [N, 2^M, M] cost estimates ĉ(n, R).
      sd: [N, 2^M, M] standard deviations σ(n, R) of the quality estimates (independent), or None: 0 (no
        deviation, Q = max μ).
      covariance: optional [2^M, M, M] Σ(R) shared by all queries, as :attr:`Estimates.covariance`; when given,
        ``sd`` is not used.

    At most ``MAX_STATE_MODELS`` (16) models: a dense table holds N·2^M·M values per field.

    Example:
      >>> import jax.numpy as jnp, cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1]], [[1, 2]] * 2)
      >>> q = jnp.asarray([[[0.5, 0.5], [0.0, 0.9], [0.5, 1.0], [0.0, 1.0]]] * 2)   # model 0 wrong: 1 looks better
      >>> est = cascjax.StateEstimates(q, jnp.broadcast_to(ds.cost[:, None], (2, 4, 2)))
      >>> cascjax.sweep(ds, est, [0.0, 0.3], "cascade").ran.tolist()   # at λ = 0.3 running model 1 is worth it
      [2.0, 2.0]
    """

    quality: jax.Array
    cost: jax.Array
    sd: jax.Array | None = None
    covariance: jax.Array | None = None

    def take(self, rows) -> "StateEstimates":
        """The estimates of the queries at ``rows`` (as :meth:`Estimates.take`; the covariance is kept).

        Args:
          rows: [R] integer indices (or a boolean mask [N]) of the queries to keep, in that order.

        Returns:
          :class:`StateEstimates` with every table [R, 2^M, M].

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1]], [[1, 2]] * 3)
          >>> table = cascjax.perfect_estimates(ds).to_states().take([2, 0])
          >>> table.quality.shape, table.quality[:, 0].tolist()   # row ∅ of queries 2 and 0
          ((2, 4, 2), [[0.0, 1.0], [0.0, 1.0]])
        """
        rows = _rows(rows)
        return StateEstimates(self.quality[rows], self.cost[rows], None if self.sd is None else self.sd[rows],
                              self.covariance)


#: The largest pool a dense table over information states ([N, 2^M, M]) is accepted for.
MAX_STATE_MODELS = 16


class StateModel(NamedTuple):
    """State-dependent estimates given by a fitted model instead of a table: a logistic regression per run
    pattern and model on each query's features, evaluated inside the kernels for the queries of one chunk at
    a time, so no [N, 2^M, M] table is held (:func:`cascjax.estimators.state_model` makes one).

    In state R, model m's quality estimate is σ(features[n] · weights[which[R], m]) — or its true quality
    ``truth[n, m]`` if m ∈ R and ``truth`` is given (post hoc perfect), or ``mean[m]`` if m ∉ R and ``mean``
    is given (the paper's baseline); its cost estimate ``cost_post[n, m]`` if m ∈ R, else ``cost_ante[n, m]``.

    Attributes:
      features: [N, F] each query's design row (every model run; the weights of a pattern are 0 on the
        columns of models not in it).
      weights: [S, M, F] the regressions of S fitted patterns.
      which: [2^M] int32, the fitted pattern each state R uses.
      cost_ante, cost_post: [N, M].
      truth: [N, M] or None.  mean: [M] or None.
      sd: [2^M, M] σ(R) shared by the queries, or None (0).  covariance: [2^M, M, M] Σ(R), or None.

    Example:
      >>> import numpy as np, cascjax
      >>> from cascjax import estimators
      >>> ds, f = cascjax.load_example(), estimators.example_features()
      >>> rows = np.arange(0, 12020, 40)
      >>> fit = estimators.fit_learned(ds.take(rows), f.take(rows), np.arange(200), max_depth=1)
      >>> model = estimators.state_model(fit, ds.take(rows), f.take(rows))
      >>> model.features.shape, model.weights.shape, model.dense().quality.shape
      ((301, 127), (12, 6, 127), (301, 64, 6))
    """

    features: jax.Array
    weights: jax.Array
    which: jax.Array
    cost_ante: jax.Array
    cost_post: jax.Array
    truth: jax.Array | None = None
    mean: jax.Array | None = None
    sd: jax.Array | None = None
    covariance: jax.Array | None = None

    def take(self, rows) -> "StateModel":
        """The model's estimates for the queries at ``rows`` (indices or an [N] boolean mask).

        Example:
          >>> import numpy as np, jax.numpy as jnp, cascjax
          >>> model = cascjax.StateModel(jnp.ones((3, 1)), jnp.zeros((1, 2, 1)), jnp.zeros(4, jnp.int32),
          ...                            jnp.ones((3, 2)), jnp.ones((3, 2)))   # N = 3, M = 2, one pattern
          >>> model.take([2, 0]).features.shape, model.take(np.arange(3) < 1).cost_ante.shape
          ((2, 1), (1, 2))
        """
        rows = _rows(rows)
        return self._replace(features=self.features[rows], cost_ante=self.cost_ante[rows],
                             cost_post=self.cost_post[rows], truth=None if self.truth is None else self.truth[rows])

    def dense(self, states=None) -> StateEstimates:
        """The table [N, 2^M, M] (or only the rows ``states``), computed in float64 NumPy and cast to the
        cost's dtype.

        Example:
          >>> import jax.numpy as jnp, cascjax
          >>> model = cascjax.StateModel(jnp.ones((3, 1)), jnp.zeros((1, 2, 1)), jnp.zeros(4, jnp.int32),
          ...                            jnp.ones((3, 2)), jnp.full((3, 2), 2.0))   # weights 0: σ(0) = 1/2
          >>> table = model.dense()
          >>> table.quality.shape, table.quality[0].tolist(), table.cost[0, 1].tolist()   # row {0}: 0 run
          ((3, 4, 2), [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], [2.0, 1.0])
        """
        m = np.shape(self.cost_ante)[1]
        states = np.arange(1 << m) if states is None else np.asarray(states)
        weights, which = np.asarray(self.weights, np.float64), np.asarray(self.which)[states]
        logits = np.einsum("nf,smf->nsm", np.asarray(self.features, np.float64), weights[which])
        mu = 1 / (1 + np.exp(-logits))
        ran = run_patterns(m)[states][None]
        if self.truth is not None:
            mu = np.where(ran, np.asarray(self.truth, np.float64)[:, None], mu)
        if self.mean is not None:
            mu = np.where(ran, mu, np.asarray(self.mean, np.float64)[None, None])
        cost = np.where(ran, np.asarray(self.cost_post)[:, None], np.asarray(self.cost_ante)[:, None])
        dtype = np.asarray(self.cost_ante).dtype
        sd = None if self.sd is None else np.broadcast_to(np.asarray(self.sd)[states][None], mu.shape)
        put = lambda a: None if a is None else jax.device_put(np.asarray(a, dtype))  # noqa: E731
        return StateEstimates(put(mu), put(cost), put(sd), self.covariance)


def _rows(rows) -> np.ndarray:
    rows = np.asarray(rows)
    return np.nonzero(rows)[0] if rows.dtype == bool else rows


def run_patterns(n_models: int) -> np.ndarray:
    """[2^M, M] bool: model m is run in pattern R (bit m of R)."""
    return (np.arange(1 << n_models)[:, None] >> np.arange(n_models)[None]) & 1 == 1


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


def fit_covariances(est, queries=None):
    """``est`` with a covariance per run-pattern fitted as the paper's ``fit_covariances`` does.

    Σ(R) is the covariance over queries (unbiased, as ``np.cov``) of μ(n, R) − μ(n, all models run): the
    error of the estimates made in state R relative to the estimates made once every model has run. In the
    separable ante/post form that difference is ante − post for a model not in R and 0 for a run model, so
    Σ(R) is the covariance of (ante − post) with the rows and columns of the models in R zeroed. Unlike the
    independent ``sd_ante`` it keeps the correlations between the models' estimation errors. For
    :class:`StateEstimates` the difference is taken row by row of the table (row R against the last row, every
    model run), as the paper fits it for its learned estimators.

    Args:
      est: :class:`Estimates` or :class:`StateEstimates` (their ``covariance``, if any, is replaced).
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
    states = isinstance(est, StateEstimates)
    if states:  # μ(n, R) − μ(n, all run), per state R: [N, 2^M, M]
        q = jnp.asarray(est.quality)
        ante, post = q, jnp.broadcast_to(q[:, -1:], q.shape)
    else:
        ante, post = jnp.asarray(est.quality_ante), jnp.asarray(est.quality_post)
    n, m = ante.shape[0], ante.shape[-1]
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
    if states:
        return est._replace(covariance=jnp.einsum("nri,nrj->rij", diff, diff) / (diff.shape[0] - 1))
    full = diff.T @ diff / (diff.shape[0] - 1)
    free = ~run_patterns(m)  # [2^M, M]: model not run in pattern R
    return est._replace(covariance=full[None] * (free[:, :, None] & free[:, None, :]))


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
