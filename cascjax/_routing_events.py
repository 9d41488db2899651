"""Routing on a λ grid through each query's hull breakpoints: the direct grid's decisions, in O(M·H) per query
plus one sort of the events.

The direct grid (:func:`cascjax._routing.routing_sweep`) applies the decision rule to every (query, λ) pair:
O(N·M·L). But one query's choice only changes at the breakpoints of the upper-left hull of its points (ĉ_m, μ_m).
The rule has a tie tolerance, the hull none; so, per query and vertex v, this route also computes the λ interval
in which v is *clearly* the rule's choice — every other model's score lies below v's by more than twice the tie
band plus rounding room:

    (μ_v − μ_j) − λ (ĉ_v − ĉ_j) > τ (max|μ| + λ max|ĉ|),   τ = 2·rtol + 16·eps,

one linear inequality in λ per model j (an interval, O(M) per vertex). There the rule, whatever the tie rule
(MIN or MAX) and however its sums round, picks v.

Phase one (:func:`routing_hulls`, per query chunk) walks the hulls and places each vertex's λ range and clear
interval on the ascending grid: grid indices [S_k, S_k+1) at vertex k, of which [x_k, y_k) are clear. Phase two
(:func:`routing_sums`, all queries at once) gives the pairs outside the clear ranges — near a breakpoint, or
near-ties — the rule itself, exactly as the direct grid does: so every choice is the direct grid's. The sums
at every λ come from events sorted by the grid index at which they take effect (each query's vertex 0 at index
0, a vertex change at S_k, a pair the rule decides otherwise than the hull at its λ and back at the next),
added in one compensated running sum: within a few ulps of the exact sums of the choices, in an order that
depends on neither the chunk size nor the device count (the events are listed query by query). The answer
counts are integers and exact.

A model tied with v on both μ and ĉ (a duplicate) with a higher index never changes the rule's choice (the
lowest index wins) and is left out of v's interval; a duplicate with a lower index empties it.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _chunks, _compile
from ._curve import Curve
from ._decide import _magnitudes, select
from ._routing import _WIDTHS, _at_zero, _grown, _Hull, _hull_room, _restrict, _step


def _vertices(mu, c_hat, hull: _Hull):
    """Every query's hull walk from the λ = 0 decision (MAX ties) to the cheapest point: vertices [n, W]
    (model indices; the last repeats once the walk ends) and the breakpoints [n, W − 1] (+inf: none), and the
    candidate counts [n] (> ``hull.width``: overflow)."""
    n = mu.shape[0]
    idx, found, ok, mu_s, c_s = _restrict(mu, c_hat, hull)
    start = _at_zero(mu_s, c_s, ok)
    # The walk stops when every query of the chunk has reached its cheapest point (hulls are short: ~10
    # vertices for 1,000 models), not after W − 1 steps.
    steps = hull.width - 1
    step = jax.vmap(_step)

    def more(carry):
        j, a, prev, _, _ = carry
        return (j < steps) & jnp.any(jnp.isfinite(prev) | (j == 0))

    def walk(carry):
        j, a, prev, verts, lams = carry
        a, prev = step(mu_s, c_s, a, prev)
        return j + 1, a, prev, verts.at[:, j].set(a), lams.at[:, j].set(prev)

    zero = jnp.zeros(n, mu.dtype)
    _, last, _, verts, lams = jax.lax.while_loop(
        more, walk, (0, start, zero, jnp.zeros((n, steps), jnp.int32), jnp.full((n, steps), jnp.inf, mu.dtype)))
    verts = jnp.where(jnp.isfinite(lams), verts, last[:, None])
    verts = jnp.concatenate([start[:, None], verts], axis=1)
    if idx is not None:  # slots → model indices (the walk only visits real slots)
        verts = jnp.take_along_axis(idx, verts, axis=1)
    return verts, lams, found  # once the walk ends its breakpoints are +inf


def _clear(mu, c_hat, v, tau, qmag, cmag):
    """The open λ interval (lo, hi) in which model v [n] is clearly the rule's choice for each query (see the
    module docstring); lo ≥ hi when there is none."""
    m = mu.shape[1]
    mu_v = jnp.take_along_axis(mu, v[:, None], axis=1)
    c_v = jnp.take_along_axis(c_hat, v[:, None], axis=1)
    dmu, dc = mu_v - mu, c_v - c_hat
    a = dc + (tau * cmag)[:, None]
    b = dmu - (tau * qmag)[:, None]
    index = jnp.arange(m)[None]
    skip = (index == v[:, None]) | ((dmu == 0) & (dc == 0) & (index > v[:, None]))
    return _all_below(a, b, ~skip)


def _all_below(a, b, keep):
    """The open interval (lo, hi) of λ with a·λ < b for every ``keep`` entry along the last axis (lo ≥ hi: none):
    a ray per entry, from its ratio b / a."""
    ratio = b / jnp.where(a != 0, a, 1)
    lo = jnp.max(jnp.where(keep & (a < 0), ratio, -jnp.inf), axis=-1)
    hi = jnp.min(jnp.where(keep & (a > 0), ratio, jnp.inf), axis=-1)
    never = jnp.any(keep & (a == 0) & (b <= 0), axis=-1)
    return lo, jnp.where(never, -jnp.inf, hi)


def _prepare(mu, c_hat, rtol, hull: _Hull, intervals: bool = True):
    """Per query of a chunk, what every λ shares: the hull's vertices [n, W] and breakpoints [n, W − 1], each
    vertex's clear interval (lo, hi) [n, W] (None without ``intervals``), and the candidate counts [n]."""
    n = mu.shape[0]
    verts, breaks, found = _vertices(mu, c_hat, hull)
    if not intervals:
        return verts, breaks, None, None, found
    qmag, cmag = jax.vmap(_magnitudes)(mu, c_hat)
    tau = 2 * rtol + 16 * jnp.finfo(mu.dtype).eps
    # Intervals for the vertices some query of the chunk reaches (columns past the longest walk are repeats).
    longest = jnp.max(jnp.sum(jnp.isfinite(breaks), axis=1))
    none = (jnp.full(n, jnp.inf, mu.dtype), jnp.full(n, -jnp.inf, mu.dtype))
    lo, hi = jax.lax.map(lambda a: jax.lax.cond(a[0] <= longest, lambda v: _clear(mu, c_hat, v, tau, qmag, cmag),
                                                lambda v: none, a[1]),
                         (jnp.arange(verts.shape[1]), verts.T))  # [W, n] each
    return verts, breaks, lo.T, hi.T, found


def _ends(start, n_lam: int):
    """Where each vertex's grid range [S_k, S_k+1) ends: the next vertex's start, L after the last (padding
    queries start every vertex at L, so theirs end there too)."""
    return jnp.concatenate([start[:, 1:], jnp.full((start.shape[0], 1), n_lam, start.dtype)], axis=1)


def _segments(lam, prepared, real, band=None):
    """Where each vertex's λ range meets the ascending grid ``lam`` [L]: per query and vertex k [n, W], the grid
    indices [S_k, S_k+1) at which the hull is at vertex k (breakpoint k − 1 ≤ λ < breakpoint k), and within them
    the clear ones [x_k, y_k); padding queries (``real`` False) get empty ranges at L.

    ``band`` = (rtol, tie_max) applies :func:`cascjax.path_at`'s rule instead: with MIN ties a breakpoint b is
    passed where b ≤ λ·(1 + rtol), with MAX ties where b < λ·(1 − rtol) (the same float products as path_at);
    every pair is then clear."""
    verts, breaks, lo, hi, _ = prepared
    n_lam = lam.shape[0]
    method = "compare_all" if n_lam <= 64 else "scan"
    find = partial(jnp.searchsorted, lam, method=method)
    if band is None:
        passed = find(breaks, side="left")  # first λ ≥ b
    else:
        rtol, tie_max = band
        at_min = jnp.searchsorted(lam * (1 + rtol), breaks, side="left", method=method)
        at_max = jnp.searchsorted(lam * (1 - rtol), breaks, side="right", method=method)
        passed = jnp.where(tie_max, at_max, at_min)
    start = jnp.concatenate([jnp.zeros((breaks.shape[0], 1), passed.dtype), passed], axis=1)
    start = jnp.where(real[:, None], start, n_lam).astype(jnp.int32)
    end = _ends(start, n_lam)
    if band is not None:
        return start, end, start, end
    x = jnp.clip(find(lo, side="right"), start, end).astype(jnp.int32)  # first λ > lo
    y = jnp.maximum(jnp.clip(find(hi, side="left"), start, end), x).astype(jnp.int32)  # first λ ≥ hi
    return start, end, x, y


@partial(jax.jit, static_argnames=("rtol", "plan", "hull", "lam_band"))
def routing_hulls(quality, cost, mu, c_hat, lam, n, tie_max, *, rtol, plan, hull, lam_band):
    """Phase one of the event route, per query chunk: each query's hull vertices [size, W], where each vertex's
    λ range meets the ascending grid ``lam`` (:func:`_segments`), the realised quality and cost of the vertices
    [size, W]; the number of (query, λ) pairs outside
    their vertex's clear interval, the longest walk and the largest candidate count (above ``hull.width``:
    run again). ``lam_band``: the tie band on breakpoints (path_at's rule, :func:`_segments`), no rule."""

    def one(args, lam):
        q_, c_, mu_, ch_, w = args
        prepared = _prepare(mu_, ch_, rtol, hull, intervals=not lam_band)
        verts = prepared[0]
        real = w > 0
        start, end, x, y = _segments(lam, prepared, real, (rtol, tie_max) if lam_band else None)
        q_v, c_v = jnp.take_along_axis(q_, verts, axis=1), jnp.take_along_axis(c_, verts, axis=1)
        unclear = jnp.sum((x - start) + (end - y), axis=1, dtype=jnp.int32)
        walked = jnp.where(real, jnp.sum(jnp.isfinite(prepared[1]), axis=1, dtype=jnp.int32), 0)
        found = jnp.where(real, prepared[-1], 0)
        return (), (verts, start, x, y, q_v, c_v, unclear, walked, found)

    _, per_query = _chunks.over_queries(one, (quality, cost, mu, c_hat), n, plan, (lam,))
    *per_query, unclear, walked, found = per_query
    return tuple(per_query), jnp.sum(unclear), jnp.max(walked), jnp.max(found)


#: The least room for the pairs the rule decides in phase two (a power of two; more when needed): a new λ grid
#: with a few more such pairs does not compile a new program.
FIRST_ROOM = 1024
#: Hulls of at most this many breakpoint columns (models − 1 on pools of up to 17 models) pass all of them to
#: phase two.
FULL_STEPS = 16
#: (Query, model) elements one batch of the rule holds in phase two (the pairs near breakpoints).
RULE_ELEMENTS = 1 << 20


@partial(jax.jit, static_argnames=("rtol", "room", "steps", "return_choices"))
def routing_sums(quality, cost, mu, c_hat, lam, back, n, tie_max, hulls, groups=None, *, rtol, room, steps,
                 return_choices):
    """Phase two of the event route, on all queries at once: the rule at the (at most ``room``) pairs outside
    their vertex's clear interval, then the sums at every λ from one running sum over the events sorted by the
    grid index at which they take effect — a vertex change at S_k, and a pair the rule decides otherwise than
    the hull as a change at its λ undone at the next — in an order that depends on neither the chunking nor
    the devices. ``steps`` [static]: hull columns past the longest walk are left out. ``groups`` [size, G]:
    the quality and cost sums per group of queries, a trailing G axis: each event added to its grid index in
    its query's groups, then a running sum over λ (not compensated: within ~1e-6 relative in float32)."""
    verts, start, x, y, q_v, c_v = hulls
    size, width = verts.shape
    n_lam, m = lam.shape[0], quality.shape[1]
    end = _ends(start, n_lam)
    real = jnp.arange(size) < n
    # The unclear pairs: per query and vertex two ranges, [S_k, x_k) and [y_k, S_k+1); the p-th pair found by
    # a binary search in the running count of their lengths.
    first = jnp.stack([start, y], axis=2).reshape(-1)
    length = jnp.stack([x - start, end - y], axis=2).reshape(-1)
    running = jnp.cumsum(length, dtype=jnp.int32)
    total = running[-1]
    slot = jnp.arange(room, dtype=jnp.int32)
    seg = jnp.minimum(jnp.searchsorted(running, slot, side="right"), running.size - 1)
    live = slot < total
    at_l = jnp.where(live, first[seg] + slot - (running[seg] - length[seg]), n_lam)
    at_q = seg // (2 * width)
    hull_v = verts.reshape(-1)[seg // 2]
    lam_at = lam[jnp.minimum(at_l, n_lam - 1)]
    ruled = jax.lax.map(lambda a: select(mu[a[0]], c_hat[a[0]], a[1], rtol, tie_max), (at_q, lam_at),
                        batch_size=max(1, min(room, RULE_ELEMENTS // m)))
    differs = live & (ruled != hull_v)
    at_l = jnp.where(differs, at_l, n_lam)
    # Every event: vertex k − 1 → k at S_k (the first ``steps`` changes of each query), a pair's change at its
    # λ and back at the next. Changes are differences of two values, kept exactly as (rounded, error) pairs.
    k = min(steps, width - 1)
    # Vertex 0 enters as an event at the first λ too: the sums then carry no rounded base.
    bins = jnp.concatenate([jnp.where(real, 0, n_lam), start[:, 1:k + 1].reshape(-1), at_l,
                            jnp.minimum(at_l + 1, n_lam)])

    def changes(values, v):
        step = _two_sum(values[:, 1:k + 1], -values[:, :k])
        gain = _two_sum(v[at_q, ruled], -v[at_q, hull_v])
        gain = tuple(jnp.where(differs, g, 0) for g in gain)
        base = (jnp.where(real, values[:, 0], 0), jnp.zeros(size, values.dtype))
        return tuple(jnp.concatenate([z, a.reshape(-1), b, -b]) for z, a, b in zip(base, step, gain))

    (dq, eq), (dc, ec) = changes(q_v, quality), changes(c_v, cost)
    if groups is None:
        order = _by_bin(bins, n_lam)
        bins, dq, eq, dc, ec = (a[order] for a in (bins, dq, eq, dc, ec))
        last = jnp.searchsorted(bins, jnp.arange(n_lam, dtype=jnp.int32), side="right") - 1
        running_q, running_c = _running_sum(dq, eq), _running_sum(dc, ec)
        q = jnp.where(last >= 0, running_q[jnp.maximum(last, 0)], 0)
        c = jnp.where(last >= 0, running_c[jnp.maximum(last, 0)], 0)
    else:  # per group: each event added to its grid index in its query's groups, then running sums over λ
        inside = groups[jnp.concatenate([jnp.arange(size), jnp.repeat(jnp.arange(size), k), at_q, at_q])] > 0

        def per_group(d, e):
            x = jnp.where(inside, (d + e)[:, None], jnp.zeros((), d.dtype))  # [E, G]
            return jnp.cumsum(jnp.zeros((n_lam + 1, x.shape[1]), x.dtype).at[bins].add(x), axis=0)[:n_lam]

        q, c = per_group(dq, eq), per_group(dc, ec)
    # Models' answer counts: integers, so their events may be added in any order.
    one = real.astype(jnp.int32)
    hits = jnp.zeros((n_lam + 1, m), jnp.int32).at[0, verts[:, 0]].add(one)
    move = start[:, 1:k + 1]
    hits = hits.at[move, verts[:, :k]].add(-1).at[move, verts[:, 1:k + 1]].add(1)
    flip = differs.astype(jnp.int32)
    after = jnp.minimum(at_l + 1, n_lam)
    hits = (hits.at[at_l, hull_v].add(-flip).at[at_l, ruled].add(flip)
            .at[after, hull_v].add(flip).at[after, ruled].add(-flip))
    answered = jnp.cumsum(hits, axis=0)[:n_lam]
    per_query = None
    if return_choices:  # [size, L]: each pair's vertex, then the rule's choices where it decided
        grid = jnp.arange(n_lam, dtype=jnp.int32)
        index = jax.vmap(lambda s: jnp.searchsorted(s, grid, side="right"))(start[:, 1:])
        choice = jnp.take_along_axis(verts, index, axis=1)
        choice = choice.at[jnp.where(differs, at_q, size), jnp.minimum(at_l, n_lam - 1)].set(ruled, mode="drop")
        spent = jnp.take_along_axis(cost, choice, axis=1)
        per_query = (choice.T[back], spent.T[back])
    nn = n.astype(q.dtype)
    curve = Curve(lam[back], (c / nn)[back], (q / nn)[back], (answered.astype(q.dtype) / nn)[back],
                  jnp.ones_like(lam), *(per_query or (None, None)))
    return curve, total


def _by_bin(bins, n_lam: int):
    """The order that sorts the events by grid index, ties in their given order (which depends on neither the
    chunking nor the devices): one int32 key, bin·E + position, when it fits (a one-operand sort is ~4x faster
    on CPU than sorting several operands together), else the two keys."""
    size = bins.shape[0]
    position = jnp.arange(size, dtype=jnp.int32)
    if (n_lam + 1) * size < KEY_LIMIT:
        return jnp.sort(bins * size + position) % size
    return jax.lax.sort((bins, position), num_keys=2)[1]


#: Sorting events by one int32 key needs (L + 1)·E below this.
KEY_LIMIT = 2**31


def _two_sum(a, b):
    """a + b as the rounded sum and its exact rounding error (Knuth's TwoSum, an error-free transformation)."""
    s = a + b
    back = s - a
    return s, (a - (s - back)) + (b - back)


def _running_sum(x, error):
    """The running sums of the values ``x + error`` [E] (``error``: what rounding left out of ``x``),
    compensated: each partial sum carries its own rounding error, so the result is within a few ulps of the
    exact running sum however many events (a plain cumsum of ~10^5 rounded cost changes drifts by ~10^-6 of the
    sum).

    Two short sequential passes, both under ``lax.scan``: the events as [b, E/b] blocks (b ≈ √E, a power of
    two), one pass down the rows for every block at once, then one over the blocks' totals; a block's running
    sums are then shifted by the total before it. A parallel prefix scan (``lax.associative_scan``) computes the
    same sums, but its ~2·log2(E) levels of strided slices took more than half of the event route's compile time
    (``benchmarks/README.md``, "Compile once")."""
    size = x.shape[0]
    rows = 1 << ((size - 1).bit_length() + 1) // 2  # a power of two, ≈ √E
    blocks = -(-size // rows)
    grid = lambda a: jnp.pad(a, (0, blocks * rows - size)).reshape(blocks, rows).T  # noqa: E731  [rows, blocks]

    def add(carry, item):
        s, e = carry
        s, err = _two_sum(s, item[0])
        e = e + (item[1] + err)
        return (s, e), (s, e)

    zero = jnp.zeros(blocks, x.dtype)
    (tot_s, tot_e), (run_s, run_e) = jax.lax.scan(add, (zero, zero), (grid(x), grid(error)))  # [rows, blocks]

    def shift(carry, item):
        return add(carry, item)[0], carry  # the total before each block

    _, (off_s, off_e) = jax.lax.scan(shift, (zero[0], zero[0]), (tot_s, tot_e))
    s, err = _two_sum(off_s[None], run_s)
    total = s + ((off_e[None] + run_e) + err)
    return total.T.reshape(-1)[:size]


def bytes_per_query(n_models: int, width: int, itemsize: int) -> int:
    """The working set of one query in phase one of the event route (:func:`routing_hulls`): ~40 [M]
    temporaries in the candidate filter and the intervals (measured: 20,000 x 1,000 at 1,024 λ ran 5.3 s in
    chunks of 2,048-4,096 queries and 8.3 s in chunks of 8,192), and its hull (vertices, breakpoints,
    intervals, ranges)."""
    return n_models * itemsize * 40 + width * (24 + 5 * itemsize)


def sweep_events(quality, cost, mu, c_hat, lam, n, tie_max, groups=None, *, rtol, return_choices, plan_for,
                 lam_band: bool = False, batched: bool = False) -> Curve:
    """The event route for any λ order: λ sorted in NumPy (the results put back in the given order); phase
    one again with more room while some query's candidates overflow it; phase two with room for every pair the
    rule decides (a power of two: few programs). ``lam_band``: path_at's tie rule (see :func:`_segments`).
    ``batched``: ``cost`` and ``c_hat`` carry a leading scenario axis (what-if prices), both phases vmapped over
    it (the rooms the largest any scenario needs)."""
    m = quality.shape[1]
    lam = np.asarray(lam)
    order = np.argsort(lam, kind="stable")
    back = np.argsort(order, kind="stable").astype(np.int32)
    lam = jax.device_put(lam[order])
    hull = _hull_room(m, _WIDTHS.get(m))
    while True:
        phase_one = partial(routing_hulls, rtol=rtol, plan=plan_for(hull.width), hull=hull, lam_band=lam_band)
        hulls, unclear, walked, found = _compile.batched(phase_one, (None, 0, None, 0, None, None, None), batched)(
            quality, cost, mu, c_hat, lam, n, tie_max)
        found = int(np.max(np.asarray(found)))
        if found <= hull.width:
            break
        hull = _grown(m, found)
    _WIDTHS[m] = hull.width
    unclear, walked = int(np.max(np.asarray(unclear))), int(np.max(np.asarray(walked)))
    room = max(FIRST_ROOM, 1 << max(unclear - 1, 0).bit_length())
    # Hull columns phase two takes: all of them when there are at most FULL_STEPS, so that its program depends
    # on the shapes alone (the longest walk varies from data to data); else the columns past the longest walk,
    # +inf padding, are left out (a power of two of them kept: few programs).
    steps = hull.width - 1 if hull.width - 1 <= FULL_STEPS else 1 << max(walked - 1, 0).bit_length()
    phase_two = partial(routing_sums, rtol=rtol, room=room, steps=steps, return_choices=return_choices)
    curve, _ = _compile.batched(phase_two, (None, 0, None, 0, None, None, None, None, 0, None), batched)(
        quality, cost, mu, c_hat, lam, back, n, tie_max, hulls, groups)
    return curve
