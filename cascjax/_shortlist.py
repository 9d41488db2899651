"""Cascade routing's shortlists (:mod:`cascjax._cascade_routing`): what a state keeps of its candidates, the
filters that leave out candidates that can never be tied with the best (the pruning lemma with the tie band; the
upper-left hull), the rule applied to a shortlist, the compaction of reached states into slots, and the static
room of a chunk.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._decide import select


class _Shortlist(NamedTuple):
    quality: jax.Array  # [P]
    cost: jax.Array  # [P]
    rank: jax.Array  # [P] global lexicographic tie order
    valid: jax.Array  # [P]
    next: jax.Array  # [P] model run next (−1: stop)
    at_zero: jax.Array  # the decision at λ = 0 (over every candidate)
    qmag: jax.Array  # max |Q| over Cand(R)
    cmag: jax.Array  # max |C| over Cand(R)
    count: jax.Array  # candidates kept (> P: overflow)


def _dominated(dq, dc, lam_lo, q_band, c_band):
    """The pruning lemma with the tie band: adding the models behind (dq, dc) (the gain in Q and C over a
    one-model-smaller candidate) lowers the score by more than the band at every λ ≥ ``lam_lo`` (dc ≥ 0:
    the loss only grows with λ), so by submodularity every superset is dominated too."""
    return (dq - lam_lo * dc + q_band < 0) & (dc >= c_band)


def _near_hull(q, c, cand, q_slack, c_slack, hull, span=jnp.inf):
    """Candidates that can be tied with the best at some λ in [0, ``span``]: a superset, never missing one.

    Candidate i can be tied only if its point moved by the tie band, (c_i − c_slack, q_i + q_slack), is not
    strictly below H(c) = max{Σ w_v Q_v : Σ w_v C_v ≤ c}, the upper-left hull of the candidates (for every
    λ ≥ 0 a convex combination beating it means some candidate beats it). H is bounded from below by the
    polyline through ≤ ``hull`` vertices found by gift wrapping from the best-quality candidate towards the
    cheapest: any vertices (even too few, or rounded) give a lower bound, so the filter stays a superset.
    The walk stops at the vertex best at λ = ``span`` (the next one overtakes only beyond it); a candidate
    cheaper than the last vertex v can only tie at λ ≤ span if its point is not below the line of slope span
    through v (its score gains on v's as λ grows, so λ = span is its best chance).
    """
    neg = jnp.asarray(-jnp.inf, q.dtype)
    qk, ck = jnp.where(cand, q, neg), jnp.where(cand, c, jnp.inf)
    top = jnp.argmin(jnp.where(qk == jnp.max(qk), ck, jnp.inf)).astype(jnp.int32)

    def more(carry):
        k, cur, _, go = carry
        return go & (k < hull) & jnp.any(ck < ck[cur])

    def wrap(carry):
        k, cur, verts, _ = carry
        cheaper = ck < ck[cur]
        overtake = jnp.where(cheaper, (q[cur] - q) / jnp.where(cheaper, c[cur] - c, 1), jnp.inf)
        first = jnp.min(overtake)
        go = first <= span  # beyond the span: cur is the best at λ = span, the walk ends there
        nxt = jnp.argmin(jnp.where(overtake == first, ck, jnp.inf)).astype(jnp.int32)
        return k + go, jnp.where(go, nxt, cur), jnp.where(go, verts.at[k].set(nxt), verts), go

    verts = jnp.zeros(hull, jnp.int32).at[0].set(top)
    found, last, verts, _ = jax.lax.while_loop(more, wrap, (jnp.int32(1), top, verts, jnp.bool_(True)))
    verts = jnp.where(jnp.arange(hull) < found, verts, last)  # unused slots repeat the last vertex found
    vc, vq = c[verts][::-1], q[verts][::-1]  # ascending cost
    cs, qs = c - c_slack, q + q_slack
    k = jnp.searchsorted(vc, cs, side="right")
    lo, hi = jnp.maximum(k - 1, 0), jnp.minimum(k, hull - 1)
    width = jnp.where(vc[hi] > vc[lo], vc[hi] - vc[lo], 1)
    inside = vq[lo] + (vq[hi] - vq[lo]) * ((cs - vc[lo]) / width)
    below = jnp.where(jnp.isfinite(span), vq[0] - span * (vc[0] - cs), neg)  # cs < vc[0] here: the line
    bound = jnp.where(k == 0, below, jnp.where(k >= hull, vq[-1], inside))
    return qs >= bound


def _decide(short: _Shortlist, lam, rtol, tie_max):
    """The decision rule on a state's shortlist at one λ: the model to run next, −1 to stop."""
    i = select(short.quality, short.cost, lam, rtol, tie_max, short.valid, (short.qmag, short.cmag), short.rank)
    return jnp.where(lam == 0, short.at_zero, short.next[i])


def _slots(key, lam_next, width, n_keys):
    """Distinct keys of one query's λ (−1: stopped) as slots 0..count−1 in key order.

    Returns (slot per λ, key per slot, count, (smallest, largest) positive next-step λ per slot)."""
    live = key >= 0
    hit = jnp.zeros(n_keys, jnp.int32).at[jnp.where(live, key, n_keys)].max(1, mode="drop")
    slot_of = jnp.cumsum(hit) - 1
    slot = jnp.where(live, slot_of[jnp.maximum(key, 0)], -1)
    target = jnp.where(live, slot, width)
    keys = jnp.zeros(width, jnp.int32).at[target].set(key, mode="drop")
    positive = lam_next > 0
    lo = jnp.full(width, jnp.inf, lam_next.dtype).at[target].min(jnp.where(positive, lam_next, jnp.inf), mode="drop")
    hi = jnp.full(width, -jnp.inf, lam_next.dtype).at[target].max(jnp.where(positive, lam_next, -jnp.inf),
                                                                   mode="drop")
    return slot, keys, jnp.sum(hit, dtype=jnp.int32), (lo, hi)


class _Room(NamedTuple):
    width: int  # state slots per query and step
    buffer: int  # states per chunk and step (compacted over the chunk's queries)
    shortlist: int  # candidates kept per state
