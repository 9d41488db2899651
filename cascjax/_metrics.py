"""Metrics on cost–quality curves (DESIGN section 5): single-model points and hull, AUC, AIQ.

These run on the host in NumPy: a curve has at most a few million points and every metric is O(K log K).
"""

from __future__ import annotations

import numpy as np

from ._curve import Curve
from ._data import Dataset
from ._errors import CascjaxError


def model_points(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Each single model's (mean cost [M], mean quality [M]).

    Args:
      ds: the pool, ``quality`` and ``cost`` [N, M].

    Returns:
      (cost [M], quality [M]) NumPy arrays, in model order.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> cost, quality = cascjax.model_points(ds)
      >>> cost.tolist(), quality.tolist()
      ([1.0, 2.0], [0.5, 0.75])
    """
    return ds.model_costs(), ds.model_qualities()


def model_hull(ds: Dataset | tuple) -> np.ndarray:
    """Indices of the non-dominated single models: the upper hull of their (cost, quality) points.

    The hull starts at the cheapest model and rises, concave, to the best one (the cheapest of the best);
    the "linear interpolation" baseline of the paper is the piecewise-linear curve through these models.

    Args:
      ds: a :class:`Dataset`, or a pair (cost [M], quality [M]).

    Returns:
      [H] int array of model indices in ascending order of cost.

    Example:
      >>> import cascjax
      >>> cost, quality = [1.0, 2.0, 3.0, 4.0], [0.5, 0.6, 0.9, 0.8]
      >>> cascjax.model_hull((cost, quality)).tolist()   # model 1 lies below 0 -> 2; model 3 is dominated
      [0, 2]
    """
    cost, quality = model_points(ds) if isinstance(ds, Dataset) else map(np.asarray, ds)
    order = np.lexsort((-quality, cost))  # by cost, the better model first among equal costs
    hull: list[int] = []
    for i in order:
        if hull and cost[i] == cost[hull[-1]]:
            continue  # same cost, not better
        if hull and quality[i] <= quality[hull[-1]]:
            continue  # dominated: costs more, gives no more
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b lies on or below the segment a -> i: drop it
            if (quality[b] - quality[a]) * (cost[i] - cost[a]) <= (quality[i] - quality[a]) * (cost[b] - cost[a]):
                hull.pop()
            else:
                break
        hull.append(int(i))
    return np.asarray(hull, dtype=int)


def _points(curve) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(curve, Curve):
        x, y = curve.cost, curve.quality
    else:
        x, y = curve
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size == 0:
        raise CascjaxError(f"a curve needs matching, non-empty cost and quality arrays, got {x.shape}, {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        raise CascjaxError("the curve has no finite points")
    x, y = x[ok], y[ok]
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    keep = np.ones(x.size, bool)
    keep[1:] = (x[1:] != x[:-1]) | (y[1:] != y[:-1])
    return x[keep], y[keep]


def _bounds(ds, cost_range, q_floor):
    if ds is not None:
        mc, mq = model_points(ds)
        c_min, c_max, floor = float(mc.min()), float(mc.max()), float(mq.min())
    else:
        if cost_range is None or q_floor is None:
            raise CascjaxError("give a dataset (the pool) or both cost_range=(c_min, c_max) and q_floor")
        c_min, c_max, floor = float(cost_range[0]), float(cost_range[1]), 0.0
    if cost_range is not None:
        c_min, c_max = float(cost_range[0]), float(cost_range[1])
    if q_floor is not None:
        floor = float(q_floor)
    if not c_max > c_min:
        raise CascjaxError(f"the cost range [{c_min}, {c_max}] is empty: the models' mean costs must differ")
    return c_min, c_max, floor


def _area(x, y, c_min, c_max, floor) -> float:
    """Mean of the piecewise-linear curve through (x, y) over [c_min, c_max], with the AUC's extensions."""
    if x[0] > c_min:
        x, y = np.concatenate([[c_min], x]), np.concatenate([[floor], y])
    if x[-1] < c_max:
        x, y = np.concatenate([x, [c_max]]), np.concatenate([y, [y[-1]]])
    x0, x1, y0, y1 = x[:-1], x[1:], y[:-1], y[1:]
    a = np.clip(x0, c_min, c_max)
    b = np.clip(x1, c_min, c_max)
    width = x1 - x0
    safe = np.where(width > 0, width, 1.0)
    ya = y0 + (y1 - y0) * (a - x0) / safe
    yb = y0 + (y1 - y0) * (b - x0) / safe
    area = np.sum(np.where(width > 0, (b - a) * (ya + yb) / 2.0, 0.0))
    return float(area / (c_max - c_min))


def auc(curve, ds: Dataset | None = None, *, cost_range=None, q_floor=None) -> float:
    """The paper's AUC: the average quality over the pool's cost range, x100.

    The curve is the points sorted by cost (exact duplicates dropped), linear in between. Over
    [c_min, c_max] (the cheapest and most expensive mean model cost of the pool) it is prefixed with
    (c_min, the pool's lowest mean quality) when it starts above c_min, extended flat to c_max when it ends
    below, and cut by linear interpolation outside. The area is divided by (c_max − c_min) and multiplied by 100.

    Args:
      curve: a :class:`Curve`, or a pair (cost [K], quality [K]).
      ds: the pool, for c_min, c_max and the floor quality (use the split the curve was measured on).
      cost_range: (c_min, c_max) overriding the pool's.
      q_floor: the prefix quality overriding the pool's lowest mean quality.

    Returns:
      A float: the mean quality over [c_min, c_max], ×100.

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> path = cascjax.routing_path(ds, cascjax.perfect_estimates(ds))
      >>> round(cascjax.auc(path, ds), 2)
      84.86
    """
    c_min, c_max, floor = _bounds(ds, cost_range, q_floor)
    x, y = _points(curve)
    return 100.0 * _area(x, y, c_min, c_max, floor)


def _upper_hull(x, y):
    """Non-decreasing upper concave hull of sorted points (x ascending)."""
    return model_hull((x, y))


def aiq(curve, ds: Dataset | None = None, *, cost_range=None, q_floor=None) -> float:
    """RouterBench's AIQ: the AUC (same range, extensions and x100) of the curve's non-decreasing convex hull.

    The hull of a strategy's points is what mixing its configurations can reach; AIQ ≥ AUC.

    Args:
      curve: a :class:`Curve`, or a pair (cost [K], quality [K]).
      ds: the pool, for c_min, c_max and the floor quality (as :func:`auc`).
      cost_range: (c_min, c_max) overriding the pool's.
      q_floor: the prefix quality overriding the pool's lowest mean quality.

    Returns:
      A float, the area ×100 (the same scale as :func:`auc`).

    Example:
      >>> import cascjax
      >>> curve = ([1.0, 2.0, 3.0], [0.5, 0.5, 1.0])   # (cost [K], quality [K]): a dip at cost 2
      >>> cascjax.auc(curve, cost_range=(1.0, 3.0), q_floor=0.5), cascjax.aiq(curve, cost_range=(1.0, 3.0), q_floor=0.5)
      (62.5, 75.0)
    """
    c_min, c_max, floor = _bounds(ds, cost_range, q_floor)
    x, y = _points(curve)
    h = _upper_hull(x, y)
    return 100.0 * _area(x[h], y[h], c_min, c_max, floor)


def quality_at(curve, budgets) -> np.ndarray:
    """Quality at each budget by linear interpolation along the curve's points sorted by cost.

    Where several points share a cost the best one counts. Budgets below the cheapest point give NaN
    (unreachable); above the most expensive point, its quality (flat).

    Args:
      curve: a :class:`Curve`, or a pair (cost [K], quality [K]).
      budgets: [B] budgets in the curve's cost unit.

    Returns:
      [B] float64 array.

    Example:
      >>> import cascjax
      >>> cascjax.quality_at(([1.0, 2.0], [0.5, 0.75]), [0.5, 1.5, 4.0]).tolist()
      [nan, 0.625, 0.75]
    """
    x, y = _points(curve)
    last = np.ones(x.size, bool)
    last[:-1] = x[1:] != x[:-1]
    x, y = x[last], y[last]  # sorted by (cost, quality): the last of each cost is the best
    b = np.atleast_1d(np.asarray(budgets, dtype=np.float64))
    out = np.interp(b, x, y)
    return np.where(b < x[0], np.nan, out)
