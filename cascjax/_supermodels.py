"""Supermodels (DESIGN section 3): static candidate tables and their expected quality.

A supermodel T is a set of models: run all of them, answer with the one of highest post-hoc estimate. Its
quality given the information state R is Q(n, R, T) = E[max_{m ∈ T} Y_m], Y ~ N(μ(n, R), Σ(n, R)).

Candidate tables are static NumPy structure (built once per (M, max_depth), never traced); estimates are
traced data. Expected maxima use one fixed set of K standard-normal points shared by every query, state and
supermodel, so Q is exactly monotone and submodular in T and bit-reproducible.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _compile
from ._errors import CascjaxError

#: The largest candidate table built; larger pools need a smaller ``max_depth``.
MAX_CANDIDATES = 1 << 16


class Candidates(NamedTuple):
    """All non-empty supermodels of at most ``max_depth`` of M models, as static NumPy arrays.

    Row order is the tie order of DESIGN section 4: a lower row is the candidate whose sorted model indices
    come first lexicographically ((0,), (0, 1), (0, 1, 2), …, (0, 2), …, (1,), …).

    Attributes:
      members: [S, M] bool, model m is in candidate s.
      mask: [S] int64 bitmask of the members (bit m = model m).
      size: [S] int32 number of members.
    """

    members: np.ndarray
    mask: np.ndarray
    size: np.ndarray

    @property
    def n_candidates(self) -> int:
        return self.members.shape[0]


def n_candidates(n_models: int, max_depth: int) -> int:
    """Σ_{d=1}^{D} C(M, d): the size of the table for M models and depth D."""
    return sum(math.comb(n_models, d) for d in range(1, max_depth + 1))


def check_depth(n_models: int, max_depth: int | None, candidates: bool = True) -> int:
    """Validates ``max_depth`` (default M) and, with ``candidates`` (strategies that enumerate supermodels:
    cascade routing), the table size; returns the depth. The cascade and the threshold cascade only ever
    consider the M prefixes, so they pass ``candidates=False`` and take any pool."""
    if max_depth is None:
        max_depth = n_models
    if not isinstance(max_depth, (int, np.integer)) or not 1 <= max_depth <= n_models:
        raise CascjaxError(f"max_depth must be an integer in 1..{n_models} (the number of models), got {max_depth!r}")
    if not candidates:
        return int(max_depth)
    size = n_candidates(n_models, int(max_depth))
    if size > MAX_CANDIDATES:
        fits = max(d for d in range(1, n_models + 1) if n_candidates(n_models, d) <= MAX_CANDIDATES)
        raise CascjaxError(f"{n_models} models with max_depth={max_depth} give {size:,} candidate supermodels, "
                           f"more than the {MAX_CANDIDATES:,} supported; set max_depth (at most {fits} for "
                           f"{n_models} models: {n_candidates(n_models, fits):,} candidates), or use greedy=True "
                           f"(one new model per step, any pool and depth)")
    return int(max_depth)


def candidate_table(n_models: int, max_depth: int | None = None) -> Candidates:
    """The static table of every non-empty supermodel with at most ``max_depth`` members (default all M)."""
    return _table(n_models, check_depth(n_models, max_depth))


@functools.lru_cache(maxsize=64)
def _table(n_models: int, depth: int) -> Candidates:
    sets = sorted(c for d in range(1, depth + 1) for c in itertools.combinations(range(n_models), d))
    members = np.zeros((len(sets), n_models), bool)
    for s, c in enumerate(sets):
        members[s, list(c)] = True
    mask = (members.astype(np.int64) << np.arange(n_models, dtype=np.int64)).sum(axis=1)
    for arr in (members, mask):
        arr.setflags(write=False)
    size = members.sum(axis=1).astype(np.int32)
    size.setflags(write=False)
    return Candidates(members, mask, size)


@functools.lru_cache(maxsize=64)
def _plan(n_models: int, depth: int):
    """Static plan for computing per-candidate maxima level by level (|T| = 1, 2, …).

    Returns (first, levels, order): ``first`` the model of each singleton; for each level d ≥ 2 a pair (parent
    positions in the previous level's output, added model) with parent = T minus its largest member;
    ``order`` maps lexicographic rows to positions in the concatenated level outputs.
    """
    table = _table(n_models, depth)
    rows = [tuple(np.flatnonzero(r)) for r in table.members]
    by_level: list[list[tuple[int, ...]]] = [[] for _ in range(int(table.size.max()) + 1)]
    for r in rows:
        by_level[len(r)].append(r)
    pos = {}
    offset = 0
    plan = []
    for d in range(1, len(by_level)):
        for i, r in enumerate(by_level[d]):
            pos[r] = offset + i
        if d >= 2:
            prev_offset = offset - len(by_level[d - 1])
            parents = np.array([pos[r[:-1]] - prev_offset for r in by_level[d]], np.int32)
            last = np.array([r[-1] for r in by_level[d]], np.int32)
            plan.append((parents, last))
        offset += len(by_level[d])
    first = np.array([r[0] for r in by_level[1]], np.int32)
    order = np.array([pos[r] for r in rows], np.int32)
    return first, tuple(plan), order


def normal_points(n_samples: int, n_models: int, seed: int = 0, dtype=None) -> jax.Array:
    """The fixed, seeded [K, M] standard-normal points shared by all expected maxima.

    Antithetic: the first ⌊K/2⌋ draws, then their negatives (and a zero point if K is odd), so every
    coordinate's sample mean is exactly zero — a single model's Monte-Carlo quality is its μ up to rounding,
    which keeps Q(T) ≥ Q({m}) = μ_m consistent with the exact value used for |T| = 1. The points are drawn
    in float32 and cast, so runs in float32 and float64 share them.
    """
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise CascjaxError(f"samples (K) must be an integer >= 1, got {n_samples!r}")
    dtype = jnp.dtype(dtype or jnp.zeros(()).dtype)
    return _points(int(n_samples), int(n_models), int(seed), dtype)


@functools.lru_cache(maxsize=32)
def _points(n_samples: int, n_models: int, seed: int, dtype) -> jax.Array:
    """:func:`normal_points`, once per process for each (K, M, seed, dtype), in one program (eagerly, the draw,
    the negation and the concatenation were three)."""
    return _antithetic(jax.random.key(seed), n_samples, n_models, dtype)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _antithetic(key, n_samples, n_models, dtype):
    # Drawn in float32 whatever the dtype, so float32 and float64 runs use the same points.
    half = _compile.normal(key, (n_samples // 2, n_models), jnp.float32).astype(dtype)
    parts = [half, -half] + ([jnp.zeros((1, n_models), dtype)] if n_samples % 2 else [])
    return jnp.concatenate(parts)


def expected_max(mu: jax.Array, scale: jax.Array, z: jax.Array, max_depth: int | None = None) -> jax.Array:
    """Q(T) = E[max_{m ∈ T} Y_m] for every candidate T of the table, for one query and state.

    Args:
      mu: [M] means μ(n, R).
      scale: [M] standard deviations (independent) or an [M, M] lower-triangular factor L with Σ = L Lᵀ
        (e.g. the Cholesky factor of a run-pattern's covariance).
      z: [K, M] shared standard-normal points (:func:`normal_points`).
      max_depth: the table's depth (static).

    Returns:
      [S] expected maxima in the table's row order. Exact where it can be: μ_m for |T| = 1, max_{m ∈ T} μ_m
      when every member's deviation is zero; otherwise mean_k max_{m ∈ T} (μ + L z_k)_m.
    """
    m = mu.shape[0]
    depth = check_depth(m, max_depth)
    table = _table(m, depth)
    first, plan, order = _plan(m, depth)
    if scale.ndim == 1:
        dev = z * scale[None]
        spread = scale != 0
    else:
        dev = z @ scale.T
        spread = jnp.any(scale != 0, axis=1)
    y = mu[None] + dev  # [K, M]
    level = y[:, first]
    outs = [level]
    for parents, last in plan:
        level = jnp.maximum(level[:, parents], y[:, last])
        outs.append(level)
    mc = jnp.mean(jnp.concatenate(outs, axis=1), axis=0)[order]
    members = jnp.asarray(table.members)
    deterministic = ~jnp.any(members & spread[None], axis=1)
    exact_max = jnp.max(jnp.where(members, mu[None], -jnp.inf), axis=1)
    single = jnp.asarray(table.size == 1)
    return jnp.where(single | deterministic, exact_max, mc)


def candidate_cost(c_hat: jax.Array, max_depth: int | None = None) -> jax.Array:
    """C(T) = Σ_{m ∈ T} ĉ_m for every candidate of the table: [M] → [S]."""
    table = candidate_table(c_hat.shape[0], max_depth)
    return jnp.asarray(table.members, c_hat.dtype) @ c_hat


def allowed(table: Candidates, state: jax.Array, kind: str, step: jax.Array, *, force_order: bool = False,
            greedy: bool = False) -> jax.Array:
    """Cand(R) of DESIGN section 4 as an [S] mask over the table, for a traced state bitmask R.

    Args:
      table: the static candidate table.
      state: int bitmask R of the models already run (traced).
      kind: ``"routing"`` (singletons), ``"cascade"`` (prefixes {0..i}, i ≥ max(j − 1, 0)) or
        ``"cascade_routing"`` (every T ⊇ R in the table, so |T| ≤ max_depth).
      step: j = |R| (traced), the number of models run.
      force_order: cascade routing only: every m ∈ T \\ R has m > max(R).
      greedy: cascade routing only: |T \\ R| ≤ 1.

    A candidate equal to R means "stop"; it is allowed whenever R ≠ ∅ (T ≠ ∅ always).
    """
    mask = jnp.asarray(table.mask)
    state = jnp.asarray(state, mask.dtype)
    if kind == "routing":
        return jnp.asarray(table.size == 1)
    if kind == "cascade":
        lowest = jnp.maximum(step - 1, 0)
        prefix = (mask & (mask + 1)) == 0  # 0b0..01..1
        return prefix & (jnp.asarray(table.size) >= lowest + 1)
    if kind != "cascade_routing":
        raise CascjaxError(f"unknown candidate kind {kind!r}")
    new = mask & ~state
    ok = (mask & state) == state
    if force_order:
        below = jnp.left_shift(jnp.ones_like(state), _highest_bit(state) + 1) - 1  # bits 0..max(R); 0 for R = ∅
        ok &= (new & below) == 0
    if greedy:
        ok &= jax.lax.population_count(new) <= 1
    return ok


def _highest_bit(x: jax.Array) -> jax.Array:
    """Index of the highest set bit of a positive integer (−1 for 0)."""
    return (x.dtype.itemsize * 8 - 1) - jax.lax.clz(x)


# -- relative tables: the sets U of new models at a state, and their Monte-Carlo maxima (cascade routing) ----


class _Relative(NamedTuple):
    """Static table of the sets U of new models at a state, over relative positions 0..F−1 (the models not
    yet run, ascending); U = ∅ (stop) is row 0. Rows are in level order: by size, then lexicographically
    within a size — the order the level-by-level maxima come out in (:func:`_sample_means`), so they need no
    reordering. The tie order is recomputed from the global table (``lex`` where R = ∅)."""

    members: np.ndarray  # [S, F] bool
    size: np.ndarray  # [S] int32
    lowest: np.ndarray  # [S] int32 lowest position (F for ∅)
    highest: np.ndarray  # [S] int32 highest position (−1 for ∅)
    plan: tuple  # per level d ≥ 1: (parent positions in the previous level's rows, added position)
    drop: np.ndarray  # [S, E] row of U minus its i-th member, −1 where U has fewer members
    lex: np.ndarray  # [S] int32 the row's position in lexicographic order of the sorted tuples (∅ first)


@functools.lru_cache(maxsize=64)
def _relative(free: int, extra: int) -> _Relative:
    by_level = [list(itertools.combinations(range(free), d)) for d in range(extra + 1)]  # each lexicographic
    rows = [r for level in by_level for r in level]
    index = {r: i for i, r in enumerate(rows)}
    members = np.zeros((len(rows), free), bool)
    for s, r in enumerate(rows):
        members[s, list(r)] = True
    size = members.sum(axis=1).astype(np.int32)
    lowest = np.array([r[0] if r else free for r in rows], np.int32)
    highest = np.array([r[-1] if r else -1 for r in rows], np.int32)
    drop = np.full((len(rows), max(extra, 1)), -1, np.int32)
    for s, r in enumerate(rows):
        for i in range(len(r)):
            drop[s, i] = index[r[:i] + r[i + 1:]]
    plan = []
    for d in range(1, extra + 1):
        within = {r: i for i, r in enumerate(by_level[d - 1])}
        plan.append((np.array([within[r[:-1]] for r in by_level[d]], np.int32),
                     np.array([r[-1] for r in by_level[d]], np.int32)))
    lex = np.empty(len(rows), np.int32)
    lex[[index[r] for r in sorted(rows)]] = np.arange(len(rows), dtype=np.int32)
    for arr in (members, size, lowest, highest, drop, lex):
        arr.setflags(write=False)
    return _Relative(members, size, lowest, highest, tuple(plan), drop, lex)


def _sample_means(rel: _Relative, ran: jax.Array, y: jax.Array, comp: jax.Array, levels=None) -> jax.Array:
    """mean_k max_{m ∈ R ∪ U} y_k,m for a block of states and every row U: [S, B] (rows first).

    ``ran`` [B, M] the states, ``y`` [B, K, M] the sample points, ``comp`` [B, F] the models not run. The
    level-by-level maxima keep the block and sample axes innermost, so every step gathers whole [B, K] slabs
    (24x faster on CPU than vmapping a one-state version, measured on 4,096 states of 11 models). Each level's
    means are written in place into the rows of the result, which are in level order (:class:`_Relative`):
    concatenating the levels, reordering and transposing to [B, S] took ~7x as long as the maxima themselves
    at K 1 (0.81 of 1.24 ms per block of 64 states of 11 models, depth 5; measured). ``levels`` (traced, optional):
    only rows of at most that many new models are needed; deeper levels are skipped (``lax.cond``) and come
    back as zeros — one table then serves every step of the scan over steps.
    """
    base = jnp.max(jnp.where(ran[:, None, :], y, -jnp.inf), axis=2)  # [B, K]
    values = jnp.moveaxis(jnp.take_along_axis(y, comp[:, None, :], axis=2), 2, 0)  # [F, B, K]
    level = base[None]
    out = jnp.zeros((rel.size.shape[0], y.shape[0]), y.dtype).at[:1].set(jnp.mean(level, axis=2))
    start = 1
    for d, (parents, added) in enumerate(rel.plan, start=1):
        def grow(level, parents=parents, added=added):
            new = jnp.maximum(level[parents], values[added])
            return new, jnp.mean(new, axis=2)

        if levels is None or isinstance(levels, int):  # static: every level is needed (d ≤ D − j by the table)
            level, mean = grow(level)
        else:
            shapes = jax.eval_shape(grow, level)
            level, mean = jax.lax.cond(d <= levels, grow,
                                       lambda _, sh=shapes: tuple(jnp.zeros(a.shape, a.dtype) for a in sh), level)
        out = out.at[start:start + mean.shape[0]].set(mean)
        start += mean.shape[0]
    return out
