"""The 2025–2026 routing benchmarks' metrics beside the paper's AUC: PerfGain, CostSave, ParetoDist and the gap
to the per-query oracle (issue 21). NumPy on the host, as :mod:`cascjax._metrics`.

Every metric reads a strategy's points through their upper hull — what γ-mixtures of its configurations reach,
as :func:`cascjax.aiq` does — and the pool's single models (:func:`cascjax.model_points`).
"""

from __future__ import annotations

import numpy as np

from ._data import Dataset
from ._metrics import _points, model_hull, model_points


def _hull(curve) -> tuple[np.ndarray, np.ndarray]:
    x, y = _points(curve)
    keep = model_hull((x, y))
    return x[keep], y[keep]


def perf_gain(curve, ds: Dataset) -> float:
    """PerfGain: the strategy's best quality minus the best single model's, in points (× 100).

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)   # models: 0.5, 0.75
      >>> cascjax.perf_gain(([1.0, 1.5], [0.5, 1.0]), ds)
      25.0
    """
    _, y = _points(curve)
    return float(100 * (y.max() - model_points(ds)[1].max()))


def cost_save(curve, ds: Dataset) -> float:
    """CostSave: the share of the best single model's cost the strategy saves at that model's quality — 1 −
    (the cheapest cost at which the strategy's hull reaches it) / (its cost); NaN if it never does.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)   # best: 0.75 at 2
      >>> cascjax.cost_save(([1.0, 1.5], [0.5, 1.0]), ds)   # the hull reaches 0.75 at cost 1.25
      0.375
    """
    mc, mq = model_points(ds)
    best = np.flatnonzero(mq == mq.max())
    target, price = float(mq.max()), float(mc[best].min())
    x, y = _hull(curve)
    if y.max() < target:
        return float("nan")
    i = int(np.argmax(y >= target))
    if i == 0:
        at = x[0]
    else:  # on the segment that crosses the target
        t = (target - y[i - 1]) / (y[i] - y[i - 1])
        at = x[i - 1] + t * (x[i] - x[i - 1])
    return float(1 - at / price)


def pareto_dist(curve, frontier) -> float:
    """ParetoDist: the mean distance of the strategy's points below a frontier, in quality points (× 100): for
    each point, the frontier's quality at its cost (the upper hull of ``frontier``'s points, flat beyond its
    ends) minus its own, at least 0. ``frontier``: a curve or a pair (cost, quality) — typically every method's
    points together.

    Example:
      >>> import cascjax
      >>> round(cascjax.pareto_dist(([1.0, 2.0], [0.5, 0.6]), ([1.0, 2.0], [0.6, 0.8])), 9)   # 0.1 and 0.2 below
      15.0
    """
    x, y = _points(curve)
    fx, fy = _hull(frontier)
    above = np.interp(x, fx, fy, left=fy[0], right=fy[-1])
    return float(100 * np.mean(np.maximum(above - y, 0.0)))


def oracle(ds: Dataset) -> tuple[float, float]:
    """The per-query oracle: each query answered by its best model, the cheapest of those on a tie. Its (mean
    cost, mean quality).

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> cascjax.oracle(ds)   # every query has a correct model; the cheap one where both are
      (1.5, 1.0)
    """
    q, c = np.asarray(ds.quality, np.float64), np.asarray(ds.cost, np.float64)
    best = q == q.max(axis=1, keepdims=True)
    pick = np.argmin(np.where(best, c, np.inf), axis=1)
    rows = np.arange(q.shape[0])
    return float(c[rows, pick].mean()), float(q[rows, pick].mean())


def oracle_gap(curve, ds: Dataset) -> float:
    """The gap to the per-query oracle (:func:`oracle`): its quality minus the strategy's best, in points.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> cascjax.oracle_gap(([1.0, 2.0], [0.5, 0.75]), ds)
      25.0
    """
    _, y = _points(curve)
    return float(100 * (oracle(ds)[1] - y.max()))
