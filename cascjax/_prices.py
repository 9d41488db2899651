"""What-if prices: S price scenarios of one dataset, as the realised costs and cost estimates each implies.

A scenario is either a per-model price multiplier (``prices`` [S, M]: model m costs ``prices[s, m]`` times what
it cost in the data, on every query) or an absolute per-query cost table (``prices`` [S, N, M], e.g. token
counts times a new price list). In both the estimators' cost estimates move with the prices: multipliers scale
``cost_ante`` and ``cost_post`` alike; a table scales them per query by table / cost (the estimator keeps its
relative error), and where the data's cost is 0 the estimate becomes the table's cost. Quality and its
estimates do not change. :func:`cascjax.sweep` (``prices=``) runs every scenario in one vmapped call.
"""

from __future__ import annotations

import numpy as np

from ._errors import CascjaxError


def price_scenarios(ds, est, prices, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The realised costs and the cost estimates ex ante and post hoc of every scenario, [S, N, M] each in
    ``dtype``, from ``prices`` (multipliers [S, M] or cost tables [S, N, M]); bad prices raise, naming what."""
    try:
        p = np.asarray(prices, dtype=np.float64)
    except (TypeError, ValueError):
        raise CascjaxError("prices must be numbers: multipliers [S, M] or cost tables [S, N, M]") from None
    n, m = ds.n_queries, ds.n_models
    cost = np.asarray(ds.cost, np.float64)
    ante, post = (np.asarray(a, np.float64) for a in (est.cost_ante, est.cost_post))
    if p.ndim == 2 and p.shape[1] == m and p.shape[0] >= 1:
        if not (np.isfinite(p).all() and (p > 0).all()):
            bad = np.argwhere(~(np.isfinite(p) & (p > 0)))[0]
            raise CascjaxError(f"prices: multipliers must be finite and > 0; scenario {bad[0]}, model "
                               f"{ds.models[bad[1]]!r} has {float(p[tuple(bad)])!r}")
        factor = p[:, None, :]
        tables = (cost * factor, ante * factor, post * factor)
    elif p.ndim == 3 and p.shape[1:] == (n, m) and p.shape[0] >= 1:
        if not (np.isfinite(p).all() and (p >= 0).all()):
            bad = np.argwhere(~(np.isfinite(p) & (p >= 0)))[0]
            raise CascjaxError(f"prices: cost tables must be finite and >= 0; scenario {bad[0]}, query {bad[1]}, "
                               f"model {ds.models[bad[2]]!r} has {float(p[tuple(bad)])!r}")
        paid = cost > 0
        ratio = np.divide(p, cost, out=np.ones_like(p), where=paid)
        tables = (p, np.where(paid, ante * ratio, p), np.where(paid, post * ratio, p))
    else:
        raise CascjaxError(f"prices must be multipliers [S, M = {m}] or cost tables [S, N = {n}, M = {m}], got "
                           f"shape {p.shape}")
    if max(float(t.max(initial=0.0)) for t in tables) > float(np.finfo(dtype).max):
        raise CascjaxError(f"prices: the scenarios' costs overflow {np.dtype(dtype).name}; rescale the costs or "
                           "use float64 (jax_enable_x64)")
    return tuple(t.astype(dtype) for t in tables)


def scale_model(models, name: str, scales) -> np.ndarray:
    """Multipliers [S, M]: model ``name``'s price times each of ``scales``, the others unchanged.

    Example:
      >>> from cascjax._prices import scale_model
      >>> scale_model(["a", "b"], "b", [0.5, 2.0]).tolist()
      [[1.0, 0.5], [1.0, 2.0]]
    """
    models = list(models)
    if name not in models:
        raise CascjaxError(f"--model {name!r} is not in the data (it has {', '.join(models)})")
    scales = np.asarray(scales, np.float64)
    out = np.ones((scales.size, len(models)))
    out[:, models.index(name)] = scales
    return out
