"""Cascade routing (DESIGN section 4): at every step, any supermodel T ⊇ R may be chosen.

At step j the information state R (the models run, |R| = j) is a set; the candidates are every T ⊇ R with
|T| ≤ D (``force_order``: new members above max(R); ``greedy``: at most one new member), scored
Q(n, R, T) − λ_j C(n, R, T). Choosing T = R stops; otherwise the lowest-index model of T \\ R runs next.

Computing Q for every λ would cost N·L·D·S·K operations (~10^13 at RouterBench size). Q and C depend only on
the query and the state, and the states reached by all λ of one query form a small tree (measured: ~17
states per query for 1,024 λ). So, step by step:

1. the distinct states reached (per query at most ``width`` slots; across the query chunk compacted into a
   buffer of ``buffer`` states) get their candidates' Q and C once — relative to R, so step j only enumerates
   subsets of the M − j models not yet run, of size ≤ D − j;
2. each state keeps a *shortlist* of ≤ ``shortlist`` candidates: every candidate that can be tied with the
   best at some λ ≥ 0 under the decision rule. A candidate is left out only if another valid candidate is
   cheaper and better by more than twice the tie tolerance (it can never be tied), or — with ``prune`` — if
   dropping one of its new members raises the score by more than twice the tie band at every λ with which
   the state is reached (the paper's pruning lemma, applied with the tie band, so it never changes a
   decision). Leaving such candidates out cannot change any decision: the rule on the shortlist picks
   exactly what it picks on all candidates (same tie magnitudes, same lexicographic tie order);
3. each λ applies the rule to its state's shortlist.

Sizes that overflow (more states or shortlisted candidates than the static room) are reported and the caller
runs again with twice the room, so results never depend on them.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _chunks, _compile
from ._compile import masked_sum, ordered_sum, real_sum
from ._curve import Curve
from ._decide import _magnitudes, select
from ._shortlist import _Room, _Shortlist, _decide, _dominated, _near_hull, _slots
from ._supermodels import _Relative, _relative, _sample_means, _table, n_candidates
from ._views import Rows, answer_scores, expand, visible

#: Largest pool cascade routing supports: states are int32 bitmasks.
MAX_MODELS = 30
#: One step body for every step (:func:`one_body`): tables of at most this many rows (Σ_{d ≤ D} C(M, d) sets of
#: new models, ∅ included) on chunks of at most this many queries.
ONE_BODY_ROWS, ONE_BODY_QUERIES = 64, 1024


def one_body(n_models: int, depth: int, greedy: bool, queries: int) -> bool:
    """Whether cascade routing runs all its steps, R = ∅ included, in one step body under ``lax.scan`` on the
    table of step 0: one body to compile instead of three (a first call 2–5 s shorter at depth ≥ 3 on this
    2-core CPU, < 1 s at depth 2), at the price of later steps evaluating step 0's larger table (+35 % run time
    at one λ on 3,000 × 6, depth 6; measured). So only where compiling dominates: small tables (greedy: M + 1
    rows at every step) on chunks of at most :data:`ONE_BODY_QUERIES` queries (hypothesis examples, small
    instances of a sweep over problems).
    Both routes give the same bits (tested)."""
    small = greedy or n_candidates(n_models, depth) + 1 <= ONE_BODY_ROWS
    return depth > 1 and small and queries <= ONE_BODY_QUERIES


def _states(rel: _Relative, sorted_masks, sorted_rank, states, step, reach, est, z, factor=None, *, n_models, depth,
            rtol, tie_max, force_order, prune, shortlist, prefix=False, live=None, levels=None,
            block=64, single=None) -> _Shortlist:
    """:func:`_state` for [B] states (``est``: μ, σ, ĉ [B, M] in each state, :func:`cascjax._views.visible`), in
    blocks of ``block`` states. Deviations are the independent σ of ``est``, or L(R) z with ``factor``
    [2^M, M, M] (L(R) L(R)^T = Σ(R), per state).
    ``live``: only the first ``live`` states are real (the rest is padding of the compacted buffer): blocks
    past them are skipped (``lax.cond``) and come back as zeros. ``levels``: see :func:`_sample_means`.
    ``single``: the one λ every state is decided at (see :func:`_state`)."""
    n = states.shape[0]
    size = -(-n // block) * block
    pad = lambda a: jnp.concatenate([a, jnp.broadcast_to(a[:1], (size - n,) + a.shape[1:])]).reshape(  # noqa: E731
        (size // block, block) + a.shape[1:])
    bit = jnp.left_shift(jnp.int32(1), jnp.arange(n_models, dtype=jnp.int32))
    free = rel.members.shape[1]

    def one_block(args):
        s, r, e = args
        ran = (s[:, None] & bit[None]) != 0
        mu = e[0]
        if factor is None:
            sd = e[1]
            dev, deviates = z[None] * sd[:, None, :], sd != 0  # [B, K, M], [B, M]
        else:
            f = factor[s]  # [B, M, M]
            dev, deviates = jnp.einsum("kj,bmj->bkm", z, f), jnp.any(f != 0, axis=2)
        comp = jnp.argsort(ran, axis=1, stable=True)[:, :free]
        mc = _sample_means(rel, ran, mu[:, None, :] + dev, comp, levels)
        one = partial(_state, rel, sorted_masks, sorted_rank, step=step, n_models=n_models, depth=depth, rtol=rtol,
                      tie_max=tie_max, force_order=force_order, prune=prune, shortlist=shortlist, prefix=prefix,
                      single=single)
        return jax.vmap(lambda s_, r_, e_, mc_, d_: one(state=s_, reach=r_, est=e_, mc=mc_, deviates=d_),
                        in_axes=(0, 0, 0, 1, 0))(s, r, e, mc, deviates)  # mc: [S, B], rows first

    blocks = (pad(states), tuple(pad(a) for a in reach), tuple(pad(a) for a in est))
    if live is None:
        out = jax.lax.map(one_block, blocks)
    else:
        # The buffer is sized for the worst chunk (on average ~2x the states reached): skipping the padding
        # blocks saves their Monte-Carlo tables, the kernel's main cost.
        shapes = jax.eval_shape(one_block, jax.tree.map(lambda a: a[0], blocks))
        skip = lambda _: jax.tree.map(lambda sd: jnp.zeros(sd.shape, sd.dtype), shapes)  # noqa: E731
        out = jax.lax.map(lambda args: jax.lax.cond(args[0] * block < live, one_block, skip, args[1]),
                          (jnp.arange(size // block), blocks))
    return jax.tree.map(lambda a: a.reshape((size,) + a.shape[2:])[:n], out)


def _state(rel: _Relative, sorted_masks, sorted_rank, state, step, reach, est, mc, deviates, *, n_models, depth,
           rtol, tie_max, force_order, prune, shortlist, prefix=False, hull=64, single=None) -> _Shortlist:
    """Q and C of every candidate at one state; the decision at λ = 0, and the shortlist of the candidates
    that can be chosen at some λ ≥ ``lam_lo`` (the smallest positive λ reaching the state). ``mc`` [S] the
    Monte-Carlo maxima, ``deviates`` [M] whether each model's estimate deviates in this state.

    ``single`` (a traced λ, for a sweep of one λ row): the state is decided at that λ only, so the rule runs on
    all candidates at once and the shortlist is that one choice — what the rule picks on the shortlist it
    picks on all candidates, so the decision is the same, without the pruning, hull and compaction work."""
    mu, _, ch = est  # what the strategy sees in this state
    free = rel.members.shape[1]
    bit = jnp.left_shift(jnp.int32(1), jnp.arange(n_models, dtype=jnp.int32))
    ran = (state & bit) != 0
    comp = jnp.argsort(ran, stable=True)[:free]  # models not run, ascending (then padding: run models)
    neg = jnp.asarray(-jnp.inf, mu.dtype)
    members = jnp.asarray(rel.members)
    exact = jnp.maximum(jnp.max(jnp.where(ran, mu, neg)), jnp.max(jnp.where(members, mu[comp][None], neg), axis=1))
    spread = jnp.any(ran & deviates) | jnp.any(members & deviates[comp][None], axis=1)
    size = jnp.asarray(rel.size)
    q = jnp.where((size + step == 1) | ~spread, exact, mc)
    c = jnp.sum(jnp.where(ran, ch, 0)) + jnp.sum(jnp.where(members, ch[comp][None], 0), axis=1)

    valid = (jnp.asarray(rel.highest) < n_models - step) & (size <= depth - step) & (size + step >= 1)
    if force_order:
        top = jnp.max(jnp.where(ran, jnp.arange(n_models), -1))
        valid &= (size == 0) | (jnp.asarray(rel.lowest) >= top + 1 - step)
    if prefix:  # the optimal cascade's candidates, for testing: R ∪ U = {0..i}
        valid &= (jnp.asarray(rel.highest) == size - 1) & (state == (1 << step) - 1)
    qmag, cmag = _magnitudes(q, c, valid)
    lowest = jnp.asarray(rel.lowest)
    nxt = jnp.where(lowest < free, comp[jnp.minimum(lowest, free - 1)], -1).astype(jnp.int32)
    if sorted_masks is not None and isinstance(step, int) and step == 0:
        rank = jnp.asarray(rel.lex) - 1  # R = ∅: the rows are the table's sets (and ∅): their rank is static
    elif sorted_masks is None:
        # Greedy: the candidates are R and R ∪ {m}. Their lexicographic order (of sorted model indices) needs no
        # global table: R ∪ {m} before R ∪ {m'} iff m < m', and R itself between the m below max(R) and those
        # above (a prefix comes first). So the tie ranks are 2m and 2·max(R) + 1, for pools of any size.
        top = jnp.max(jnp.where(ran, jnp.arange(n_models), -1))
        rank = jnp.where(size == 0, 2 * top + 1, 2 * nxt).astype(jnp.int32)
    else:
        mask = state | jnp.sum(jnp.where(members, bit[comp][None], 0), axis=1, dtype=jnp.int32)
        rank = sorted_rank[jnp.clip(jnp.searchsorted(sorted_masks, mask), 0, sorted_masks.shape[0] - 1)]
    # λ = 0: every candidate of the best quality ties (many, when added models cannot beat a run one), so the
    # rule runs on all candidates, once per state. Positive λ use the shortlist for λ ≥ lam_lo.
    if single is not None:  # the choice alone: a shortlist of one (the caller reads ``next`` directly)
        i = select(q, c, single, rtol, tie_max, valid, (qmag, cmag), rank)
        return _Shortlist(q[i, None], c[i, None], rank[i, None], jnp.ones(1, bool), nxt[i, None], nxt[i], qmag,
                          cmag, jnp.int32(1))
    at_zero = nxt[select(q, c, jnp.zeros((), q.dtype), rtol, tie_max, valid, (qmag, cmag), rank)]
    lam_lo, lam_hi = reach
    lo = jnp.where(jnp.isfinite(lam_lo), lam_lo, 0)
    eps = jnp.finfo(mu.dtype).eps
    margin = 2 * rtol + 8 * eps  # twice the tie band, and room for rounding when rtol = 0
    keep = valid & jnp.isfinite(lam_lo)  # no positive λ reaches the state: no shortlist needed
    if prune:
        drop = jnp.asarray(rel.drop)
        parent = jnp.maximum(drop, 0)
        worse = _dominated(q[:, None] - q[parent], c[:, None] - c[parent], lo, margin * (qmag + lo * cmag),
                           margin * cmag)
        keep &= ~jnp.any((drop >= 0) & valid[parent] & worse, axis=1)
    # Scores at λ = lo + t, 0 ≤ t ≤ hi − lo, are (Q − lo·C) − t·C: the hull test on shifted qualities. The span
    # is widened by a few ulps so that rounding of hi − lo never cuts off hi; with one λ it is ~0 and the hull
    # walk stops at its first vertex.
    span = jnp.where(jnp.isfinite(lam_lo), (lam_hi - lo) * (1 + 64 * eps), 0)
    keep &= _near_hull(q - lo * c, c, keep, margin * (qmag + lo * cmag), margin * cmag, hull, span)

    count = jnp.sum(keep, dtype=jnp.int32)
    at = jnp.where(keep, jnp.cumsum(keep) - 1, shortlist)
    rows = jnp.zeros(shortlist, jnp.int32).at[at].set(jnp.arange(keep.shape[0], dtype=jnp.int32), mode="drop")
    ok = jnp.arange(shortlist) < count
    return _Shortlist(q[rows], c[rows], rank[rows], ok, nxt[rows], at_zero, qmag, cmag, count)


def _chunk(quality, cost, est, lam, z, factor, *, depth, rtol, tie_max, force_order, greedy, prune, room, prefix,
           skip_padding=True, one=None):
    """Cascade routing for one chunk of queries at every λ row: the final state [n, L] (bitmask of the models
    run) and overflow flags (shortlist, width, buffer). ``one``: run every step in one body (default
    :func:`one_body`; for tests)."""
    n, m = quality.shape
    n_lam = lam.shape[0]
    if greedy:  # tie ranks computed per state (see _state): no global table, any pool size
        sorted_masks = sorted_rank = None
    else:
        table = _table(m, depth)
        by_mask = np.argsort(table.mask)
        sorted_masks = jnp.asarray(table.mask[by_mask], jnp.int32)
        sorted_rank = jnp.asarray(by_mask, jnp.int32)
    bit = jnp.left_shift(jnp.int32(1), jnp.arange(m, dtype=jnp.int32))
    states_fn = partial(_states, sorted_masks=sorted_masks, sorted_rank=sorted_rank, z=z, factor=factor, n_models=m,
                        depth=depth, rtol=rtol, tie_max=tie_max, force_order=force_order, prune=prune,
                        shortlist=room.shortlist, prefix=prefix)
    decide = jax.vmap(jax.vmap(_decide, in_axes=(None, 0, None, None)), in_axes=(0, None, None, None))

    # One λ row: each state is decided at its step's λ directly (see _state), no shortlist of candidates.
    single = (lambda j: lam[0, j]) if n_lam == 1 else (lambda j: None)
    lam_next = lambda j: lam[:, jnp.minimum(j, depth - 1)]  # noqa: E731
    slots = jax.vmap(_slots, in_axes=(0, None, None, None))
    # A step's table holds the sets U of new models over positions of the models not yet run (at step j only the
    # first M − j are free; rows using the others are not valid), computing the Monte-Carlo maxima of levels
    # |U| ≤ D − j only. Small tables (one_body): one step body under lax.scan serves every step on step 0's
    # table. Larger ones: step 0 and step 1 have their own tables (|U| ≤ D, ≤ D − 1), every step j ≥ 2 shares
    # one of M − 2 positions with |U| ≤ D − 2, under lax.scan: the compile time no longer grows with the depth
    # beyond 3, and the later steps, which reach most states, do not pay for step 1's larger table (one table
    # for all steps ≥ 1 cost +16 % at one λ and +34 % at 1,024 λ, measured). Both give the same bits (tested).
    def step(carry, j, rel):
        """Step j: the states reached (|R| = j) and their candidates, each λ's decision, the next states."""
        cur, done, slot, states, count, lo, flags = carry
        flags = flags | jnp.stack([False, jnp.max(count) > room.width, jnp.sum(count) > room.buffer])
        offset = jnp.cumsum(count) - count
        where = jnp.where(jnp.arange(room.width)[None] < count[:, None], offset[:, None] + jnp.arange(room.width)[None],
                          room.buffer)
        owner = jnp.zeros(room.buffer, jnp.int32).at[where].set(
            jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[:, None], where.shape), mode="drop")
        buf_state = jnp.zeros(room.buffer, jnp.int32).at[where].set(states, mode="drop")
        buf_reach = (jnp.full(room.buffer, jnp.inf, lam.dtype).at[where].set(lo[0], mode="drop"),
                     jnp.full(room.buffer, -jnp.inf, lam.dtype).at[where].set(lo[1], mode="drop"))
        real = jnp.zeros(room.buffer, bool).at[where].set(True, mode="drop")  # the rest is padding
        short = states_fn(rel, states=buf_state, step=j, reach=buf_reach, est=visible(est, owner, buf_state),
                          live=jnp.sum(count) if skip_padding else None, levels=1 if greedy else depth - j,
                          single=single(j))
        flags = flags | jnp.stack([jnp.max(jnp.where(real, short.count, 0)) > room.shortlist, False, False])
        pos = jnp.clip(offset[:, None] + slot, 0, room.buffer - 1)  # [n, L]
        if n_lam == 1:  # each state was decided at its one λ
            nxt = short.next[pos[:, 0]]
        else:
            pick = jax.vmap(lambda p, l: _decide(jax.tree.map(lambda a: a[p], short), l, rtol, tie_max))
            nxt = jax.vmap(pick, in_axes=(0, None))(pos, lam[:, j])
        nxt = jnp.where(done, -1, nxt)
        done = done | (nxt < 0)
        cur = jnp.where(done, cur, cur | bit[jnp.maximum(nxt, 0)])
        key = jnp.where(done, -1, jnp.maximum(slot, 0) * m + nxt)
        slot, keys, count, lo = slots(key, lam_next(j + 1), room.width, room.width * m)
        parent = jnp.take_along_axis(states, keys // m, axis=1)
        states = jnp.where(jnp.arange(room.width)[None] < count[:, None], parent | bit[keys % m], 0)
        return cur, done, slot, states, count, lo, flags

    # Step 0: R = ∅ for every query, reached by every λ: the smallest and largest positive λ of the first step.
    positive = lam[:, 0] > 0
    reach0 = (jnp.min(jnp.where(positive, lam[:, 0], jnp.inf)), jnp.max(jnp.where(positive, lam[:, 0], -jnp.inf)))
    one = one_body(m, depth, greedy, n) if one is None else one and depth > 1
    if one:  # every step, R = ∅ included, in the scan's body on one table
        rel = _relative(m, 1 if greedy else depth)
        # One state per query, ∅, in slot 0 (what _slots gives; built from λ directly, as XLA would spend
        # seconds constant-folding _slots' scatters of constant keys).
        first = jnp.arange(room.width)[None] == 0
        lo = tuple(jnp.broadcast_to(jnp.where(first, r, fill), (n, room.width))
                   for r, fill in zip(reach0, (jnp.inf, -jnp.inf)))
        carry = (jnp.zeros((n, n_lam), jnp.int32), jnp.zeros((n, n_lam), bool), jnp.zeros((n, n_lam), jnp.int32),
                 jnp.zeros((n, room.width), jnp.int32), jnp.ones(n, jnp.int32), lo, jnp.zeros(3, bool))
        carry, _ = jax.lax.scan(lambda c, j: (step(c, j, rel), None), carry, jnp.arange(depth, dtype=jnp.int32))
        cur, *_, flags = carry
        return cur, flags

    first = _relative(m, 1 if greedy else depth)
    root = jnp.zeros(n, jnp.int32)
    short = states_fn(first, states=root, step=0, reach=tuple(jnp.broadcast_to(r, (n,)) for r in reach0),
                      est=visible(est, jnp.arange(n), root), single=single(0))
    nxt = short.next if n_lam == 1 else decide(short, lam[:, 0], rtol, tie_max)  # [n, L]
    over_short = jnp.max(short.count) > room.shortlist
    cur = bit[nxt]
    done = jnp.zeros((n, n_lam), bool)
    if depth == 1:
        return cur, jnp.stack([over_short, False, False])

    slot, keys, count, lo = slots(nxt, lam_next(1), room.width, m)
    states = keys  # at step 1 the key is the model run: the state {m}
    states = jnp.where(jnp.arange(room.width)[None] < count[:, None], bit[jnp.clip(states, 0, m - 1)], 0)

    carry = (cur, done, slot, states, count, lo, jnp.stack([over_short, False, False]))
    carry = step(carry, 1, _relative(m - 1, 1 if greedy else depth - 1))
    if depth > 2:
        later = _relative(m - 2, 1 if greedy else depth - 2)
        carry, _ = jax.lax.scan(lambda c, j: (step(c, j, later), None), carry, jnp.arange(2, depth, dtype=jnp.int32))
    cur, *_, flags = carry
    return cur, flags


def realised(quality, cost, scores, final):
    """What final states [n, P] (bitmasks of the models run) realise per query: cost, quality, models run and
    the answering model (the highest of ``scores`` [n, P or 1, M] among the run models — the estimates in the
    final state, :func:`cascjax._views.answer_scores` — lower index on a tie), [n, P] each."""
    m = quality.shape[1]
    bit = jnp.left_shift(jnp.int32(1), jnp.arange(m, dtype=jnp.int32))
    ran = (final[..., None] & bit[None, None]) != 0  # [n, P, M]
    answer = jnp.argmax(jnp.where(ran, scores, -jnp.inf), axis=2).astype(jnp.int32)
    return (ordered_sum(jnp.where(ran, cost[:, None, :], 0), axis=2), jnp.take_along_axis(quality, answer, axis=1),
            jnp.sum(ran, axis=2, dtype=quality.dtype), answer)


def _outcome(quality, cost, scores, weight, final):
    """Per-λ sums over a chunk's real queries (``weight`` > 0): realised quality and cost (pairwise, see
    :func:`cascjax._compile.tree_sum`), models run and answers (integer counts); and the answering model per
    query and λ."""
    m = quality.shape[1]
    c, q, ran, answer = realised(quality, cost, scores, final)
    hits = real_sum(weight, jax.nn.one_hot(answer, m, dtype=jnp.int32))
    sums = dict(quality=masked_sum(weight, q), cost=masked_sum(weight, c),
                ran=real_sum(weight, ran.astype(jnp.int32)), answered=hits)
    return sums, (answer, c)


@partial(jax.jit, static_argnames=("depth", "rtol", "force_order", "greedy", "prune", "room", "plan",
                                   "return_choices", "prefix", "skip_padding"))
def _run(quality, cost, est, lam, z, factor, n, tie_max, model=None, groups=None, *, depth, rtol, force_order, greedy,
         prune, room, plan, return_choices, prefix, skip_padding=True):

    def one(args, lam, z, factor, model):
        q, c, e, w = args
        if model is not None:  # a state model: this chunk's table, from its rows (cascjax._views.expand)
            e = expand(Rows(*e), model)
        final, flags = _chunk(q, c, e, lam, z, factor, depth=depth, rtol=rtol, tie_max=tie_max, force_order=force_order,
                              greedy=greedy, prune=prune, room=room, prefix=prefix, skip_padding=skip_padding)
        sums, per_query = _outcome(q, c, answer_scores(e, final), w, final)  # padding queries weigh 0
        return (sums, flags.astype(jnp.int32)), (per_query if return_choices else None)

    (total, flags), per_query = _chunks.over_queries(one, (quality, cost, tuple(est)), n, plan,
                                                     (lam, z, factor, model), groups=groups)
    if return_choices:  # [L, N] answering model and realised cost per query
        per_query = tuple(a.T for a in per_query)
    return total, per_query, flags > 0  # overflow in any chunk


#: The last sufficient room per sweep configuration (see :func:`cascade_routing_sweep`).
_ROOMS: dict = {}
#: States per query and step that the first room of a sweep holds (the buffer: this many times the chunk's
#: queries, at most one per λ). Too few costs a whole second run, and its compilation, on the first call of
#: every process; room that is not reached costs little (its blocks are skipped).
FIRST_STATES = 16


def cascade_routing_sweep(quality, cost, est, lam, z, factor=None, *, n=None, depth, rtol, tie_max, force_order, greedy,
                          prune, return_choices, plan, room=None, prefix=False, skip_padding=True, model=None,
                          groups=None, batched=False):
    """Cascade routing at every row of ``lam`` [L, D]: a Curve, rerun with more room until nothing overflows.
    The first ``n`` rows (default all) are real queries, the rest padding of weight 0. ``model``: ``est`` are a
    state model's :class:`cascjax._views.Rows` and this its shared :class:`cascjax._views.Model`. ``groups`` [size, G]:
    sums per group of queries, a trailing G axis (:func:`cascjax._chunks.over_queries`). ``batched``: ``cost``
    and ``est`` carry a leading scenario axis (what-if prices), the kernel vmapped over it. (``skip_padding=False``:
    compute the padding states of the buffer too, as before issue 6; for ``benchmarks/bench_hotspots.py``.)"""
    size, m = quality.shape
    n = size if n is None else int(n)
    n_lam = lam.shape[0]
    # The room that last sufficed for this configuration: repeated calls (noise levels, seeds, bisection
    # steps) start there, which reuses its compiled program instead of overflowing and recompiling again.
    if not isinstance(plan, _chunks.Plan):  # a bare chunk size: one device
        plan = _chunks.Plan(int(min(plan, size)))
    chunk = plan.chunk
    key = (size, m, depth, n_lam, plan, force_order, greedy, prune, return_choices, prefix, str(quality.dtype),
           skip_padding, cost.shape)  # (cost: with its scenario axis when batched)
    if room is None:
        width = min(64, n_lam)
        room = _ROOMS.get(key, _Room(width, chunk * min(FIRST_STATES, width), 1 if n_lam == 1 else 32))
    limits = _Room(n_lam, chunk * n_lam, (m + 1 if greedy else _table(m, depth).n_candidates) + 1)
    room = _Room(*(min(r, cap) for r, cap in zip(room, limits)))
    while True:
        kernel = partial(_run, depth=depth, rtol=rtol, force_order=force_order, greedy=greedy, prune=prune, room=room,
                         plan=plan, return_choices=return_choices, prefix=prefix, skip_padding=skip_padding)
        total, per_query, flags = _compile.batched(kernel, (None, 0, 0) + (None,) * 7, batched)(
            quality, cost, est, lam, z, factor, np.int32(n), np.bool_(tie_max), model, groups)
        flags = np.asarray(flags)
        if batched:  # overflow in any scenario
            flags = flags.any(axis=0)
        if not flags.any():
            _ROOMS[key] = room
            break
        short, width, buffer = flags
        room = _Room(min(2 * room.width, limits.width) if width else room.width,
                     min(2 * room.buffer if (buffer or width) else room.buffer, limits.buffer),
                     min(2 * room.shortlist, limits.shortlist) if short else room.shortlist)
    # The means outside the kernel: inside it, the 4-device sharded program rounded one differently.
    dtype = total["cost"].dtype
    return Curve(lam, total["cost"] / n, total["quality"] / n, total["answered"].astype(dtype) / n,
                 total["ran"].astype(dtype) / n, *(per_query or (None, None)))


def chunk_bytes(n_models: int, depth: int, samples: int, n_lam: int, itemsize: int,
                greedy: bool = False, states: bool = False) -> tuple[int, int]:
    """Bytes one query chunk holds, an estimate: (per query, fixed).

    Per query: the per-λ decisions gather a shortlist of 32 candidates (6 arrays) per λ, the outcome holds
    [L, M] masks and costs, and ≤ 8 states per step hold their candidates' values (``states``: also the
    query's rows of a state table, 3 × [2^M, M], and its answer scores [L, M]); fixed: per block of 64 states
    the Monte-Carlo maxima hold [S, 64, K] samples (S ≤ M + 1 when ``greedy``).
    """
    rows = n_models + 1 if greedy else _table(n_models, depth).n_candidates
    per_query = n_lam * (6 * 32 * itemsize + n_models * (1 + 2 * itemsize) + 32) + 8 * rows * 10 * itemsize
    if states:
        per_query += 3 * (1 << n_models) * n_models * itemsize + n_lam * n_models * itemsize
    return per_query, 3 * rows * 64 * samples * itemsize
