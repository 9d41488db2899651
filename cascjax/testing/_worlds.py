"""Small exact worlds in which the optimal adaptive policy is known: a yardstick for the decision rule.

The setting is the paper's SWE-Bench-like world (Dekoninck, Baader & Vechev, ICML 2025): M ≤ 4 models,
model m's quality X_m ~ N(mu_m, sd_m²) independently, unknown until m runs; running m costs cost_m and
reveals X_m exactly. A policy runs models one at a time (adaptively, in any order, at least one), stops, and
answers with the best revealed value; its payoff is max_{m run} X_m − λ·Σ_{m run} cost_m.

Everything is computed *exactly* in a discretised world: X_m = mu_m + sd_m·z_{q_m} with q_m uniform on the
k nodes of :func:`world_nodes`, independent across models. No Monte Carlo anywhere, so three routes to
numbers can be compared to rounding:

* :func:`optimal_value`: the Bayes-optimal adaptive policy by dynamic programming;
* :func:`pandora_value`: the same optimum by Weitzman's Pandora's-box theorem (independent route);
* :func:`rule_value` (NumPy loops) and :func:`rule_values` (batched through cascjax's JAX cascade-routing
  kernel): the paper's cascade-routing decision rule, DESIGN section 4.

:func:`dp_gap` is what the rule gives away against the optimum (≥ 0 up to rounding).

Shapes: M models (1..4), W worlds in a batch, k nodes, D steps.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from .._errors import CascjaxError
from ._reference import TIE_ULPS, select

#: The largest pool a world may have (the DP table has 2^M·M·k entries per world; the rule enumerates k^M).
MAX_WORLD_MODELS = 4
_RTOL = TIE_ULPS * float(np.finfo(np.float64).eps)


class World(NamedTuple):
    """One world (fields [M]) or a batch of W worlds (fields [W, M]); float arrays.

    Attributes:
      mu: [M] or [W, M] prior mean of each model's quality.
      sd: [M] or [W, M] prior standard deviation (≥ 0; 0 means the quality is known ex ante).
      cost: [M] or [W, M] cost of running each model (≥ 0).

    Example:
      >>> w = World(mu=[0.0, 0.5], sd=[1.0, 0.0], cost=[0.1, 0.2]).validate()
      >>> w.mu.dtype, w.mu.shape
      (dtype('float64'), (2,))
    """

    mu: np.ndarray
    sd: np.ndarray
    cost: np.ndarray

    def validate(self) -> World:
        """The world as float64 arrays, after checking it.

        Returns:
          A :class:`World` whose fields are float64 NumPy arrays, all [M] or all [W, M].

        Raises:
          CascjaxError: a field that is not numeric, not [M] or [W, M], of another shape than ``mu``,
            non-finite, or negative (``sd``, ``cost``); M not in 1..4; an empty batch.

        Example:
          >>> from cascjax.testing import World
          >>> World(mu=[[0, 1]], sd=[[1, 0]], cost=[[1, 2]]).validate().cost   # W = 1, M = 2: ints become floats
          array([[1., 2.]])
          >>> try:
          ...     World(mu=[0.0, 0.5], sd=[1.0, -1.0], cost=[0.1, 0.2]).validate()
          ... except ValueError as error:
          ...     print(error)
          world field sd must be >= 0; got -1.0 at position (1,)
        """
        arrays = {}
        for name, value in self._asdict().items():
            arr = np.asarray(value)
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
                raise CascjaxError(f"world field {name} must be numeric, got dtype {arr.dtype}")
            arrays[name] = arr.astype(np.float64)
        shape = arrays["mu"].shape
        for name, arr in arrays.items():
            if arr.ndim not in (1, 2):
                raise CascjaxError(f"world field {name} must be [M] or [W, M], got shape {arr.shape}")
            if arr.shape != shape:
                raise CascjaxError(f"world field {name} has shape {arr.shape} but mu has shape {shape}")
        if not 1 <= shape[-1] <= MAX_WORLD_MODELS:
            raise CascjaxError(f"a world has 1..{MAX_WORLD_MODELS} models, got M = {shape[-1]} (field mu, "
                               f"shape {shape})")
        if len(shape) == 2 and shape[0] < 1:
            raise CascjaxError("the batch of worlds is empty (field mu has shape (0, M))")
        for name, arr in arrays.items():
            bad = ~np.isfinite(arr)
            if bad.any():
                raise CascjaxError(f"world field {name} must be finite; got {arr[bad][0]} at position "
                                   f"{tuple(int(i) for i in np.argwhere(bad)[0])}")
        for name in ("sd", "cost"):
            neg = arrays[name] < 0
            if neg.any():
                raise CascjaxError(f"world field {name} must be >= 0; got {arrays[name][neg][0]} at position "
                                   f"{tuple(int(i) for i in np.argwhere(neg)[0])}")
        return World(**arrays)


def world_nodes(k: int) -> np.ndarray:
    """The k standard nodes of the discrete world: quantiles of N(0, 1), mean 0, variance exactly 1.

    z_q = Φ⁻¹((q + 0.5)/k), q = 0..k−1, made exactly antisymmetric and divided by sqrt(mean(z²)), so the
    uniform distribution on the nodes has mean 0 and population variance 1 (k = 1: the single node 0).

    Args:
      k: the number of nodes, ≥ 1.

    Returns:
      [k] float64, ascending.

    Example:
      >>> z = world_nodes(4)
      >>> [round(float(x), 4) for x in z], round(float(np.mean(z ** 2)), 12)
      ([-1.3629, -0.3775, 0.3775, 1.3629], 1.0)
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise CascjaxError(f"the number of nodes must be an integer >= 1, got {k!r}")
    k = int(k)
    if k == 1:
        return np.zeros(1)
    normal = NormalDist()
    z = np.array([normal.inv_cdf((q + 0.5) / k) for q in range(k)])
    z = (z - z[::-1]) / 2.0  # exactly antisymmetric: mean 0 up to the rounding of the sum
    return z / math.sqrt(float(np.mean(z * z)))


# -- shared input handling -------------------------------------------------------------------------------------

def _batch(world: World) -> tuple[World, bool]:
    """The validated world as [W, M] arrays, and whether it came as a batch."""
    w = World(*world) if not isinstance(world, World) else world
    w = w.validate()
    if w.mu.ndim == 1:
        return World(w.mu[None], w.sd[None], w.cost[None]), False
    return w, True


def _values(world: World, nodes: int) -> np.ndarray:
    """x_{m,q} = mu_m + sd_m·z_q: [W, M, k] (the same expression everywhere, so values agree bit for bit)."""
    z = world_nodes(nodes)
    return world.mu[:, :, None] + world.sd[:, :, None] * z[None, None, :]


def _check_lam(lam, n_worlds: int, batched: bool, name: str = "lam") -> np.ndarray:
    """One λ ≥ 0 per world: a scalar, or [W] for a batch. Returns [W] float64."""
    arr = np.asarray(lam, dtype=np.float64)
    if arr.ndim == 1 and batched and arr.shape[0] == n_worlds:
        out = arr
    elif arr.ndim == 0:
        out = np.full(n_worlds, float(arr))
    else:
        raise CascjaxError(f"{name} must be a scalar{f' or [W] with W = {n_worlds}' if batched else ''}; "
                           f"got shape {arr.shape}")
    if not np.isfinite(out).all() or (out < 0).any():
        raise CascjaxError(f"{name} must be finite and >= 0; got {out[~(np.isfinite(out) & (out >= 0))][0]}")
    return out


def _check_options(n_models: int, tie: str, max_depth) -> tuple[bool, int]:
    if tie not in ("min", "max"):
        raise CascjaxError(f"unknown tie rule {tie!r}; choose 'min' or 'max'")
    depth = n_models if max_depth is None else max_depth
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or not 1 <= depth <= n_models:
        raise CascjaxError(f"max_depth must be an integer in 1..{n_models} (the number of models), got {max_depth!r}")
    return tie == "max", int(depth)


def _check_steps(lam, n_worlds: int, depth: int, batched: bool) -> np.ndarray:
    """The rule's λ per world and step, [W, D]: a scalar, [D] (one world), [W] or [W, D] (a batch)."""
    arr = np.asarray(lam, dtype=np.float64)
    if arr.ndim == 0:
        out = np.full((n_worlds, depth), float(arr))
    elif arr.ndim == 1 and not batched and arr.shape[0] == depth:
        out = arr[None]
    elif arr.ndim == 1 and batched and arr.shape[0] == n_worlds:
        out = np.repeat(arr[:, None], depth, axis=1)
    elif arr.ndim == 2 and batched and arr.shape == (n_worlds, depth):
        out = arr
    else:
        allowed = f"[W] = [{n_worlds}] or [W, D] = [{n_worlds}, {depth}]" if batched else f"[D] = [{depth}]"
        raise CascjaxError(f"lam must be a scalar or {allowed} (D = max_depth); got shape {arr.shape}")
    if not np.isfinite(out).all() or (out < 0).any():
        raise CascjaxError(f"lam must be finite and >= 0; got {out[~(np.isfinite(out) & (out >= 0))][0]}")
    return out


def _price(price, steps: np.ndarray, n_worlds: int, batched: bool) -> np.ndarray:
    """The λ of the payoff per world: ``price`` if given, else the rule's λ when it is constant over steps."""
    if price is not None:
        return _check_lam(price, n_worlds, batched, "price")
    if not (steps == steps[:, :1]).all():
        raise CascjaxError("with a per-step lam the payoff's λ is ambiguous: pass price= (a scalar or [W])")
    return steps[:, 0].copy()


def _unbatch(values: np.ndarray, batched: bool):
    return values if batched else float(values[0])


# -- the optimum ------------------------------------------------------------------------------------------------

def optimal_value(world: World, lam, nodes: int = 8, *, return_first: bool = False):
    """The Bayes-optimal adaptive policy's expected payoff, by dynamic programming (exact, discrete world).

    The state is (S, b): the set S of models run and the best revealed value b. b is always one of the M·k
    node values x_{m,q} = mu_m + sd_m·z_q, so V(S, ·) is a finite table and

        V(S, b) = max(b,  max_{m ∉ S} [−λ·cost_m + mean_q V(S ∪ {m}, max(b, x_{m,q}))]),   V(all, b) = b,

    with no stopping at S = ∅ (at least one model runs). Vectorised over b and over the W worlds; the 2^M sets
    are visited in order of decreasing size.

    Args:
      world: a :class:`World` with fields [M] or [W, M].
      lam: λ ≥ 0: a scalar, or [W] (one per world) for a batch.
      nodes: k, the number of nodes per model (:func:`world_nodes`).
      return_first: also return the optimal first model (lowest index among those within 32 ulps of the best).

    Returns:
      The value (a float, or [W] for a batch); with ``return_first`` a pair (value, first model: int or [W]).

    Example:
      >>> w = World(mu=[0.25, 1.0], sd=[1.0, 0.5], cost=[0.5, 1.0])   # nodes ±1: X_0 ∈ {−0.75, 1.25}
      >>> v, first = optimal_value(w, 1.0, nodes=2, return_first=True)
      >>> round(v, 6), first   # run model 0; only if it shows −0.75 run model 1 too (E[X_1] − 1 = 0)
      (0.125, 0)
    """
    w, batched = _batch(world)
    n_worlds, m = w.mu.shape
    lam = _check_lam(lam, n_worlds, batched)
    x = _values(w, nodes)  # [W, M, k]
    k = x.shape[2]
    flat = x.reshape(n_worlds, m * k)  # [W, B]: every possible best value b
    price = lam[:, None] * w.cost  # [W, M]
    full = (1 << m) - 1
    table = {full: flat}
    rows = np.arange(n_worlds)[:, None, None]

    def run_next(state: int, model: int) -> np.ndarray:
        """−λ·cost_m + mean_q V(S ∪ {m}, max(b, x_{m,q})) for every b: [W, B]."""
        new = x[:, model, None, :]  # [W, 1, k]
        index = np.where(new > flat[:, :, None], model * k + np.arange(k), np.arange(m * k)[None, :, None])
        nxt = table[state | 1 << model][rows, index]  # [W, B, k]
        return np.mean(nxt, axis=2) - price[:, model, None]

    for state in sorted(range(1, full), key=lambda s: -s.bit_count()):
        best = flat.copy()  # stop and answer with b
        for model in range(m):
            if not state >> model & 1:
                best = np.maximum(best, run_next(state, model))
        table[state] = best
    # S = ∅: some model must run; V({m}, ·) at b = x_{m,q} is V({m}, x_{m,q}).
    first_values = np.stack([np.mean(table[1 << j][:, j * k:(j + 1) * k], axis=1) - price[:, j]
                             for j in range(m)], axis=1)  # [W, M]
    value = np.max(first_values, axis=1)
    if not return_first:
        return _unbatch(value, batched)
    scale = np.max(np.abs(first_values), axis=1) + np.max(np.abs(price), axis=1)
    first = np.argmax(first_values >= (value - _RTOL * scale)[:, None], axis=1)
    return _unbatch(value, batched), (first if batched else int(first[0]))


def pandora_value(world: World, lam, nodes: int = 8):
    """The same optimum as :func:`optimal_value` by an independent route: Weitzman's Pandora's-box theorem.

    Model m's reservation value r_m solves E[(X_m − r_m)^+] = λ·cost_m. In the discrete world
    Σ_q (x_{m,q} − r)^+ = max_{j=0..k} (S_j − j·r) with S_j the sum of the j largest nodes, so (for
    λ·cost_m > 0) r_m = max_{j=1..k} (S_j − k·λ·cost_m)/j exactly; this gives r_m = max_q x_{m,q} when
    λ·cost_m = 0 (any r ≥ the largest node solves the equation then) and r_m = mu_m − λ·cost_m when sd_m = 0.
    The optimal expected payoff with no outside option (at least one box is opened) is
    E[max_m min(X_m, r_m)] (Weitzman 1979, "Optimal search for the best alternative", Econometrica 47(3);
    in this form: Kleinberg, Waggoner & Weyl 2016, "Descending price optimally coordinates search", EC'16),
    computed here by enumerating the k^M joint outcomes.

    Args:
      world: a :class:`World` with fields [M] or [W, M].
      lam: λ ≥ 0: a scalar, or [W] for a batch.
      nodes: k, the number of nodes per model.

    Returns:
      The value: a float, or [W] for a batch.

    Example:
      >>> round(pandora_value(World(mu=[0.25, 1.0], sd=[1.0, 0.5], cost=[0.5, 1.0]), 1.0, nodes=2), 6)
      0.125
    """
    w, batched = _batch(world)
    n_worlds, m = w.mu.shape
    lam = _check_lam(lam, n_worlds, batched)
    x = _values(w, nodes)
    k = x.shape[2]
    top = np.cumsum(-np.sort(-x, axis=2), axis=2)  # [W, M, k]: S_j, j = 1..k
    fee = k * lam[:, None, None] * w.cost[:, :, None]
    reserve = np.max((top - fee) / np.arange(1, k + 1), axis=2)  # [W, M]
    capped = np.minimum(x, reserve[:, :, None])  # [W, M, k]
    grid = np.array(list(itertools.product(range(k), repeat=m)))  # [k^M, M]
    outcomes = capped[:, np.arange(m)[None, :], grid]  # [W, k^M, M]
    return _unbatch(np.mean(np.max(outcomes, axis=2), axis=1), batched)


# -- the paper's decision rule, by loops -----------------------------------------------------------------------

def _rule_one(x, mu, sd, cost, lam_steps, price, depth, tie_max, force_order, greedy):
    """Expected payoff and first model of the rule in one world. ``x`` [M, k] the node values."""
    m, k = x.shape
    sets = sorted(t for d in range(1, depth + 1) for t in itertools.combinations(range(m), d))

    def expected_max(t: tuple, known: dict) -> float:
        """Q(T) = E[max_{m ∈ T} X_m | x_R]: exact shortcuts as in the kernel, else the mean over the joint
        nodes of T's unrun members that deviate (the others are constants)."""
        level = [x[i, known[i]] if i in known else mu[i] for i in t]
        if len(t) == 1:
            return float(level[0])
        spread = [i for i in t if i not in known and sd[i] != 0]
        if not spread:
            return float(max(level))
        base = max((v for i, v in zip(t, level) if i not in spread), default=-np.inf)
        maxima = [max(base, *(x[i, q] for i, q in zip(spread, combo)))
                  for combo in itertools.product(range(k), repeat=len(spread))]
        return float(np.mean(maxima))

    def decide(known: dict):
        """The model the rule runs next in state R = keys of ``known`` (model → node), or None to stop."""
        run = set(known)
        if len(run) == depth:
            return None
        qs, cs, cands = [], [], []
        for t in sets:
            new = set(t) - run
            if not run <= set(t):
                continue
            if force_order and run and any(i <= max(run) for i in new):
                continue
            if greedy and len(new) > 1:
                continue
            qs.append(expected_max(t, known))
            cs.append(float(sum(cost[i] for i in t)))
            cands.append(new)
        new = cands[select(qs, cs, float(lam_steps[len(run)]), _RTOL, tie_max)]
        return min(new) if new else None

    def outcome(known: dict) -> tuple[float, float]:
        """Expected (quality, cost) from state ``known`` on, following the rule."""
        nxt = decide(known)
        if nxt is None:
            return max(x[i, q] for i, q in known.items()), float(sum(cost[i] for i in known))
        parts = [outcome({**known, nxt: q}) for q in range(k)]
        return float(np.mean([p[0] for p in parts])), float(np.mean([p[1] for p in parts]))

    quality, spent = outcome({})
    return quality - price * spent, decide({})


def rule_value(world: World, lam, nodes: int = 8, tie: str = "min", max_depth: int | None = None,
               force_order: bool = False, greedy: bool = False, *, price=None, return_first: bool = False):
    """The expected payoff of the paper's cascade-routing rule in the discrete world, by plain loops.

    The rule (DESIGN section 4) in state R (models run, values x_R revealed), step j = |R|: candidates are every
    non-empty T ⊇ R with |T| ≤ D (``force_order``: new members above max(R); ``greedy``: at most one new
    member), scored Q(T) − λ_j·C(T) with Q(T) = E[max_{m ∈ T} X_m | x_R] exact in the discrete world and
    C(T) = Σ_{m ∈ T} cost_m (the full cost, run models included, as in the paper). Ties within
    32·eps·(max|Q| + λ_j·max|C|): MIN takes the cheapest (MAX the most expensive) C, then the lexicographically
    first set. T* = R stops; otherwise the lowest-index model of T* \\ R runs. The answer is the best revealed
    value. The expected payoff, max x_R − price·Σ_{m ∈ R} cost_m, is averaged over the decision tree (each
    revealed node has probability 1/k).

    Args:
      world: a :class:`World` with fields [M], or [W, M] (a loop over the worlds).
      lam: the rule's λ ≥ 0: a scalar; for one world also [D], λ_j per step; for a batch [W] or [W, D].
      nodes: k, the number of nodes per model.
      tie: ``"min"`` or ``"max"``.
      max_depth: D, at most this many models run (1..M, default M).
      force_order, greedy: the paper's options, as in :func:`cascjax.sweep`.
      price: the λ of the payoff (scalar or [W]); default ``lam`` (required when ``lam`` varies by step).
      return_first: also return the first model the rule runs (the same for every outcome).

    Returns:
      The value (a float, or [W]); with ``return_first`` a pair (value, first model: int or [W]).

    Example:
      >>> w = World(mu=[0.25, 1.0], sd=[1.0, 0.5], cost=[0.5, 1.0])
      >>> v, first = rule_value(w, 1.0, nodes=2, return_first=True)
      >>> round(v, 6), first   # scores at R = ∅: {0}: −0.25, {1}: 0, {0, 1}: 1.1875 − 1.5: runs 1, stops
      (0.0, 1)
    """
    w, batched = _batch(world)
    n_worlds, m = w.mu.shape
    tie_max, depth = _check_options(m, tie, max_depth)
    steps = _check_steps(lam, n_worlds, depth, batched)
    prices = _price(price, steps, n_worlds, batched)
    x = _values(w, nodes)
    values, firsts = np.zeros(n_worlds), np.zeros(n_worlds, np.int64)
    for i in range(n_worlds):
        values[i], firsts[i] = _rule_one(x[i], w.mu[i], w.sd[i], w.cost[i], steps[i], prices[i], depth, tie_max,
                                         bool(force_order), bool(greedy))
    if not return_first:
        return _unbatch(values, batched)
    return _unbatch(values, batched), (firsts if batched else int(firsts[0]))


# -- the same rule through the JAX kernel ----------------------------------------------------------------------

def rule_values(worlds: World, lam, nodes: int = 6, tie: str = "min", max_depth: int | None = None,
                force_order: bool = False, greedy: bool = False, *, price=None) -> np.ndarray:
    """:func:`rule_value` for a batch of worlds, through cascjax's JAX cascade-routing kernel (one sweep call).

    One :class:`cascjax.Dataset` holds every joint outcome of every world as a query: W·k^M queries, query
    (w, q_0..q_{M−1}) with quality[n, m] = mu_wm + sd_wm·z_{q_m} and cost[n, m] = cost_wm. The estimates are
    the world's prior ex ante (mu, sd, cost) and the revealed value post hoc (sd 0). The sweep's shared points
    are the full product grid of the k nodes ([k^M, M]), so the kernel's Q(T) is the exact discrete
    E[max] and the rule decides as in :func:`rule_value` (up to rounding inside the tie tolerance). A world's
    value is the mean over its k^M queries of quality[n, answer] − price·(realised cost).

    λ rows of the sweep: a scalar (or, with ``max_depth``, a [D] vector) ``lam`` is one row shared by all
    worlds; [W] or [W, D] is one row per world (not deduplicated, so the compiled shape depends only on the
    input's shape), and world w reads its own row (a 1-D ``lam`` of length W = D is read as [W]). The kernel
    then evaluates W·k^M queries at W rows.

    The kernel runs in JAX's default dtype: enable x64 (``jax.config.update("jax_enable_x64", True)``) to
    compare with the float64 loops to ~1e-12. Cascjax datasets need at least two models: M ≥ 2.

    Args:
      worlds: a :class:`World` with fields [W, M] (or [M]: W = 1), 2 ≤ M ≤ 4.
      lam: λ ≥ 0: a scalar, [D] (per step, all worlds), [W] (per world) or [W, D].
      nodes: k (the sweep evaluates W·k^M queries against k^M points: keep k^M small).
      tie, max_depth, force_order, greedy: as in :func:`rule_value` and :func:`cascjax.sweep`.
      price: the λ of the payoff (scalar or [W]); default ``lam`` (required when ``lam`` varies by step).

    Returns:
      [W] float64 expected payoffs.

    Example:
      >>> w = World(mu=[[0.25, 1.0]], sd=[[1.0, 0.5]], cost=[[0.5, 1.0]])
      >>> [round(float(v), 6) for v in rule_values(w, 1.0, nodes=2)]
      [0.0]
    """
    from .._data import Dataset
    from .._estimates import Estimates
    from .._fit import _answered
    from .._sweep import sweep

    w, _ = _batch(worlds)
    n_worlds, m = w.mu.shape
    if m < 2:
        raise CascjaxError(f"rule_values needs M >= 2 models (a cascjax Dataset has at least two); got M = {m}; "
                           "use rule_value for one model")
    _, depth = _check_options(m, tie, max_depth)
    arr = np.asarray(lam, dtype=np.float64)
    shared = arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] == depth and arr.shape[0] != n_worlds)
    steps = _check_steps(arr if arr.ndim == 0 else (np.broadcast_to(arr, (n_worlds, depth)) if shared else arr),
                         n_worlds, depth, True)
    prices = _price(price, steps, n_worlds, True)
    z = world_nodes(nodes)
    k = z.shape[0]
    grid = np.array(list(itertools.product(range(k), repeat=m)))  # [K, M], K = k^M
    points = z[grid]
    x = _values(w, nodes)  # [W, M, k]
    quality = x[:, np.arange(m)[None, :], grid].reshape(n_worlds * k ** m, m)  # [N, M], N = W·K

    def per_query(a):  # [W, M] -> [N, M]
        return np.repeat(a, k ** m, axis=0)

    cost = per_query(w.cost)
    ds = Dataset.from_arrays(quality, cost, sort=False)
    est = Estimates(per_query(w.mu), quality, per_query(w.sd), np.zeros_like(quality), cost, cost)
    rows = steps[:1] if shared else steps  # [L, D]
    curve = sweep(ds, est, rows, "cascade_routing", tie=tie, max_depth=depth, force_order=bool(force_order),
                  greedy=bool(greedy), samples=points, return_choices=True)
    per_world = (rows.shape[0], n_worlds, k ** m)  # [L, W, K]: each world's outcomes at every λ row
    answered = _answered(ds, curve.choice).reshape(per_world)
    spent = np.asarray(curve.query_cost, dtype=np.float64).reshape(per_world)
    row = np.zeros(n_worlds, np.int64) if shared else np.arange(n_worlds)
    mine = np.arange(n_worlds)
    return np.mean(answered[row, mine] - prices[:, None] * spent[row, mine], axis=1)


def dp_gap(worlds: World, lam, nodes: int = 6, **rule_options) -> np.ndarray:
    """What the rule gives away: :func:`optimal_value` − :func:`rule_values`, [W] (≥ 0 up to rounding).

    Args:
      worlds: a :class:`World` with fields [W, M] (or [M]: W = 1), 2 ≤ M ≤ 4.
      lam: λ ≥ 0, a scalar or [W] (one per world; the rule uses it at every step).
      nodes: k.
      rule_options: ``tie``, ``max_depth``, ``force_order``, ``greedy`` for :func:`rule_values`.

    Returns:
      [W] float64.

    Example:
      >>> w = World(mu=[[0.25, 1.0]], sd=[[1.0, 0.5]], cost=[[0.5, 1.0]])
      >>> [round(float(g), 6) for g in dp_gap(w, 1.0, nodes=2)]   # the rule misses the option to stop early
      [0.125]
    """
    w, _ = _batch(worlds)
    lam = _check_lam(lam, w.mu.shape[0], True)
    return optimal_value(w, lam, nodes) - rule_values(w, lam, nodes, **rule_options)
