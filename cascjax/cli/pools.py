"""``cascjax pools``: every model subset (routing, cascade routing) or ordered subset (the cascade, the threshold
cascade) of a small pool, swept at once per strategy; each pool's AUC, the best pool per budget, the frontier
over all of them and the full cheapest-first pool beside them; writes pools.csv, frontier.csv and pools.png."""

from __future__ import annotations

import os

from ._common import CLI_STRATEGIES, _estimates, _load, _parse_numbers, _strategy_options, _sweep_args
from ._output import _Progress, _png, _print_json, _write_files


def run(args) -> int:
    """``cascjax pools`` on parsed arguments: the exit code (0); bad input raises CascjaxError."""
    import numpy as np
    import pandas as pd

    import cascjax
    from .._errors import CascjaxError
    from .._pools import MAX_MODELS

    strategies = _sweep_args(args)
    budgets = _parse_numbers(args.budgets, "--budgets") if args.budgets else np.zeros(0)
    if not (np.isfinite(budgets).all() and (budgets >= 0).all()):
        raise CascjaxError(f"--budgets must be finite and non-negative, got {args.budgets!r}")
    ds, path = _load(args)
    max_size = ds.n_models if args.max_size is None else args.max_size
    if not 1 <= args.min_size <= max_size <= min(ds.n_models, MAX_MODELS):
        raise CascjaxError(f"--min-size and --max-size: 1 <= min_size <= max_size <= {min(ds.n_models, MAX_MODELS)} "
                           f"(the pool's models, at most {MAX_MODELS}), got {args.min_size}..{max_size}")
    est = _estimates(args, ds, path)
    rows, hulls, found_all, summary = [], [], {}, []
    bar = _Progress(len(strategies), args.quiet, "strategy")
    try:
        for name in strategies:
            bar(name)
            options = _strategy_options(args, name)
            found = cascjax.search_pools(ds, est, args.lambdas, CLI_STRATEGIES[name], min_size=args.min_size,
                                         max_size=max_size, **options)
            front = cascjax.pool_frontier(found, budgets)
            found_all[name] = found
            aucs = found.auc()
            default = ">".join(ds.models) if name in ("cascade", "threshold-cascade") else "+".join(ds.models)
            table = pd.DataFrame(dict(strategy=name, pool=found.names, size=[len(p) for p in found.members],
                                      auc=aucs, default=[n == default for n in found.names]))
            for b, budget in enumerate(budgets):
                table[f"quality_at_{budget:g}"] = front.pool_quality[:, b]
            rows.append(table)
            hulls.append(pd.DataFrame(dict(strategy=name, cost=front.cost, quality=front.quality,
                                           pool=[found.names[p] for p in front.pool])))
            summary.append(dict(strategy=name, pools=len(found.members), best_pool=found.names[front.best_pool],
                                best_auc=front.best_auc, default_auc=front.default_auc, frontier_auc=front.auc,
                                **{f"best_at_{b:g}": found.names[p] for b, p in zip(budgets, front.best_at)},
                                **{f"best_quality_at_{b:g}": q for b, q in zip(budgets, front.best_quality)},
                                **{f"default_quality_at_{b:g}": q for b, q in zip(budgets, front.default_quality)}))
    finally:
        bar.close()
    pools, frontier, summary = pd.concat(rows, ignore_index=True), pd.concat(hulls, ignore_index=True), \
        pd.DataFrame(summary)
    title = f"{os.path.basename(str(path).rstrip(os.sep))} — {args.estimates} estimates"
    files = [("pools.csv", lambda f: pools.to_csv(f, index=False, float_format="%.10g")),
             ("frontier.csv", lambda f: frontier.to_csv(f, index=False, float_format="%.10g")),
             ("pools.png", _png("pools", found_all, title=title))]
    written = _write_files(args.out, files)
    if args.json:
        _print_json(dict(command="pools", data=str(path), estimates=args.estimates,
                         summary=summary.to_dict("records"), files=[os.path.join(args.out, w) for w in written]))
        return 0
    print(f"{path}: {ds.n_queries} queries x {ds.n_models} models, {args.estimates} estimates; pools of "
          f"{args.min_size}..{max_size} models")
    show = summary[["strategy", "pools", "frontier_auc", "best_auc", "default_auc", "best_pool"]]
    print(show.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for b in budgets:
        at = summary[["strategy", f"best_at_{b:g}", f"best_quality_at_{b:g}", f"default_quality_at_{b:g}"]]
        print(f"\nat budget {b:g}: the best pool and its quality, and the full cheapest-first pool's\n"
              + at.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written)}")
    return 0

