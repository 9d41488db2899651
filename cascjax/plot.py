"""Figures (needs the ``plot`` extra: ``pip install 'cascjax[plot]'``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._data import Dataset
from ._metrics import model_hull, model_points


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("cascjax.plot needs matplotlib: pip install 'cascjax[plot]'") from None
    return plt


def frontier(curves: Mapping[str, tuple], ds: Dataset, *, ax=None, title: str | None = None):
    """Cost–quality frontiers with the single models as labelled points and their hull.

    Args:
      curves: name -> (cost [K], quality [K]) (a :class:`cascjax.Curve` works too), drawn sorted by cost.
      ds: the pool whose single models are drawn.
      ax: a matplotlib Axes (default: a new figure).
      title: the axes title.

    Returns:
      The matplotlib Figure.
    """
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    else:
        fig = ax.figure
    for name, curve in curves.items():
        cost, quality = (curve.cost, curve.quality) if hasattr(curve, "cost") else curve
        cost, quality = np.asarray(cost, np.float64), np.asarray(quality, np.float64)
        order = np.lexsort((quality, cost))
        ax.plot(cost[order], quality[order], label=name, lw=1.6)
    mc, mq = model_points(ds)
    hull = model_hull(ds)
    ax.plot(mc[hull], mq[hull], ls="--", color="grey", lw=1, label="single models (hull)")
    ax.scatter(mc, mq, color="black", zorder=5, s=18)
    for name, x, y in zip(ds.models, mc, mq):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query")
    ax.set_ylabel("mean quality")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
