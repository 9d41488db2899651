"""The ``cascjax`` command line. Exit codes: 0 success, 2 bad input, 1 internal error."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
ESTIMATE_CHOICES = ("perfect", "low", "medium", "high", "columns")
CLI_STRATEGIES = {"routing": "routing", "cascade": "cascade", "cascade-routing": "cascade_routing",
                  "threshold-cascade": "threshold_cascade"}

EXAMPLES = """examples:
  cascjax frontier                                  # the embedded MMLU-Pro example, low noise
  cascjax frontier data.csv --estimates perfect --out results/
  cascjax frontier routerbench_0shot.pkl --models gpt-4-1106-preview,mistralai/mistral-7b-chat
  cascjax frontier --lambda-values 0,100,1000,10000 --seed 3
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cascjax", description="Routing, cascading and cascade routing for LLMs, in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    f = sub.add_parser("frontier", help="trace the cost-quality frontier of strategies on a dataset",
                       description="Sweep λ for each strategy, write curve.csv, summary.csv and frontier.png.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("data", nargs="?", help="wide CSV/Parquet/pickle file (default: the embedded MMLU-Pro example)")
    f.add_argument("--strategy", default="routing,cascade,cascade-routing,threshold-cascade",
                   help="comma-separated strategies (available: routing, cascade, cascade-routing, "
                        "threshold-cascade; default: all)")
    f.add_argument("--max-depth", type=int, default=None,
                   help="cascades: at most this many models per query (default: all)")
    f.add_argument("--samples", type=int, default=64,
                   help="cascade, cascade-routing: shared normal points K for expected maxima (default: 64)")
    f.add_argument("--force-order", action="store_true",
                   help="cascade-routing: run models in ascending index order (mean cost when sorted)")
    f.add_argument("--estimates", default="low", choices=ESTIMATE_CHOICES,
                   help="perfect: the truth; low/medium/high: the paper's noise model; columns: read "
                        "<model>|quality_ante... from DATA (default: low)")
    f.add_argument("--seed", type=int, default=0, help="seed of the noise draw (default: 0)")
    f.add_argument("--covariance", action="store_true",
                   help="cascade, cascade-routing: correlated uncertainty, a covariance per run-pattern fitted "
                        "on all queries as the paper's fit_covariances, instead of independent σ (≤ 16 models)")
    grid = f.add_mutually_exclusive_group()
    grid.add_argument("--lambdas", type=int, default=256,
                      help="size of the data-driven λ grid, and at most that many thresholds θ for the threshold "
                           "cascade (default: 256)")
    grid.add_argument("--lambda-values", help="explicit comma-separated λ values, e.g. 0,10,100 (the threshold "
                                              "cascade keeps its θ grid)")
    f.add_argument("--models", help="comma-separated model names to use (default: all)")
    f.add_argument("--dropna", action="store_true", help="drop queries with missing values instead of failing")
    f.add_argument("--out", default="cascjax-out", help="output directory (default: ./cascjax-out)")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from ._errors import CascjaxError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            result = _frontier(args)
        for w in caught:
            print(f"cascjax: warning: {w.message}", file=sys.stderr)
        return result
    except CascjaxError as e:
        print(f"cascjax: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("cascjax: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI never shows a traceback unless asked to
        if os.environ.get("CASCJAX_DEBUG"):
            raise
        print(f"cascjax: internal error: {type(e).__name__}: {e} (set CASCJAX_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


def _parse_list(text: str, what: str) -> list[str]:
    from ._errors import CascjaxError

    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise CascjaxError(f"{what} is empty")
    return items


def _frontier(args) -> int:
    import jax
    import numpy as np

    import cascjax
    from ._errors import CascjaxError

    strategies = _parse_list(args.strategy, "--strategy")
    for s in strategies:
        if s not in CLI_STRATEGIES:
            raise CascjaxError(f"unknown strategy {s!r} in --strategy; available: {', '.join(CLI_STRATEGIES)}")
    if args.lambdas < 2:
        raise CascjaxError(f"--lambdas must be at least 2, got {args.lambdas}")
    path = args.data if args.data is not None else cascjax.example_path()
    models = _parse_list(args.models, "--models") if args.models else None
    ds = cascjax.read(path, models=models, dropna=args.dropna)
    if args.max_depth is not None and not 1 <= args.max_depth <= ds.n_models:
        raise CascjaxError(f"--max-depth must be in 1..{ds.n_models} (the number of models), got {args.max_depth}")
    if args.samples < 1:
        raise CascjaxError(f"--samples must be at least 1, got {args.samples}")
    if args.estimates == "perfect":
        est = cascjax.perfect_estimates(ds)
    elif args.estimates == "columns":
        est = cascjax.read_estimates(path, ds, dropna=args.dropna)
    else:
        est = cascjax.noisy_estimates(ds, jax.random.key(args.seed), args.estimates)
    if args.covariance:
        est = cascjax.fit_covariances(est)
    if args.lambda_values is not None:
        try:
            lams = np.array([float(v) for v in _parse_list(args.lambda_values, "--lambda-values")])
        except ValueError:
            raise CascjaxError(f"--lambda-values must be comma-separated numbers, got {args.lambda_values!r}") from None
        lams = np.sort(lams)
    else:
        lams = cascjax.lambda_grid(est, args.lambdas)

    rows, summary, plotted = [], [], {}
    for name in strategies:
        both = []
        if name == "threshold-cascade":  # thresholds θ, not λ; no scores, so no ties
            runs = [("none", cascjax.threshold_grid(est, max(args.lambdas, 3), max_depth=args.max_depth))]
        else:
            runs = [(tie, lams) for tie in ("min", "max")]
        for tie, grid_values in runs:
            options = {} if name == "routing" else dict(max_depth=args.max_depth)
            if name in ("cascade", "cascade-routing"):
                options["samples"] = args.samples
            if name == "cascade-routing":
                options["force_order"] = args.force_order
            curve = cascjax.sweep(ds, est, grid_values, strategy=CLI_STRATEGIES[name],
                                  tie="min" if tie == "none" else tie, **options)
            both.append(curve)
            rows += [(name, "grid", float(l), tie, float(c), float(q))
                     for l, c, q in zip(grid_values, np.asarray(curve.cost), np.asarray(curve.quality))]
        cost = np.concatenate([np.asarray(c.cost) for c in both])
        quality = np.concatenate([np.asarray(c.quality) for c in both])
        summary.append(_summary_row("strategy", name, (cost, quality), ds))
        plotted[name] = (cost, quality)
        if name in ("routing", "cascade"):  # the exact λ-paths
            exact = (cascjax.routing_path(ds, est) if name == "routing" else
                     cascjax.cascade_path(ds, est, max_depth=args.max_depth, samples=args.samples))
            rows += [(name, "exact", float(l), "min", float(c), float(q))
                     for l, c, q in zip(np.asarray(exact.lam), np.asarray(exact.cost), np.asarray(exact.quality))]
            summary.append(_summary_row("strategy", f"{name} (exact path)", exact, ds))
    mc, mq = cascjax.model_points(ds)
    hull = cascjax.model_hull(ds)
    summary.append(_summary_row("baseline", "linear interpolation (model hull)", (mc[hull], mq[hull]), ds))
    for name, c, q in zip(ds.models, mc, mq):
        summary.append(dict(kind="model", name=name, auc=float("nan"), aiq=float("nan"), cost_min=float(c),
                            cost_max=float(c), quality_max=float(q), points=1))
    _write_outputs(args.out, rows, summary, plotted, ds, path, args.estimates)
    _print_summary(summary, ds, path, args)
    return 0


def _summary_row(kind, name, curve, ds):
    import numpy as np

    import cascjax

    cost, quality = (curve.cost, curve.quality) if hasattr(curve, "cost") else curve
    cost, quality = np.asarray(cost, np.float64), np.asarray(quality, np.float64)
    return dict(kind=kind, name=name, auc=cascjax.auc((cost, quality), ds), aiq=cascjax.aiq((cost, quality), ds),
                cost_min=float(cost.min()), cost_max=float(cost.max()), quality_max=float(quality.max()),
                points=int(cost.size))


def _write_outputs(out, rows, summary, plotted, ds, path, estimates):
    """Writes every file to a temporary name first, then moves them in place: nothing is half-written."""
    import pandas as pd

    from ._errors import CascjaxError

    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise CascjaxError(f"--out {out}: cannot create the directory ({e.strerror})") from None
    if not os.access(out, os.W_OK):
        raise CascjaxError(f"--out {out}: the directory is not writable")
    staged = []
    try:
        curve_df = pd.DataFrame(rows, columns=["strategy", "method", "lambda", "tie", "cost", "quality"])
        staged.append(_stage(out, "curve.csv", lambda f: curve_df.to_csv(f, index=False, float_format="%.10g")))
        summary_df = pd.DataFrame(summary)
        staged.append(_stage(out, "summary.csv", lambda f: summary_df.to_csv(f, index=False, float_format="%.10g")))
        try:
            from .plot import frontier

            fig = frontier(plotted, ds, title=f"{os.path.basename(str(path))} — {estimates} estimates")
        except ImportError as e:
            print(f"cascjax: warning: frontier.png not written: {e}", file=sys.stderr)
        else:
            import matplotlib.pyplot as plt

            staged.append(_stage(out, "frontier.png", lambda f: fig.savefig(f, format="png")))
            plt.close(fig)
    except BaseException:
        for tmp, _ in staged:
            os.unlink(tmp)
        raise
    for tmp, final in staged:
        os.replace(tmp, final)


def _stage(out, name, write):
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the user's usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp, os.path.join(out, name)


def _print_summary(summary, ds, path, args):
    print(f"{path}: {ds.n_queries} queries x {ds.n_models} models, {args.estimates} estimates")
    header = f"{'kind':<9} {'name':<36} {'AUC':>7} {'AIQ':>7} {'cost min':>10} {'cost max':>10} {'q max':>7}"
    print(header)
    print("-" * len(header))
    for r in summary:
        auc = "" if r["auc"] != r["auc"] else f"{r['auc']:.2f}"
        aiq = "" if r["aiq"] != r["aiq"] else f"{r['aiq']:.2f}"
        print(f"{r['kind']:<9} {r['name'][:36]:<36} {auc:>7} {aiq:>7} {r['cost_min']:>10.3g} "
              f"{r['cost_max']:>10.3g} {r['quality_max']:>7.4f}")
    print(f"wrote {os.path.join(args.out, 'curve.csv')}, summary.csv, frontier.png")


if __name__ == "__main__":
    sys.exit(main())
