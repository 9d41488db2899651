"""``cascjax frontier``: sweep λ for each strategy on a dataset, write the curves, the summary and the figures,
print an AUC table."""

from __future__ import annotations

import os

from ._common import CLI_STRATEGIES, _estimates, _load, _parse_numbers, _strategy_options, _sweep_args
from ._output import _Progress, _png, _print_json, _write_files


def run(args) -> int:
    """``cascjax frontier`` on parsed arguments: the exit code (0); bad input raises CascjaxError."""
    import numpy as np

    import cascjax
    from .._errors import CascjaxError

    strategies = _sweep_args(args)
    budgets = None
    if args.budgets is not None:
        budgets = _parse_numbers(args.budgets, "--budgets")
        if not (np.isfinite(budgets).all() and (budgets >= 0).all()):
            raise CascjaxError(f"--budgets must be finite and non-negative, got {args.budgets!r}")
    if args.confidence is not None:
        from .._confidence import check_confidence

        if budgets is None:
            raise CascjaxError("--confidence needs --budgets (the budgets that are to hold on new data)")
        try:
            check_confidence(args.confidence, None)
        except CascjaxError as e:
            raise CascjaxError(f"--confidence: {e}") from None
    ds, path = _load(args)
    est = _estimates(args, ds, path)
    if args.covariance:
        est = cascjax.fit_covariances(est)
    if args.lambda_values is not None:
        lams = np.sort(_parse_numbers(args.lambda_values, "--lambda-values"))
    else:
        lams = cascjax.lambda_grid(est, args.lambdas)

    rows, summary, plotted, used, at_budgets = [], [], {}, {}, []
    steps = sum(1 if s == "threshold-cascade" else 2 + (s in ("routing", "cascade")) for s in strategies)
    bar = _Progress(steps, args.quiet, "sweep")
    try:
        for name in strategies:
            both = []
            if name == "threshold-cascade":  # thresholds θ, not λ; no scores, so no ties
                runs = [("none", cascjax.threshold_grid(est, max(args.lambdas, 3), max_depth=args.max_depth))]
            else:
                runs = [(tie, lams) for tie in ("min", "max")]
            for tie, grid_values in runs:
                bar(f"{name}, grid" + ("" if tie == "none" else f", {tie} ties"))
                options = _strategy_options(args, name)
                if name == "cascade-routing":
                    options["force_order"] = args.force_order
                if name in ("routing", "cascade"):
                    options["tie_band"] = args.tie_band
                # --confidence: the MIN-tie grid curve keeps each query's cost (the bound's moments).
                curve = cascjax.sweep(ds, est, grid_values, strategy=CLI_STRATEGIES[name],
                                      tie="min" if tie == "none" else tie,
                                      return_choices=args.confidence is not None and not both, **options)
                both.append(curve)
                rows += [(name, "grid", float(l), tie, float(c), float(q))
                         for l, c, q in zip(grid_values, np.asarray(curve.cost), np.asarray(curve.quality))]
            cost = np.concatenate([np.asarray(c.cost) for c in both])
            quality = np.concatenate([np.asarray(c.quality) for c in both])
            summary.append(_summary_row("strategy", name, (cost, quality), ds))
            plotted[name] = (cost, quality)
            used[name] = both[0]
            best = both[0]  # the MIN-tie grid curve, λ-ordered, for the mixtures at budgets
            if name in ("routing", "cascade"):  # the exact λ-paths
                bar(f"{name}, exact path")
                exact = (cascjax.routing_path(ds, est) if name == "routing" else
                         cascjax.cascade_path(ds, est, max_depth=args.max_depth, samples=args.samples))
                rows += [(name, "exact", float(l), "min", float(c), float(q))
                         for l, c, q in zip(np.asarray(exact.lam), np.asarray(exact.cost), np.asarray(exact.quality))]
                summary.append(_summary_row("strategy", f"{name} (exact path)", exact, ds))
                best = exact
            if budgets is not None:
                if args.confidence is not None:
                    best = both[0]
                mix = cascjax.at_budget(best, budgets, confidence=args.confidence)
                lam = np.asarray(mix.lam, np.float64).reshape(budgets.size, -1)[:, 0]
                at_budgets += [dict(strategy=name, curve="exact" if best is not both[0] else "grid", budget=float(b),
                                    feasible=bool(f), **{"lambda": float(lm)}, gamma=float(g), cost=float(c),
                                    quality=float(q))
                               for b, f, lm, g, c, q in zip(budgets, np.asarray(mix.feasible), lam,
                                                           np.asarray(mix.gamma), np.asarray(mix.cost),
                                                           np.asarray(mix.quality))]
    finally:
        bar.close()
    mc, mq = cascjax.model_points(ds)
    hull = cascjax.model_hull(ds)
    summary.append(_summary_row("baseline", "linear interpolation (model hull)", (mc[hull], mq[hull]), ds))
    # ParetoDist: each row's distance below the frontier of every row's points together.
    front = tuple(np.concatenate([r["_points"][i] for r in summary]) for i in (0, 1))
    for r in summary:
        r["pareto_dist"] = cascjax.pareto_dist(r.pop("_points"), front)
    for name, c, q in zip(ds.models, mc, mq):
        summary.append(dict(kind="model", name=name, auc=float("nan"), aiq=float("nan"), cost_min=float(c),
                            cost_max=float(c), quality_max=float(q), points=1))
    written = _write_outputs(args.out, rows, summary, plotted, used, at_budgets, budgets, ds, path, args.estimates)
    if args.json:
        _print_json(dict(command="frontier", data=str(path), format=args.format, queries=ds.n_queries,
                         models=list(ds.models), estimates=args.estimates, strategies=strategies,
                         summary=summary, budgets=at_budgets,
                         files=[os.path.join(args.out, w) for w in written]))
    else:
        _print_summary(summary, at_budgets, ds, path, args, written)
    return 0


def _summary_row(kind, name, curve, ds):
    import numpy as np

    import cascjax

    cost, quality = (curve.cost, curve.quality) if hasattr(curve, "cost") else curve
    cost, quality = np.asarray(cost, np.float64), np.asarray(quality, np.float64)
    points = (cost, quality)
    return dict(kind=kind, name=name, auc=cascjax.auc(points, ds), aiq=cascjax.aiq(points, ds),
                cost_min=float(cost.min()), cost_max=float(cost.max()), quality_max=float(quality.max()),
                points=int(cost.size), perf_gain=cascjax.perf_gain(points, ds), cost_save=cascjax.cost_save(points, ds),
                oracle_gap=cascjax.oracle_gap(points, ds), _points=points)


def _write_outputs(out, rows, summary, plotted, used, at_budgets, budgets, ds, path, estimates):
    """curve.csv, summary.csv (budgets.csv with --budgets), frontier.png and usage.png, all staged and moved
    in place together (:func:`_write_files`)."""
    import pandas as pd

    curve_df = pd.DataFrame(rows, columns=["strategy", "method", "lambda", "tie", "cost", "quality"])
    summary_df = pd.DataFrame(summary)
    files = [("curve.csv", lambda f: curve_df.to_csv(f, index=False, float_format="%.10g")),
             ("summary.csv", lambda f: summary_df.to_csv(f, index=False, float_format="%.10g"))]
    if budgets is not None:
        budget_df = pd.DataFrame(at_budgets, columns=["strategy", "curve", "budget", "feasible", "lambda", "gamma",
                                                      "cost", "quality"])
        files.append(("budgets.csv", lambda f: budget_df.to_csv(f, index=False, float_format="%.10g")))
    title = f"{os.path.basename(str(path).rstrip(os.sep))} — {estimates} estimates"
    files.append(("frontier.png", _png("frontier", plotted, ds, title=title, budgets=budgets)))
    files.append(("usage.png", _png("usage", used, ds, title=f"{title}: which model answered (MIN-tie grid)")))
    return _write_files(out, files)


def _print_summary(summary, at_budgets, ds, path, args, written):
    print(f"{path}: {ds.n_queries} queries x {ds.n_models} models, {args.estimates} estimates")
    header = f"{'kind':<9} {'name':<36} {'AUC':>7} {'AIQ':>7} {'cost min':>10} {'cost max':>10} {'q max':>7}"
    print(header)
    print("-" * len(header))
    for r in summary:
        auc = "" if r["auc"] != r["auc"] else f"{r['auc']:.2f}"
        aiq = "" if r["aiq"] != r["aiq"] else f"{r['aiq']:.2f}"
        print(f"{r['kind']:<9} {r['name'][:36]:<36} {auc:>7} {aiq:>7} {r['cost_min']:>10.3g} "
              f"{r['cost_max']:>10.3g} {r['quality_max']:>7.4f}")
    if at_budgets:
        print(f"\n{'strategy':<20} {'budget':>10} {'λ':>10} {'γ':>6} {'cost':>10} {'quality':>8}")
        for r in at_budgets:
            if r["feasible"]:
                print(f"{r['strategy']:<20} {r['budget']:>10.4g} {r['lambda']:>10.4g} {r['gamma']:>6.3f} "
                      f"{r['cost']:>10.4g} {r['quality']:>8.4f}")
            else:
                print(f"{r['strategy']:<20} {r['budget']:>10.4g}   infeasible: below every point's cost")
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written[:1])}, {', '.join(written[1:])}")
