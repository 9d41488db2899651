"""The paper's optimal cascade (DESIGN section 4): models in order, each step choosing among prefixes.

At step j the information state is R = {0..j−1} (models run in the dataset's order, ascending mean cost when
sorted) and the candidates are the prefixes {0..i}, i ≥ max(j − 1, 0), |{0..i}| ≤ D. The decision rule picks
T* = argmax Q(T) − λ_j C(T); T* = R stops, anything else runs model j. The answer is the run model with the
highest post-hoc estimate (lower index on a tie).

The state reached at step j does not depend on λ — only whether the cascade is still running does — so Q and
C of every (step, prefix) are computed once per query, and each λ costs only D decisions over ≤ M candidates.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import _chunks, _compile
from ._checks import _strategy_inputs
from ._compile import count, masked_sum, ordered_cumsum, real_sum
from ._curve import Curve
from ._decide import _magnitudes, select
from ._events import _path
from ._views import prefix_view


def _prefix_values(mu, sd, c_hat, z, factor=None):
    """Q and C of the prefixes {0..i}, i = 0..M−1, for one query in one state: [M] each.

    Q by the shared points z [K, M] (running maxima over the models), exact for a single model and where no
    member deviates, as :func:`cascjax._supermodels.expected_max`. Deviations are ``sd`` (independent) or,
    when ``factor`` [M, M] is given, L z with L L^T = Σ(R).
    """
    if factor is None:
        y, deviates = mu[None] + z * sd[None], sd != 0  # [K, M], [M]
    else:
        y, deviates = mu[None] + z @ factor.T, jnp.any(factor != 0, axis=1)
    mc = jnp.mean(jax.lax.cummax(y, axis=1), axis=0)
    exact = jax.lax.cummax(mu)
    deterministic = jnp.cumsum(deviates) == 0
    single = jnp.arange(mu.shape[0]) == 0
    return jnp.where(single | deterministic, exact, mc), jnp.cumsum(c_hat)


def _query_tables(mu, sd, c_hat, z, factor, depth):
    """Q, C [D, M] of every prefix at every step j = 0..D−1 for one query, from what it sees in the state
    {0..j−1}: μ, σ, ĉ [D, M] (rows of :func:`cascjax._views.prefix_view`). ``factor``: None or the
    [2^M, M, M] square roots of Σ(R) per run-pattern (the state {0..j−1} is pattern 2^j − 1)."""

    def at_step(j, mu_j, sd_j, c_j):
        f = None if factor is None else factor[(1 << j) - 1]
        return _prefix_values(mu_j, sd_j, c_j, z, f)

    return jax.vmap(at_step)(jnp.arange(depth), mu, sd, c_hat)


def _independent_tables(mu, sd, c_hat, z):
    """:func:`_query_tables` of every query with independent deviations: Q, C [N, D, M] from μ, σ, ĉ [N, D, M].

    One prefix at a time under ``lax.scan`` (one body for every pool size): the prefix one model longer keeps
    the running maxima over the points, [N, K, D], as one ``maximum`` of the previous ones, and its Monte-Carlo
    value is their mean. Measured on 12,020 queries x 6 steps x 16 points x 6 prefixes: 23 ms vmapping
    :func:`_prefix_values` (whose ``lax.cummax`` over the models, the last axis, XLA's CPU code runs as a scan
    of strided slices), 7.4 ms unrolled by prefix, 6.6 ms so; compiling with 48 models, 1.3 s unrolled, 0.25 s so.
    """

    def prefix(carry, column):
        run, top = carry  # [N, K, D] running maxima of the points, [N, D] of the means μ
        mu_i, sd_i, z_i = column
        run = jnp.maximum(run, mu_i[:, None, :] + z_i[None, :, None] * sd_i[:, None, :])
        top = jnp.maximum(top, mu_i)
        return (run, top), (jnp.mean(run, axis=1), top)

    n, depth, m = mu.shape
    columns = (jnp.moveaxis(mu, 2, 0), jnp.moveaxis(sd, 2, 0), z.T)
    start = (jnp.full((n, z.shape[0], depth), -jnp.inf, mu.dtype), jnp.full((n, depth), -jnp.inf, mu.dtype))
    mc, exact = (jnp.moveaxis(a, 0, 2) for a in jax.lax.scan(prefix, start, columns)[1])  # [N, D, M] each
    deterministic = jnp.cumsum(sd != 0, axis=2) == 0
    single = (jnp.arange(m) == 0)[None, None]
    return jnp.where(single | deterministic, exact, mc), jnp.cumsum(c_hat, axis=2)


def _tables(quality, cost, est, z, factor, depth):
    """What the cascade needs of every query, λ-independent: Q, C [N, D, M] of every (step, prefix); the
    realised cost after r = 1..D models [N, D]; the answering model after r models [N, D] (the highest estimate
    among models 0..r−1 in the state {0..r−1} — their post-hoc estimates — lower index on a tie)."""
    m = quality.shape[1]
    mu, sd, c_hat = prefix_view(est, depth)  # [N, D + 1, M]: the states {0..j−1}, j = 0..D
    if factor is None:
        q_tab, c_tab = _independent_tables(mu[:, :depth], sd[:, :depth], c_hat[:, :depth], z)
    else:
        q_tab, c_tab = jax.vmap(_query_tables, in_axes=(0, 0, 0, None, None, None))(
            mu[:, :depth], sd[:, :depth], c_hat[:, :depth], z, factor, depth)
    spent = ordered_cumsum(cost[:, :depth], axis=1)
    upto = jnp.arange(m)[None, :] < jnp.arange(1, depth + 1)[:, None]  # [D, M]
    answer_of = jnp.argmax(jnp.where(upto[None], mu[:, 1:], -jnp.inf), axis=2).astype(jnp.int32)
    return q_tab, c_tab, spent, answer_of


def _valid(m, depth):
    """[D, M] Cand(R) at step j: prefixes {0..i} with max(j − 1, 0) ≤ i < D."""
    steps, i = jnp.arange(depth), jnp.arange(m)
    return (i[None] >= jnp.maximum(steps - 1, 0)[:, None]) & (i[None] < depth)


def _run_length(q, c, mags, lam, rtol, tie_max, depth):
    """Models run by one query at one λ vector [D]: the first step j ≥ 1 whose choice is R = {0..j−1}, else D."""
    steps = jnp.arange(depth)
    valid = _valid(q.shape[1], depth)
    choice = jax.vmap(select, in_axes=(0, 0, 0, None, None, 0, 0))(q, c, lam, rtol, tie_max, valid, mags)
    stops = (steps >= 1) & (choice == steps - 1)
    return jnp.where(jnp.any(stops), jnp.argmax(stops), depth).astype(jnp.int32)


@partial(jax.jit, static_argnames=("depth", "rtol", "return_choices", "batch_size", "plan"))
def cascade_sweep(quality, cost, est, lam, z, factor, n, tie_max, groups=None, *, depth, rtol, return_choices,
                  batch_size, plan):
    """The optimal cascade at every row of ``lam`` [L, D]; a Curve with ``lam`` as given. The first ``n``
    (traced) rows are real queries, the rest padding; ``tie_max`` (traced bool) the tie rule. Queries in chunks
    over devices (``plan``, :mod:`cascjax._chunks`); ``groups``: sums per group of queries
    (:func:`cascjax._chunks.over_queries`)."""
    m = quality.shape[1]

    def one(args, lam, z, factor):
        q_, c_, e, w = args
        q_tab, c_tab, spent, answer_of = _tables(q_, c_, e, z, factor, depth)  # λ-independent, once per chunk
        # select's tolerance scales with the magnitudes over each step's valid candidates: λ-independent, once.
        mags = jax.vmap(jax.vmap(_magnitudes), in_axes=(0, 0, None))(q_tab, c_tab, _valid(m, depth))

        def at(lam_l):
            runs = jax.vmap(_run_length, in_axes=(0, 0, 0, None, None, None, None))(
                q_tab, c_tab, mags, lam_l, rtol, tie_max, depth)
            answer = jnp.take_along_axis(answer_of, (runs - 1)[:, None], axis=1)[:, 0]
            got = jnp.take_along_axis(q_, answer[:, None], axis=1)[:, 0]
            paid = jnp.take_along_axis(spent, (runs - 1)[:, None], axis=1)[:, 0]
            sums = (masked_sum(w, got), masked_sum(w, paid), count(w, answer, m, q_.dtype),
                    real_sum(w, runs))  # models run: integers, exact in any order
            return sums, ((answer, paid) if return_choices else None)

        sums, per_query = jax.lax.map(at, lam, batch_size=batch_size)
        return sums, (None if per_query is None else tuple(a.T for a in per_query))

    (q, c, answered, ran), per_query = _chunks.over_queries(one, (quality, cost, tuple(est)), n, plan,
                                                            (lam, z, factor), groups=groups)
    if per_query is not None:
        per_query = tuple(a.T for a in per_query)
    n = n.astype(q.dtype)
    return Curve(lam, c / n, q / n, answered / n, ran.astype(q.dtype) / n, *(per_query or (None, None)))


def _stop_intervals(q, c, depth):
    """For one query: the λ at which step j = 1..D−1 stops, as an interval per step (exact arithmetic).

    At step j (state {0..j−1}) stopping, the prefix {0..j−1}, beats prefix {0..i} (i ≥ j) iff
    λ·(C_i − C_stop) ≥ Q_i − Q_stop, with ties going to the cheaper choice (MIN) or the more expensive one
    (MAX), and to the shorter prefix at equal cost. So the step stops for λ in [lo, hi) under MIN and in
    (lo, hi] under MAX, with lo the largest slope to a costlier prefix and hi the smallest slope to a cheaper one
    (cost estimates may be negative); empty if a prefix of equal cost is better.

    Args:
      q, c: [D, M] Q and C of every prefix at every step (:func:`_query_tables`).

    Returns:
      (lo, hi) [D − 1] each; an empty interval has lo = +inf.
    """
    m = q.shape[1]
    steps = jnp.arange(1, depth)
    stop = steps - 1
    dq = q[1:] - jnp.take_along_axis(q[1:], stop[:, None], axis=1)  # [D − 1, M]
    dc = c[1:] - jnp.take_along_axis(c[1:], stop[:, None], axis=1)
    i = jnp.arange(m)[None]
    valid = (i >= steps[:, None]) & (i < depth)
    ratio = dq / jnp.where(dc != 0, dc, 1)
    lo = jnp.max(jnp.where(valid & (dc > 0), ratio, -jnp.inf), axis=1)
    hi = jnp.min(jnp.where(valid & (dc < 0), ratio, jnp.inf), axis=1)
    blocked = jnp.any(valid & (dc == 0) & (dq > 0), axis=1) | (lo >= hi)
    return jnp.where(blocked, jnp.inf, lo), hi


def _runs_at(lo, hi, lam, tie_max):
    """Models run at each λ of ``lam`` [P] (or per-step λ rows [P, D − 1], λ_j for step j) from the stop
    intervals [D − 1]: the first step that stops, else D."""
    if lo.shape[0] == 0:  # max_depth = 1: the first model always answers
        return jnp.ones(lam.shape[:1], jnp.int32)
    lam = lam[:, None] if lam.ndim == 1 else lam
    stops = (lo[None] < lam) & (lam <= hi[None]) if tie_max else (lo[None] <= lam) & (lam < hi[None])
    depth = lo.shape[0] + 1
    return jnp.where(jnp.any(stops, axis=1), jnp.argmax(stops, axis=1) + 1, depth).astype(jnp.int32)


@partial(jax.jit, static_argnames=("depth", "plan"))
def _cascade_events(quality, cost, est, z, factor, n, depth, plan):
    """Events of the exact cascade path: for each query its stop-interval endpoints > 0, with the change of
    realised quality, cost and models run at each (MIN ties: the value on the right of a breakpoint).
    Queries in chunks over devices (``plan``).

    Returns (λ [N·2(D−1)] (+inf: no event), deltas [N·2(D−1), 3], base [3] (sums at λ = 0 under MAX),
    number of finite events). The first ``n`` (traced) rows are real queries."""

    def one(args, z, factor):
        q_, c_, e, w = args
        q_tab, c_tab, spent, answer_of = _tables(q_, c_, e, z, factor, depth)
        lo, hi = jax.vmap(_stop_intervals, in_axes=(0, 0, None))(q_tab, c_tab, depth)  # [chunk, D − 1]
        got = jnp.take_along_axis(q_, answer_of, axis=1)  # [chunk, D]: realised quality after r models

        def outcome(runs):  # [chunk, P] models run → [chunk, P, 3] (cost, quality, models run)
            idx = runs - 1
            return jnp.stack([jnp.take_along_axis(spent, idx, axis=1), jnp.take_along_axis(got, idx, axis=1),
                              runs.astype(q_.dtype)], axis=-1)

        ends = jnp.concatenate([lo, hi], axis=1)
        points = jnp.sort(jnp.where(ends > 0, ends, jnp.inf), axis=1)  # [chunk, 2(D − 1)] breakpoints > 0
        zero = jnp.zeros((q_.shape[0], 1), q_.dtype)
        runs_at = jax.vmap(_runs_at, in_axes=(0, 0, 0, None))
        at_max0, at_min0 = runs_at(lo, hi, zero, True), runs_at(lo, hi, zero, False)  # [chunk, 1]
        runs = runs_at(lo, hi, jnp.where(jnp.isfinite(points), points, 0), False)
        before = jnp.concatenate([at_max0, at_min0, runs[:, :-1]], axis=1)
        after = jnp.concatenate([at_min0, runs], axis=1)
        lam = jnp.concatenate([zero, points], axis=1)
        changed = (after != before) & jnp.isfinite(lam) & (w > 0)[:, None]  # padding queries: no events
        lam = jnp.where(changed, lam, jnp.inf)
        deltas = jnp.where(changed[..., None], outcome(after) - outcome(before), 0)
        base = masked_sum(w, outcome(at_max0)[:, 0])
        return (base, jnp.sum(jnp.isfinite(lam), dtype=jnp.int32)), (lam, deltas)

    (base, count), (lam, deltas) = _chunks.over_queries(one, (quality, cost, tuple(est)), n, plan, (z, factor))
    return *_chunks.gather((lam.ravel(), deltas.reshape(-1, 3)), plan), base, count


def cascade_path(ds, est, *, max_depth: int | None = None, samples: int = 64, no_deviation: bool = False,
                 chunk_size: int | None = None, memory: float | None = None, devices=None):
    """The exact curve of the optimal cascade for every constant λ ≥ 0 (no grid).

    At step j the cascade stops iff λ lies in an interval [lo_j, hi_j) (MIN ties; (lo_j, hi_j] with MAX ties)
    read off the prefixes' (C, Q) points: lo_j is the steepest slope (Q_i − Q_stop)/(C_i − C_stop) to a
    costlier prefix, hi_j the gentlest to a cheaper one. The models a query runs at λ are the first step
    whose interval holds λ, so its outcome changes only at the ≤ 2(D − 1) interval ends; sorting every
    query's ends and accumulating the changes gives the path, as :func:`cascjax.routing_path` does for
    routing. Q and C are those of :func:`cascjax.sweep` (same shared points, ``samples``, covariance,
    ``no_deviation``); the arithmetic on them is exact — no tie tolerance is applied. ``chunk_size``,
    ``memory`` and ``devices`` bound the memory of the Q tables and shard the queries as in
    :func:`cascjax.sweep`.

    Args:
      ds: the dataset, ``quality`` and ``cost`` [N, M] (only used to score the decisions).
      est: the estimates the cascade decides on, fields [N, M] (optional ``covariance`` [2^M, M, M]).
      max_depth: D, at most this many models run (1..M, default M).
      samples: K shared standard-normal points for the expected maxima, or a [K, M] array of points.
      no_deviation: ignore the estimates' σ and covariance (Q = max μ).
      chunk_size, memory, devices: how the query axis is processed, as in :func:`cascjax.sweep`.

    Returns:
      A :class:`Curve` of vertices: ``lam`` ascending from 0, realised mean ``cost``, ``quality`` and ``ran``
      (models run per query). Vertex k is what the MIN-tie cascade realises for λ ∈ [lam[k], lam[k+1]) and
      the MAX-tie cascade for λ ∈ (lam[k], lam[k+1]]; vertex 0 is MAX at λ = 0. Evaluate it at λ values with
      :func:`cascjax.path_at`; mix adjacent vertices at a budget with :func:`cascjax.at_budget` (Theorem 1).

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> path = cascjax.cascade_path(ds, cascjax.perfect_estimates(ds))
      >>> float(path.ran[0]), float(path.ran[-1])   # all six models at λ = 0, only the cheapest at large λ
      (6.0, 1.0)
    """
    e, z, factor, depth = _strategy_inputs(ds, est, max_depth, samples, no_deviation, candidates=False, prefix=True)
    m, itemsize = ds.n_models, ds.quality.dtype.itemsize
    size = _compile.bucket(ds.n_queries, e[0][0].nbytes)  # a row of one input: [M], or a table's [D + 1, M]
    quality, cost, e = _compile.pad_put((ds.quality, ds.cost, e), size)
    p = _chunks.plan(size, chunk_size, memory, m * itemsize * (12 + 3 * depth * z.shape[0]) + 3 * e[0][0].nbytes, 0,
                     devices)
    lam, deltas, base, count = _cascade_events(quality, cost, e, z, factor, np.int32(ds.n_queries), depth, p)
    curve = _path(lam, deltas, base, ds.n_queries, int(count))
    _compile.checkpoint()
    return curve
