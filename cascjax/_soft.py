"""Smoothed strategies: expected cost and quality as differentiable functions of per-step λ (or θ).

The decision rule's argmax over candidates, T* = argmax_T Q(T) − λ_j C(T), becomes a softmax with temperature
τ: at a state, candidate T is taken with probability softmax((Q − λ_j C)/τ)_T. Stopping and continuing are then
probabilities, the mass over information states is propagated step by step, and the expected realised cost and
quality over the queries are smooth in λ. As τ → 0 the softmax becomes the rule's argmax (away from ties), so
the smoothed objective tends to the true one; :func:`cascjax.fit` anneals τ towards zero while it follows the
gradient (optax), with a Lagrange multiplier on the budget. The threshold cascade is smoothed the same way: it
continues after model j with probability sigmoid((θ_j − post_j)/τ).

Everything that does not depend on λ (the candidates' Q and C at every state, the realised outcome of every
final state) is computed once by the ``*_tables`` functions; the returned closures are cheap per evaluation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._cascade import _tables, _valid
from ._cascade_routing import realised
from ._errors import CascjaxError
from ._supermodels import _table, expected_max
from ._views import answer_scores, visible

#: Elements (queries × states × candidates) the cascade-routing tables may hold; larger pools need fewer
#: queries, a smaller ``max_depth`` or another method.
MAX_SOFT_ELEMENTS = 1 << 27


def _expected(stops, got, spent):
    """Expected mean (cost, quality) of a run that, after r = 1..D−1 models, stops with conditional
    probability ``stops[r − 1]`` [N] (else runs the next model) and stops after model D surely; ``got``,
    ``spent`` [N, D] are the quality and cost realised after r models."""
    alive = jnp.ones(got.shape[0], got.dtype)
    exp_q = jnp.zeros((), got.dtype)
    exp_c = jnp.zeros((), got.dtype)
    for r, p in enumerate(stops):
        stop = alive * p
        exp_q += jnp.sum(stop * got[:, r])
        exp_c += jnp.sum(stop * spent[:, r])
        alive = alive - stop
    exp_q += jnp.sum(alive * got[:, -1])
    exp_c += jnp.sum(alive * spent[:, -1])
    n = got.shape[0]
    return exp_c / n, exp_q / n


def cascade_soft(quality, cost, est, z, factor, depth):
    """f(lam [D], tau) → (expected mean cost, quality) of the smoothed optimal cascade on these queries."""
    m = quality.shape[1]
    q_tab, c_tab, spent, answer_of = _tables(quality, cost, est, z, factor, depth)
    valid = _valid(m, depth)
    got = jnp.take_along_axis(quality, answer_of, axis=1)  # [N, D] quality after r = 1..D models

    def f(lam, tau):
        # Step 0 always runs model 0; at step j (models 0..j−1 run) stopping is the prefix {0..j−1}.
        stops = [jax.nn.softmax(jnp.where(valid[j][None], (q_tab[:, j] - lam[j] * c_tab[:, j]) / tau, -jnp.inf),
                                axis=1)[:, j - 1] for j in range(1, depth)]
        return _expected(stops, got, spent)

    return f


def threshold_soft(quality, cost, post, depth):
    """f(theta [D], tau) → (expected mean cost, quality) of the smoothed threshold cascade."""
    spent = jnp.cumsum(cost, axis=1)[:, :depth]

    def f(theta, tau):
        stops = [jax.nn.sigmoid((post[:, j] - theta[j]) / tau) for j in range(depth - 1)]
        return _expected(stops, quality[:, :depth], spent)

    return f


@functools.lru_cache(maxsize=32)
def state_graph(n_models: int, depth: int, force_order: bool, greedy: bool):
    """The static graph of information states of cascade routing, grouped by size j = |R| = 0..D.

    Returns a list over j of (masks [n_j], rows [n_j, W_j] candidate rows of the table (padding: row 0),
    ok [n_j, W_j], stop [n_j] slot of T = R (−1 for j = 0), nxt [n_j, W_j] index among the size-(j+1) states
    of R ∪ {lowest model of T \\ R} (−1 for T = R and padding)).
    """
    table = _table(n_models, depth)
    masks_by = [[] for _ in range(depth + 1)]
    for mask in range(1 << n_models):
        size = bin(mask).count("1")
        if size <= depth:
            masks_by[size].append(mask)
    index_by = [{mk: i for i, mk in enumerate(ms)} for ms in masks_by]
    row_of = {int(mk): i for i, mk in enumerate(table.mask)}
    groups = []
    for j, ms in enumerate(masks_by):
        lists = []
        for r in ms:
            top = max((b for b in range(n_models) if r >> b & 1), default=-1)
            cands = []
            for t_mask, t_row in row_of.items():
                if t_mask & r != r:
                    continue
                new = t_mask & ~r
                if force_order and new and (new & ((1 << (top + 1)) - 1)):
                    continue
                if greedy and bin(new).count("1") > 1:
                    continue
                cands.append((t_row, new))
            cands.sort()
            lists.append(cands)
        width = max(len(c) for c in lists)
        rows = np.zeros((len(ms), width), np.int32)
        ok = np.zeros((len(ms), width), bool)
        stop = np.full(len(ms), -1, np.int32)
        nxt = np.full((len(ms), width), -1, np.int32)
        for i, (r, cands) in enumerate(zip(ms, lists)):
            for w, (t_row, new) in enumerate(cands):
                rows[i, w], ok[i, w] = t_row, True
                if new == 0:
                    stop[i] = w
                else:
                    low = (new & -new).bit_length() - 1
                    nxt[i, w] = index_by[j + 1][r | (1 << low)]
        groups.append((np.asarray(ms, np.int32), rows, ok, stop, nxt))
    return groups


def cascade_routing_soft(quality, cost, est, z, factor, depth, *, force_order=False, greedy=False):
    """f(lam [D], tau) → (expected mean cost, quality) of smoothed cascade routing.

    Q and C of every (state, candidate) pair are computed once ([N, pairs]); the table holds
    N × Σ_R |Cand(R)| values, which is refused above ``MAX_SOFT_ELEMENTS``.
    """
    n, m = quality.shape
    groups = state_graph(m, depth, bool(force_order), bool(greedy))
    table = _table(m, depth)
    members = jnp.asarray(table.members)
    pairs = sum(g[1].size for g in groups)
    if n * pairs > MAX_SOFT_ELEMENTS:
        raise CascjaxError(f"the smoothed cascade-routing objective needs {n:,} queries x {pairs:,} (state, "
                           f"candidate) pairs, more than {MAX_SOFT_ELEMENTS:,} values; use fewer fit queries, a "
                           "smaller max_depth or per_step without 'gradient'")
    every = jnp.arange(n)

    def values(masks, rows):
        """Q, C [N, n_j, W_j] of the group's candidates; realised cost, quality [N, n_j] of its states."""

        def one_state(args):
            r, rw = args
            mu, sd, ch = visible(est, every, jnp.broadcast_to(r, (n,)))  # [N, M] each, in state r
            if factor is None:
                q_all = jax.vmap(expected_max, in_axes=(0, 0, None, None))(mu, sd, z, depth)
            else:
                q_all = jax.vmap(expected_max, in_axes=(0, None, None, None))(mu, factor[r], z, depth)
            c_all = ch @ members.T.astype(ch.dtype)  # C(T) = Σ_{m∈T} ĉ(n, R)_m: candidates ⊇ R only are used
            return q_all[:, rw], c_all[:, rw]

        q, c = jax.lax.map(one_state, (jnp.asarray(masks), jnp.asarray(rows)))
        final = jnp.broadcast_to(jnp.asarray(masks)[None], (n, len(masks)))
        out_c, out_q, _, _ = realised(quality, cost, answer_scores(est, final), final)
        return jnp.moveaxis(q, 0, 1), jnp.moveaxis(c, 0, 1), out_c, out_q

    tables = [values(g[0], g[1]) for g in groups]

    def f(lam, tau):
        mass = jnp.ones((n, 1), quality.dtype)  # the empty state
        exp_q = jnp.zeros((), quality.dtype)
        exp_c = jnp.zeros((), quality.dtype)
        for j, ((masks, rows, ok, stop, nxt), (q, c, out_c, out_q)) in enumerate(zip(groups, tables)):
            s = jnp.where(jnp.asarray(ok)[None], (q - lam[min(j, depth - 1)] * c) / tau, -jnp.inf)
            p = mass[..., None] * jax.nn.softmax(s, axis=2)  # [N, n_j, W_j]
            if j > 0:
                stopped = jnp.take_along_axis(p, jnp.maximum(jnp.asarray(stop), 0)[None, :, None], axis=2)[..., 0]
                stopped = jnp.where(jnp.asarray(stop)[None] >= 0, stopped, 0)
                exp_q += jnp.sum(stopped * out_q)
                exp_c += jnp.sum(stopped * out_c)
            if j + 1 < len(groups):
                go = jnp.asarray(nxt)
                flat = jnp.where(go >= 0, p, 0).reshape(n, -1)
                mass = jnp.zeros((n, len(groups[j + 1][0])), quality.dtype).at[:, jnp.maximum(go, 0).ravel()].add(flat)
        return exp_c / n, exp_q / n

    return f
