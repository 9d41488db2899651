"""Routing grid benchmark: ``cascjax.sweep(..., "routing")`` over a λ grid, against the loop oracle and NumPy.

    python benchmarks/bench_routing_grid.py            # 30,000 x 11, 1,000 λ on CPU (1,000,000 x 11 on an accelerator)
    python benchmarks/bench_routing_grid.py --quick    # small sizes, a smoke run

Prints the environment, compile and run times, decisions per second (one decision = one query at one λ), peak
resident memory, and, side by side in the same run: the loop oracle (``tests/oracle.py``
``reference_routing``: one query and λ at a time) on a subsample, and the plain-NumPy vectorised routing of
``numpy_baselines.py`` (argmax with the same tie band, in batches of λ) on the same sizes, each with its
largest deviation from the JAX curve.
"""

from __future__ import annotations

import time

import numpy as np

import _harness as H
import numpy_baselines as nb


def main(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--queries", type=int, default=None, help="default 30,000 (CPU) or 1,000,000 (accelerator)")
    p.add_argument("--models", type=int, default=11)
    p.add_argument("--lambdas", type=int, default=None, help="default 1,000 (CPU) or 1,024 (accelerator)")
    p.add_argument("--oracle-queries", type=int, default=200, help="subsample for the loop oracle")
    p.add_argument("--oracle-lambdas", type=int, default=10)
    p.add_argument("--numpy-queries", type=int, default=None, help="subsample for NumPy (default: all queries)")
    args = p.parse_args(argv)
    dtype = H.set_precision(args.float64)
    big = H.accelerator()
    n = args.queries or (1_000_000 if big else 30_000)
    n_lam = args.lambdas or (1_024 if big else 1_000)
    if args.quick:
        n, n_lam, args.oracle_queries, args.oracle_lambdas, args.repeat = 3_000, 100, 50, 4, 1
    import cascjax

    print(H.environment(dtype))
    ds, est = H.data(n, args.models)
    lam = cascjax.lambda_grid(est, n_lam)

    first, run = H.timed(lambda: cascjax.sweep(ds, est, lam, "routing"), args.repeat)
    mem = H.peak_memory()
    curve = cascjax.sweep(ds, est, lam, "routing")
    r = H.row("routing_grid", "default", N=n, M=args.models, L=n_lam, dtype=dtype.name, compile_s=first, run_s=run,
              decisions=float(n * n_lam), unit="decisions", **mem)

    # (a) the loop oracle on a subsample, and JAX on the same subsample
    oracle = H.oracle()
    rows = H.spread_rows(n, args.oracle_queries)
    sub_lam = H.spread_lambdas(lam, args.oracle_lambdas)
    sub, sub_est = H.take(ds, est, rows)
    t0 = time.perf_counter()
    c_loop, q_loop, _ = oracle.reference_routing(np.asarray(sub.quality), np.asarray(sub.cost),
                                                 np.asarray(sub_est.quality_ante), np.asarray(sub_est.cost_ante),
                                                 sub_lam, "min", rtol=nb.tie_rtol(dtype))
    t_loop = time.perf_counter() - t0
    check = cascjax.sweep(sub, sub_est, sub_lam, "routing")
    r.update(numpy_loop_ratio=H.ratio(r["decisions_per_s"], rows.size * sub_lam.size, t_loop),
             loop_sizes=f"{rows.size} queries x {sub_lam.size} λ",
             loop_deviation=H.deviation(check.cost, check.quality, c_loop, q_loop))

    # (b) plain NumPy, vectorised
    nrows = H.spread_rows(n, args.numpy_queries or n)
    q, c = np.asarray(ds.quality)[nrows], np.asarray(ds.cost)[nrows]
    mu, ch = np.asarray(est.quality_ante)[nrows], np.asarray(est.cost_ante)[nrows]
    t_np, (c_np, q_np) = H.timed_numpy(lambda: nb.routing_grid(q, c, mu, ch, lam), max(1, args.repeat))
    ref = curve if nrows.size == n else cascjax.sweep(*H.take(ds, est, nrows), lam, "routing")
    r.update(numpy_vec_ratio=H.ratio(r["decisions_per_s"], nrows.size * n_lam, t_np), numpy_s=t_np,
             numpy_sizes="same sizes" if nrows.size == n else f"{nrows.size:,} queries, scaled by decisions",
             numpy_deviation=H.deviation(c_np, q_np, ref.cost, ref.quality))
    H.arbitrate(r, ref, (c_np, q_np), nrows.size, dtype,
                lambda idx: nb.routing_grid(*(a.astype(np.float64) for a in (q, c, mu, ch)), lam[idx],
                                                 rtol=nb.tie_rtol(dtype)))
    H.emit([r], args.json, dtype)


if __name__ == "__main__":
    main()
