"""The optimal cascade on a λ grid through each step's stop interval: the direct grid's decisions, in O(D) per λ.

The direct grid (:func:`cascjax._cascade.cascade_sweep`) applies the decision rule at every step to every
(query, λ) pair: O(N·L·D·M). But at step j (state {0..j−1}) the rule stops, choosing the prefix s = {0..j−1},
for λ_j in one interval, and the interval's ends are where the query's outcome changes (the exact path,
:func:`cascjax.cascade_path`, is built from them). The rule has a tie tolerance, the interval none; so this route
computes, per query and step, the λ_j where the rule *clearly* stops and those where it clearly goes on, with
room for the tie band and rounding:

    clearly stops:    (Q_s − Q_i) − λ (C_s − C_i) > τ (max|Q| + λ max|C|) for every other candidate i,
    clearly goes on:  (Q_i − Q_s) − λ (C_i − C_s) > τ (max|Q| + λ max|C|) for some candidate i,
    τ = 2·rtol + 16·eps,

linear inequalities in λ: an open interval for the first, the complement of a closed one for the second. The
query runs j models at the first step j ≥ 1 that does not clearly go on, if it clearly stops there; D if every
step goes on. The few (query, λ) pairs whose first such step is unclear — λ near an interval end, or near-ties —
are decided by the rule itself, exactly as the direct grid does. So the numbers of models run are the direct
grid's, pair by pair, and the sums over queries (the same pairwise trees) the same bits.

A candidate equal to s in Q and C never changes the rule's choice (s has the lowest index of the step's
candidates, and of tied candidates of equal cost the lowest index wins), so it is left out of s's interval.
Per-step λ vectors work as constant ones: step j's test reads λ_j.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _chunks, _compile
from ._cascade import _run_length, _runs_at, _stop_intervals, _tables, _valid
from ._compile import masked_sum, real, real_sum
from ._curve import Curve
from ._decide import _magnitudes
from ._routing_events import _all_below


def _intervals(q, c, qmag, cmag, tau, depth):
    """For one query, steps j = 1..D−1: the open interval (lo, hi) of λ_j in which the rule clearly stops
    (lo ≥ hi: none) and the closed one [go_lo, go_hi] outside which it clearly goes on (go_lo > go_hi: it always
    does). ``q``, ``c`` [D, M] are the prefixes' Q and C per step, ``qmag``, ``cmag`` [D] select's magnitudes."""
    m = q.shape[1]
    steps = jnp.arange(1, depth)
    s = steps - 1
    valid = _valid(m, depth)[1:]
    q_s = jnp.take_along_axis(q[1:], s[:, None], axis=1)
    c_s = jnp.take_along_axis(c[1:], s[:, None], axis=1)
    dq, dc = q[1:] - q_s, c[1:] - c_s  # [D − 1, M]: candidate i against s
    bq, bc = (tau * qmag[1:])[:, None], (tau * cmag[1:])[:, None]
    others = valid & (jnp.arange(m)[None] != s[:, None])

    # s clearly beats i: (−dc + bc) λ < −dq − bq. Exact duplicates of s never win (lowest index).
    lo, hi = _all_below(bc - dc, -dq - bq, others & ~((dq == 0) & (dc == 0)))
    # i clearly beats s: (dc + bc) λ < dq − bq for some i, i.e. λ outside [go_lo, go_hi].
    a, b = dc + bc, dq - bq
    ratio = b / jnp.where(a != 0, a, 1)
    go_lo = jnp.max(jnp.where(others & (a > 0), ratio, -jnp.inf), axis=1)
    go_hi = jnp.min(jnp.where(others & (a < 0), ratio, jnp.inf), axis=1)
    always = jnp.any(others & (a == 0) & (b > 0), axis=1)
    return lo, hi, jnp.where(always, jnp.inf, go_lo), jnp.where(always, -jnp.inf, go_hi)


def _runs(intervals, lam, depth):
    """Models run [n, B] at the λ rows ``lam`` [B, D] from the clear intervals [n, D − 1] each, and [n, B] True
    where the rule must decide (the first step that does not clearly go on is not clearly a stop)."""
    if depth == 1:  # the first model always answers
        shape = (intervals[0].shape[0], lam.shape[0])
        return jnp.ones(shape, jnp.int32), jnp.zeros(shape, bool)
    lo, hi, go_lo, go_hi = (a[:, None, :] for a in intervals)  # [n, 1, D − 1]
    x = lam[None, :, 1:]  # [1, B, D − 1]: λ_j of steps 1..D−1
    halts = (x >= go_lo) & (x <= go_hi)  # not clearly going on
    clear = (x > lo) & (x < hi)
    # One min over steps: 2j for a clear stop at step j, 2j + 1 for an unclear one, 2D if every step goes on.
    j = jnp.arange(1, depth, dtype=jnp.int32)
    key = jnp.min(jnp.where(halts, 2 * j[None, None] + jnp.where(clear, 0, 1), 2 * depth), axis=2)
    return key // 2, (key & 1) == 1


#: Query x λ pairs one block of the event route holds (λ blocks of a chunk run one after another, so the [n, B]
#: temporaries stay in cache).
BLOCK_PAIRS = 1 << 17
#: (Query, λ row) pairs x prefixes x steps the rule holds at once for the unsure pairs.
RULE_ELEMENTS = 1 << 20


def _banded_runs(bounds, lam, rtol, tie_max):
    """Models run [n, B] at the λ rows ``lam`` [B, D] by :func:`cascjax.path_at`'s rule on the exact stop
    intervals ``bounds`` = (lo, hi) [n, D − 1] of :func:`cascjax._cascade._stop_intervals` (the path's own), read
    by the path's own :func:`cascjax._cascade._runs_at` at λ_j·(1 + rtol) with MIN ties, λ_j·(1 − rtol) with
    MAX ties."""
    runs_at = jax.vmap(_runs_at, in_axes=(0, 0, None, None))
    x = lam[:, 1:]  # λ_j of steps 1..D−1
    return jnp.where(tie_max, runs_at(*bounds, x * (1 - rtol), True), runs_at(*bounds, x * (1 + rtol), False))


@partial(jax.jit, static_argnames=("depth", "rtol", "return_choices", "plan", "room", "lam_band"))
def cascade_events(quality, cost, est, lam, z, factor, n, tie_max, groups=None, *, depth, rtol, return_choices, plan,
                   room, lam_band=False):
    """The optimal cascade at every row of ``lam`` [L, D] through the stop intervals: the Curve of
    :func:`cascjax._cascade.cascade_sweep` (the same decisions, the same bits), and the largest number of pairs
    a query chunk left to the rule (above ``room``: run again with more). ``lam_band``: path_at's rule on the
    exact stop intervals instead (:func:`_banded_runs`; no pair is left to the rule). ``groups``: sums per group
    of queries (:func:`cascjax._chunks.over_queries`)."""
    m = quality.shape[1]
    n_lam = lam.shape[0]
    width = max(1, min(n_lam, BLOCK_PAIRS // plan.chunk))
    width = 1 << (width.bit_length() - 1)
    while n_lam % width:
        width //= 2
    tau = 2 * rtol + 16 * jnp.finfo(quality.dtype).eps

    def one(args, lam, z, factor):
        q_, c_, e, w = args
        n_q = q_.shape[0]
        q_tab, c_tab, spent, answer_of = _tables(q_, c_, e, z, factor, depth)
        if lam_band:
            bounds = jax.vmap(_stop_intervals, in_axes=(0, 0, None))(q_tab, c_tab, depth)
        else:
            mags = jax.vmap(jax.vmap(_magnitudes), in_axes=(0, 0, None))(q_tab, c_tab, _valid(m, depth))
            intervals = jax.vmap(_intervals, in_axes=(0, 0, 0, 0, None, None))(q_tab, c_tab, *mags, tau, depth)
        got = jnp.take_along_axis(q_, answer_of, axis=1)  # [chunk, D]: realised quality after r models
        is_real = real(w)

        def rule(slot):  # the rule itself for one (query, λ row) pair
            i, b, l = slot
            return _run_length(q_tab[i], c_tab[i], (mags[0][i], mags[1][i]), blocks[b, l], rtol, tie_max, depth)

        small = jnp.int8 if depth < 127 else jnp.int32  # models run, stored for the second pass

        def keys(lam_b):
            runs, unsure = _runs(intervals, lam_b, depth)
            return runs.astype(small), unsure & is_real[:, None]  # padding queries: whatever they run, weigh 0

        blocks = jnp.asarray(lam).reshape(-1, width, lam.shape[1])  # (a NumPy array under disable_jit)
        if lam_band:  # every pair decided by the path's intervals, none left to the rule
            runs = jax.lax.map(lambda lam_b: _banded_runs(bounds, lam_b, rtol, tie_max).astype(small), blocks)
            unclear = jnp.zeros((), jnp.int32)
        else:
            runs, unsure = jax.lax.map(keys, blocks)  # [blocks, n, B] each
            # The unsure pairs of the whole chunk (few, most at λ near 0 where estimates tie): the rule itself on
            # at most ``room`` of them, found by a running count and a binary search per slot.
            running = jnp.cumsum(unsure.ravel(), dtype=jnp.int32)
            unclear = running[-1]
            flat = jnp.minimum(jnp.searchsorted(running, jnp.arange(1, room + 1, dtype=jnp.int32)),
                               running.size - 1)
            b_at, q_at, l_at = flat // (n_q * width), flat // width % n_q, flat % width
            # In batches of ≤ 2^20 table entries: the pairs' tables [room, D, M] would not fit at large D and M.
            ruled = jax.lax.map(rule, (q_at, b_at, l_at),
                                batch_size=max(1, min(room, RULE_ELEMENTS // (depth * m))))
            live = jnp.arange(room) < unclear
            runs = runs.at[jnp.where(live, b_at, runs.shape[0]), q_at, l_at].set(ruled.astype(small),
                                                                                   mode="drop")

        def block(runs):
            runs = runs.astype(jnp.int32)
            idx = runs - 1
            answer = jnp.take_along_axis(answer_of, idx, axis=1)
            paid = jnp.take_along_axis(spent, idx, axis=1)
            hits = jnp.zeros((width, m), jnp.int32)
            if w.ndim == 1:  # (per group: no counts, see cascjax._compile.count)
                hits = hits.at[jnp.arange(width)[None], answer].add(is_real.astype(jnp.int32)[:, None])
            sums = (masked_sum(w, jnp.take_along_axis(got, idx, axis=1)), masked_sum(w, paid), hits,
                    real_sum(w, runs))
            return sums, ((answer, paid) if return_choices else None)

        (qs, cs, hits, ran), per_query = jax.lax.map(block, runs)
        flat = lambda a: a.reshape((-1,) + a.shape[2:])  # noqa: E731  [blocks, B, ...] → [L, ...]
        sums = (flat(qs), flat(cs), flat(hits), flat(ran))
        if per_query is not None:  # [blocks, n, B] → [n, L]
            per_query = tuple(jnp.moveaxis(a, 0, 1).reshape(a.shape[1], -1) for a in per_query)
        return sums, (jnp.full(w.shape[:1], unclear), per_query)

    (q, c, answered, ran), (unclear, per_query) = _chunks.over_queries(
        one, (quality, cost, tuple(est)), n, plan, (lam, z, factor), groups=groups)
    n = n.astype(q.dtype)
    per_query = (None, None) if per_query is None else tuple(a.T for a in per_query)
    curve = Curve(lam, c / n, q / n, answered.astype(q.dtype) / n, ran.astype(q.dtype) / n, *per_query)
    return curve, jnp.max(unclear)


def sweep_events(quality, cost, est, lam, z, factor, n, tie_max, groups=None, *, depth, rtol, return_choices, plan,
                 lam_band: bool = False, batched: bool = False) -> Curve:
    """:func:`cascade_events` with enough room: runs again with more room until no query chunk overflows.
    ``lam_band``: path_at's rule (:func:`_banded_runs`). ``batched``: ``cost`` and ``est`` carry a leading
    scenario axis (what-if prices), the kernel vmapped over it."""
    axes = (None, 0, 0, None, None, None, None, None, None)
    if lam_band:  # no pair is left to the rule: no room
        kernel = partial(cascade_events, depth=depth, rtol=rtol, return_choices=return_choices, plan=plan, room=0,
                         lam_band=True)
        return _compile.batched(kernel, axes, batched)(quality, cost, est, lam, z, factor, n, tie_max, groups)[0]
    # The first guess: one pair in 512 (measured: 6,598 of 8,192 x 1,024 in a chunk of 'low'-noise estimates,
    # most at λ = 0, where estimates tie); the rule on them costs little beside the rest.
    guess = max(FIRST_ROOM, 1 << (plan.chunk * lam.shape[0] // 512 - 1).bit_length())
    room = _ROOMS.get((cost.shape, lam.shape, depth), guess)  # (cost: with its scenario axis)
    while True:
        kernel = partial(cascade_events, depth=depth, rtol=rtol, return_choices=return_choices, plan=plan, room=room)
        curve, unclear = _compile.batched(kernel, axes, batched)(quality, cost, est, lam, z, factor, n, tie_max,
                                                                 groups)
        unclear = int(np.max(np.asarray(unclear)))
        if unclear <= room:
            break
        room = 1 << (unclear - 1).bit_length()
    _ROOMS[(cost.shape, lam.shape, depth)] = room
    return curve


#: The least first room (pairs the rule decides per chunk).
FIRST_ROOM = 1024
#: The last sufficient room for the pairs decided by the rule, per (queries, λ, depth) shape.
_ROOMS: dict = {}
