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


def heatmap(sigma_ante, sigma_post, value, *, ax=None, title: str | None = None, label: str = "AUC difference"):
    """A heatmap of a value over the noise grid (σ_ante on x, σ_post on y; cells with σ_post > σ_ante empty).

    Args:
      sigma_ante, sigma_post, value: [C] one entry per grid cell (e.g. columns of ``cascjax ablate``'s
        ablation.csv averaged over seeds).

    Returns:
      The matplotlib Figure.
    """
    plt = _pyplot()
    a = np.round(np.asarray(sigma_ante, np.float64), 6)
    p = np.round(np.asarray(sigma_post, np.float64), 6)
    v = np.asarray(value, np.float64)
    xs, ys = np.unique(a), np.unique(p)
    grid = np.full((ys.size, xs.size), np.nan)
    grid[np.searchsorted(ys, p), np.searchsorted(xs, a)] = v
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 5), dpi=120)
    else:
        fig = ax.figure
    bound = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 1.0
    im = ax.imshow(grid, origin="lower", cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto",
                   extent=(xs[0] - 0.5 * _step(xs), xs[-1] + 0.5 * _step(xs), ys[0] - 0.5 * _step(ys),
                           ys[-1] + 0.5 * _step(ys)))
    fig.colorbar(im, ax=ax, label=label)
    ax.set_xlabel("σ_ante (ex-ante quality noise)")
    ax.set_ylabel("σ_post (post-hoc quality noise)")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _step(values) -> float:
    return float(np.min(np.diff(values))) if values.size > 1 else 1.0
