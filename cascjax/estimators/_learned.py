"""The paper's learned estimators (DESIGN section 2): one logistic regression per target model and run pattern.

For every run pattern R with |R| ≤ D (and the full set) and every model m, a logistic regression of m's
correctness on the query features, the answer features of every model in R (an indicator that it ran, its
numeric answer features, whether an answer was extracted) and, for every pair of models in R, whether their
answers agree. R = ∅ gives m's ex-ante estimate; m ∈ R its post-hoc one; m ∉ R its ex-ante estimate given R's
answers. The regressions fit at once (:mod:`cascjax.estimators._logistic`), one L-BFGS run per L2 strength of
a grid (the weakest penalty needs the most iterations; the others do not wait for it), each regression's
strength picked on a held-out part of the training rows, then one run refits them all. Costs: ex ante a
per-model least-squares regression on the query features, post hoc the observed cost. Uncertainty: Σ(R) as
:func:`cascjax.fit_covariances` of the training rows' table (the paper's ``fit_covariances``), one chunk of
queries at a time. The training rows are padded to a query bucket (:func:`cascjax._compile.bucket`) with rows
of weight 0: one set of compiled programs serves every training-set size of a bucket.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _compile
from .._data import Dataset
from .._errors import CascjaxError
from .._estimates import MAX_STATE_MODELS, Estimates, StateEstimates, StateModel, run_patterns
from ._features import Features
from ._logistic import ITERATIONS, TOLERANCE, fit_logistic, mean_log_loss

#: L2 strengths tried per regression (on standardised features), and the share of the training rows held out
#: to choose among them.
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0)
HOLDOUT = 0.2


class Learned(NamedTuple):
    """A fitted learned estimator (NumPy arrays; see :func:`fit_learned`).

    Attributes:
      weights: [S, M, F] quality regression weights per fitted pattern and target model.
      patterns: [S] the fitted run patterns (bitmasks): every R with |R| ≤ max_depth, then the longer prefixes
        {0..j−1} (the states the cascades reach) up to the full set.
      alpha: [S, M] the L2 strength chosen for each regression.
      center, scale: standardisation of the query [Fq] and per-model answer features [Fm] (train rows).
      cost_weights: [M, Fq + 1] ex-ante cost regression per model (intercept first).
      train_mean: [M] each model's mean quality on the training rows.
      covariance: [2^M, M, M] Σ(R) fitted on the training rows.
      max_depth: D.
      post_hoc: ``"learned"`` or ``"perfect"`` (a run model's quality becomes known).
      ante: ``"learned"`` or ``"mean"`` (models not run get their training mean: the paper's baseline).
    """

    weights: np.ndarray
    patterns: np.ndarray
    alpha: np.ndarray
    center: tuple
    scale: tuple
    cost_weights: np.ndarray
    train_mean: np.ndarray
    covariance: np.ndarray
    max_depth: int
    post_hoc: str
    ante: str


def _patterns(m: int, depth: int) -> np.ndarray:
    """The run patterns fitted: every R with |R| ≤ D, then the longer prefixes {0..j−1} (the cascades' states)
    up to the full set."""
    rows = [sum(1 << i for i in c) for d in range(depth + 1) for c in itertools.combinations(range(m), d)]
    rows += [(1 << j) - 1 for j in range(depth + 1, m + 1)]
    return np.asarray(rows, np.int64)


def _layout(m: int, fq: int, fm: int) -> tuple[int, np.ndarray]:
    """Columns of the design: [intercept, query (fq), per model (ran, fm answer features), per pair agree].
    Returns F and the [2^M, F] mask of the columns each run pattern uses."""
    pairs = list(itertools.combinations(range(m), 2))
    width = 1 + fq + m * (1 + fm) + len(pairs)
    ran = run_patterns(m)  # [2^M, M]
    mask = np.zeros((1 << m, width), bool)
    mask[:, :1 + fq] = True
    for i in range(m):
        start = 1 + fq + i * (1 + fm)
        mask[:, start:start + 1 + fm] = ran[:, i:i + 1]
    for k, (i, j) in enumerate(pairs):
        mask[:, 1 + fq + m * (1 + fm) + k] = ran[:, i] & ran[:, j]
    return width, mask


def _design(f: Features, center, scale) -> np.ndarray:
    """[N, F] features of every query with every model run (a pattern's mask keeps its columns)."""
    n, m, _ = f.model.shape
    q = (f.query - center[0]) / scale[0]
    mf = (f.model - center[1]) / scale[1]
    per_model = np.concatenate([np.ones((n, m, 1)), mf], axis=2).reshape(n, -1)
    i, j = np.triu_indices(m, 1)
    agree = ((f.answer[:, i] == f.answer[:, j]) & (f.answer[:, i] >= 0)).astype(np.float64)
    return np.concatenate([np.ones((n, 1)), q, per_model, agree], axis=1)


def fit_learned(ds: Dataset, features: Features, train, *, max_depth: int | None = None, post_hoc: str = "learned",
                ante: str = "learned", l2=L2_GRID, holdout: float = HOLDOUT, seed: int = 0,
                iterations: int = ITERATIONS, tolerance: float = TOLERANCE) -> Learned:
    """Fits the learned estimators on the training rows ``train``.

    Args:
      ds: the dataset (quality in [0, 1]: correctness or a score; cost).
      features: its :class:`Features` (:func:`read_features`).
      train: the training queries (indices or an [N] boolean mask).
      max_depth: D, the largest run pattern fitted (default M).
      post_hoc: ``"learned"`` (regressions for run models too) or ``"perfect"`` (the paper's SWE-bench setting:
        a run model's quality becomes known).
      ante: ``"learned"`` or ``"mean"``: a model not run gets its training mean (the paper's baseline cascade).
      l2: the L2 strengths tried; each regression takes the one of lowest held-out log-loss.
      holdout: the share of the training rows held out to choose it (then all training rows refit).
      seed: the held-out part's draw.
      iterations, tolerance: L-BFGS stops a regression after that many iterations or once the gradient norm
        of its objective is at most ``tolerance``.

    Returns:
      :class:`Learned`; :func:`state_estimates` turns it into estimates for any rows.

    Example:
      >>> import numpy as np, cascjax
      >>> from cascjax import estimators
      >>> ds, f = cascjax.load_example(), estimators.example_features()
      >>> rows = np.arange(0, 12020, 40)   # 301 queries, to keep the example quick
      >>> fit = estimators.fit_learned(ds.take(rows), f.take(rows), np.arange(200), max_depth=1)
      >>> fit.weights.shape[:2], fit.patterns.size   # 1 + 6 patterns with |R| <= 1, prefixes of 2..6
      ((12, 6), 12)
    """
    n, m = ds.quality.shape
    if m > MAX_STATE_MODELS:
        raise CascjaxError(f"learned estimators tabulate 2^M run patterns; at most {MAX_STATE_MODELS} models, got {m}")
    if features.answer.shape != (n, m):
        raise CascjaxError(f"features are for {features.answer.shape} queries x models, the dataset is {(n, m)}")
    if post_hoc not in ("learned", "perfect"):
        raise CascjaxError(f"unknown post_hoc {post_hoc!r}; choose 'learned' or 'perfect'")
    if ante not in ("learned", "mean"):
        raise CascjaxError(f"unknown ante {ante!r}; choose 'learned' or 'mean'")
    depth = m if max_depth is None else int(max_depth)
    if not 1 <= depth <= m:
        raise CascjaxError(f"max_depth must be between 1 and M = {m}, got {max_depth}")
    quality = np.asarray(ds.quality, np.float64)
    if (quality < 0).any() or (quality > 1).any():
        raise CascjaxError("learned estimators regress quality in [0, 1] (correctness or a score); "
                           f"the dataset holds values in [{quality.min():g}, {quality.max():g}]")
    rows = np.asarray(train)
    rows = np.nonzero(rows)[0] if rows.dtype == bool else rows
    if rows.size < 10:
        raise CascjaxError(f"fitting learned estimators needs at least 10 training queries, got {rows.size}")
    l2 = np.asarray(l2, np.float64)
    if l2.ndim != 1 or l2.size == 0 or not (l2 > 0).all():
        raise CascjaxError("l2 must be a non-empty list of positive strengths")
    center = (features.query[rows].mean(0), features.model[rows].mean(0))
    scale = tuple(np.where(x[rows].std(0) > 0, x[rows].std(0), 1.0) for x in (features.query, features.model))
    train = features.take(rows)
    width, masks = _layout(m, features.query.shape[1], features.model.shape[2])
    patterns = _patterns(m, depth)
    s = patterns.size

    # The training rows padded to a query bucket with rows of weight 0: one compiled program per bucket, not
    # per training-set size (a fit inside a loop over splits or pools would otherwise compile ~20 programs).
    size = _compile.bucket(rows.size)
    x = _compile.pad_rows(_design(train, center, scale), size)
    y = _compile.pad_rows(quality[rows], size)  # [size, M]
    real = np.arange(size) < rows.size
    # α per regression: fit on the training rows but a held-out part, for every α of the grid; then refit.
    held = np.zeros(size, bool)
    held[np.random.default_rng(seed).permutation(rows.size)[:max(1, int(round(holdout * rows.size)))]] = True
    target = np.tile(np.arange(m), s)  # problem p = (pattern p // M, model p % M)
    mask = np.repeat(masks[patterns], m, axis=0)  # [S·M, F]
    probs = mask.shape[0]
    # One L-BFGS run per strength: a run lasts as long as its slowest problem, and the weakest penalty needs the
    # most iterations (713 of one run on all four, 2,404 rows of the example at max_depth 2), so the strong ones
    # no longer wait for it; every run has the same [S·M] shape, one compiled program (the refit's too).
    loss = np.stack([_chunked(lambda t, w_: mean_log_loss(*_put(x, y, t, held), _put(w_)[0]), target,
                              _fit(x, y, target, mask, real & ~held, np.full(probs, a), iterations, tolerance),
                              rows=size) for a in l2])
    alpha = l2[np.argmin(loss, axis=0)]
    w = _fit(x, y, target, mask, real, alpha, iterations, tolerance)
    c = np.concatenate([np.ones((rows.size, 1)), (train.query - center[0]) / scale[0]], axis=1)
    cost = np.asarray(ds.cost, np.float64)[rows]
    cost_weights = np.linalg.lstsq(c, cost, rcond=None)[0].T  # [M, Fq + 1]
    fitted = Learned(w.reshape(s, m, width), patterns, alpha.reshape(s, m), center, scale, cost_weights,
                     quality[rows].mean(0), np.zeros((1 << m, m, m)), depth, post_hoc, ante)
    return fitted._replace(covariance=_covariance(fitted, train, quality[rows], cost))


#: Queries per chunk of the training table when Σ(R) is fitted (bounds its memory: [chunk, 2^M, M] float64).
COVARIANCE_ELEMENTS = 1 << 22


def _covariance(fitted: Learned, train: Features, quality, cost) -> np.ndarray:
    """Σ(R) on the training rows, as :func:`cascjax.fit_covariances` of their table (the covariance over queries
    of μ(n, R) − μ(n, all run)), in float64 NumPy one chunk of queries at a time: no [N, 2^M, M] table is held
    and no program is compiled per training-set size. One pass with a shift (the first chunk's mean) keeps
    the sums of squares well conditioned."""
    n, m = quality.shape
    model = _model(fitted, train, quality, cost, "none", np.float64, put=lambda a: a)
    chunk = max(1, COVARIANCE_ELEMENTS // ((1 << m) * m))
    total = np.zeros((1 << m, m))
    squares = np.zeros((1 << m, m, m))
    shift = None
    for start in range(0, n, chunk):
        mu = np.asarray(model.take(np.arange(start, min(n, start + chunk))).dense().quality, np.float64)
        diff = mu - mu[:, -1:]
        shift = diff.mean(0) if shift is None else shift
        d = diff - shift
        total += d.sum(0)
        squares += np.einsum("nri,nrj->rij", d, d)
    mean = total / n
    return (squares - n * mean[:, :, None] * mean[:, None, :]) / (n - 1)


#: Problems per L-BFGS run: at most this many elements of the [P, N] logits (bounds memory; runs reuse one
#: compiled program per shape).
RUN_ELEMENTS = 1 << 25


def _put(*arrays):
    dt = jnp.zeros(()).dtype  # float64 when x64 is on, else float32
    return tuple(_compile.put(a, np.int32 if np.asarray(a).dtype.kind in "iu" else dt) for a in arrays)


def _chunked(run, target, *per_problem, rows):
    """``run(target, *per_problem)`` over runs of at most RUN_ELEMENTS / rows problems (the last padded by
    repeating its first problem), concatenated."""
    size = max(1, min(target.size, RUN_ELEMENTS // max(rows, 1)))
    out = []
    for start in range(0, target.size, size):
        part = slice(start, start + size)
        pad = size - target[part].size
        args = [np.concatenate([a[part], np.repeat(a[part][:1], pad, axis=0)]) for a in (target,) + per_problem]
        out.append(np.asarray(run(*args))[:size - pad])
    return np.concatenate(out)


def _fit(x, y, target, mask, include, alpha, iterations, tolerance):
    """Weights [P, F] of the problems (target, mask, alpha) on the rows ``include``, in runs of few problems."""
    def run(t, mk, a):
        return fit_logistic(*_put(x, y, t, include, mk, a), iterations=iterations, tolerance=tolerance)[0]

    return _chunked(run, target, mask, alpha, rows=x.shape[0]).astype(np.float64)


def state_estimates(fitted: Learned, ds: Dataset, features: Features, *, uncertainty: str = "covariance"
                    ) -> StateEstimates:
    """The learned estimates of ``ds``'s queries as a :class:`cascjax.StateEstimates` table [N, 2^M, M].

    Rows R with |R| > max_depth that are not a prefix {0..j−1} (no strategy with that ``max_depth`` reaches
    them; the cascades' prefixes are fitted at every length) hold the full set's estimates.

    Args:
      fitted: :func:`fit_learned`'s result.
      ds, features: the queries to estimate (e.g. the test split) and their features.
      uncertainty: ``"covariance"`` (Σ(R) of the training rows, the paper's), ``"independent"`` (σ = the
        square root of its diagonal) or ``"none"`` (σ = 0).

    Returns:
      :class:`cascjax.StateEstimates` in the dataset's dtype.

    Example:
      >>> import numpy as np, cascjax
      >>> from cascjax import estimators
      >>> ds, f = cascjax.load_example(), estimators.example_features()
      >>> rows = np.arange(0, 12020, 40)
      >>> fit = estimators.fit_learned(ds.take(rows), f.take(rows), np.arange(200), max_depth=1)
      >>> est = estimators.state_estimates(fit, ds.take(rows[200:]), f.take(rows[200:]))
      >>> est.quality.shape, est.covariance.shape
      ((101, 64, 6), (64, 6, 6))
    """
    return state_model(fitted, ds, features, uncertainty=uncertainty).dense()


def state_model(fitted: Learned, ds: Dataset, features: Features, *, uncertainty: str = "covariance") -> StateModel:
    """The learned estimates of ``ds``'s queries as a :class:`cascjax.StateModel`: the regressions themselves,
    evaluated inside cascade routing's kernel for one chunk of queries at a time (no [N, 2^M, M] table; the
    other strategies read only a few rows). Arguments as :func:`state_estimates`, whose table is this
    model's :meth:`~cascjax.StateModel.dense`.

    Example:
      >>> import numpy as np, cascjax
      >>> from cascjax import estimators
      >>> ds, f = cascjax.load_example(), estimators.example_features()
      >>> rows = np.arange(0, 12020, 40)
      >>> fit = estimators.fit_learned(ds.take(rows), f.take(rows), np.arange(200), max_depth=1)
      >>> model = estimators.state_model(fit, ds.take(rows), f.take(rows))
      >>> curve = cascjax.sweep(ds.take(rows), model, [0.0, 1e-4], "cascade_routing", max_depth=2, samples=8)
      >>> curve.ran.shape
      (2,)
    """
    if uncertainty not in ("covariance", "independent", "none"):
        raise CascjaxError(f"unknown uncertainty {uncertainty!r}; choose 'covariance', 'independent' or 'none'")
    n, m = ds.quality.shape
    if fitted.weights.shape[1] != m or features.answer.shape != (n, m):
        raise CascjaxError(f"the estimator was fitted on {fitted.weights.shape[1]} models; the dataset and features "
                           f"are {(n, m)} and {features.answer.shape}")
    return _model(fitted, features, ds.quality, ds.cost, uncertainty, ds.quality.dtype, put=jax.device_put)


def _model(fitted: Learned, features: Features, quality, cost, uncertainty: str, dtype, put) -> StateModel:
    """:func:`state_model` of the queries with these features, qualities and costs [N, M]; arrays in ``dtype``,
    each passed through ``put`` (``jax.device_put``, or the identity for NumPy)."""
    n, m = np.shape(quality)
    which = np.full(1 << m, fitted.patterns.size - 1, np.int32)  # rows not fitted: the full set's
    which[fitted.patterns] = np.arange(fitted.patterns.size)
    c = np.concatenate([np.ones((n, 1)), (features.query - fitted.center[0]) / fitted.scale[0]], axis=1)
    ran = run_patterns(m)
    cov = fitted.covariance
    if fitted.post_hoc == "perfect":  # a run model's quality is known: no deviation once run
        cov = cov * ~(ran[:, :, None] | ran[:, None, :])
    sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0)) if uncertainty == "independent" else None
    cast = lambda a: None if a is None else put(np.asarray(a, dtype))  # noqa: E731
    return StateModel(cast(_design(features, fitted.center, fitted.scale)), cast(fitted.weights), put(which),
                      cast(c @ fitted.cost_weights.T), cast(cost),
                      cast(quality) if fitted.post_hoc == "perfect" else None,
                      cast(fitted.train_mean) if fitted.ante == "mean" else None,
                      cast(sd), cast(cov) if uncertainty == "covariance" else None)


def separable(fitted: Learned, ds: Dataset, features: Features) -> Estimates:
    """The separable estimates of the same regressions (the baseline next to the learned table): ex ante μ(n, ∅)
    — query features only — and post hoc μ(n, {m}) — m's own answer, no agreement; costs as the table's,
    σ ante from the training rows' Σ(∅), σ post 0.

    Example:
      >>> import numpy as np, cascjax
      >>> from cascjax import estimators
      >>> ds, f = cascjax.load_example(), estimators.example_features()
      >>> rows = np.arange(0, 12020, 40)
      >>> fit = estimators.fit_learned(ds.take(rows), f.take(rows), np.arange(200), max_depth=1)
      >>> estimators.separable(fit, ds.take(rows), f.take(rows)).quality_ante.shape
      (301, 6)
    """
    m = ds.n_models
    own = 1 << np.arange(m)
    table = state_model(fitted, ds, features, uncertainty="none").dense(states=np.r_[0, own, (1 << m) - 1])
    mu, cost = np.asarray(table.quality), np.asarray(table.cost)  # rows ∅, {0}, ..., {M−1}, all
    post = mu[:, 1 + np.arange(m), np.arange(m)]
    sd = np.sqrt(np.maximum(np.diagonal(fitted.covariance[0]), 0))
    dtype = ds.quality.dtype
    put = lambda a: jax.device_put(np.asarray(a, dtype))  # noqa: E731
    return Estimates(put(mu[:, 0]), put(post), put(np.broadcast_to(sd, post.shape)), put(np.zeros_like(post)),
                     put(cost[:, 0]), put(cost[:, -1]))
