"""Routing: one model per query, chosen ex ante (DESIGN section 4), on a λ grid and as an exact λ-path."""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _chunks, _compile
from ._checks import check_estimates, routing_inputs
from ._compile import count, masked_sum
from ._curve import Curve
from ._data import Dataset
from ._decide import _magnitudes, select
from ._estimates import Estimates
from ._events import _bucket, _finite, _path


@partial(jax.jit, static_argnames=("rtol", "return_choices", "batch_size", "plan"))
def routing_sweep(quality, cost, mu, c_hat, lam, n, tie_max, groups=None, *, rtol, return_choices, batch_size,
                  plan):
    """Routing at every λ of ``lam`` [L]: returns a Curve with [L] cost/quality and [L, M] answered. The first
    ``n`` (traced) of the rows are real queries, the rest padding (weight 0); ``tie_max`` (traced bool) the tie
    rule. Queries
    in chunks over devices (``plan``, :mod:`cascjax._chunks`), ``batch_size`` λ at a time within a chunk.
    ``groups`` [size, G]: sums per group of queries, a trailing G axis (:func:`cascjax._chunks.over_queries`)."""
    m = quality.shape[1]
    decide = jax.vmap(select, in_axes=(0, 0, None, None, None, None, 0))

    def one(args, lam):
        q_, c_, mu_, ch_, w = args
        mags = jax.vmap(_magnitudes)(mu_, ch_)  # λ-independent: once, not once per λ

        def at(lam_l):
            choice = decide(mu_, ch_, lam_l, rtol, tie_max, None, mags)
            got = jnp.take_along_axis(q_, choice[:, None], axis=1)[:, 0]
            spent = jnp.take_along_axis(c_, choice[:, None], axis=1)[:, 0]
            sums = (masked_sum(w, got), masked_sum(w, spent), count(w, choice, m, q_.dtype))
            return sums, ((choice, spent) if return_choices else None)

        sums, per_query = jax.lax.map(at, lam, batch_size=batch_size)
        return sums, (None if per_query is None else tuple(a.T for a in per_query))

    (q, c, answered), per_query = _chunks.over_queries(one, (quality, cost, mu, c_hat), n, plan, (lam,),
                                                       groups=groups)
    if per_query is not None:  # [L, N] answering model and realised cost per query
        per_query = tuple(a.T for a in per_query)
    n = n.astype(q.dtype)
    return Curve(lam, c / n, q / n, answered / n, jnp.ones_like(lam), *(per_query or (None, None)))


def _walk_one(q, c, a, lam0, steps):
    """``steps`` steps along the upper-left convex hull of one query's (ĉ_m, μ_m) points as λ grows.

    Starts at vertex ``a`` (reached at ``lam0``). Returns (vertices [steps] int32, breakpoints [steps]):
    vertex k is reached at λ = breakpoints[k], which is +inf once the cheapest point has been reached (the
    vertex then repeats). Exact arithmetic, no tie tolerance.
    """

    def step(carry, _):
        nxt, lam = _step(q, c, *carry)
        return (nxt, lam), (nxt, lam)

    _, (verts, lams) = jax.lax.scan(step, (a, lam0), None, length=steps)
    return verts, lams


def _step(q, c, a, prev):
    """One step of the hull walk of one query from vertex ``a`` (reached at λ = ``prev``): the next vertex and
    the λ at which it is reached (+inf and ``a`` once no cheaper point is left)."""
    cheaper = c < c[a]
    slope = (q[a] - q) / jnp.where(cheaper, c[a] - c, 1.0)
    slope = jnp.where(cheaper, jnp.maximum(slope, 0.0), jnp.inf)
    # The decision rule with exact ties: smallest slope; on equal slopes the cheapest point (the far end
    # of a collinear edge), then the lowest index. Written out rather than via ``select`` (whose
    # tolerance machinery is dead weight at rtol = 0): this loop is the path's hot spot.
    best = jnp.min(slope)
    tied = cheaper & (slope == best)
    target = jnp.min(jnp.where(tied, c, jnp.inf))
    done = best == jnp.inf  # no cheaper point left
    nxt = jnp.where(done, a, jnp.argmax(tied & (c == target)).astype(jnp.int32))
    # Rounding may make a breakpoint a few ulps smaller than the previous one; keep them ordered.
    return nxt, jnp.maximum(best, prev)


def _candidates(mu, c_hat, width, bins):
    """Per query, a superset of every model the hull walk can reach, found in O(M) without sorting the costs.

    The models go to B bins by log cost (every cost ≤ 0 to the first). A model is dropped when the best μ of
    the bins below its own is higher — or equal, unless the model is λ = 0's MAX choice (the most expensive
    of the best μ) — and every model there is strictly cheaper (the bins' largest cost, so the binning's
    rounding cannot drop a model wrongly): it is beaten (or, for λ > 0, tied in μ) by a strictly cheaper
    model, so the walk never takes it (its slope from any vertex is at least that model's, and on a tie the
    walk takes the cheaper one). Dropping it changes no vertex and no breakpoint, to the bit. With the paper's
    noise levels ~20-40 of 1,000 models remain; with perfect 0/1 estimates, where every correct model ties at
    μ = 1, a few (without the ties, all correct models: the walk's room grew to the whole pool).

    Returns their indices [n, width] (ascending: the walk's lowest-index tie rule holds on them; −1 pads) and
    their count [n] (above ``width``: the caller runs again with more room).
    """
    n, m = mu.shape
    positive = c_hat > 0
    logc = jnp.log(jnp.where(positive, c_hat, 1))
    lo = jnp.min(jnp.where(positive, logc, jnp.inf), axis=1, keepdims=True)
    hi = jnp.max(jnp.where(positive, logc, -jnp.inf), axis=1, keepdims=True)
    scale = jnp.where(hi > lo, bins / jnp.where(hi > lo, hi - lo, 1), 0)
    b = jnp.where(positive, jnp.clip(((logc - lo) * scale).astype(jnp.int32), 0, bins - 1), 0)
    rows = jnp.arange(n)[:, None]
    # Per bin the best μ and the largest cost (one scatter of pairs), then their maxima over the bins below.
    top = jnp.full((n, bins, 2), -jnp.inf, mu.dtype).at[rows, b].max(jnp.stack([mu, c_hat], axis=2))
    below = jnp.concatenate([jnp.full((n, 1, 2), -jnp.inf, mu.dtype), jax.lax.cummax(top, axis=1)[:, :-1]], axis=1)
    below = jnp.take_along_axis(below, b[:, :, None], axis=1)  # [n, M, 2]
    # Dropped: the best model of the bins below is better — or as good, unless this is λ = 0's MAX choice (the
    # most expensive of the best μ) — and (every model there being cheaper) cheaper.
    best = jnp.max(mu, axis=1, keepdims=True)
    top = (mu == best) & (c_hat == jnp.max(jnp.where(mu == best, c_hat, -jnp.inf), axis=1, keepdims=True))
    beaten = (below[..., 0] > mu) | ((below[..., 0] == mu) & ~top)
    keep = ~(beaten & (below[..., 1] < c_hat))
    # The kept models' indices, ascending: the top ``width`` of −index (faster than a scatter on CPU).
    key, idx = jax.lax.top_k(jnp.where(keep, -jnp.arange(m, dtype=jnp.float32), -jnp.inf), width)
    return jnp.where(key > -jnp.inf, idx, -1).astype(jnp.int32), jnp.sum(keep, axis=1, dtype=jnp.int32)


def _events(quality, cost, mu, c_hat, start, lam0, steps):
    """Hull-walk events of a batch of n queries: λ, Δquality, Δcost [n, steps]; the last vertex and its λ [n];
    the realised quality and cost at the start [n]."""
    verts, lams = jax.vmap(_walk_one, in_axes=(0, 0, 0, 0, None))(mu, c_hat, start, lam0, steps)
    verts = jnp.concatenate([start[:, None], verts], axis=1)
    rq = jnp.take_along_axis(quality, verts, axis=1)
    rc = jnp.take_along_axis(cost, verts, axis=1)
    lam = jnp.where(lams > 0, lams, 0.0)  # also maps -0.0 to +0.0 for the bit order in ``_accumulate``
    return lam, jnp.diff(rq, axis=1), jnp.diff(rc, axis=1), verts[:, -1], lams[:, -1], rq[:, 0], rc[:, 0]


#: Hull-walk steps taken for every query; the few queries with longer hulls continue in a second, compacted
#: pass (with the paper's noise levels 80-99 % of queries have at most this many breakpoints).
_FIRST_STEPS = 4

#: Pools of more models than this are first reduced per query by :func:`_candidates`; smaller ones walk all.
_FILTER_ABOVE = 64

#: The candidates' first room per query (more on overflow; the tests set it small to exercise the filter).
_FIRST_WIDTH = 64


#: The last sufficient candidate room per pool size (repeated calls start there: no overflow, no recompile).
_WIDTHS: dict = {}


class _Hull(NamedTuple):
    """Static room of the walk: ``width`` models per query after :func:`_candidates` (M: no filter), and its
    number of cost ``bins``."""

    width: int
    bins: int


def _hull_room(m: int, width: int | None = None) -> _Hull:
    if m <= _FILTER_ABOVE:
        return _Hull(m, 0)
    bins = int(min(256, max(16, 1 << round(math.log2(math.sqrt(m)) + 1))))  # ~2·√M: ~√M/2 + ln B remain
    return _Hull(min(m, width or _FIRST_WIDTH), bins)


def _grown(m: int, found: int) -> _Hull:
    """The room after an overflow: ``found`` candidates rounded up to a power of two (few programs), at most M."""
    return _hull_room(m, 1 << (found - 1).bit_length())


def _restrict(mu, c_hat, hull: _Hull, idx=None):
    """What the walk of each query sees: the candidates' indices [n, width] (``idx`` if given, else
    :func:`_candidates`; None without a filter, when all M are walked), their counts [n], which slots are
    real, and μ and ĉ on them (padding slots: μ = −inf, ĉ = +inf, never cheaper nor better)."""
    n, m = mu.shape
    if hull.width >= m:
        return None, jnp.full(n, m, jnp.int32), jnp.ones(mu.shape, bool), mu, c_hat
    if idx is None:
        idx, found = _candidates(mu, c_hat, hull.width, hull.bins)
    else:
        found = jnp.sum(idx >= 0, axis=1, dtype=jnp.int32)
    ok, at = idx >= 0, jnp.maximum(idx, 0)
    return (idx, found, ok, jnp.where(ok, jnp.take_along_axis(mu, at, axis=1), -jnp.inf),
            jnp.where(ok, jnp.take_along_axis(c_hat, at, axis=1), jnp.inf))


def _at_zero(mu, c_hat, ok):
    """Each query's decision at λ = 0 with MAX ties and no tolerance (the walk's start) among its ``ok`` slots."""
    return jax.vmap(select, in_axes=(0, 0, None, None, None, 0))(mu, c_hat, jnp.zeros((), mu.dtype), 0.0, True, ok)


def _walk(data, start, lam0, n, steps, p: _chunks.Plan, first: bool, hull: _Hull, cand=None):
    """The hull walk of n queries in chunks over devices: per-query events [n, steps] (λ = +inf for none),
    the last vertex, its λ, whether a cheaper point is left, and the candidates walked (``cand`` [n, width]
    from :func:`_candidates`, found here when not given; None without a filter); the start's summed quality
    and cost; the largest candidate count (> ``hull.width``: overflow)."""

    def one(args):
        (q_, c_, mu_, ch_, a, l0, idx), w = args[:-1], args[-1]
        idx, found, ok, mu_, ch_ = _restrict(mu_, ch_, hull, idx)  # large pools: walk the candidates only
        if idx is not None:
            at = jnp.maximum(idx, 0)
            q_, c_ = jnp.take_along_axis(q_, at, axis=1), jnp.take_along_axis(c_, at, axis=1)
        if first:
            a = _at_zero(mu_, ch_, ok)
        elif idx is not None:  # the start's place among the candidates (a vertex: always one of them)
            a = jnp.argmax(idx == a[:, None], axis=1).astype(jnp.int32)
        lam, dq, dc, last, last_lam, q0, c0 = _events(q_, c_, mu_, ch_, a, l0, steps)
        real = w > 0  # padding queries add no events
        lam = jnp.where(real[:, None], lam, jnp.inf)
        more = real & jnp.any(ch_ < jnp.take_along_axis(ch_, last[:, None], axis=1), axis=1)
        if idx is not None:
            last = jnp.take_along_axis(idx, last[:, None], axis=1)[:, 0]
        found = jnp.where(real, found, 0)
        return (masked_sum(w, q0), masked_sum(w, c0)), (lam, dq, dc, last, last_lam, more, found, idx)

    sums, (*per_query, found, cand) = _chunks.over_queries(one, data + (start, lam0, cand), n, p,
                                                           dtype=data[2].dtype)
    return tuple(per_query) + (cand,), sums, jnp.max(found)


@partial(jax.jit, static_argnames=("steps", "plan", "hull"))
def _walk_first(quality, cost, mu, c_hat, n, steps, plan, hull):
    """The first ``steps`` steps of every query's walk; the first ``n`` (traced) rows are real queries."""
    size = mu.shape[0]
    zeros = jnp.zeros(size, jnp.int32)
    (lam, dq, dc, last, last_lam, more, cand), (q0, c0), found = _walk(
        (quality, cost, mu, c_hat), zeros, jnp.zeros(size, mu.dtype), n, steps, plan, True, hull)
    lam, dq, dc = _chunks.gather((lam.ravel(), dq.ravel(), dc.ravel()), plan)
    return lam, dq, dc, q0, c0, last, last_lam, more, cand, jnp.sum(more, dtype=jnp.int32), _finite(lam), found


@partial(jax.jit, static_argnames=("steps", "size", "plan", "hull"))
def _walk_rest(quality, cost, mu, c_hat, last, last_lam, more, cand, steps, size, plan, hull):
    """The rest of the walk for the ``size`` (padded) queries flagged in ``more``; padding adds no events."""
    (rows,) = jnp.nonzero(more, size=size, fill_value=0)
    n_more = jnp.sum(more)
    real = jnp.arange(size) < n_more
    data = tuple(a[rows] for a in (quality, cost, mu, c_hat))
    (lam, dq, dc, *_), _, _ = _walk(data, last[rows], last_lam[rows], n_more, steps, plan, False, hull,
                                    None if cand is None else cand[rows])
    lam = jnp.where(real[:, None], lam, jnp.inf)
    events = (lam.ravel(), jnp.where(real[:, None], dq, 0.0).ravel(), jnp.where(real[:, None], dc, 0.0).ravel())
    return *_chunks.gather(events, plan), _finite(lam)


def routing_path(ds: Dataset, est: Estimates, *, chunk_size: int | None = None, memory: float | None = None,
                 devices=None) -> Curve:
    """The exact routing curve for every λ ≥ 0 (no grid), in O(NM log NM).

    For one query, argmax_m μ_m − λ ĉ_m moves along the upper-left convex hull of the points (ĉ_m, μ_m) as λ
    grows; the breakpoints are the hull's slopes. Sorting all queries' breakpoints and accumulating the
    changes of realised cost and quality gives the curve's vertices (arithmetic on the estimates is exact:
    no tie tolerance is applied, unlike :func:`cascjax.sweep`).

    Args:
      ds, est: the dataset ([N, M] quality and cost score the choices) and the estimates ([N, M]
        ``quality_ante``, ``cost_ante`` decide).
      chunk_size, memory, devices: the hull walk runs ``chunk_size`` queries at a time (default: as many as
        fit in ``memory`` bytes, 1 GiB), sharded over ``devices`` (default: all), as in :func:`cascjax.sweep`;
        only the events (≤ M − 1 per query, in practice ~2.5 for 11 models) are held for all queries. On a
        2-core CPU, 10,000,000 queries × 11 models take under 8 GB (``benchmarks/bench_memory.py``).

    Returns:
      A :class:`Curve` of K vertices: ``lam`` [K] ascending, starting at 0, and the realised mean ``cost`` and
      ``quality`` [K]. Vertex k is what routing with MIN ties realises for λ ∈ [lam[k], lam[k+1]) and with
      MAX ties for λ ∈ (lam[k], lam[k+1]]; vertex 0 is the MAX strategy at λ = 0. Mixing vertices k−1 and k
      (:func:`cascjax.at_budget`) is Theorem 1's γ·s_MAX(λ_k) + (1−γ)·s_MIN(λ_k).

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> path = cascjax.routing_path(ds, cascjax.perfect_estimates(ds))
      >>> float(path.lam[0])
      0.0
    """
    check_estimates(ds, est)
    n, m = ds.n_queries, ds.n_models
    dtype = ds.quality.dtype
    size = _compile.bucket(n, m * dtype.itemsize)
    mu, c_hat = routing_inputs(est)
    data = _compile.pad_put((ds.quality, ds.cost, _compile.cast(mu, dtype), _compile.cast(c_hat, dtype)), size)
    # The walk's working set per query: the inputs and a few [M] temporaries per step.
    p = _chunks.plan(size, chunk_size, memory, 16 * m * dtype.itemsize, 0, devices)
    hull = _hull_room(m, _WIDTHS.get(m))
    while True:  # large pools: the candidates of every query must fit the room (rarely more than 64)
        # Hulls of large pools are longer (~10 vertices for 1,000 models) and a step on the candidates is cheap.
        first = min(_FIRST_STEPS if hull.width == m else 4 * _FIRST_STEPS, hull.width - 1)
        lam, dq, dc, q0, c0, last, last_lam, more, cand, n_more, count, found = _walk_first(
            *data, np.int32(n), steps=first, plan=p, hull=hull)
        if int(found) <= hull.width:
            break
        hull = _grown(m, int(found))
    _WIDTHS[m] = hull.width
    n_more, count = int(n_more), int(count)
    if n_more and first < hull.width - 1:
        rest = _bucket(n_more)
        rest_plan = _chunks.plan(rest, chunk_size, memory, 16 * m * dtype.itemsize, 0, devices)
        *rest, rest_count = _walk_rest(*data, last, last_lam, more, cand, steps=hull.width - 1 - first, size=rest,
                                       plan=rest_plan, hull=hull)
        lam, dq, dc = (jnp.concatenate(pair) for pair in zip((lam, dq, dc), rest))
        count += int(rest_count)
    curve = _path(lam, jnp.stack([dc, dq], axis=1), jnp.stack([c0, q0]), n, count)
    _compile.checkpoint()
    return curve
