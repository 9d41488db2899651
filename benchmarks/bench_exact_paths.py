"""Exact λ-paths of the cascade and of cascade routing on the embedded example, against grid sweeps.

    python benchmarks/bench_exact_paths.py              # the full MMLU-Pro example (12,020 x 6), 'low' noise
    python benchmarks/bench_exact_paths.py --float64
    python benchmarks/bench_exact_paths.py --quick      # 2,000 queries of the example, depth 3 only

Prints sizes, device, jax version and dtype; per strategy and depth, side by side in one run: the time of the
exact path (first call, then a second run) and of a grid sweep of ``--lambdas`` λ, the number of vertices,
both AUCs, and at how many grid λ the path (evaluated with ``path_at``, MIN ties) and the grid sweep realise
a different mean quality (by at least one query's 0/1 score) — zero in float64; in float32 a grid λ inside the
tie band of a crossing may differ by a query — and the largest relative cost difference (in float32 the path's
running sums over ~10^5 events round more than the sweep's direct sums).

With ``--json`` the rows for ``run.py`` (throughput in queries per second: a path covers every λ ≥ 0; no loop
or NumPy version of these paths exists, the grid sweep is the comparison).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

import _harness as H


def _timed(fn):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, first, time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambdas", type=int, default=256)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--queries", type=int, default=None, help="the first this many queries of the example")
    parser.add_argument("--runs", default="cascade,3,6",
                        help="comma-separated: 'cascade' (all models) and cascade-routing depths (6 = all)")
    parser.add_argument("--json", metavar="PATH", help="also write the result rows to this JSON file (run.py)")
    parser.add_argument("--quick", action="store_true", help="2,000 queries, the cascade and depth 3")
    args = parser.parse_args(argv)
    if args.quick:
        args.queries, args.runs = 2_000, "cascade,3"
    dtype = H.set_precision(args.float64)
    import cascjax

    ds = cascjax.load_example()
    if args.queries:
        ds = ds.take(np.arange(min(args.queries, ds.n_queries)))
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    print(f"jax {jax.__version__} | device {jax.devices()[0].device_kind} ({jax.default_backend()}) | "
          f"{os.cpu_count()} CPU cores | {platform.processor() or platform.machine()} | {ds.quality.dtype} | "
          f"{ds.n_queries:,} queries x {ds.n_models} models, 'low' noise, K 64, {args.lambdas} λ")
    lam = cascjax.lambda_grid(est, args.lambdas)
    runs = [("cascade", cascjax.cascade_path, None) if r == "cascade" else
            ("cascade_routing", cascjax.cascade_routing_path, None if int(r) >= ds.n_models else int(r))
            for r in args.runs.split(",")]
    rows = []
    for strategy, path_fn, depth in runs:
        path, p_first, p_run = _timed(lambda: path_fn(ds, est, max_depth=depth))
        mem = H.peak_memory()
        grid, g_first, g_run = _timed(lambda: cascjax.sweep(ds, est, lam, strategy, max_depth=depth))
        at = cascjax.path_at(path, lam)
        a_q, a_c = np.asarray(at.quality, np.float64), np.asarray(at.cost, np.float64)
        g_q, g_c = np.asarray(grid.quality, np.float64), np.asarray(grid.cost, np.float64)
        # some query realises a different answer: the mean 0/1 quality is off by at least one query's share
        differ = int(np.sum(np.abs(a_q - g_q) > 0.5 / ds.n_queries))
        cost_dev = float(np.max(np.abs(a_c - g_c) / np.abs(g_c)))
        print(f"{strategy:16s} max_depth {depth or ds.n_models}: exact path first {p_first:.2f} s, run {p_run:.2f} s, "
              f"{path.lam.shape[0]:,} vertices, AUC {cascjax.auc(path, ds):.3f} | grid sweep first {g_first:.2f} s, "
              f"run {g_run:.2f} s, AUC {cascjax.auc(grid, ds):.3f} | path run / grid run {p_run / g_run:.2f}x | "
              f"grid λ where they differ: {differ} of "
              f"{lam.shape[0]} (max |Δquality| {np.max(np.abs(a_q - g_q)):.1e}, max relative |Δcost| {cost_dev:.1e})")
        rows.append(H.row(f"{strategy}_path", f"example, depth {depth or ds.n_models}", N=ds.n_queries,
                          M=ds.n_models, D=depth or ds.n_models, K=64, dtype=dtype.name, compile_s=p_first,
                          run_s=p_run, decisions=float(ds.n_queries), unit="queries",
                          vertices=int(path.lam.shape[0]), **mem,
                          max_deviation=H.deviation(a_c, a_q, g_c, g_q),
                          note=f"{path.lam.shape[0]:,} vertices; {lam.shape[0]}-λ grid sweep run {g_run:.2f} s "
                               f"(path run / grid run {p_run / g_run:.2f}x); grid λ where they differ: {differ}; "
                               "max deviation = path at the grid's λ vs the grid sweep"))
    if args.json:
        H.emit(rows, args.json, dtype, show=False)


if __name__ == "__main__":
    main()
