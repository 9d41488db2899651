"""``cascjax whatif``: what if one model's price changed? Each strategy's AUC (and quality at a budget) against
that model's price multiplier, every price scenario in one vmapped sweep per strategy (``sweep(...,
prices=)``); writes whatif.csv and whatif.png and prints the table."""

from __future__ import annotations

import os

from ._common import CLI_STRATEGIES, _estimates, _load, _parse_numbers, _strategy_options, _sweep_args
from ._output import _Progress, _png, _print_json, _write_files


def parse_scale(text: str):
    """``LO:HI:N`` (N log-spaced multipliers from LO to HI) or comma-separated multipliers, each finite > 0."""
    import numpy as np

    from .._errors import CascjaxError

    if ":" in text:
        parts = text.split(":")
        try:
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
            if len(parts) != 3:
                raise ValueError
        except (ValueError, IndexError):
            raise CascjaxError(f"--scale must be LO:HI:N (e.g. 0.25:4:9) or comma-separated numbers, got "
                               f"{text!r}") from None
        if not (n >= 1 and np.isfinite([lo, hi]).all() and lo > 0 and hi > 0):
            raise CascjaxError(f"--scale {text!r}: LO and HI must be finite and > 0, N at least 1")
        scales = np.geomspace(lo, hi, n)
    else:
        scales = _parse_numbers(text, "--scale")
    if not (np.isfinite(scales).all() and (scales > 0).all()):
        raise CascjaxError(f"--scale must be finite multipliers > 0, got {text!r}")
    return np.round(scales, 12)


def run(args) -> int:
    """``cascjax whatif`` on parsed arguments: the exit code (0); bad input raises CascjaxError."""
    import numpy as np
    import pandas as pd

    import cascjax
    from .._errors import CascjaxError
    from .._prices import price_scenarios, scale_model
    from .._lambda_grid import scenario_lambda_grid

    strategies = _sweep_args(args)
    if args.budget is not None and not (np.isfinite(args.budget) and args.budget >= 0):
        raise CascjaxError(f"--budget must be finite and non-negative, got {args.budget}")
    scales = parse_scale(args.scale)
    ds, path = _load(args)
    prices = scale_model(ds.models, args.model, scales)
    est = _estimates(args, ds, path)
    cost, ante, _ = price_scenarios(ds, est, prices, np.float64)
    lams = scenario_lambda_grid(est, ante, args.lambdas)  # one λ grid for every scenario
    priced = [cascjax.Dataset.from_arrays(ds.quality, cost[s], models=list(ds.models), sort=False)
              for s in range(len(scales))]
    rows = []
    bar = _Progress(len(strategies), args.quiet, "strategy")
    try:
        for name in strategies:
            bar(name)
            options = _strategy_options(args, name)
            values = (cascjax.threshold_grid(est, max(args.lambdas, 3), max_depth=args.max_depth)
                      if name == "threshold-cascade" else lams)
            curves = cascjax.sweep(ds, est, values, CLI_STRATEGIES[name], prices=prices, **options)
            for s, curve in enumerate(curves):
                rows.append(_row(name, scales[s], (curve.cost, curve.quality), priced[s], args.budget))
    finally:
        bar.close()
    for s in range(len(scales)):  # the baseline: the priced models' hull
        mc, mq = cascjax.model_points(priced[s])
        hull = cascjax.model_hull(priced[s])
        rows.append(_row("model hull", scales[s], (mc[hull], mq[hull]), priced[s], args.budget))
    table = pd.DataFrame(rows)
    table.insert(1, "model", args.model)
    title = f"{os.path.basename(str(path).rstrip(os.sep))} — {args.estimates} estimates"
    files = [("whatif.csv", lambda f: table.to_csv(f, index=False, float_format="%.10g")),
             ("whatif.png", _png("whatif", table, model=args.model, budget=args.budget, title=title))]
    written = _write_files(args.out, files)
    if args.json:
        _print_json(dict(command="whatif", data=str(path), model=args.model, estimates=args.estimates,
                         budget=args.budget, rows=table.to_dict("records"),
                         files=[os.path.join(args.out, w) for w in written]))
        return 0
    print(f"{path}: {ds.n_queries} queries x {ds.n_models} models, {args.estimates} estimates; price of "
          f"{args.model} x scale")
    wide = table.pivot(index="scale", columns="strategy", values="auc")[table["strategy"].unique()]
    print("AUC\n" + wide.to_string(float_format=lambda v: f"{v:.2f}"))
    if args.budget is not None:
        at = table.pivot(index="scale", columns="strategy", values="quality_at_budget")[table["strategy"].unique()]
        print(f"\nquality at budget {args.budget:.4g}\n" + at.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written)}")
    return 0


def _row(name, scale, points, ds, budget) -> dict:
    import numpy as np

    import cascjax

    cost, quality = (np.asarray(a, np.float64) for a in points)
    row = dict(strategy=name, scale=float(scale), auc=cascjax.auc((cost, quality), ds),
               aiq=cascjax.aiq((cost, quality), ds), cost_min=float(cost.min()), cost_max=float(cost.max()))
    row.update(quality_at_budget=float("nan"), feasible=False)
    if budget is not None:  # the best γ-mixture of two points: on the upper hull
        hull = cascjax.model_hull((cost, quality))
        quality_at = cascjax.quality_at((cost[hull], quality[hull]), [budget])
        row.update(quality_at_budget=float(np.asarray(quality_at)[0]), feasible=bool(cost.min() <= budget))
    return row
