"""``cascjax surface``: a second cost (latency). Each strategy's points over a (weight, λ) grid of quality −
λ·cost − μ·latency (μ = weight·λ; every weight in one vmapped call per strategy), the three-way Pareto
points, and with ``--budgets`` the best quality within a cost and a latency budget at once; writes
surface.csv (budgets.csv) and surface.png (contours of the best quality over cost × latency budgets)."""

from __future__ import annotations

import os

from ._common import CLI_STRATEGIES, _estimates, _load, _parse_list, _strategy_options, _sweep_args
from ._output import _Progress, _png, _print_json, _write_files


def parse_weights(text: str):
    """An int N (the data-driven grid: 0, N − 2 log-spaced weights, inf), ``LO:HI:N`` (0, N log-spaced from LO
    to HI, inf) or comma-separated weights (``inf``: latency alone); each ≥ 0."""
    import numpy as np

    from .._errors import CascjaxError

    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        if ":" in text:
            lo, hi, n = text.split(":")
            lo, hi, n = float(lo), float(hi), int(n)
            if not (n >= 1 and 0 < lo <= hi < np.inf):
                raise ValueError
            return np.concatenate([[0.0], np.geomspace(lo, hi, n), [np.inf]])
        weights = np.array([float(v) for v in _parse_list(text, "--weights")])
    except ValueError:
        raise CascjaxError(f"--weights must be N, LO:HI:N (0 < LO <= HI, finite) or comma-separated numbers >= 0 "
                           f"(inf: latency alone), got {text!r}") from None
    if np.isnan(weights).any() or (weights < 0).any():
        raise CascjaxError(f"--weights must be numbers >= 0 (inf: latency alone), got {text!r}")
    return weights


def parse_budgets(text: str):
    """``COST:LATENCY`` pairs, comma-separated: ([B] cost budgets, [B] latency budgets)."""
    import numpy as np

    from .._errors import CascjaxError

    pairs = []
    for item in _parse_list(text, "--budgets"):
        try:
            c, lat = (float(v) for v in item.split(":"))
        except ValueError:
            raise CascjaxError(f"--budgets must be COST:LATENCY pairs, comma-separated (e.g. 0.001:2.5), got "
                               f"{item!r}") from None
        if not (np.isfinite([c, lat]).all() and c >= 0 and lat >= 0):
            raise CascjaxError(f"--budgets {item!r}: budgets must be finite and >= 0")
        pairs.append((c, lat))
    return tuple(np.array(v) for v in zip(*pairs))


def run(args) -> int:
    """``cascjax surface`` on parsed arguments: the exit code (0); bad input raises CascjaxError."""
    import numpy as np
    import pandas as pd

    import cascjax
    from .._errors import CascjaxError
    from .._latency import pareto

    strategies = _sweep_args(args)
    if "threshold-cascade" in strategies:
        raise CascjaxError("--strategy threshold-cascade: the threshold cascade decides by quality alone, never by "
                           "cost, so a latency weight does not change it; choose routing, cascade, cascade-routing")
    weights = parse_weights(args.weights)
    budgets = parse_budgets(args.budgets) if args.budgets else None
    ds, path = _load(args)
    latency = cascjax.read_latency(path, ds, format=args.format, split=args.split, dropna=args.dropna,
                                   allow_pickle=args.allow_pickle)
    est = _estimates(args, ds, path)
    rows, chosen, surfaces = [], [], {}
    bar = _Progress(len(strategies), args.quiet, "strategy")
    try:
        for name in strategies:
            bar(name)
            options = _strategy_options(args, name)
            s = cascjax.surface(ds, est, latency, args.lambdas, weights, CLI_STRATEGIES[name], **options)
            surfaces[name] = s
            front = np.zeros(s.cost.size, bool)
            front[pareto(s)] = True
            k, m = np.unravel_index(np.arange(s.cost.size), s.cost.shape)
            rows.append(pd.DataFrame(dict(strategy=name, weight=s.weight[k], **{"lambda": s.lam.ravel()},
                                          mu=s.mu.ravel(), cost=s.cost.ravel(), latency=s.latency.ravel(),
                                          quality=s.quality.ravel(), pareto=front)))
            if budgets is not None:
                c = cascjax.at_budgets(s, *budgets)
                chosen.append(pd.DataFrame(dict(
                    strategy=name, cost_budget=budgets[0], latency_budget=budgets[1], feasible=c.feasible,
                    quality=c.quality, cost=c.cost, latency=c.latency, lambda_lo=c.lam_lo, mu_lo=c.mu_lo,
                    lambda_hi=c.lam_hi, mu_hi=c.mu_hi, gamma=c.gamma)))
    finally:
        bar.close()
    table = pd.concat(rows, ignore_index=True)
    title = f"{os.path.basename(str(path).rstrip(os.sep))} — {args.estimates} estimates"
    files = [("surface.csv", lambda f: table.to_csv(f, index=False, float_format="%.10g")),
             ("surface.png", _png("surface", surfaces, title=title))]
    picked = pd.concat(chosen, ignore_index=True) if chosen else None
    if picked is not None:
        files.insert(1, ("budgets.csv", lambda f: picked.to_csv(f, index=False, float_format="%.10g")))
    written = _write_files(args.out, files)
    summary = table.groupby("strategy", sort=False).agg(points=("pareto", "size"), pareto=("pareto", "sum"),
                                                         best_quality=("quality", "max"))
    if args.json:
        _print_json(dict(command="surface", data=str(path), estimates=args.estimates,
                         summary=summary.reset_index().to_dict("records"),
                         budgets=None if picked is None else picked.to_dict("records"),
                         files=[os.path.join(args.out, w) for w in written]))
        return 0
    print(f"{path}: {ds.n_queries} queries x {ds.n_models} models, {args.estimates} estimates; quality - λ·cost - "
          "μ·latency over weights x λ")
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    if picked is not None:
        show = picked[["strategy", "cost_budget", "latency_budget", "feasible", "quality", "cost", "latency"]]
        print("\nbest quality within both budgets\n" + show.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written)}")
    return 0
