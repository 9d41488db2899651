"""A second cost per query and model (latency, or any other) and its estimates (:class:`Latency`); a strategy's
points over cost, latency and quality (:class:`Surface`, made by :func:`cascjax.surface`), their three-way Pareto
points, and the best mixture within two budgets at once (:func:`at_budgets`). NumPy only."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._data import Dataset
from ._errors import CascjaxError

#: Budget pairs whose candidate pairs of points are scored in one NumPy block (bounds memory: pairs × budgets).
PAIR_BLOCK = 1 << 22


class Latency(NamedTuple):
    """A second cost per query and model ([N, M] each, in the dataset's model order), and its estimates.

    Attributes:
      latency: the realised value (seconds, or any unit; ≥ 0).
      latency_ante: its estimate before any model runs.
      latency_post: its estimate once the model has run (the cascade's run models).

    Example:
      >>> import cascjax
      >>> lat = cascjax.Latency.perfect([[0.5, 2.0], [0.7, 3.0]])   # estimates = the truth
      >>> lat.latency_ante.tolist()
      [[0.5, 2.0], [0.7, 3.0]]
    """

    latency: np.ndarray
    latency_ante: np.ndarray
    latency_post: np.ndarray

    @classmethod
    def perfect(cls, latency) -> "Latency":
        """The realised latency with itself as both estimates.

        Example:
          >>> import cascjax
          >>> cascjax.Latency.perfect([[1.0, 2.0]]).latency_post.tolist()
          [[1.0, 2.0]]
        """
        a = np.asarray(latency, np.float64)
        return cls(a, a, a)


def check_latency(ds: Dataset, latency) -> Latency:
    """``latency`` as a :class:`Latency` of float64 arrays [N, M] (an array is taken as perfect estimates);
    raises, naming the field, on a wrong shape, NaN/inf or a negative value."""
    if not isinstance(latency, Latency):
        latency = Latency.perfect(latency)
    out = []
    for name, a in zip(Latency._fields, latency):
        a = np.asarray(a, np.float64)
        if a.shape != (ds.n_queries, ds.n_models):
            raise CascjaxError(f"{name} must be [N = {ds.n_queries}, M = {ds.n_models}], got shape {a.shape}")
        bad = ~(np.isfinite(a) & (a >= 0))
        if bad.any():
            q, m = np.argwhere(bad)[0]
            raise CascjaxError(f"{name}: model {ds.models[m]!r}, query {q} has {float(a[q, m])!r}; latencies must be "
                               "finite and >= 0")
        out.append(a)
    return Latency(*out)


class Surface(NamedTuple):
    """Points of a strategy over the (weight, λ) grid: [K, L] each (float64), K weights × L λ.

    Attributes:
      weight: [K] cost units per unit of latency (``inf``: latency alone).
      lam: [K, L] λ, the price of cost (0 where the weight is ``inf``).
      mu: [K, L] μ = λ·weight, the price of latency (λ where the weight is ``inf``).
      cost, latency, quality: [K, L] mean realised cost, latency and quality per query.

    Example:
      >>> import numpy as np, cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1]], [[1.0, 4.0]])
      >>> s = cascjax.surface(ds, cascjax.perfect_estimates(ds), [[0.5, 1.0]], [0.0, 1.0], [0.0])
      >>> s.lam.shape, s.cost.tolist()
      ((1, 2), [[4.0, 1.0]])
    """

    weight: np.ndarray
    lam: np.ndarray
    mu: np.ndarray
    cost: np.ndarray
    latency: np.ndarray
    quality: np.ndarray

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cost, latency, quality), each flattened to [K·L] (weight-major).

        Example:
          >>> import numpy as np, cascjax
          >>> s = cascjax.Surface(np.zeros(1), *(np.array([[1.0, 2.0]]),) * 5)
          >>> [a.tolist() for a in s.points()]
          [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]
        """
        return tuple(np.asarray(a, np.float64).ravel() for a in (self.cost, self.latency, self.quality))


def pareto(points) -> np.ndarray:
    """Indices of the three-way Pareto points of (cost, latency, quality) [P] each (or a :class:`Surface`): no
    other point has cost and latency at most, and quality at least, with one of them strictly better; of equal
    points the first. Ascending cost.

    Example:
      >>> from cascjax._latency import pareto
      >>> pareto(([1.0, 2.0, 2.0, 3.0], [5.0, 1.0, 1.0, 4.0], [0.5, 0.6, 0.6, 0.55])).tolist()   # 3: dominated by 1
      [0, 1]
    """
    cost, lat, quality = points.points() if isinstance(points, Surface) else (
        np.asarray(a, np.float64).ravel() for a in points)
    ok = np.isfinite(cost) & np.isfinite(lat) & np.isfinite(quality)
    index = np.flatnonzero(ok)
    c, l, q = cost[index], lat[index], quality[index]
    keep = np.ones(index.size, bool)
    block = max(1, PAIR_BLOCK // max(index.size, 1))
    for start in range(0, index.size, block):  # bounded memory: a block of points against all of them
        s = slice(start, start + block)
        weak = (c[None] <= c[s, None]) & (l[None] <= l[s, None]) & (q[None] >= q[s, None])
        strict = (c[None] < c[s, None]) | (l[None] < l[s, None]) | (q[None] > q[s, None])
        equal = weak & ~strict
        earlier = np.arange(index.size)[None] < np.arange(start, min(start + block, index.size))[:, None]
        keep[s] = ~((weak & strict).any(1) | (equal & earlier).any(1))
    out = index[keep]
    return out[np.lexsort((-quality[out], lat[out], cost[out]))]


class BudgetChoice(NamedTuple):
    """The best mixture of two surface points within a cost and a latency budget, per budget pair ([B] each):
    answer a query with the ``lo`` point's (λ, μ) with probability 1 − ``gamma``, the ``hi`` point's otherwise.

    Attributes:
      feasible: some point (or mixture) meets both budgets.
      lo, hi: flat indices of the two points (weight-major, ``Surface.points()`` order); -1 where infeasible.
      gamma: the weight of ``hi``.
      lam_lo, mu_lo, lam_hi, mu_hi: their λ and μ.
      cost, latency, quality: the mixture's means on the surface it was chosen on.
      test_cost, test_latency, test_quality: on ``evaluate_on`` (NaN without it).

    Example:
      >>> import numpy as np, cascjax
      >>> s = cascjax.Surface(np.zeros(1), np.ones((1, 1)), np.zeros((1, 1)), *(np.ones((1, 1)),) * 3)
      >>> cascjax.at_budgets(s, [0.5, 2.0], [2.0, 2.0]).feasible.tolist()   # cost 1 > 0.5: out of budget
      [False, True]
    """

    feasible: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    gamma: np.ndarray
    lam_lo: np.ndarray
    mu_lo: np.ndarray
    lam_hi: np.ndarray
    mu_hi: np.ndarray
    cost: np.ndarray
    latency: np.ndarray
    quality: np.ndarray
    test_cost: np.ndarray
    test_latency: np.ndarray
    test_quality: np.ndarray


def at_budgets(surface: Surface, cost_budgets, latency_budgets, *, evaluate_on: Surface | None = None) -> BudgetChoice:
    """Fits to two budgets at once: per pair (cost budget B_c, latency budget B_ℓ), the mixture of at most two of
    ``surface``'s points with the highest mean quality whose mean cost ≤ B_c and mean latency ≤ B_ℓ (mixing
    reaches what no single point does, as :func:`cascjax.at_budget`'s γ does for one budget). Chosen among the
    three-way Pareto points; exact over every pair of them (γ at an end of the interval both budgets allow).
    Ties: the lowest pair of indices.

    Args:
      surface: the points to choose on (e.g. the fit split's :func:`surface`).
      cost_budgets, latency_budgets: [B] each (scalars broadcast).
      evaluate_on: a :class:`Surface` of the same grid (e.g. the test split's): the chosen mixtures' means there.

    Returns:
      A :class:`BudgetChoice` of [B] arrays.

    Example:
      >>> import numpy as np, cascjax
      >>> s = cascjax.Surface(np.zeros(1), np.array([[0.0, 1.0]]), np.zeros((1, 2)), np.array([[4.0, 1.0]]),
      ...                     np.array([[1.0, 0.2]]), np.array([[0.9, 0.5]]))
      >>> choice = cascjax.at_budgets(s, [2.5, 10.0], [1.0, 0.5])
      >>> choice.quality.round(4).tolist(), choice.gamma.round(4).tolist()   # 50/50; then latency binds
      ([0.7, 0.65], [0.5, 0.375])
    """
    cost, lat, quality = surface.points()
    bc, bl = np.broadcast_arrays(np.asarray(cost_budgets, np.float64), np.asarray(latency_budgets, np.float64))
    bc, bl = bc.ravel(), bl.ravel()
    if np.isnan(bc).any() or np.isnan(bl).any():
        raise CascjaxError("budgets must be numbers (inf: no limit), not NaN")
    front = pareto((cost, lat, quality))
    i, j = np.triu_indices(front.size)  # every pair, each point with itself too (a pure point)
    i, j = front[i], front[j]
    result = {f: np.full(bc.size, np.nan) for f in ("gamma", "cost", "latency", "quality")}
    lo, hi = np.full(bc.size, -1), np.full(bc.size, -1)
    block = max(1, PAIR_BLOCK // max(i.size, 1))
    for start in range(0, bc.size, block):
        s = slice(start, start + block)
        g_lo, g_hi = np.zeros((bc[s].size, i.size)), np.ones((bc[s].size, i.size))
        for values, budget in ((cost, bc[s]), (lat, bl[s])):
            a, d = values[i][None], (values[j] - values[i])[None]
            room = budget[:, None] - a
            with np.errstate(divide="ignore", invalid="ignore"):
                bound = room / d
            g_hi = np.where(d > 0, np.minimum(g_hi, bound), g_hi)
            g_lo = np.where(d < 0, np.maximum(g_lo, bound), g_lo)
            g_hi = np.where((d == 0) & (room < 0), -1.0, g_hi)  # the pair never meets this budget
        ok = g_lo <= g_hi
        dq = (quality[j] - quality[i])[None]
        gamma = np.where(dq > 0, g_hi, g_lo)
        value = np.where(ok, quality[i][None] + gamma * dq, -np.inf)
        best = np.argmax(value, axis=1)
        rows = np.arange(best.size)
        found = np.isfinite(value[rows, best])
        g = np.where(found, gamma[rows, best], np.nan)
        lo[s] = np.where(found, i[best], -1)
        hi[s] = np.where(found, j[best], -1)
        result["gamma"][s] = g
        for name, values in (("cost", cost), ("latency", lat), ("quality", quality)):
            mixed = (1 - g) * values[i[best]] + g * values[j[best]]
            result[name][s] = np.where(found, mixed, np.nan)
    feasible = lo >= 0
    lam, mu = (np.asarray(a, np.float64).ravel() for a in (surface.lam, surface.mu))
    test = {name: np.full(bc.size, np.nan) for name in ("cost", "latency", "quality")}
    if evaluate_on is not None:
        if np.shape(evaluate_on.cost) != np.shape(surface.cost):
            raise CascjaxError(f"evaluate_on must be a surface of the same grid: shape {np.shape(surface.cost)}, "
                               f"got {np.shape(evaluate_on.cost)}")
        for name, values in zip(("cost", "latency", "quality"), evaluate_on.points()):
            g = result["gamma"]
            test[name] = np.where(feasible, (1 - g) * values[np.maximum(lo, 0)] + g * values[np.maximum(hi, 0)],
                                  np.nan)

    def at(values, index):
        return np.where(feasible, values[np.maximum(index, 0)], np.nan)

    return BudgetChoice(feasible, lo, hi, result["gamma"], at(lam, lo), at(mu, lo), at(lam, hi), at(mu, hi),
                        result["cost"], result["latency"], result["quality"], test["cost"], test["latency"],
                        test["quality"])


def best_quality(surface: Surface, cost_budgets, latency_budgets) -> np.ndarray:
    """[Bc, Bl] the best quality reachable within each pair of budgets (:func:`at_budgets` on their product;
    NaN where none is): the three-way Pareto surface as a function of the two budgets, what
    :func:`cascjax.plot.surface` draws."""
    bc, bl = np.asarray(cost_budgets, np.float64).ravel(), np.asarray(latency_budgets, np.float64).ravel()
    grid_c, grid_l = np.meshgrid(bc, bl, indexing="ij")
    return at_budgets(surface, grid_c.ravel(), grid_l.ravel()).quality.reshape(bc.size, bl.size)
