"""The exact λ-path of cascade routing (constant λ): every λ ≥ 0, no grid.

For one query and a fixed λ the strategy follows a trajectory of states ∅ = R_0 ⊂ R_1 ⊂ … (one model added per
step) to a final state, whose realised cost and quality are the query's outcome. At each state R_j the choice
T* stays the best as λ grows until a cheaper candidate's score line Q − λC crosses its own, at
λ' = (Q(T*) − Q(T)) / (C(T*) − C(T)); costlier candidates only fall further behind. So the trajectory — and the
outcome — is constant from λ up to the smallest such crossing over its states, the next *event*. Walking from
λ = 0 from event to event (each a fresh trajectory at the event's λ, MIN ties, which is the limit from the
right) visits every outcome the query has, in order; sorting all queries' events and accumulating the changes
gives the path, as :func:`cascjax.routing_path` does for routing.

Each event re-evaluates D states' candidates (Q by the shared points), so the path costs about as much as a
grid sweep of (events per query) λ values without the state sharing of :mod:`cascjax._cascade_routing`; it is
the exact reference, for problems of the example's size.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _chunks, _compile
from ._checks import _strategy_inputs
from ._compile import masked_sum
from ._curve import Curve
from ._cascade_routing import realised
from ._decide import select
from ._events import _path
from ._supermodels import _table, allowed, candidate_cost, expected_max
from ._views import answer_scores, visible

#: Events recorded per query in the first walk; a query with more makes the walk run again with twice as many.
ROOM = 32


def _trajectory(e, z, factor, lam, *, depth, rtol, tie_max, force_order, greedy):
    """One query at one λ: the final state (bitmask) and the next event, the smallest crossing above λ of a
    cheaper candidate with the choice at any state of the trajectory (+inf if none)."""
    m = e[0].shape[-1]
    table = _table(m, depth)
    masks = jnp.asarray(table.mask, jnp.int32)
    state, done, event = jnp.int32(0), jnp.asarray(False), jnp.asarray(jnp.inf, e[0].dtype)
    for j in range(depth):  # unrolled: at most D steps
        mu, sd, ch = visible(e, None, state)
        scale = sd if factor is None else factor[state]
        q, c = expected_max(mu, scale, z, depth), candidate_cost(ch, depth)
        valid = allowed(table, state, "cascade_routing", j, force_order=force_order, greedy=greedy)
        best = select(q, c, lam, rtol, tie_max, valid)
        cheaper = valid & (c < c[best])
        cross = (q[best] - q) / jnp.where(cheaper, c[best] - c, 1)
        ahead = jnp.min(jnp.where(cheaper & (cross > lam), cross, jnp.inf))
        event = jnp.where(done, event, jnp.minimum(event, ahead))
        new = masks[best] & ~state
        stop = new == 0
        state = jnp.where(done | stop, state, state | (new & -new))  # the lowest-index new model runs
        done = done | stop
    return state, event


def _query_events(e, z, factor, *, room, **kw):
    """The events of one query: the state at λ = 0 under MAX ties, then [room] (λ, state) pairs (λ = +inf:
    unused), and whether the walk needed more room."""
    zero = jnp.zeros((), e[0].dtype)
    start, _ = _trajectory(e, z, factor, zero, tie_max=True, **kw)
    lams = jnp.full(room, jnp.inf, zero.dtype)
    states = jnp.zeros(room, jnp.int32)

    def more(carry):
        k, lam, *_ = carry
        return (k < room) & jnp.isfinite(lam)

    def walk(carry):
        k, lam, lams, states = carry
        state, nxt = _trajectory(e, z, factor, lam, tie_max=False, **kw)
        return k + 1, nxt, lams.at[k].set(lam), states.at[k].set(state)

    k, lam, lams, states = jax.lax.while_loop(more, walk, (jnp.int32(0), zero, lams, states))
    return start, lams, states, jnp.isfinite(lam)


@partial(jax.jit, static_argnames=("depth", "rtol", "force_order", "greedy", "room", "plan"))
def _events(quality, cost, e, z, factor, n, *, depth, rtol, force_order, greedy, room, plan):
    """Events of every query (chunks of queries over devices, ``plan``; the first ``n`` (traced) rows are real):
    λ [N·room], deltas [N·room, 3] of realised cost, quality and models run, base [3] at λ = 0 (MAX), number of
    finite events, overflow flag."""
    walk = partial(_query_events, room=room, depth=depth, rtol=rtol, force_order=force_order, greedy=greedy)

    def one(args, z, factor):
        q_, c_, e_, w = args
        start, lams, states, over = jax.vmap(walk, in_axes=(0, None, None))(e_, z, factor)

        def outcome(state):  # [chunk, P] bitmasks → [chunk, P, 3] realised (cost, quality, models run)
            return jnp.stack(realised(q_, c_, answer_scores(e_, state), state)[:3], axis=-1)

        before = jnp.concatenate([start[:, None], states[:, :-1]], axis=1)
        changed = (states != before) & jnp.isfinite(lams) & (w > 0)[:, None]  # padding queries: no events
        lam = jnp.where(changed, lams, jnp.inf)
        deltas = jnp.where(changed[..., None], outcome(states) - outcome(before), 0)
        base = masked_sum(w, outcome(start[:, None])[:, 0])
        sums = (base, jnp.sum(jnp.isfinite(lam), dtype=jnp.int32), jnp.any(over & (w > 0)))
        return sums, (lam, deltas)

    (base, count, over), (lam, deltas) = _chunks.over_queries(one, (quality, cost, tuple(e)), n, plan, (z, factor))
    lam, deltas = _chunks.gather((lam.ravel(), deltas.reshape(-1, 3)), plan)
    return lam, deltas, base, count, over > 0


def cascade_routing_path(ds, est, *, max_depth: int | None = None, samples: int = 64, force_order: bool = False,
                         greedy: bool = False, no_deviation: bool = False, tie_rtol: float | None = None,
                         chunk_size: int = 64, devices=None) -> Curve:
    """The exact curve of cascade routing for every constant λ ≥ 0 (no grid).

    Per query, walks λ upwards from 0 from event to event: the trajectory of states at λ is followed and the
    next event is the smallest λ' > λ at which a cheaper candidate's score line crosses the choice's at one of
    its states (nothing changes before). Events that change the final state change the outcome; sorting all
    queries' events and accumulating gives the vertices. Q and C are those of :func:`cascjax.sweep` (same
    shared points, ``samples``, covariance, options); a λ within the tie tolerance ``tie_rtol`` of a crossing
    counts as the crossing, as in :func:`cascjax.path_at`.

    Each event evaluates the D states of a trajectory afresh (no sharing between events), so this is the
    exact reference for small and medium problems (the MMLU-Pro example: seconds); for large sweeps use the
    grid (:func:`cascjax.sweep`), which this path reproduces at every grid λ.

    Args:
      ds, est: the dataset and estimates, [N, M] each.
      max_depth, samples, force_order, greedy, no_deviation: as for :func:`cascjax.sweep` with
        ``"cascade_routing"``.
      tie_rtol: relative tie tolerance (default 32·eps of the dtype).
      chunk_size: queries walked at once (bounds memory: each holds D states' candidate tables).
      devices: the devices the queries are sharded over (default: all visible), as in :func:`cascjax.sweep`.

    Returns:
      A :class:`Curve` of vertices: ``lam`` ascending from 0, realised mean ``cost``, ``quality`` and ``ran``.
      Vertex k is what MIN ties realise for λ ∈ [lam[k], lam[k+1]) and MAX ties for λ ∈ (lam[k], lam[k+1]];
      vertex 0 is MAX at λ = 0 (:func:`cascjax.path_at`, :func:`cascjax.at_budget` work on it).

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example().take(range(200))
      >>> path = cascjax.cascade_routing_path(ds, cascjax.perfect_estimates(ds), max_depth=2)
      >>> float(path.lam[0]), float(path.ran[-1])
      (0.0, 1.0)
    """
    from ._cascade_routing import MAX_MODELS
    from ._decide import tie_rtol as _tie_rtol
    from ._errors import CascjaxError

    if ds.n_models > MAX_MODELS:
        raise CascjaxError(f"cascade routing supports at most {MAX_MODELS} models, got {ds.n_models}; "
                           "select fewer models (Dataset.select, or --models on the command line)")
    e, z, factor, depth = _strategy_inputs(ds, est, max_depth, samples, no_deviation)
    size = _compile.bucket(ds.n_queries, e[0][0].nbytes)  # a row of one input: [M], or a table's [2^M, M]
    p = _chunks.plan(size, chunk_size, None, 1.0, 0, devices)
    quality, cost, e = _compile.pad_put((ds.quality, ds.cost, e), size)
    rtol = _tie_rtol(ds.quality.dtype, tie_rtol)
    room = ROOM
    while True:
        lam, deltas, base, count, over = _events(quality, cost, e, z, factor, np.int32(ds.n_queries), depth=depth,
                                                 rtol=rtol, force_order=bool(force_order), greedy=bool(greedy),
                                                 room=room, plan=p)
        if not bool(over):
            break
        room *= 2  # some query has more events than room: walk again with twice the room
    curve = _path(lam, deltas, base, ds.n_queries, int(count))
    _compile.checkpoint()
    return curve
