"""The ``cascjax`` command line: the parser, :func:`main` and its exit codes (each command in its own module).

Exit codes: 0 success, 2 bad input (a file, column, model or option; one line on stderr naming it), 1 internal
error (one line; ``CASCJAX_DEBUG=1`` shows the traceback), 130 interrupted. ``--json`` prints one JSON document
on stdout instead of the tables; ``--quiet`` turns the progress bar off.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from ..io import FORMATS
from . import ablate, frontier, grid, pools, reproduce, surface, whatif
from ._common import CLI_STRATEGIES as CLI_STRATEGIES

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
ESTIMATE_CHOICES = ("perfect", "low", "medium", "high", "columns")

EXAMPLES = """examples:
  cascjax frontier                                  # the embedded MMLU-Pro example, low noise
  cascjax frontier data.csv --estimates perfect --out results/
  cascjax frontier routerbench_0shot.pkl --allow-pickle --models gpt-4-1106-preview,mistralai/mistral-7b-chat
  cascjax frontier --lambda-values 0,100,1000,10000 --seed 3 --budgets 0.0005,0.001
  cascjax frontier results.csv --format long        # query_id,model,quality,cost rows
  cascjax frontier gsm8k_responses.csv --prices prices.csv    # RouteLLM CSV: costs from tokens x prices
  cascjax frontier data/classification/mmlu --split test      # the paper's JSON layout
  cascjax frontier results/bench --split test                 # LLMRouterBench: its datasets are the groups
  cascjax frontier gsm8k_router_dataset.pkl --allow-pickle --models a,b,c --prices prices.csv   # RouterEval
  cascjax frontier --strategy routing --json --quiet | jq .summary
"""

REPRODUCE_EXAMPLES = """examples:
  cascjax reproduce routerbench_0shot.pkl --allow-pickle                      # the paper's table: pools 3,5,all x low,medium,high
  cascjax reproduce routerbench_0shot.pkl --allow-pickle --pools 3 --noise low --seeds 5
  cascjax reproduce routerbench_0shot.pkl --allow-pickle --pools 9+4+5,gpt-4-1106-preview+claude-v2 --per-step search,gradient
  cascjax reproduce                                            # the embedded example, all its models
  cascjax reproduce --estimator learned                        # the example with learned estimators
  cascjax reproduce data.csv --estimator learned --features answers.csv --post-hoc perfect
"""

POOLS_EXAMPLES = """examples:
  cascjax pools                                      # the example's 6 models: 63 subsets, 1,956 orders
  cascjax pools --strategy cascade,threshold-cascade --budgets 1e-4,2e-4 --max-size 4
  cascjax pools data.csv --models a,b,c,d --estimates perfect --out pools/
(--samples defaults to 16 here: the cascade's 1,956 orders dominate the run time.)
"""

SURFACE_EXAMPLES = """examples:
  cascjax surface data.csv                           # <model>|latency columns beside the costs
  cascjax surface data.csv --weights 0,0.001,0.01,inf --strategy routing,cascade --estimates perfect
  cascjax surface data.csv --budgets 0.0005:2.0,0.001:1.5 --out surface/   # best quality within both budgets
"""

ABLATE_EXAMPLES = """examples:
  cascjax ablate routerbench_0shot.pkl --allow-pickle                         # noise grid on the paper's 5-model pool + Table 7
  cascjax ablate routerbench_0shot.pkl --allow-pickle --what noise --step 0.6 --seeds 3
  cascjax ablate --what variants                               # Table 7 on the embedded example
"""


GRID_EXAMPLES = """examples:
  cascjax grid spec.toml --out sweep/                 # run (again: only the cells not in sweep/ yet)
  cascjax grid spec.toml --dry-run                    # the cells, their groups, a time estimate
  cascjax grid spec.toml --out sweep-$I --shard $I/4  # one of 4 shards (e.g. a SLURM array task)
  cascjax grid merge sweep-0 sweep-1 sweep-2 sweep-3 --out sweep   # join shards; lists missing cells

spec.toml (every list is an axis; the grid is their product):
  [data]
  path = "example"                  # or a data file; models = [["a", "b"], "all"] for pools
  [estimates]
  kind = ["perfect", "low", "high"] # or "columns", "learned"
  seed = [0, 1, 2]
  [strategies]
  routing = {}
  cascade_routing = { max_depth = [2, 3], samples = [16, 64] }
  [fit]
  fit_fraction = 0.05
  split_seed = [42, 43]
  budgets = 10                      # per hull segment, or a list of budgets
  lambda = ["constant", "per-step"]
"""


WHATIF_EXAMPLES = """examples:
  cascjax whatif --model gemini-1.5-pro-002                     # its price x 0.25 .. x 4, every strategy
  cascjax whatif --model gemini-1.5-pro-002 --scale 0.5,1,2 --budget 0.0002 --estimates perfect
  cascjax whatif data.csv --model gpt-4 --scale 0.1:1:10 --strategy routing,cascade-routing --out whatif/
"""


MAIN_EPILOG = """examples:
  cascjax frontier                                  # frontiers on the embedded MMLU-Pro example
  cascjax frontier my_results.csv --budgets 0.001,0.002 --out my-frontier/
  cascjax reproduce routerbench_0shot.pkl --allow-pickle           # the paper's RouterBench tables
  cascjax ablate routerbench_0shot.pkl --allow-pickle --what noise # the paper's noise ablation heatmaps
  cascjax grid spec.toml --out sweep/               # a hyperparameter sweep: cached, resumable, one table
  cascjax whatif --model gemini-1.5-pro-002         # AUC of every strategy against one model's price
  cascjax surface data.csv                          # a second cost: <model>|latency columns
  cascjax pools --strategy cascade                  # every order of the models: the best per budget
  cascjax frontier --help                           # every option of a command

data: wide CSV/Parquet/pickle (RouterBench's pickles as they are), long (query_id,model,quality,cost), the
paper's JSON folders (qualities.json, costs.json), RouteLLM CSVs with --prices prices.csv, LLMRouterBench's
results/bench folder, RouterEval's <benchmark>_router_dataset.pkl with --allow-pickle --prices prices.csv.
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
    _sweep_options(f)
    f.add_argument("--force-order", action="store_true",
                   help="cascade-routing: run models in ascending index order (mean cost when sorted)")
    f.add_argument("--covariance", action="store_true",
                   help="cascade, cascade-routing: correlated uncertainty, a covariance per run-pattern fitted "
                        "on all queries as the paper's fit_covariances, instead of independent σ (≤ 16 models)")
    grid = f.add_mutually_exclusive_group()
    grid.add_argument("--lambdas", type=int, default=256,
                      help="size of the data-driven λ grid, and at most that many thresholds θ for the threshold "
                           "cascade (default: 256)")
    grid.add_argument("--lambda-values", help="explicit comma-separated λ values, e.g. 0,10,100 (the threshold "
                                              "cascade keeps its θ grid)")
    f.add_argument("--tie-band", default="score", choices=("score", "lambda"),
                   help="where the grid's tie tolerance applies: score (default, every strategy) or lambda (routing "
                        "and cascade grids decide as path_at on their exact paths; the other strategies keep score)")
    f.add_argument("--budgets", help="comma-separated budgets (mean cost per query): the best γ-mixture of each "
                                     "strategy there, in budgets.csv and marked in frontier.png")
    f.add_argument("--confidence", type=float, default=None,
                   help="with --budgets: the mixtures' mean cost on new queries stays ≤ B with this probability "
                        "(e.g. 0.95; from the grid curve's per-query costs), not only in expectation")
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
    r.add_argument("--estimates", default="noise", choices=("noise", "columns"),
                   help="noise: the paper's noise model at the --noise levels (default); columns: DATA's own "
                        "<model>|quality_ante ... columns, as frontier --estimates columns")
    r.add_argument("--seeds", type=int, default=1, help="noise seeds 0..K-1, AUCs averaged (default: 1)")
    r.add_argument("--strategy", default="routing,threshold-cascade,cascade,cascade-routing",
                   help="comma-separated strategies (default: all; the linear interpolation row is always there)")
    r.add_argument("--bootstrap", type=int, default=1000,
                   help="paired bootstrap resamples for the intervals (0: none; default: 1000)")
    r.add_argument("--out", default="cascjax-reproduce", help="output directory (default: ./cascjax-reproduce)")
    r.add_argument("--confidence", type=float, default=None,
                   help="budgets that hold on the test split with this probability (e.g. 0.95; the fitted "
                        "mixture's upper confidence bound on the test mean cost ≤ B); default: in expectation on "
                        "the fit split, as the paper")
    r.add_argument("--choose", default="all", choices=("all", "validation"),
                   help="how λ is chosen per budget: all (default, the paper's: constant and per-step candidates "
                        "compete on the fit split) or validation (constant or per-step λ, whichever wins on a "
                        "held-out half of the fit split: per-step λ overfits small fit splits)")
    r.add_argument("--estimator", default="noise", choices=("noise", "learned"),
                   help="noise: the paper's RouterBench protocol on its noise model (default); learned: its "
                        "real-benchmark protocol, estimators learned from what the models answered (train / "
                        "validation / test split; writes estimators.csv too)")
    r.add_argument("--features", default=None,
                   help="learned: the file with <model>|answer (and numeric <model>|<name>) columns and query "
                        "features, joined on sample_id (default: DATA itself; the example's answers file for "
                        "the example)")
    r.add_argument("--query-features", default=None,
                   help="learned: comma-separated query feature columns (default: every column without '|')")
    r.add_argument("--post-hoc", default="learned", choices=("learned", "perfect"),
                   help="learned: post-hoc estimates learned, or perfect (a run model's quality becomes known, "
                        "as the paper's SWE-bench setting)")
    r.add_argument("--compare", default="separable",
                   help="learned: other estimates run beside the learned ones: separable (the same "
                        "regressions, separable), baseline (models not run at their training mean), none")
    r.add_argument("--protocol", default="classification", choices=("classification", "swe-bench"),
                   help="learned: swe-bench = the paper's SWE-bench protocol: half the rows for test, the rest "
                        "split evenly between the estimators and λ, budgets from the cheapest model's mean cost "
                        "to the sum of all models' (sets --test-fraction 0.5 --validation-fraction 0.25; combine "
                        "with --post-hoc perfect as the paper)")
    r.add_argument("--test-fraction", type=float, default=0.5, help="learned: test share (default: 0.5)")
    r.add_argument("--validation-fraction", type=float, default=0.1,
                   help="learned: share on which λ is fitted per budget (default: 0.1; the rest trains the "
                        "estimators)")

    g = sub.add_parser("grid", help="a hyperparameter sweep from a TOML spec: cached per cell, resumable, one "
                                    "results table",
                       description="Run every cell of SPEC (a TOML grid) not yet in --out, group by compiled program; "
                                   "write results.csv (results.parquet with pyarrow) and grid.png. 'cascjax grid "
                                   "merge DIR... --out OUT' joins the folders of shards.",
                       epilog=GRID_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("spec", help="the grid spec (TOML), or 'merge' followed by the shards' folders")
    g.add_argument("folders", nargs="*", help=argparse.SUPPRESS)
    g.add_argument("--out", default=None, help="output folder (required to run or merge)")
    g.add_argument("--dry-run", action="store_true", help="print the cells, their groups and a time estimate; run "
                                                          "nothing")
    g.add_argument("--shard", default=None, help="i/n: run groups i, i+n, ... only (0 <= i < n)")
    _output_options(g)

    w = sub.add_parser("whatif", help="what if one model's price changed: AUC and quality at a budget of every "
                                      "strategy against that price",
                       description="Scale one model's price (its costs and cost estimates) by each factor of "
                                   "--scale; sweep every strategy over all price scenarios at once (one vmapped "
                                   "call per strategy); write whatif.csv and whatif.png and print the AUC table.",
                       epilog=WHATIF_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_options(w)
    w.add_argument("--model", required=True, help="the model whose price changes")
    w.add_argument("--scale", default="0.25:4:9",
                   help="price multipliers: LO:HI:N (N log-spaced, default 0.25:4:9) or comma-separated numbers")
    _sweep_options(w)
    w.add_argument("--lambdas", type=int, default=256, help="size of the λ grid, shared by every price (default: "
                                                             "256)")
    w.add_argument("--budget", type=float, default=None, help="also the best quality at this mean cost per query")
    w.add_argument("--out", default="cascjax-whatif", help="output directory (default: ./cascjax-whatif)")
    _output_options(w)

    v = sub.add_parser("surface", help="a second cost (latency): quality - λ·cost - μ·latency over a grid, the "
                                       "three-way Pareto points, budgets on both at once",
                       description="Read <model>|latency columns (and <model>|latency_ante/_post estimates, else the "
                                   "truth) from DATA; sweep each strategy over weights x λ (μ = weight·λ; every "
                                   "weight in one vmapped call); write surface.csv, surface.png (contours of the best "
                                   "quality within a cost and a latency budget) and, with --budgets, budgets.csv.",
                       epilog=SURFACE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_options(v)
    v.add_argument("--weights", default="8", help="cost units per unit of latency: N (data-driven: 0, N-2 log-spaced "
                                                  "around mean cost / mean latency, inf), LO:HI:N (0, N log-spaced, "
                                                  "inf) or comma-separated (inf: latency alone); default 8")
    _sweep_options(v)
    v.set_defaults(strategy="routing,cascade,cascade-routing")
    v.add_argument("--lambdas", type=int, default=64, help="size of the λ grid, shared by every weight (default: 64)")
    v.add_argument("--budgets", default=None, help="COST:LATENCY pairs, comma-separated: the best quality (a mixture "
                                                   "of at most two points) within both")
    v.add_argument("--out", default="cascjax-surface", help="output directory (default: ./cascjax-surface)")
    _output_options(v)

    o = sub.add_parser("pools", help="every model subset (routing, cascade routing) or order (the cascades) of a "
                                     "small pool: the best per budget, the frontier over all, the cheapest-first "
                                     "order beside them",
                       description="Sweep each strategy on every pool of --min-size..--max-size models (subsets for "
                                   "routing and cascade routing, ordered subsets for the cascade and the threshold "
                                   "cascade, FrugalGPT's search; M = 6: 63 and 1,956), the pools of one size batched "
                                   "per call; write pools.csv (AUC and quality at --budgets per pool), frontier.csv "
                                   "(the upper hull over every pool) and pools.png. On the data given: search a fit "
                                   "split, evaluate the chosen pool on a test split for an unbiased comparison.",
                       epilog=POOLS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_options(o)
    _sweep_options(o)
    o.set_defaults(samples=16)
    o.add_argument("--lambdas", type=int, default=32, help="size of the λ (θ) grid, shared by every pool "
                                                            "(default: 32)")
    o.add_argument("--min-size", type=int, default=1, help="smallest pool searched (default: 1)")
    o.add_argument("--max-size", type=int, default=None, help="largest pool searched (default: all models, at most "
                                                               "8)")
    o.add_argument("--budgets", default=None, help="comma-separated mean costs per query: the best pool at each")
    o.add_argument("--out", default="cascjax-pools", help="output directory (default: ./cascjax-pools)")
    _output_options(o)

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
                                           "layout, a RouteLLM CSV, LLMRouterBench's results folder or a RouterEval "
                                           "pickle")
    p.add_argument("--format", default="auto", choices=FORMATS,
                   help="how DATA is laid out (default: auto, detected from the file): wide = <model>, "
                        "<model>|total_cost columns; long = query_id,model,quality,cost rows; paper = a folder "
                        "with qualities.json and costs.json; routellm = prompt + True/False column per model; "
                        "llmrouterbench = results/bench/<dataset>/<split>/<model>/*.json; routereval = "
                        "<benchmark>_router_dataset.pkl")
    p.add_argument("--prices", help="price table CSV (model,input,output: USD per million tokens): costs = token "
                                    "counts x prices, replacing any costs in DATA (needed for RouteLLM and "
                                    "RouterEval files)")
    p.add_argument("--split", help="one split (default: all): the paper's JSON layout: train or test; "
                                   "LLMRouterBench: a split folder's name; RouterEval: train, val or test")
    p.add_argument("--models", help="comma-separated model names to use (default: all)")
    p.add_argument("--dropna", action="store_true", help="drop queries with missing values instead of failing")
    p.add_argument("--allow-pickle", action="store_true",
                   help="read .pkl/.pickle files (RouterBench's); off by default: loading a pickle runs any code it "
                        "holds, so only allow files you trust")


def _sweep_options(p):
    """The strategies and their estimates, as frontier and whatif take them (read by
    :func:`cascjax.cli._common._sweep_args` and :func:`cascjax.cli._common._estimates`)."""
    p.add_argument("--strategy", default="routing,cascade,cascade-routing,threshold-cascade",
                   help="comma-separated strategies (available: routing, cascade, cascade-routing, "
                        "threshold-cascade; default: all)")
    p.add_argument("--max-depth", type=int, default=None,
                   help="cascades: at most this many models per query (default: all)")
    p.add_argument("--samples", type=int, default=64,
                   help="cascade, cascade-routing: shared normal points K for expected maxima (default: 64)")
    p.add_argument("--estimates", default="low", choices=ESTIMATE_CHOICES,
                   help="perfect: the truth; low/medium/high: the paper's noise model; columns: read "
                        "<model>|quality_ante... from DATA (default: low)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draw (default: 0)")


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
    from .._errors import CascjaxError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            result = {"frontier": frontier.run, "reproduce": reproduce.run, "ablate": ablate.run,
                      "grid": grid.run, "whatif": whatif.run, "surface": surface.run,
                      "pools": pools.run}[args.command](args)
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
