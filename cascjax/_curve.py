"""Curves (one strategy evaluated along λ) and γ-mixtures at budgets."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._decide import check_tie, tie_rtol as _tie_rtol
from ._errors import CascjaxError


class Curve(NamedTuple):
    """A strategy evaluated at L values of λ: realised mean cost and quality per query.

    Attributes:
      lam: [L] the trade-off values, ascending for curves made by cascjax; [L, D] (one per step) for cascades,
        thresholds θ for the threshold cascade.
      cost: [L] realised mean cost per query.
      quality: [L] realised mean quality.
      answered: [L, M] fraction of queries each model answered, or None.
      ran: [L] mean number of models run per query, or None.
      choice: [L, N] int32 index of the answering model per query (``sweep(..., return_choices=True)``), or None.
      query_cost: [L, N] realised cost of each query (the models run), with ``choice``; or None. Together they
        give per-query outcomes (``quality[n, choice]``, ``query_cost``), e.g. for a paired bootstrap.

    For an exact path (:func:`cascjax.routing_path`, :func:`cascjax.cascade_path`) the points are the path's
    vertices: vertex k is what the MIN-tie strategy realises for λ in [lam[k], lam[k+1]) and the MAX-tie
    strategy for λ in (lam[k], lam[k+1]]; vertex 0 is the MAX strategy at λ = 0. See :func:`cascjax.path_at`.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4, models=["small", "big"])
      >>> curve = cascjax.sweep(ds, cascjax.perfect_estimates(ds), [0.0, 0.5, 2.0])   # L = 3 values of λ
      >>> curve.lam.shape, curve.cost.shape, curve.answered.shape   # [L], [L], [L, M]
      ((3,), (3,), (3, 2))
      >>> curve.cost.tolist(), curve.quality.tolist(), curve.answered.tolist()
      ([1.5, 1.5, 1.0], [1.0, 1.0, 0.5], [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
      >>> curve.choice is None   # per-query outcomes only with return_choices=True
      True
    """

    lam: jax.Array
    cost: jax.Array
    quality: jax.Array
    answered: jax.Array | None = None
    ran: jax.Array | None = None
    choice: jax.Array | None = None
    query_cost: jax.Array | None = None


class Mixture(NamedTuple):
    """The best γ-mixture of two λ-adjacent strategies of a curve for each budget. All fields [B].

    The strategy runs curve point ``hi`` with probability ``gamma`` and point ``lo`` otherwise (one coin per
    query); its expected cost and quality are the linear interpolation, computed in expectation. For an exact
    routing path, ``hi = lo − 1`` is s_MAX(λ) and ``lo`` is s_MIN(λ) at λ = ``lam`` (Theorem 1 of the paper).

    Attributes:
      budget: [B] the budgets (mean cost per query).
      lam: [B] λ of point ``lo``.
      lo: [B] int32 index of the cheaper curve point.
      hi: [B] int32 index of the more expensive curve point (equal to ``lo`` when no mixing is needed).
      gamma: [B] probability of ``hi``.
      cost: [B] expected mean cost ≤ budget: equal to it when the best candidate is a mixture (always the case
        for a budget inside the cost range of a curve whose cost falls as λ grows, e.g. the exact routing path
        under perfect cost estimates); a single point's cost otherwise.
      quality: [B] expected mean quality.
      feasible: [B] bool, False where the budget is below every point's cost (then lam, cost and quality are
        NaN, gamma 0 and lo = hi = the cheapest point).

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4, models=["small", "big"])
      >>> path = cascjax.routing_path(ds, cascjax.perfect_estimates(ds))   # vertex costs 1.75, 1.5, 1.0
      >>> mix = cascjax.at_budget(path, [0.5, 1.25, 2.0])                   # B = 3 budgets
      >>> mix.feasible.tolist()   # 0.5 is below the cheapest strategy (cost 1.0)
      [False, True, True]
      >>> mix.lo.tolist()[1:], mix.hi.tolist()[1:], mix.gamma.tolist()[1:]   # 1.25: half of vertex 1, half of 2
      ([2, 0], [1, 0], [0.5, 0.0])
      >>> [round(float(c), 3) for c in mix.cost], [round(float(q), 3) for q in mix.quality]
      ([nan, 1.25, 1.75], [nan, 0.75, 1.0])
    """

    budget: jax.Array
    lam: jax.Array
    lo: jax.Array
    hi: jax.Array
    gamma: jax.Array
    cost: jax.Array
    quality: jax.Array
    feasible: jax.Array


def at_budget(curve: Curve, budgets, *, confidence: float | None = None, holdout: int | None = None) -> Mixture:
    """The best strategy of the curve, or γ-mixture of two λ-adjacent ones, with expected cost ≤ each budget.

    Candidates are every point with cost ≤ B (up to 32 ulps of the largest cost, for rounding) and, for every
    pair of λ-adjacent points whose costs bracket B, their mixture of cost exactly B. The one of highest
    quality wins; on equal quality (up to 32 ulps of the largest quality) a mixture, spending exactly B,
    before a point, then the lower index. With cost non-increasing in λ — always the case under
    perfect cost estimates — this is the bracketing pair, as in Theorem 1.

    With ``confidence`` the budget holds on new data, not only in expectation on the curve's queries: the
    mixture's upper confidence bound on the held-out mean cost (:mod:`cascjax._confidence`: the normal
    approximation with Student's t, from the per-query costs ``curve.query_cost`` of a
    ``sweep(..., return_choices=True)``) must be ≤ B, so that a new split's mean cost exceeds B with probability
    about 1 − ``confidence``; ``cost`` is then the expected cost on the curve's queries (below B by the margin).

    Args:
      curve: a :class:`Curve` (a grid sweep or an exact path) of K points: ``lam``, ``cost``, ``quality`` [K].
      budgets: [B] budgets in the curve's cost unit.
      confidence: None (the budget holds in expectation), or a probability in [0.5, 1).
      holdout: with ``confidence``: the number of new queries whose mean cost must stay ≤ B (default None:
        their population mean).

    Returns:
      A :class:`Mixture`, all fields [B].

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> path = cascjax.routing_path(ds, cascjax.perfect_estimates(ds))
      >>> m = cascjax.at_budget(path, [2e-4])
      >>> round(float(m.cost[0]), 6)
      0.0002
    """
    b = np.atleast_1d(np.asarray(budgets, dtype=curve.cost.dtype))
    if b.ndim != 1:
        raise CascjaxError(f"budgets must be a 1-D array, got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise CascjaxError("budgets must be finite numbers")
    if confidence is not None:
        return _with_confidence(curve, b, confidence, holdout)
    from . import _compile

    # Shape buckets (cascjax._compile): the points and the budgets are padded (copies of the last, masked out),
    # so curves of any length and any number of budgets share a few programs.
    k, n_b = curve.cost.shape[0], b.shape[0]
    size = 1 if k == 1 else _compile.bucket(k)
    lam, cost, quality = _compile.pad_rows((np.asarray(curve.lam), np.asarray(curve.cost),
                                            np.asarray(curve.quality)), size, last=True)
    budgets = _compile.pad_rows(np.asarray(b), _compile.small_bucket(n_b), last=True)
    out = _at_budget(lam, cost, quality, budgets, np.int32(k), _tie_rtol(curve.cost.dtype))
    out = Mixture(*(_compile.cut(a, n_b) for a in out))
    _compile.checkpoint()
    return out


def _with_confidence(curve: Curve, budgets, confidence, holdout) -> Mixture:
    """:func:`at_budget` with a budget that holds on new data (NumPy: candidates are the points and their
    λ-adjacent pairs; per pair the largest γ whose bound is ≤ B; the best quality wins, the first on a tie)."""
    from ._confidence import check_confidence, mixtures

    check_confidence(confidence, holdout)
    if curve.query_cost is None:
        raise CascjaxError("at_budget(confidence=) needs each query's cost: sweep(..., return_choices=True)")
    per_query = np.asarray(curve.query_cost, np.float64)  # [K, N]
    quality = np.asarray(curve.quality, np.float64)
    k = quality.shape[0]
    lo = np.concatenate([np.arange(k), np.arange(1, k)])  # the points (lo = hi), then λ-adjacent pairs
    hi = np.concatenate([np.arange(k), np.arange(k - 1)])
    gamma, value = mixtures(per_query[lo], per_query[hi], quality[lo], quality[hi], budgets, float(confidence),
                            holdout)
    best = np.argmax(value, axis=1)
    rows = np.arange(budgets.size)
    feasible = np.isfinite(value[rows, best])
    g = np.where(feasible, np.where(lo[best] == hi[best], 0.0, gamma[rows, best]), 0.0)
    cost = np.asarray(curve.cost, np.float64)
    cheapest = int(np.argmin(cost))
    lo_b, hi_b = np.where(feasible, lo[best], cheapest), np.where(feasible, hi[best], cheapest)
    mean = np.where(feasible, (1 - g) * cost[lo_b] + g * cost[hi_b], np.nan)
    lam = np.asarray(curve.lam)
    lam_b = np.where(feasible.reshape((-1,) + (1,) * (lam.ndim - 1)), lam[lo_b], np.nan)
    from ._compile import put

    dtype = curve.cost.dtype
    return Mixture(put(budgets), put(lam_b, dtype), put(lo_b, np.int32), put(hi_b, np.int32), put(g, dtype),
                   put(mean, dtype), put(np.where(feasible, value[rows, best], np.nan), dtype), put(feasible))


@partial(jax.jit, static_argnames="rtol")
def _at_budget(lam, cost, quality, budgets, n_points, rtol):
    k = cost.shape[0]
    real = jnp.arange(k) < n_points  # the rest is padding (copies of the last point)
    # Mean costs carry rounding error: a point within 32 ulps of the largest cost above B still counts as
    # affordable (its own cost is then reported), so that B = a point's cost computed elsewhere reaches it.
    slack = rtol * jnp.max(jnp.abs(cost))
    qmag = jnp.max(jnp.abs(quality))
    hi_c, lo_c = cost[:-1], cost[1:]
    hi_q, lo_q = quality[:-1], quality[1:]

    def one(budget):
        vertex_ok = (cost <= budget + slack) & real
        v_q = jnp.where(vertex_ok, quality, -jnp.inf)
        span = hi_c - lo_c
        seg_ok = ((jnp.minimum(hi_c, lo_c) <= budget) & (budget <= jnp.maximum(hi_c, lo_c)) & (span != 0)
                  & real[1:])
        t = jnp.where(seg_ok, (budget - lo_c) / jnp.where(span != 0, span, 1.0), 0.0)
        s_q = jnp.where(seg_ok, lo_q + t * (hi_q - lo_q), -jnp.inf)
        # Segments first so that a tie in quality (up to rounding) spends exactly the budget: the first
        # candidate within the tolerance of the best.
        scores = jnp.concatenate([s_q, v_q])
        top = jnp.max(scores)
        best = jnp.argmax(scores >= top - rtol * qmag)
        feasible = jnp.isfinite(scores[best])
        is_seg = best < k - 1
        seg = jnp.minimum(best, k - 2)
        vert = jnp.clip(best - (k - 1), 0, k - 1)
        lo = jnp.where(is_seg, seg + 1, vert)
        hi = jnp.where(is_seg, seg, vert)
        gamma = jnp.where(is_seg, t[seg], 0.0)
        c = jnp.where(is_seg, budget, cost[vert])
        q = scores[best]
        nan = jnp.asarray(jnp.nan, cost.dtype)
        cheapest = jnp.argmin(jnp.where(real, cost, jnp.inf))  # infeasible: lo = hi = the cheapest point, NaNs
        lo, hi = jnp.where(feasible, lo, cheapest), jnp.where(feasible, hi, cheapest)
        return (jnp.where(feasible, lam[lo], nan), lo.astype(jnp.int32), hi.astype(jnp.int32),
                jnp.where(feasible, gamma, 0.0), jnp.where(feasible, c, nan), jnp.where(feasible, q, nan), feasible)

    if k == 1:  # a single point: no segments
        ok = cost[0] <= budgets + slack
        zeros = jnp.zeros(budgets.shape, jnp.int32)
        nan = jnp.full(budgets.shape, jnp.nan, cost.dtype)
        return Mixture(budgets, jnp.where(ok.reshape(ok.shape + (1,) * (lam.ndim - 1)), lam[0], jnp.nan), zeros,
                       zeros, jnp.zeros_like(budgets),
                       jnp.where(ok, cost[0], nan), jnp.where(ok, quality[0], nan), ok)
    out = jax.lax.map(one, budgets, batch_size=_budget_batch(k))
    return Mixture(budgets, *out)


def _budget_batch(k: int) -> int:
    return max(1, min(1024, (1 << 24) // max(k, 1)))


def path_at(path: Curve, lam, tie: str = "min", *, tie_rtol: float | None = None) -> Curve:
    """Evaluates an exact path (:func:`cascjax.routing_path`, :func:`cascjax.cascade_path`) at λ values, with
    the MIN or MAX tie rule.

    A λ within a relative ``tie_rtol`` of a breakpoint counts as that breakpoint (where the tied choices are
    both optimal), matching :func:`cascjax.sweep`'s tie tolerance: a breakpoint computed elsewhere, one ulp
    off the path's own, still gives the same answer.

    Args:
      path: the exact path: a :class:`Curve` of K vertices, ``lam`` [K] the λ at which each is reached.
      lam: [L] λ values ≥ 0.
      tie: ``"min"`` (cheapest of tied choices) or ``"max"`` (most expensive).
      tie_rtol: relative tolerance on λ; default 32·eps of the path's dtype (``cascjax.TIE_ULPS``).

    Returns:
      A :class:`Curve` at ``lam``: ``cost``, ``quality`` (and ``ran`` if the path has it) [L] of the vertex each
      λ realises.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4, models=["small", "big"])
      >>> path = cascjax.routing_path(ds, cascjax.perfect_estimates(ds))
      >>> path.lam.tolist(), path.cost.tolist()   # breakpoints 0 (a tie on query 1) and 1 (queries 0 and 2)
      ([0.0, 0.0, 1.0], [1.75, 1.5, 1.0])
      >>> cascjax.path_at(path, [0.0, 0.5, 1.0, 2.0], "min").cost.tolist()
      [1.5, 1.5, 1.0, 1.0]
      >>> cascjax.path_at(path, [0.0, 0.5, 1.0, 2.0], "max").cost.tolist()
      [1.75, 1.5, 1.5, 1.0]
    """
    tie_max = check_tie(tie)
    rtol = _tie_rtol(path.lam.dtype, tie_rtol)
    lam = check_lambdas(lam, path.lam.dtype)
    if lam.ndim != 1:
        raise CascjaxError(f"path_at takes λ of shape [L], got shape {lam.shape}")
    # MIN: every breakpoint <= λ has been passed; MAX: only those < λ (vertex 0 is MAX at λ = 0). In NumPy: the
    # path's length varies from problem to problem, and eager jnp ops would compile a program per length.
    breaks = np.asarray(path.lam)
    if tie_max:
        idx = np.searchsorted(breaks, lam * (1 - rtol), side="left") - 1
    else:
        idx = np.searchsorted(breaks, lam * (1 + rtol), side="right") - 1
    idx = np.clip(idx, 0, breaks.shape[0] - 1)
    at = lambda a: None if a is None else jax.device_put(np.asarray(a)[idx])  # noqa: E731
    return Curve(jax.device_put(lam), at(path.cost), at(path.quality), ran=at(path.ran))


def check_lambdas(lambdas, dtype) -> np.ndarray:
    """Validates a λ array eagerly: finite, non-negative, 1-D or 2-D."""
    lam = np.asarray(lambdas, dtype=np.float64)
    if lam.ndim == 0:
        lam = lam[None]
    if lam.size == 0:
        raise CascjaxError("the λ list is empty")
    bad = ~np.isfinite(lam)
    if bad.any():
        raise CascjaxError(f"λ values must be finite; got {lam[bad].ravel()[0]} at position "
                           f"{tuple(int(i) for i in np.argwhere(bad)[0])}")
    if (lam < 0).any():
        raise CascjaxError(f"λ values must be non-negative; got {lam[lam < 0].ravel()[0]}")
    return np.asarray(lam, dtype=dtype)
