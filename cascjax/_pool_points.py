"""A pool search's points (:class:`PoolSearch`, made by :func:`cascjax.search_pools`) and what they show: the
frontier over every pool, the best pool per budget, the full cheapest-first pool beside them
(:func:`pool_frontier`). NumPy only."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._metrics import auc, model_hull, quality_at


class PoolSearch(NamedTuple):
    """Every pool's (or order's) points at every λ (θ for the threshold cascade).

    Attributes:
      strategy: the strategy searched.
      members: P tuples of model indices; for the cascades in the order the models run.
      names: P labels: ``"a+b"`` (a subset), ``"a>b"`` (an order).
      lam: [L] the λ (θ) of every pool.
      cost, quality: [P, L] mean realised cost and quality per query.
      bounds: the AUC's cost range and floor: the whole pool's models (every search is on one scale).

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example().select(["llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "gemini-1.5-pro-002"])
      >>> found = cascjax.search_pools(ds, cascjax.perfect_estimates(ds), 8, "threshold_cascade")
      >>> len(found.members), found.names[-1]          # 3 + 6 + 6 orders of 1, 2 and 3 models
      (15, 'gemini-1.5-pro-002>llama-3.1-70b-instruct>llama-3.1-8b-instruct')
    """

    strategy: str
    members: tuple
    names: tuple
    lam: np.ndarray
    cost: np.ndarray
    quality: np.ndarray
    bounds: dict

    def auc(self) -> np.ndarray:
        """[P] each pool's AUC over its λ points, on the whole pool's cost range and floor.

        Example:
          >>> import cascjax
          >>> ds = cascjax.load_example().select(["llama-3.1-8b-instruct", "llama-3.1-70b-instruct"])
          >>> found = cascjax.search_pools(ds, cascjax.perfect_estimates(ds), 8, "routing")
          >>> found.names[2], found.auc().round(1).tolist()   # routing on both beats either model alone
          ('llama-3.1-8b-instruct+llama-3.1-70b-instruct', [44.2, 53.5, 67.5])
        """
        return np.array([auc((self.cost[p], self.quality[p]), **self.bounds) for p in range(len(self.members))])


class PoolFrontier(NamedTuple):
    """What a pool search finds (see :func:`pool_frontier`).

    Attributes:
      cost, quality: [H] the frontier over every pool's points: their upper hull (mixing across pools).
      pool: [H] the pool of each frontier point (index into ``PoolSearch.members``).
      auc: the frontier's AUC.
      best_auc: the best single pool's AUC, and ``best_pool`` its index.
      default_auc: the full pool in cheapest-first order (the paper's cascade; for subsets, all models).
      budgets: [B] the budgets asked.
      best_at: [B] per budget the pool with the highest quality there (its own λ mixture, as :func:`cascjax.fit`),
        ``best_quality`` [B] that quality, ``frontier_quality`` [B] the frontier's, ``default_quality`` [B] the
        full cheapest-first pool's (NaN below a curve's cheapest point).
      pool_quality: [P, B] every pool's quality at each budget (its own λ mixture; NaN below its cheapest point).

    Example:
      >>> import numpy as np, cascjax
      >>> found = cascjax.PoolSearch("routing", ((0,), (1,), (0, 1)), ("a", "b", "a+b"), np.zeros(2),
      ...                            np.array([[1.0, 1.0], [3.0, 3.0], [1.0, 2.0]]),
      ...                            np.array([[0.5, 0.5], [0.8, 0.8], [0.5, 0.75]]),
      ...                            dict(cost_range=(1.0, 3.0), q_floor=0.5))
      >>> front = cascjax.pool_frontier(found, [2.0])
      >>> front.pool.tolist(), front.best_at.tolist(), front.best_quality.tolist()   # a+b at 2: 0.75 > 0.65 (a~b)
      ([0, 2, 1], [2], [0.75])
    """

    cost: np.ndarray
    quality: np.ndarray
    pool: np.ndarray
    auc: float
    best_auc: float
    best_pool: int
    default_auc: float
    budgets: np.ndarray
    best_at: np.ndarray
    best_quality: np.ndarray
    frontier_quality: np.ndarray
    default_quality: np.ndarray
    pool_quality: np.ndarray


def pool_frontier(found: PoolSearch, budgets=()) -> PoolFrontier:
    """The frontier over every pool of a :func:`search_pools`, the best pool per budget, and the full
    cheapest-first pool (the paper's fixed order: the models by ascending mean cost, as ``ds`` is sorted) beside
    them. On the data searched: for a fair comparison search a fit split and evaluate the chosen pool on a test
    split.

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> found = cascjax.search_pools(ds, cascjax.noisy_estimates(ds, __import__("jax").random.key(0)), 16,
      ...                              "threshold_cascade", min_size=2, max_size=3)
      >>> front = cascjax.pool_frontier(found, [2e-4])
      >>> bool(front.auc >= front.best_auc), front.best_quality.shape
      (True, (1,))
    """
    cost, quality = np.asarray(found.cost), np.asarray(found.quality)
    flat_c, flat_q = cost.ravel(), quality.ravel()
    ok = np.isfinite(flat_c) & np.isfinite(flat_q)
    index = np.flatnonzero(ok)
    hull = index[model_hull((flat_c[index], flat_q[index]))]
    pool = hull // cost.shape[1]
    aucs = found.auc()
    best = int(np.argmax(aucs))
    full = tuple(range(max(len(p) for p in found.members)))
    default = found.members.index(full) if full in found.members else -1
    budgets = np.atleast_1d(np.asarray(budgets, np.float64))
    per_pool = np.full((len(found.members), budgets.size), np.nan)
    for p in range(len(found.members)):
        h = model_hull((cost[p], quality[p]))
        per_pool[p] = quality_at((cost[p][h], quality[p][h]), budgets)
    filled = np.where(np.isnan(per_pool), -np.inf, per_pool)  # (NaN: below the pool's cheapest point)
    best_at = np.argmax(filled, axis=0)
    best_quality = per_pool[best_at, np.arange(budgets.size)]
    frontier_quality = quality_at((flat_c[hull], flat_q[hull]), budgets) if budgets.size else np.zeros(0)
    return PoolFrontier(flat_c[hull], flat_q[hull], pool, auc((flat_c[hull], flat_q[hull]), **found.bounds),
                        float(aucs[best]), best, float(aucs[default]) if default >= 0 else float("nan"), budgets,
                        best_at, best_quality, frontier_quality,
                        per_pool[default] if default >= 0 else np.full(budgets.size, np.nan), per_pool)
