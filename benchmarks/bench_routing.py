"""Routing benchmark: the exact λ-path at scale, and side by side against a NumPy loop over λ.

    python benchmarks/bench_routing.py            # the issue's sizes: 1,000,000 x 11 and 30,000 x 11 / 1,000 λ
    python benchmarks/bench_routing.py --quick    # small sizes, a smoke run
    python benchmarks/bench_routing.py --dtypes float32 --skip-side-by-side --json out.json   # as run.py does

Prints sizes, device, jax version, compile and run times (median of repeats after the compiling call), and
checks that the exact path reproduces the NumPy loop's curve at every λ of its grid.

For each dtype it also measures, in the same run: the loop oracle's exact curve on a subsample
(``tests/oracle.py``: every pairwise breakpoint of the subsample's queries, ``breakpoints``, then
``reference_routing`` at 0, between consecutive breakpoints and beyond the last — so the loop's work grows
with the subsample's size squared, and its queries per second are those of that subsample), and the
plain-NumPy vectorised exact path of ``numpy_baselines.py`` (all queries' hull walks at once, one sort) on the
same sizes, each with its largest deviation from ``cascjax.routing_path``. Throughput here is queries per
second: a path covers every λ ≥ 0.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import _harness as H
import cascjax
import numpy_baselines as nb


def timed(fn, repeats):
    """(first call seconds, median of ``repeats`` further calls); results are blocked on."""
    return H.timed(fn, repeats)


def numpy_routing_loop(quality, cost, mu, c_hat, lambdas):
    """The way peers evaluate a router: a Python loop over λ, NumPy over queries (argmax; ties to the cheaper)."""
    n = quality.shape[0]
    rows = np.arange(n)
    out_c, out_q = np.empty(len(lambdas)), np.empty(len(lambdas))
    for i, lam in enumerate(lambdas):
        choice = np.argmax(mu - lam * c_hat, axis=1)
        out_c[i] = cost[rows, choice].mean()
        out_q[i] = quality[rows, choice].mean()
    return out_c, out_q


def path_deviation(path, lam_np, c_np, q_np, rtol):
    """Largest deviation between cascjax's path and another exact path: vertex by vertex when they have the
    same vertices, else at the midpoints between the union of their breakpoints."""
    lam_j, c_j, q_j = (np.asarray(a, np.float64) for a in (path.lam, path.cost, path.quality))
    if lam_j.size == lam_np.size:
        return H.deviation(c_j, q_j, c_np, q_np)
    points = np.union1d(lam_j, lam_np)
    mids = np.concatenate([(points[:-1] + points[1:]) / 2, [points[-1] * 2 + 1]])
    a = nb.path_at(lam_j, (c_j, q_j), mids, rtol)
    b = nb.path_at(lam_np, (c_np, q_np), mids, rtol)
    return H.deviation(a[0], a[1], b[0], b[1])


def measure_path(args, dtype_name: str) -> dict:
    """One dtype: the path at ``--big`` queries, the loop oracle's exact curve on a subsample, NumPy."""
    jax.config.update("jax_enable_x64", dtype_name == "float64")
    dtype = np.dtype(dtype_name)
    ds, est = H.data(args.big, args.models)
    first, run = timed(lambda: cascjax.routing_path(ds, est), args.repeats)
    mem = H.peak_memory()
    path = cascjax.routing_path(ds, est)
    print(f"\nrouting_path  {args.big:,} queries x {args.models} models ('low' noise), {ds.quality.dtype}: "
          f"{path.lam.shape[0]:,} vertices | first call (compile + run) {first:.2f} s | "
          f"run {run:.3f} s (median of {args.repeats})")
    r = H.row("routing_path", "exact", N=args.big, M=args.models, dtype=dtype.name, compile_s=first, run_s=run,
              decisions=float(args.big), unit="queries", vertices=int(path.lam.shape[0]),
              note=f"{path.lam.shape[0]:,} vertices", **mem)
    rtol = nb.tie_rtol(dtype)

    # (a) the loop oracle's exact curve on a subsample: its breakpoints, then the rule at each of them
    oracle = H.oracle()
    rows = H.spread_rows(args.big, args.oracle_queries)
    sub, sub_est = H.take(ds, est, rows)
    arrays = [np.asarray(a, np.float64) for a in (sub.quality, sub.cost, sub_est.quality_ante, sub_est.cost_ante)]
    t0 = time.perf_counter()
    breaks = oracle.breakpoints(arrays[2], arrays[3])
    # 0, the midpoints between consecutive breakpoints, and one beyond the last: each λ as far from every
    # breakpoint as it can be, so the loop's value there is the path's vertex (the oracle's own float64 tie
    # band: the path's arithmetic is exact, no tie tolerance)
    points = np.concatenate([[0.0], (breaks[:-1] + breaks[1:]) / 2, breaks[-1:] * 2 + 1]) if breaks.size else \
        np.zeros(1)
    c_loop, q_loop, _ = oracle.reference_routing(*arrays, points, "min")
    t_loop = time.perf_counter() - t0
    at = cascjax.path_at(cascjax.routing_path(sub, sub_est), points, "min")
    r.update(numpy_loop_ratio=H.ratio(r["decisions_per_s"], rows.size, t_loop),
             loop_sizes=f"{rows.size} queries, the rule between all {breaks.size:,} pairwise breakpoints",
             loop_deviation=H.deviation(at.cost, at.quality, c_loop, q_loop))

    # (b) NumPy, vectorised: the same hull walk for all queries at once, one sort
    q, c, mu, ch = (np.asarray(a) for a in (ds.quality, ds.cost, est.quality_ante, est.cost_ante))
    t_np, (lam_np, c_np, q_np) = H.timed_numpy(lambda: nb.routing_path(q, c, mu, ch), max(1, args.repeats))
    r.update(numpy_vec_ratio=H.ratio(r["decisions_per_s"], args.big, t_np), numpy_s=t_np, numpy_sizes="same sizes",
             numpy_deviation=path_deviation(path, lam_np, c_np, q_np, rtol),
             note=r["note"] + f" (NumPy {lam_np.size:,})")
    print(H.describe(r))
    return r


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=1_000_000, help="queries for the exact-path timing")
    parser.add_argument("--small", type=int, default=30_000, help="queries for the side-by-side comparison")
    parser.add_argument("--models", type=int, default=11)
    parser.add_argument("--lambdas", type=int, default=1_000)
    parser.add_argument("--repeats", "--repeat", type=int, default=3)
    parser.add_argument("--dtypes", default="float32,float64", help="dtypes of the exact-path timing")
    parser.add_argument("--oracle-queries", type=int, default=30, help="subsample for the loop oracle's exact curve")
    parser.add_argument("--skip-side-by-side", action="store_true", help="only the exact-path rows")
    parser.add_argument("--json", metavar="PATH", help="write the exact-path rows to this JSON file (run.py)")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.big, args.small, args.lambdas, args.repeats, args.oracle_queries = 20_000, 3_000, 200, 1, 10
    dtypes = args.dtypes.split(",")
    print(H.environment(dtypes[0]))

    # -- 1. the exact path at scale, in cascjax's default float32 and in float64 ----------------------------
    rows = [measure_path(args, d) for d in dtypes]

    # -- 2. side by side: exact path vs NumPy loop over a λ grid (float64) -------------------------------------
    if not args.skip_side_by_side:
        jax.config.update("jax_enable_x64", True)
        ds = cascjax.synthetic(seed=1, n_queries=args.small, n_models=args.models)
        est = cascjax.noisy_estimates(ds, jax.random.key(1), "low")
        lam = cascjax.lambda_grid(est, args.lambdas)
        arrays = [np.asarray(a) for a in (ds.quality, ds.cost, est.quality_ante, est.cost_ante)]
        _, t_numpy = timed(lambda: numpy_routing_loop(*arrays, lam), args.repeats)
        first_path, t_path = timed(lambda: cascjax.routing_path(ds, est), args.repeats)
        first_sweep, t_sweep = timed(lambda: cascjax.sweep(ds, est, lam).cost, args.repeats)

        ref_c, ref_q = numpy_routing_loop(*arrays, lam)
        path = cascjax.routing_path(ds, est)
        at = cascjax.path_at(path, lam, "min")
        err = max(np.max(np.abs(np.asarray(at.cost) - ref_c) / np.max(ref_c)),
                  np.max(np.abs(np.asarray(at.quality) - ref_q)))
        print(f"\nside by side  {args.small:,} queries x {args.models} models, {args.lambdas:,} λ values, float64:")
        print(f"  NumPy loop over λ              {t_numpy:8.3f} s")
        print(f"  cascjax.routing_path (exact)   {t_path:8.3f} s  (first call {first_path:.2f} s)  "
              f"speed-up {t_numpy / t_path:6.1f}x, {path.lam.shape[0]:,} vertices = every λ")
        print(f"  cascjax.sweep on the same grid {t_sweep:8.3f} s  (first call {first_sweep:.2f} s)  "
              f"speed-up {t_numpy / t_sweep:6.1f}x")
        print(f"  exactness: path at the grid vs NumPy loop, max relative deviation {err:.2e}")
        if err > 1e-9:
            raise SystemExit("the exact path does not reproduce the NumPy loop")
    H.emit(rows, args.json, dtypes[0], show=False)  # the rows were printed above


if __name__ == "__main__":
    main()
