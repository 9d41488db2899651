"""The paper's cascade-routing decision rule in the exact worlds of :mod:`cascjax.testing._worlds`: by NumPy loops
(:func:`rule_value`), through cascjax's JAX kernel (:func:`rule_values`), and what it gives away against the
optimal policy (:func:`dp_gap`).
"""

from __future__ import annotations

import itertools

import numpy as np

from .._errors import CascjaxError
from ._reference import select
from ._worlds import (_RTOL, World, _batch, _check_lam, _check_options, _check_steps, _price, _unbatch, _values,
                      optimal_value, world_nodes)


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
