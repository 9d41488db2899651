"""A hyperparameter grid on the embedded example: ``cascjax.grid`` against a plain Python loop over
``cascjax.fit``/``cascjax.evaluate`` calls (what a user would otherwise write), cells per second.

    python benchmarks/bench_grid.py            # >= 1,000 cells; the loop on a subset of them
    python benchmarks/bench_grid.py --quick    # a smoke run
    python benchmarks/bench_grid.py --seeds 12 --splits 10   # 1,080 cells, 10 sharing each set of estimates

The grid: noise levels low / medium / high x noise seeds x split seeds x strategies (routing, the threshold
cascade and the cascade at max_depth 2), the paper's fit split (5 %), 5 budgets per hull segment, constant λ
from a 64-point grid. The loop runs the same cells (same estimates, splits, budgets, grid size) one at a time:
noisy estimates, ``fit`` on the fit split (its default bisection), ``evaluate`` on the test split, the AUC. Both
run warm, so compilation is not counted: the grid after a one-seed grid of the same shapes, the loop as the
second pass over its cells. Prints sizes, device and jax
version, and the AUCs' largest difference between the two (the grid's cells choose among one shared λ grid per
group without bisection, so the AUCs agree closely, not to the bit).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import jax
import numpy as np

import cascjax
from cascjax._protocol import curve_auc, hull_budgets


def spec(seeds: int, splits: int) -> dict:
    return {"estimates": {"kind": ["low", "medium", "high"], "seed": list(range(seeds))},
            "strategies": {"routing": {}, "threshold_cascade": {"max_depth": 2},
                           "cascade": {"max_depth": 2, "samples": 16}},
            "fit": {"fit_fraction": 0.05, "split_seed": [42 + i for i in range(splits)], "budgets": 5, "grid": 64}}


def loop_cell(ds, cell) -> float:
    """One cell as a user would write it: estimates, fit, evaluate, AUC."""
    est = cascjax.noisy_estimates(ds, jax.random.key(cell["seed"]), cell["estimates"])
    fit_rows, test_rows = ds.split_indices(cell["fit_fraction"], cell["split_seed"])
    test = ds.take(test_rows)
    q, c = np.asarray(test.quality, np.float64), np.asarray(test.cost, np.float64)
    budgets = hull_budgets(c.mean(0), q.mean(0), cell["budgets"])
    options = {} if cell["strategy"] == "routing" else dict(max_depth=cell["max_depth"])
    if cell["strategy"] == "cascade":
        options["samples"] = cell["samples"]
    f = cascjax.fit(ds.take(fit_rows), est.take(fit_rows), budgets, cell["strategy"], per_step=(), grid=cell["grid"],
                    **options)
    ev = cascjax.evaluate(f, test, est.take(test_rows))
    return curve_auc(ev.cost, ev.quality, test)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=28, help="noise seeds per noise level")
    parser.add_argument("--splits", type=int, default=4, help="split seeds (cells sharing one set of estimates)")
    args = parser.parse_args()
    seeds, splits, subset = (2, 2, 4) if args.quick else (args.seeds, args.splits, 8)
    ds = cascjax.load_example()
    full = spec(seeds, splits)
    cells = cascjax.grid_plan(full)
    print(f"jax {jax.__version__} | device {jax.devices()[0].platform} x {len(jax.devices())} | "
          f"{jax.numpy.zeros(()).dtype} | example {ds.n_queries} x {ds.n_models} | {len(cells)} cells in "
          f"{cells['group'].nunique()} groups")

    # Warm-up: one noise seed of the grid (the same programs: query bucket, groups of split rows); the loop's
    # cells run twice, the second pass timed (compilation is not what is compared).
    warm = spec(1, splits)
    cascjax.grid(warm, tempfile.mkdtemp(), figure=False)
    expanded = dict(zip(cells["key"], cascjax._grid.expand(full)))

    t = time.perf_counter()
    table = cascjax.grid(full, tempfile.mkdtemp(), figure=False)
    grid_s = time.perf_counter() - t
    per_cell = table.drop_duplicates("key").set_index("key")
    print(f"\ncascjax.grid: {len(cells)} cells in {grid_s:.1f} s = {len(cells) / grid_s:.1f} cells/s "
          f"(of which compiling {per_cell.compile_s.sum():.1f} s)")

    # The loop on a subset: the first `subset` cells of each strategy.
    chosen = []
    for strategy in ("routing", "threshold_cascade", "cascade"):
        chosen += [k for k, c in expanded.items() if c["strategy"] == strategy][:subset]
    for k in chosen:  # a first pass compiles every program the loop's cells need (λ counts vary by cell)
        loop_cell(ds, expanded[k])
    aucs, loop_by = {}, {}
    for k in chosen:
        t = time.perf_counter()
        aucs[k] = loop_cell(ds, expanded[k])
        strategy = expanded[k]["strategy"]
        loop_by[strategy] = loop_by.get(strategy, 0.0) + time.perf_counter() - t
    loop_s = sum(loop_by.values())
    print(f"plain loop over fit/evaluate: {len(chosen)} cells in {loop_s:.1f} s = {len(chosen) / loop_s:.2f} cells/s")
    print(f"ratio {len(cells) / grid_s / (len(chosen) / loop_s):.1f}x (cells per second)")
    for strategy, seconds in loop_by.items():  # the grid's sweeps of one strategy's group (run_s: no compiling)
        cells_s = per_cell[per_cell.strategy == strategy]
        print(f"  {strategy}: grid sweeps {cells_s.run_s.sum():.2f} s for {len(cells_s)} cells = "
              f"{1e3 * cells_s.run_s.sum() / len(cells_s):.1f} ms/cell; loop {1e3 * seconds / subset:.1f} ms/cell")
    diff = np.array([per_cell.loc[k, "auc"] - aucs[k] for k in chosen])
    print(f"AUC, grid - loop, on the loop's cells: mean {diff.mean():+.3f}, largest |difference| "
          f"{np.abs(diff).max():.3f} points")


if __name__ == "__main__":
    main()
