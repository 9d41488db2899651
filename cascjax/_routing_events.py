"""Routing on a λ grid through each query's hull breakpoints: the direct grid's decisions, in O(M·H + L log H).

The direct grid (:func:`cascjax._routing.routing_sweep`) applies the decision rule to every (query, λ) pair:
O(N·M·L). But one query's choice only changes at the breakpoints of the upper-left hull of its points (ĉ_m, μ_m):
with H hull vertices, a λ's vertex is found by binary search among H breakpoints. The rule has a tie tolerance,
the hull none; so, per query and vertex v, this route also computes the λ interval in which v is *clearly* the
rule's choice — every other model's score lies below v's by more than twice the tie band plus rounding room:

    (μ_v − μ_j) − λ (ĉ_v − ĉ_j) > τ (max|μ| + λ max|ĉ|),   τ = 2·rtol + 16·eps,

one linear inequality in λ per model j (an interval, O(M) per vertex). There the rule, whatever the tie rule
(MIN or MAX) and however its sums round, picks v. The few (query, λ) pairs outside their vertex's interval —
near a breakpoint, or near-ties — are decided by the rule itself, exactly as the direct grid does. So the choices
are the direct grid's, pair by pair, and the sums over queries (the same pairwise trees) the same bits.

A model tied with v on both μ and ĉ (a duplicate) with a higher index never changes the rule's choice (the
lowest index wins) and is left out of v's interval; a duplicate with a lower index empties it.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _chunks
from ._compile import masked_sum
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


def _prepare(mu, c_hat, rtol, hull: _Hull):
    """Per query of a chunk, what every λ shares: the hull's vertices [n, W] and breakpoints [n, W − 1], each
    vertex's clear interval (lo, hi) [n, W], and the candidate counts [n]."""
    n = mu.shape[0]
    verts, breaks, found = _vertices(mu, c_hat, hull)
    qmag, cmag = jax.vmap(_magnitudes)(mu, c_hat)
    tau = 2 * rtol + 16 * jnp.finfo(mu.dtype).eps
    # Intervals for the vertices some query of the chunk reaches (columns past the longest walk are repeats).
    longest = jnp.max(jnp.sum(jnp.isfinite(breaks), axis=1))
    none = (jnp.full(n, jnp.inf, mu.dtype), jnp.full(n, -jnp.inf, mu.dtype))
    lo, hi = jax.lax.map(lambda a: jax.lax.cond(a[0] <= longest, lambda v: _clear(mu, c_hat, v, tau, qmag, cmag),
                                                lambda v: none, a[1]),
                         (jnp.arange(verts.shape[1]), verts.T))  # [W, n] each
    return verts, breaks, lo.T, hi.T, found


def _choices(mu, c_hat, lam, prepared, rtol, tie_max, room: int):
    """The rule's choice [n, B] for one chunk of queries at a block of ascending λ [B], and the number of pairs
    the rule decided itself (> ``room``: overflow)."""
    n = mu.shape[0]
    verts, breaks, lo, hi, _ = prepared
    # [n, B]: the breakpoints ≤ λ (few per query: comparing with all of them beats a binary search on CPU)
    method = "compare_all" if breaks.shape[1] <= 32 else "scan"
    k = jax.vmap(lambda b: jnp.searchsorted(b, lam, side="right", method=method))(breaks)
    pick = jnp.take_along_axis(verts, k, axis=1)
    clear = (lam[None] > jnp.take_along_axis(lo, k, axis=1)) & (lam[None] < jnp.take_along_axis(hi, k, axis=1))
    # The rest: the rule itself, on at most ``room`` pairs (the caller runs again with more room if needed).
    # Their flat positions: a running count and a binary search per slot (a nonzero over [n, B] is 4x slower).
    running = jnp.cumsum((~clear).ravel(), dtype=jnp.int32)
    unclear = running[-1]
    flat = jnp.minimum(jnp.searchsorted(running, jnp.arange(1, room + 1, dtype=jnp.int32)), running.size - 1)
    q_at, l_at = flat // lam.shape[0], flat % lam.shape[0]
    decide = jax.vmap(select, in_axes=(0, 0, 0, None, None))
    ruled = decide(mu[q_at], c_hat[q_at], lam[l_at], rtol, tie_max)
    live = jnp.arange(room) < unclear
    pick = pick.at[jnp.where(live, q_at, n), l_at].set(ruled, mode="drop")
    return pick, unclear


#: Query x λ pairs one block of the event route holds per 16 models (λ blocks of a chunk run one after another:
#: the [n, B] temporaries stay in cache; at 11 models, 20,000 queries, 1,024 λ: 0.22 s against 0.73 s in one
#: block).
BLOCK_PAIRS = 1 << 18
#: Pools of at least this many models run all λ of a chunk in one block.
ONE_BLOCK = 256


@partial(jax.jit, static_argnames=("rtol", "return_choices", "plan", "hull", "room"))
def routing_events(quality, cost, mu, c_hat, lam, back, n, tie_max, *, rtol, return_choices, plan, hull, room):
    """Routing at every λ of the ascending ``lam`` [L] through the hull breakpoints: the sums of
    :func:`cascjax._routing.routing_sweep` (the same choices, the same bits), in the order ``lam[back]``; the
    largest number of pairs a λ block decided by the rule and the largest candidate count (either above its
    room: run again)."""
    m = quality.shape[1]
    n_lam = lam.shape[0]
    # Larger pools take larger blocks, as each block pays the rule on its ``room`` pairs at O(M) each; from
    # 256 models one block (measured, 20,000 queries: 1,000 models 5.2 s in one block, 7.1 s in two).
    width = n_lam if m >= ONE_BLOCK else max(1, min(n_lam, BLOCK_PAIRS * max(1, m // 16) // plan.chunk))
    width = 1 << (width.bit_length() - 1)  # a power of two dividing L (a power of two, see sweep)
    while n_lam % width:
        width //= 2

    def one(args, lam):
        q_, c_, mu_, ch_, w = args
        prepared = _prepare(mu_, ch_, rtol, hull)
        real = (w > 0).astype(jnp.int32)[:, None]

        def block(lam_b):
            choice, unclear = _choices(mu_, ch_, lam_b, prepared, rtol, tie_max, room)
            got = jnp.take_along_axis(q_, choice, axis=1)
            spent = jnp.take_along_axis(c_, choice, axis=1)
            hits = jnp.zeros((width, m), jnp.int32).at[jnp.arange(width)[None], choice].add(real)
            return (masked_sum(w, got), masked_sum(w, spent), hits, unclear), ((choice, spent) if return_choices
                                                                               else None)

        (qs, cs, hits, unclear), per_query = jax.lax.map(block, lam.reshape(-1, width))
        sums = (qs.reshape(-1), cs.reshape(-1), hits.reshape(-1, m))
        if per_query is not None:  # [blocks, n, B] → [n, L]
            per_query = tuple(jnp.moveaxis(a, 0, 1).reshape(a.shape[1], -1) for a in per_query)
        rooms = (jnp.full(w.shape, jnp.max(unclear)), jnp.where(w > 0, prepared[-1], 0))  # per-query outputs
        return sums, (rooms, per_query)

    (q, c, answered), ((unclear, found), per_query) = _chunks.over_queries(
        one, (quality, cost, mu, c_hat), n, plan, (lam,))
    n = n.astype(q.dtype)
    per_lam = lambda a: a[back]  # noqa: E731
    curve = Curve(lam[back], per_lam(c / n), per_lam(q / n), per_lam(answered.astype(q.dtype) / n),
                  jnp.ones_like(lam), *((None, None) if per_query is None else tuple(a.T[back] for a in per_query)))
    return curve, jnp.max(unclear), jnp.max(found)


def bytes_per_query(n_models: int, n_lam: int, width: int, itemsize: int) -> int:
    """The working set of one query in :func:`routing_events`: its [M] inputs and the walk's temporaries, its
    hull (vertices, breakpoints, intervals) and per λ its outputs; the λ blocks' temporaries are bounded by
    :data:`BLOCK_PAIRS` for the whole chunk."""
    per_lam = 24 + 2 * itemsize if n_models >= ONE_BLOCK else 4 + itemsize  # one block: [n, L] temporaries
    # ~40 [M] temporaries per query in the candidate filter and the intervals (measured: 20,000 x 1,000 at
    # 1,024 λ took 5.3 s in chunks of 2,048-4,096 queries and 8.3 s in chunks of 8,192).
    return n_models * itemsize * 40 + width * (4 + 3 * itemsize) + n_lam * per_lam


def sweep_events(quality, cost, mu, c_hat, lam, n, tie_max, *, rtol, return_choices, plan_for) -> Curve:
    """:func:`routing_events` for any λ order, with enough room: λ sorted in NumPy (and the results put back
    in the given order), runs again with more room until nothing overflows. ``plan_for(width)`` gives the
    chunk plan for a candidate room."""
    m = quality.shape[1]
    lam = np.asarray(lam)
    order = np.argsort(lam, kind="stable")
    back = np.argsort(order, kind="stable").astype(np.int32)
    hull = _hull_room(m, _WIDTHS.get(m))
    room = _ROOMS.get((quality.shape, lam.shape), 1024)
    while True:
        plan = plan_for(hull.width)
        curve, unclear, found = routing_events(quality, cost, mu, c_hat, lam[order], back, n, tie_max, rtol=rtol,
                                               return_choices=return_choices, plan=plan, hull=hull, room=room)
        unclear, found = int(unclear), int(found)
        if found > hull.width:
            hull = _grown(m, found)
        elif unclear > room:
            room = 1 << (unclear - 1).bit_length()
        else:
            break
    _WIDTHS[m] = hull.width
    _ROOMS[(quality.shape, lam.shape)] = room
    return curve


#: The last sufficient room for the pairs decided by the rule, per (queries, λ) shape.
_ROOMS: dict = {}
