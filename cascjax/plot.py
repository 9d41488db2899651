"""Figures (needs the ``plot`` extra: ``pip install 'cascjax[plot]'``).

Every function returns a matplotlib Figure (drawn on ``ax`` when given) and never shows it; save it with
``fig.savefig("frontier.png")``. The ``cascjax frontier`` command writes :func:`frontier` and :func:`usage`
figures, ``cascjax reproduce`` one :func:`frontier` per cell, ``cascjax ablate`` the :func:`heatmap` figures.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._data import Dataset
from ._metrics import model_hull, model_points, quality_at


def _pyplot():
    try:  # the backend is the user's (inline in Jupyter); headless processes get Agg from matplotlib itself
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("cascjax.plot needs matplotlib: pip install 'cascjax[plot]'") from None
    return plt


def frontier(curves: Mapping[str, tuple], ds: Dataset, *, budgets=None, ax=None, title: str | None = None):
    """Cost–quality frontiers with the single models as labelled points and their hull.

    Args:
      curves: name -> (cost [K], quality [K]) (a :class:`cascjax.Curve` works too), drawn sorted by cost.
      ds: the pool whose single models are drawn; the dashed line is their upper hull (the "linear
        interpolation" baseline through the non-dominated models).
      budgets: [B] budgets (mean cost per query) to mark: a dotted vertical line each, and a marker where
        every curve reaches it (:func:`cascjax.quality_at`).
      ax: a matplotlib Axes (default: a new figure).
      title: the axes title.

    Returns:
      The matplotlib Figure.

    Example:
      >>> import cascjax, cascjax.plot
      >>> ds = cascjax.synthetic(0, n_queries=200, n_models=3)
      >>> path = cascjax.routing_path(ds, cascjax.perfect_estimates(ds))
      >>> fig = cascjax.plot.frontier({"routing": path}, ds, budgets=[float(ds.model_costs()[1])])
      >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
      ['routing', 'single models (hull)', 'budgets']
      >>> len(fig.axes[0].collections)                 # the single models, and the curve's budget markers
      2
    """
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    else:
        fig = ax.figure
    drawn = []
    for name, curve in curves.items():
        cost, quality = (curve.cost, curve.quality) if hasattr(curve, "cost") else curve
        cost, quality = np.asarray(cost, np.float64), np.asarray(quality, np.float64)
        order = np.lexsort((quality, cost))
        line, = ax.plot(cost[order], quality[order], label=name, lw=1.6)
        drawn.append(((cost, quality), line.get_color()))
    mc, mq = model_points(ds)
    hull = model_hull(ds)
    ax.plot(mc[hull], mq[hull], ls="--", color="grey", lw=1, label="single models (hull)")
    ax.scatter(mc, mq, color="black", zorder=5, s=18)
    for name, x, y in zip(ds.models, mc, mq):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    if budgets is not None:
        b = np.atleast_1d(np.asarray(budgets, np.float64))
        for i, value in enumerate(b):
            ax.axvline(value, color="black", ls=":", lw=0.8, label="budgets" if i == 0 else None)
        for points, color in drawn:
            ax.scatter(b, quality_at(points, b), marker="D", s=22, color=color, zorder=6, edgecolors="white")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query")
    ax.set_ylabel("mean quality")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def usage(curves, ds: Dataset, *, max_bars: int = 24, title: str | None = None, fig=None):
    """Per-λ stacked bars of which model answered what share of the queries, one panel per curve.

    For the cascades the mean number of models run per query (``Curve.ran``) is drawn on a second axis.

    Args:
      curves: a :class:`cascjax.Curve` with ``answered`` [L, M] (every :func:`cascjax.sweep` curve has it),
        or name -> Curve for several panels.
      ds: the dataset the curves were evaluated on (model names, in the order of ``answered``'s columns).
      max_bars: at most this many λ values per panel, evenly spaced in index (the first and last kept).
      title: the figure's title.
      fig: a matplotlib Figure to draw on (default: a new one).

    Returns:
      The matplotlib Figure.

    Example:
      >>> import cascjax, cascjax.plot
      >>> ds = cascjax.synthetic(0, n_queries=200, n_models=3)
      >>> est = cascjax.perfect_estimates(ds)
      >>> curve = cascjax.sweep(ds, est, cascjax.lambda_grid(est, 8), "routing")
      >>> fig = cascjax.plot.usage({"routing": curve}, ds)
      >>> len(fig.axes[0].patches)                     # 8 λ values × 3 models
      24
    """
    plt = _pyplot()
    if not isinstance(curves, Mapping):
        curves = {"": curves}
    for name, curve in curves.items():
        if getattr(curve, "answered", None) is None:
            raise ValueError(f"usage: curve {name!r} has no per-model answered shares (Curve.answered)")
    if max_bars < 2:
        raise ValueError(f"usage: max_bars must be at least 2, got {max_bars}")
    if fig is None:
        fig = plt.figure(figsize=(8, 2.2 * len(curves) + 1.2), dpi=120, layout="constrained")
    axes = fig.subplots(len(curves), 1, squeeze=False)[:, 0]
    colors = plt.get_cmap("tab20" if ds.n_models > 10 else "tab10").colors
    for ax, (name, curve) in zip(axes, curves.items()):
        answered = np.asarray(curve.answered, np.float64)
        lam = np.asarray(curve.lam, np.float64)
        keep = np.unique(np.round(np.linspace(0, answered.shape[0] - 1, min(max_bars, answered.shape[0]))).astype(int))
        x = np.arange(keep.size)
        bottom = np.zeros(keep.size)
        for m, model in enumerate(ds.models):
            ax.bar(x, answered[keep, m], bottom=bottom, width=0.85, color=colors[m % len(colors)], label=model)
            bottom += answered[keep, m]
        ax.set_ylim(0, 1)
        ax.set_ylabel("share answered", fontsize=8)
        ax.set_xticks(x, [_short(lam[k]) for k in keep], rotation=60, fontsize=6)
        ax.set_title(name, fontsize=9, loc="left")
        ran = getattr(curve, "ran", None)
        if ran is not None and not np.all(np.asarray(ran) == 1):
            twin = ax.twinx()
            twin.plot(x, np.asarray(ran, np.float64)[keep], color="black", marker=".", lw=1)
            twin.set_ylim(0, ds.n_models + 0.2)
            twin.set_ylabel("mean models run (line)", fontsize=7)
    axes[-1].set_xlabel("λ (θ for the threshold cascade), ascending", fontsize=8)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(ds.n_models, 3), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def _short(value) -> str:
    value = np.atleast_1d(value)
    if value.size > 1 and np.all(value == value[0]):
        value = value[:1]  # one value for every step
    if value.size > 1:
        return "(" + ",".join(_short(v) for v in value[:2]) + (",…)" if value.size > 2 else ")")
    v = float(value[0])
    return f"{v:.3g}" if np.isfinite(v) else ("∞" if v > 0 else "−∞")


def heatmap(sigma_ante, sigma_post, value, *, ax=None, title: str | None = None, label: str = "AUC difference"):
    """A heatmap of a value over the noise grid (σ_ante on x, σ_post on y; cells with σ_post > σ_ante empty).

    Args:
      sigma_ante, sigma_post, value: [C] one entry per grid cell (e.g. columns of ``cascjax ablate``'s
        ablation.csv averaged over seeds).
      ax: a matplotlib Axes (default: a new figure).
      title: the axes title.
      label: the colour bar's label.

    Returns:
      The matplotlib Figure.

    Example:
      >>> import cascjax.plot, cascjax.protocol
      >>> grid = cascjax.protocol.ablation_grid(1.0, 2.0)          # [6, 2] (σ_ante, σ_post) cells
      >>> fig = cascjax.plot.heatmap(grid[:, 0], grid[:, 1], grid[:, 0] - grid[:, 1])
      >>> fig.axes[0].get_images()[0].get_array().shape            # σ_post × σ_ante
      (3, 3)
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


def whatif(table, *, model: str, budget: float | None = None, title: str | None = None):
    """What-if prices: AUC (and, with ``budget``, the quality there) of each strategy against one model's price
    multiplier, log scale; the table of ``cascjax whatif`` (columns strategy, scale, auc, quality_at_budget).

    Example:
      >>> import pandas as pd, cascjax.plot
      >>> t = pd.DataFrame(dict(strategy=["routing"] * 2, scale=[0.5, 2.0], auc=[80.0, 78.0],
      ...                       quality_at_budget=[0.8, 0.7]))
      >>> fig = cascjax.plot.whatif(t, model="big", budget=1e-3)
      >>> len(fig.axes)
      2
    """
    plt = _pyplot()
    panels = 2 if budget is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2), dpi=120, squeeze=False)
    columns = [("auc", "AUC")] + ([("quality_at_budget", f"quality at budget {budget:.3g}")] if panels == 2 else [])
    for ax, (column, label) in zip(axes[0], columns):
        for name, rows in table.groupby("strategy", sort=False):
            rows = rows.sort_values("scale")
            ax.plot(rows["scale"], rows[column], marker="o", ms=3, label=name)
        ax.set_xscale("log")
        ticks = np.unique(table["scale"])
        ticks = ticks[np.unique(np.linspace(0, ticks.size - 1, min(ticks.size, 9)).round().astype(int))]
        ax.set_xticks(ticks, [f"{v:.3g}" for v in ticks])
        ax.minorticks_off()
        ax.axvline(1.0, color="0.7", lw=0.8, ls="--")
        ax.set_xlabel(f"price of {model} (x today's)")
        ax.set_ylabel(label)
    axes[0][0].legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def surface(surfaces, *, title: str | None = None, resolution: int = 40):
    """A second cost: per strategy, contours of the best quality reachable within a cost budget (x) and a latency
    budget (y) at once (:func:`cascjax.at_budgets` over a grid of budget pairs; blank where none is), with the
    three-way Pareto points on top.

    Args:
      surfaces: a :class:`cascjax.Surface`, or a mapping name -> Surface (one panel each).
      title: the figure's title.
      resolution: budgets per axis.

    Example:
      >>> import numpy as np, cascjax, cascjax.plot
      >>> s = cascjax.Surface(np.zeros(1), np.zeros((1, 3)), np.zeros((1, 3)), np.array([[1.0, 2.0, 4.0]]),
      ...                     np.array([[3.0, 1.0, 2.0]]), np.array([[0.5, 0.6, 0.9]]))
      >>> fig = cascjax.plot.surface({"routing": s})
      >>> len(fig.axes)   # the panel and its colour bar
      2
    """
    from ._latency import Surface, best_quality, pareto

    plt = _pyplot()
    if isinstance(surfaces, Surface):
        surfaces = {"": surfaces}
    fig, axes = plt.subplots(1, len(surfaces), figsize=(4.6 * len(surfaces), 3.9), dpi=120, squeeze=False)
    points = [s.points() for s in surfaces.values()]
    finite = [np.concatenate([p[i][np.isfinite(p[i])] for p in points]) for i in range(3)]
    levels = np.linspace(finite[2].min(), finite[2].max(), 12) if finite[2].size else None
    if levels is not None and not levels[-1] > levels[0]:
        levels = None
    bc = np.linspace(finite[0].min(), finite[0].max(), resolution)
    bl = np.linspace(finite[1].min(), finite[1].max(), resolution)
    filled = None
    for ax, (name, s) in zip(axes[0], surfaces.items()):
        best = best_quality(s, bc, bl)
        if np.isfinite(best).any():
            filled = ax.contourf(bc, bl, best.T, levels=levels, cmap="viridis")
        cost, lat, _ = s.points()
        front = pareto(s)
        ax.scatter(cost[front], lat[front], s=6, color="white", edgecolor="black", linewidth=0.3,
                   label="Pareto points")
        ax.set_xlabel("cost budget (mean per query)")
        ax.set_ylabel("latency budget (mean per query)")
        ax.set_title(name, fontsize=9)
    if filled is not None:
        fig.colorbar(filled, ax=list(axes[0]), label="best quality within both budgets")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def pools(searches, *, title: str | None = None):
    """Pool and order search: per strategy, the frontier over every pool (mixing across pools), the best pool's
    curve and the full cheapest-first pool's (the paper's fixed order), each its upper hull over λ.

    Args:
      searches: a :class:`cascjax.PoolSearch`, or a mapping name -> PoolSearch (one panel each).
      title: the figure's title.

    Example:
      >>> import numpy as np, cascjax, cascjax.plot
      >>> found = cascjax.PoolSearch("routing", ((0,), (1,), (0, 1)), ("a", "b", "a+b"), np.zeros(2),
      ...                            np.array([[1.0, 1.0], [3.0, 3.0], [1.0, 2.0]]),
      ...                            np.array([[0.5, 0.5], [0.8, 0.8], [0.5, 0.75]]),
      ...                            dict(cost_range=(1.0, 3.0), q_floor=0.5))
      >>> len(cascjax.plot.pools({"routing": found}).axes)
      1
    """
    from ._pool_points import PoolSearch, pool_frontier

    plt = _pyplot()
    if isinstance(searches, PoolSearch):
        searches = {searches.strategy: searches}
    fig, axes = plt.subplots(1, len(searches), figsize=(4.8 * len(searches), 3.9), dpi=120, squeeze=False)
    for ax, (name, found) in zip(axes[0], searches.items()):
        front = pool_frontier(found)
        ax.plot(front.cost, front.quality, color="black", lw=1.6, label=f"every pool ({front.auc:.2f})")
        full = max(len(p) for p in found.members)
        curves = [(front.best_pool, "C0", "-", f"best: {found.names[front.best_pool]} ({front.best_auc:.2f})")]
        if tuple(range(full)) in found.members:
            curves.append((found.members.index(tuple(range(full))), "C3", "--",
                           f"cheapest first ({front.default_auc:.2f})"))
        for p, color, style, label in curves:
            h = model_hull((found.cost[p], found.quality[p]))
            ax.plot(found.cost[p][h], found.quality[p][h], color=color, ls=style, lw=1.2, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("mean cost per query")
        ax.set_ylabel("mean quality")
        ax.set_title(f"{name}: {len(found.members)} pools", fontsize=9)
        ax.legend(fontsize=6, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
