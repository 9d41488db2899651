"""Per-query outcomes of fitted strategies and what the paper's table makes of them: the linear-interpolation
baseline, the AUC of a fitted curve, paired bootstrap intervals of AUC differences (DESIGN section 5).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._data import Dataset
from ._errors import CascjaxError
from ._fit_search import _select
from ._metrics import auc, model_points

#: The strategy the paper's table reports the others against.
REFERENCE = "cascade routing"


class Outcomes(NamedTuple):
    """Per-query expected outcomes of one strategy at every budget: cost, quality [B, N] (NaN rows where
    the budget was infeasible).

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 3]] * 4, models=["small", "big"])
      >>> o = cp.baseline_outcomes(ds, [1.0, 2.0])   # B = 2 budgets, N = 4 queries
      >>> o.cost.shape, o.quality.mean(axis=1).tolist()
      ((2, 4), [0.5, 0.625])
    """

    cost: np.ndarray
    quality: np.ndarray


def baseline_outcomes(ds: Dataset, budgets) -> Outcomes:
    """The "linear interpolation" baseline as per-query outcomes: at each budget the γ-mixture of the two
    consecutive non-dominated single models (on ``ds``'s means) that bracket it; below the cheapest model
    infeasible, above the best model the best model.

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 3]] * 4, models=["small", "big"])
      >>> o = cp.baseline_outcomes(ds, [1.0, 2.0, 3.0])   # small, half of each, big
      >>> o.cost[:, 0].tolist(), o.quality[1].tolist()
      ([1.0, 2.0, 3.0], [0.5, 1.0, 0.5, 0.5])
    """
    cost_m, quality_m = model_points(ds)
    models = np.arange(ds.n_models)[:, None]
    lo, hi, gamma, _, _, ok, _ = _select(models, cost_m, quality_m, np.zeros(ds.n_models, object),
                                         np.asarray(budgets, np.float64))
    g = gamma[:, None]
    c = np.asarray(ds.cost, np.float64).T
    q = np.asarray(ds.quality, np.float64).T
    qc = (1 - g) * c[lo[:, 0]] + g * c[hi[:, 0]]
    qq = (1 - g) * q[lo[:, 0]] + g * q[hi[:, 0]]
    return Outcomes(np.where(ok[:, None], qc, np.nan), np.where(ok[:, None], qq, np.nan))


def curve_auc(cost, quality, ds: Dataset) -> float:
    """The paper's AUC of a fitted curve (one point per feasible budget) on ``ds``'s pool.

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 3]] * 4, models=["small", "big"])
      >>> o = cp.baseline_outcomes(ds, [1.0, 2.0, 3.0])
      >>> cp.curve_auc(o.cost.mean(axis=1), o.quality.mean(axis=1), ds)
      62.5
    """
    ok = np.isfinite(cost) & np.isfinite(quality)
    if not ok.any():
        return float("nan")
    return auc((cost[ok], quality[ok]), ds)


def bootstrap(outcomes: dict, ds: Dataset, *, reference: str = REFERENCE, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95) -> dict:
    """Paired bootstrap of each strategy's AUC difference to ``reference``.

    Every resample draws N queries with replacement once and evaluates *every* strategy on it (same resample
    for all: paired), with the pool's cost range and floor recomputed on the resample; the interval is the
    percentile interval of AUC(strategy) − AUC(reference) over resamples. Seeded (``numpy`` Generator).

    Args:
      outcomes: name → :class:`Outcomes` (or a list of them, one per noise seed: then each resample's
        difference is the mean over seeds, on the same resampled queries).
      ds: the split the outcomes were measured on (N queries).

    Returns:
      name → dict(diff=point estimate on all queries, low, high, draws=[n_boot] differences).

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 3]] * 4, models=["small", "big"])
      >>> o = cp.baseline_outcomes(ds, [1.0, 2.0, 3.0])
      >>> b = cp.bootstrap({"cascade routing": o, "same": o}, ds, n_boot=10)
      >>> b["same"]["diff"], b["same"]["low"], b["same"]["high"]
      (0.0, 0.0, 0.0)
    """
    if reference not in outcomes:
        raise CascjaxError(f"the bootstrap reference {reference!r} is not among {list(outcomes)}")
    runs = {k: (v if isinstance(v, (list, tuple)) and not isinstance(v, Outcomes) else [v])
            for k, v in outcomes.items()}
    n = ds.n_queries
    rng = np.random.default_rng(seed)
    names = list(runs)
    aucs = {k: np.zeros((len(runs[k]), n_boot)) for k in names}
    quality = np.asarray(ds.quality, np.float64)
    cost = np.asarray(ds.cost, np.float64)
    block = max(1, min(n_boot, int(2e7 // max(n, 1))))
    for start in range(0, n_boot, block):
        rows = min(block, n_boot - start)
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=rows) / n  # [R, N] resample weights
        mc, mq = w @ cost, w @ quality  # [R, M] the resampled pool
        for k in names:
            for s, o in enumerate(runs[k]):
                ok = np.isfinite(o.cost[:, 0])
                bc, bq = w @ o.cost[ok].T, w @ o.quality[ok].T  # [R, B]
                for r in range(rows):
                    aucs[k][s, start + r] = _resampled_auc(bc[r], bq[r], mc[r], mq[r])
    out = {}
    alpha = (1 - level) / 2
    for k in names:
        draws = aucs[k].mean(axis=0) - aucs[reference].mean(axis=0)  # mean over seeds, same resample
        point = _mean_auc(runs[k], ds) - _mean_auc(runs[reference], ds)
        lo, hi = np.quantile(draws, [alpha, 1 - alpha])
        out[k] = dict(diff=float(point), low=float(lo), high=float(hi), draws=draws)
    return out


def _mean_auc(runs, ds) -> float:
    return float(np.mean([curve_auc(np.mean(o.cost, axis=1), np.mean(o.quality, axis=1), ds) for o in runs]))


def _resampled_auc(cost, quality, model_cost, model_quality) -> float:
    if cost.size == 0:
        return float("nan")
    c_min, c_max = float(model_cost.min()), float(model_cost.max())
    if not c_max > c_min:
        return float("nan")
    return auc((cost, quality), cost_range=(c_min, c_max), q_floor=float(model_quality.min()))
