"""The ``cascjax`` command line.

Exit codes: 0 success, 2 bad input (a file, column, model or option; one line on stderr naming it), 1 internal
error (one line; ``CASCJAX_DEBUG=1`` shows the traceback), 130 interrupted. ``--json`` prints one JSON document
on stdout instead of the tables; ``--quiet`` turns the progress bar off.
"""

from __future__ import annotations

import argparse
import json
import math
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
  cascjax frontier --lambda-values 0,100,1000,10000 --seed 3 --budgets 0.0005,0.001
  cascjax frontier results.csv --format long        # query_id,model,quality,cost rows
  cascjax frontier gsm8k_responses.csv --prices prices.csv    # RouteLLM CSV: costs from tokens x prices
  cascjax frontier data/classification/mmlu --split test      # the paper's JSON layout
  cascjax frontier --strategy routing --json --quiet | jq .summary
"""

REPRODUCE_EXAMPLES = """examples:
  cascjax reproduce routerbench_0shot.pkl                      # the paper's table: pools 3,5,all x low,medium,high
  cascjax reproduce routerbench_0shot.pkl --pools 3 --noise low --seeds 5
  cascjax reproduce routerbench_0shot.pkl --pools 9+4+5,gpt-4-1106-preview+claude-v2 --per-step search,gradient
  cascjax reproduce                                            # the embedded example, all its models
"""

ABLATE_EXAMPLES = """examples:
  cascjax ablate routerbench_0shot.pkl                         # noise grid on the paper's 5-model pool + Table 7
  cascjax ablate routerbench_0shot.pkl --what noise --step 0.6 --seeds 3
  cascjax ablate --what variants                               # Table 7 on the embedded example
"""


MAIN_EPILOG = """examples:
  cascjax frontier                                  # frontiers on the embedded MMLU-Pro example
  cascjax frontier my_results.csv --budgets 0.001,0.002 --out my-frontier/
  cascjax reproduce routerbench_0shot.pkl           # the paper's RouterBench tables
  cascjax ablate routerbench_0shot.pkl --what noise # the paper's noise ablation heatmaps
  cascjax frontier --help                           # every option of a command

data: wide CSV/Parquet/pickle (RouterBench's pickles as they are), long (query_id,model,quality,cost), the
paper's JSON folders (qualities.json, costs.json), RouteLLM CSVs with --prices prices.csv.
exit codes: 0 success, 2 bad input (one line naming the file, column, model or option), 1 internal error
(CASCJAX_DEBUG=1 shows the traceback), 130 interrupted.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cascjax", description="Routing, cascading and cascade routing for LLMs, in JAX (Dekoninck, "
                                            "Baader & Vechev, ICML 2025).",
                epilog=MAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    f = sub.add_parser("frontier", help="trace the cost-quality frontier of strategies on a dataset",
                       description="Sweep λ for each strategy, write curve.csv, summary.csv, frontier.png and "
                                   "usage.png (budgets.csv with --budgets) and print an AUC table.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_options(f)
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
    f.add_argument("--budgets", help="comma-separated budgets (mean cost per query): the best γ-mixture of each "
                                     "strategy there, in budgets.csv and marked in frontier.png")
    f.add_argument("--out", default="cascjax-out", help="output directory (default: ./cascjax-out)")
    _output_options(f)

    r = sub.add_parser("reproduce", help="the paper's RouterBench protocol: pools x noise levels x strategies",
                       description="Fit every strategy to the paper's budgets on a 5%% fit split, evaluate on the "
                                   "95%% test split, and write table.csv, table.md and one frontier figure per cell.",
                       epilog=REPRODUCE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _protocol_options(r)
    r.add_argument("--pools", default=None,
                   help="comma-separated pools: 3, 5, all (the paper's RouterBench pools by index; all = every "
                        "model) or models joined by + (names, or RouterBench indices 0..10); default: 3,5,all "
                        "on RouterBench data, else all")
    r.add_argument("--noise", default="low,medium,high", help="comma-separated noise levels (default: all three)")
    r.add_argument("--seeds", type=int, default=1, help="noise seeds 0..K-1, AUCs averaged (default: 1)")
    r.add_argument("--strategy", default="routing,threshold-cascade,cascade,cascade-routing",
                   help="comma-separated strategies (default: all; the linear interpolation row is always there)")
    r.add_argument("--bootstrap", type=int, default=1000,
                   help="paired bootstrap resamples for the intervals (0: none; default: 1000)")
    r.add_argument("--out", default="cascjax-reproduce", help="output directory (default: ./cascjax-reproduce)")

    a = sub.add_parser("ablate", help="the paper's ablations: noise grid heatmaps and Table 7 (cascade-routing "
                                      "variants)",
                       description="Noise grid: σ_ante in 0..MAX, σ_post <= σ_ante, step STEP, x seeds; AUC of "
                                   "routing, threshold cascade and cascade routing per cell. Variants: cascade "
                                   "routing normal, greedy, no deviation, no pruning (AUC, time per decision).",
                       epilog=ABLATE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _protocol_options(a, per_step="none")
    a.add_argument("--what", default="noise,variants", help="noise, variants or both (default: both)")
    a.add_argument("--pool", default=None, help="one pool (as for reproduce; default: 5 on RouterBench data, "
                                                "else all)")
    a.add_argument("--step", type=float, default=0.2, help="noise grid step (default: 0.2)")
    a.add_argument("--max", type=float, default=3.0, dest="top", help="largest σ_ante (default: 3.0)")
    a.add_argument("--seeds", type=int, default=1, help="noise seeds per grid cell (default: 1)")
    a.add_argument("--noise", default="low", help="variants: the noise level (default: low)")
    a.add_argument("--out", default="cascjax-ablate", help="output directory (default: ./cascjax-ablate)")
    return p


def _data_options(p):
    p.add_argument("data", nargs="?", help="a data file or folder (default: the embedded MMLU-Pro example): wide "
                                           "CSV/Parquet/pickle (RouterBench's pickles), long, the paper's JSON "
                                           "layout or a RouteLLM CSV")
    p.add_argument("--format", default="auto", choices=("auto", "wide", "routerbench", "long", "paper", "routellm"),
                   help="how DATA is laid out (default: auto, detected from the file): wide = <model>, "
                        "<model>|total_cost columns; long = query_id,model,quality,cost rows; paper = a folder "
                        "with qualities.json and costs.json; routellm = prompt + True/False column per model")
    p.add_argument("--prices", help="price table CSV (model,input,output: USD per million tokens): costs = token "
                                    "counts x prices, replacing any costs in DATA (needed for RouteLLM files)")
    p.add_argument("--split", choices=("train", "test"), help="the paper's JSON layout: one split (default: both)")
    p.add_argument("--models", help="comma-separated model names to use (default: all)")
    p.add_argument("--dropna", action="store_true", help="drop queries with missing values instead of failing")


def _output_options(p):
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout instead of the tables")


def _protocol_options(p, per_step="search"):
    _data_options(p)
    p.add_argument("--fit-fraction", type=float, default=0.05, help="fit split fraction (default: 0.05)")
    p.add_argument("--split-seed", type=int, default=42, help="split seed (default: 42, as the paper)")
    p.add_argument("--max-depth", type=int, default=5, help="cascade routing: at most this many models (default: 5)")
    p.add_argument("--samples", type=int, default=100, help="cascade, cascade routing: K (default: 100, as the "
                                                            "paper)")
    p.add_argument("--per-step", default=per_step,
                   help="per-step λ (θ) methods besides constant λ: search, gradient, search,gradient or none "
                        f"(default: {per_step})")
    p.add_argument("--candidates", type=int, default=512, help="per-step search vectors (default: 512)")
    _output_options(p)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from ._errors import CascjaxError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            result = {"frontier": _frontier, "reproduce": _reproduce, "ablate": _ablate}[args.command](args)
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
    budgets = None
    if args.budgets is not None:
        budgets = _parse_numbers(args.budgets, "--budgets")
        if not (np.isfinite(budgets).all() and (budgets >= 0).all()):
            raise CascjaxError(f"--budgets must be finite and non-negative, got {args.budgets!r}")
    ds, path = _load(args)
    if args.max_depth is not None and not 1 <= args.max_depth <= ds.n_models:
        raise CascjaxError(f"--max-depth must be in 1..{ds.n_models} (the number of models), got {args.max_depth}")
    if args.samples < 1:
        raise CascjaxError(f"--samples must be at least 1, got {args.samples}")
    if args.estimates == "perfect":
        est = cascjax.perfect_estimates(ds)
    elif args.estimates == "columns":
        est = cascjax.read_estimates(path, ds, format=args.format, prices=args.prices, split=args.split,
                                     dropna=args.dropna)
    else:
        est = cascjax.noisy_estimates(ds, jax.random.key(args.seed), args.estimates)
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
                mix = cascjax.at_budget(best, budgets)
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


def _parse_numbers(text, what):
    import numpy as np

    from ._errors import CascjaxError

    try:
        return np.array([float(v) for v in _parse_list(text, what)])
    except ValueError:
        raise CascjaxError(f"{what} must be comma-separated numbers, got {text!r}") from None


def _print_json(document):
    """One JSON document on stdout; NaN and infinities become null (JSON has none)."""
    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if hasattr(x, "item") and not isinstance(x, (str, bytes)):
            x = x.item()
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return x

    print(json.dumps(clean(document), indent=1, allow_nan=False))


def _summary_row(kind, name, curve, ds):
    import numpy as np

    import cascjax

    cost, quality = (curve.cost, curve.quality) if hasattr(curve, "cost") else curve
    cost, quality = np.asarray(cost, np.float64), np.asarray(quality, np.float64)
    return dict(kind=kind, name=name, auc=cascjax.auc((cost, quality), ds), aiq=cascjax.aiq((cost, quality), ds),
                cost_min=float(cost.min()), cost_max=float(cost.max()), quality_max=float(quality.max()),
                points=int(cost.size))


def _load(args):
    import cascjax

    path = args.data if args.data is not None else cascjax.example_path()
    models = _parse_list(args.models, "--models") if args.models else None
    return cascjax.read(path, models=models, format=args.format, prices=args.prices, split=args.split,
                        dropna=args.dropna), path


def _common(args):
    """Validated options shared by reproduce and ablate."""
    from ._errors import CascjaxError

    if not 0 < args.fit_fraction < 1:
        raise CascjaxError(f"--fit-fraction must lie strictly between 0 and 1, got {args.fit_fraction}")
    if args.max_depth < 1:
        raise CascjaxError(f"--max-depth must be at least 1, got {args.max_depth}")
    if args.samples < 1:
        raise CascjaxError(f"--samples must be at least 1, got {args.samples}")
    if args.candidates < 2:
        raise CascjaxError(f"--candidates must be at least 2, got {args.candidates}")
    per_step = () if args.per_step.strip() == "none" else tuple(_parse_list(args.per_step, "--per-step"))
    for m in per_step:
        if m not in ("search", "gradient"):
            raise CascjaxError(f"unknown method {m!r} in --per-step; choose search, gradient or none")
    return dict(fit_fraction=args.fit_fraction, split_seed=args.split_seed, max_depth=args.max_depth,
                samples=args.samples, per_step=per_step, candidates=args.candidates)


class _Progress:
    """A tqdm bar on stderr (none with --quiet)."""

    def __init__(self, total, quiet, unit):
        self.bar, self.started = None, False
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False,
                            disable=None)  # None: no bar when stderr is not a terminal (logs, CI)

    def __call__(self, message):
        """A step begins: the previous one is done."""
        if self.bar is not None:
            if self.started:
                self.bar.update(1)
            self.started = True
            self.bar.set_description_str(message[:60])

    def close(self):
        if self.bar is not None:
            if self.started:
                self.bar.update(1)
            self.bar.close()


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_")[:80] or "pool"


def _reproduce(args) -> int:
    import numpy as np
    import pandas as pd

    from . import _protocol
    from ._errors import CascjaxError

    options = _common(args)
    ds, path = _load(args)
    pools = _parse_list(args.pools, "--pools") if args.pools else (
        ["3", "5", "all"] if _protocol.is_routerbench(ds) else ["all"])
    noises = _parse_list(args.noise, "--noise")
    for n in noises:
        if n not in ("low", "medium", "high"):
            raise CascjaxError(f"unknown noise level {n!r} in --noise; choose low, medium, high")
    strategies = [CLI_STRATEGIES.get(s) for s in _parse_list(args.strategy, "--strategy")]
    for s, name in zip(strategies, _parse_list(args.strategy, "--strategy")):
        if s is None:
            raise CascjaxError(f"unknown strategy {name!r} in --strategy; available: {', '.join(CLI_STRATEGIES)}")
    if args.seeds < 1:
        raise CascjaxError(f"--seeds must be at least 1, got {args.seeds}")
    if args.bootstrap < 0:
        raise CascjaxError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    for spec in pools:  # unknown models fail before any work
        _protocol.pool_models(ds, spec)
    n_rows = len([r for r in _protocol.ROWS if r[1] is None or r[1] in strategies])
    bar = _Progress(len(pools) * len(noises) * args.seeds * n_rows, args.quiet, "fit")
    try:
        cells = _protocol.reproduce(ds, pools, noises, args.seeds, n_boot=args.bootstrap, strategies=strategies,
                                    progress=bar, **options)
    finally:
        bar.close()
    table = pd.DataFrame([r for c in cells for r in c.rows])
    md = _protocol.markdown(cells)
    files = [("table.csv", lambda f: table.to_csv(f, index=False, float_format="%.6g")),
             ("table.md", lambda f: f.write(md.encode()))]
    for c in cells:
        curves = {label: (x[np.isfinite(x)], y[np.isfinite(y)]) for label, (x, y) in c.curves.items()}
        files.append((f"frontier_{_slug(c.pool)}_{c.noise}.png",
                      _png("frontier", curves, c.test,
                           title=f"pool {c.pool} ({len(c.models)} models), {c.noise} noise — test split")))
    written = _write_files(args.out, files)
    if args.json:
        _print_json(dict(command="reproduce", data=str(path), format=args.format, queries=ds.n_queries,
                         models=list(ds.models), pools=pools, noise=noises, seeds=args.seeds,
                         table=table.to_dict(orient="records"), files=[os.path.join(args.out, w) for w in written]))
        return 0
    print(f"{path}: {ds.n_queries} queries x {ds.n_models} models; pools {', '.join(pools)}; noise "
          f"{', '.join(noises)}; {args.seeds} seed(s)")
    print(md)
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written[:3])}{' ...' if len(written) > 3 else ''}")
    return 0


def _ablate(args) -> int:
    import numpy as np
    import pandas as pd

    from . import _protocol
    from ._errors import CascjaxError

    options = _common(args)
    ds, path = _load(args)
    what = _parse_list(args.what, "--what")
    for w in what:
        if w not in ("noise", "variants"):
            raise CascjaxError(f"unknown ablation {w!r} in --what; choose noise, variants or both")
    if args.noise not in ("low", "medium", "high"):
        raise CascjaxError(f"unknown noise level {args.noise!r} in --noise; choose low, medium, high")
    if args.seeds < 1:
        raise CascjaxError(f"--seeds must be at least 1, got {args.seeds}")
    if not (args.step > 0 and args.top >= 0):
        raise CascjaxError(f"--step must be positive and --max non-negative, got {args.step}, {args.top}")
    pool = args.pool or ("5" if _protocol.is_routerbench(ds) else "all")
    names = _protocol.pool_models(ds, pool)
    files = []
    grid = _protocol.ablation_grid(args.step, args.top)
    total = (len(grid) * args.seeds * 3 if "noise" in what else 0) + (len(_protocol.VARIANTS) if "variants" in what
                                                                       else 0)
    bar = _Progress(total, args.quiet, "fit")
    try:
        if "noise" in what:
            rows = _protocol.ablate(ds, pool, grid=grid, seeds=args.seeds, progress=bar, **options)
            frame = pd.DataFrame(rows)
            files.append(("ablation.csv", lambda f: frame.to_csv(f, index=False, float_format="%.6g")))
            mean = frame.groupby(["sigma_ante", "sigma_post"], as_index=False).mean(numeric_only=True)
            for column, label, name in (("cr_minus_routing", "AUC(cascade routing) − AUC(routing)",
                                         "heatmap_routing.png"),
                                        ("cr_minus_threshold", "AUC(cascade routing) − AUC(threshold cascade)",
                                         "heatmap_threshold.png")):
                files.append((name, _png("heatmap", mean.sigma_ante, mean.sigma_post, mean[column],
                                          title=f"{label}, pool {pool}")))
        if "variants" in what:
            opts = {k: v for k, v in options.items() if k != "candidates"}
            var = pd.DataFrame(_protocol.variants(ds, pool, args.noise, progress=bar, **opts))
            text = ("| variant | AUC | ms per decision |\n|---|---|---|\n" + "".join(
                f"| {r.variant} | {r.auc:.2f} | {r.ms_per_decision:.4f} |\n" for r in var.itertuples()))
            files.append(("variants.csv", lambda f: var.to_csv(f, index=False, float_format="%.6g")))
            files.append(("variants.md", lambda f: f.write(text.encode())))
    finally:
        bar.close()
    written = _write_files(args.out, files)
    if args.json:
        _print_json(dict(command="ablate", data=str(path), format=args.format, pool=pool, models=list(names),
                         noise_grid=frame.to_dict(orient="records") if "noise" in what else None,
                         variants=var.to_dict(orient="records") if "variants" in what else None,
                         files=[os.path.join(args.out, w) for w in written]))
        return 0
    print(f"{path}: pool {pool} ({len(names)} models)")
    if "noise" in what:
        print(f"noise grid: {len(grid)} cells x {args.seeds} seed(s); mean AUC difference of cascade routing: "
              f"{np.mean(frame.cr_minus_routing):+.2f} vs routing, {np.mean(frame.cr_minus_threshold):+.2f} vs "
              "threshold cascade")
    if "variants" in what:
        print(text)
    print(f"wrote {', '.join(os.path.join(args.out, w) for w in written)}")
    return 0


def _png(figure, *args, **kwargs):
    """A writer of the PNG of ``cascjax.plot.<figure>(*args, **kwargs)`` (skipped with a warning by
    :func:`_write_files` without matplotlib)."""
    def write(f):
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt

        from . import plot

        fig = getattr(plot, figure)(*args, **kwargs)
        fig.savefig(f, format="png")
        plt.close(fig)
    return write


def _write_files(out, files):
    """Stages every file under a temporary name, then moves them all in place (nothing half-written); PNGs
    are skipped with a warning when matplotlib is missing."""
    from ._errors import CascjaxError

    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise CascjaxError(f"--out {out}: cannot create the directory ({e.strerror})") from None
    if not os.access(out, os.W_OK):
        raise CascjaxError(f"--out {out}: the directory is not writable")
    try:
        import matplotlib  # noqa: F401
        has_plot = True
    except ImportError:
        has_plot = False
        print("cascjax: warning: figures not written: cascjax.plot needs matplotlib: pip install 'cascjax[plot]'",
              file=sys.stderr)
    staged = []
    try:
        for name, write in files:
            if name.endswith(".png") and not has_plot:
                continue
            staged.append(_stage(out, name, write))
    except BaseException:
        for tmp, _ in staged:
            os.unlink(tmp)
        raise
    for tmp, final in staged:
        os.replace(tmp, final)
    return [os.path.basename(final) for _, final in staged]


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


if __name__ == "__main__":
    sys.exit(main())
