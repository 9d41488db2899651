"""Threshold cascade benchmark: ``cascjax.sweep(..., "threshold_cascade")`` over ``cascjax.threshold_grid``.

    python benchmarks/bench_threshold.py            # 36,000 x 11, max_depth 5, 1,024 θ (CPU; 1,000,000 x 11 on GPU)
    python benchmarks/bench_threshold.py --quick    # small sizes, a smoke run

Prints the environment, compile and run times, decisions per second (one decision = one step actually taken
by one query at one θ: ``sum(curve.ran) * N``), peak resident memory, and side by side in the same run: the
loop oracle (``tests/oracle.py`` ``reference_sweep(..., "threshold_cascade")``) on a subsample and the
plain-NumPy vectorised threshold cascade of ``numpy_baselines.py`` on the same sizes, with their deviations.
"""

from __future__ import annotations

import time

import numpy as np

import _harness as H
import numpy_baselines as nb


def main(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--queries", type=int, default=None, help="default 36,000 (CPU) or 1,000,000 (accelerator)")
    p.add_argument("--models", type=int, default=11)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--lambdas", type=int, default=1_024, help="thresholds θ in the grid")
    p.add_argument("--oracle-queries", type=int, default=200)
    p.add_argument("--oracle-lambdas", type=int, default=10)
    p.add_argument("--numpy-queries", type=int, default=None)
    args = p.parse_args(argv)
    dtype = H.set_precision(args.float64)
    n = args.queries or (1_000_000 if H.accelerator() else 36_000)
    if args.quick:
        n, args.lambdas, args.oracle_queries, args.oracle_lambdas, args.repeat = 3_000, 100, 50, 4, 1
    import cascjax

    print(H.environment(dtype))
    ds, est = H.data(n, args.models)
    theta = cascjax.threshold_grid(est, args.lambdas, max_depth=args.depth)
    kw = dict(max_depth=args.depth)
    go = lambda: cascjax.sweep(ds, est, theta, "threshold_cascade", **kw)  # noqa: E731
    first, run = H.timed(go, args.repeat)
    mem = H.peak_memory()
    curve = go()
    decisions = float(np.sum(np.asarray(curve.ran, np.float64))) * n
    r = H.row("threshold_cascade", "default", N=n, M=args.models, L=int(theta.size), D=args.depth,
              dtype=dtype.name, compile_s=first, run_s=run, decisions=decisions, unit="decisions", **mem)

    oracle = H.oracle()
    rows = H.spread_rows(n, args.oracle_queries)
    sub_theta = H.spread_lambdas(theta, args.oracle_lambdas)
    sub, sub_est = H.take(ds, est, rows)
    t0 = time.perf_counter()
    c_loop, q_loop, ran_loop, _ = oracle.reference_sweep(np.asarray(sub.quality), np.asarray(sub.cost),
                                                         H.numpy_estimates(sub_est), sub_theta,
                                                         "threshold_cascade", max_depth=args.depth)
    t_loop = time.perf_counter() - t0
    check = cascjax.sweep(sub, sub_est, sub_theta, "threshold_cascade", **kw)
    r.update(numpy_loop_ratio=H.ratio(r["decisions_per_s"], float(np.sum(ran_loop)) * rows.size, t_loop),
             loop_sizes=f"{rows.size} queries x {sub_theta.size} θ",
             loop_deviation=H.deviation(check.cost, check.quality, c_loop, q_loop))

    nrows = H.spread_rows(n, args.numpy_queries or n)
    q, c = np.asarray(ds.quality)[nrows], np.asarray(ds.cost)[nrows]
    post = np.asarray(est.quality_post)[nrows]
    thetas = np.repeat(theta[:, None], args.depth, axis=1)
    t_np, (c_np, q_np, ran_np) = H.timed_numpy(lambda: nb.threshold_cascade(q, c, post, thetas), max(1, args.repeat))
    ref = curve if nrows.size == n else cascjax.sweep(*H.take(ds, est, nrows), theta, "threshold_cascade", **kw)
    r.update(numpy_vec_ratio=H.ratio(r["decisions_per_s"], float(np.sum(ran_np)) * nrows.size, t_np), numpy_s=t_np,
             numpy_sizes="same sizes" if nrows.size == n else f"{nrows.size:,} queries, scaled by decisions",
             numpy_deviation=max(H.deviation(c_np, q_np, ref.cost, ref.quality),
                                 float(np.max(np.abs(ran_np - np.asarray(ref.ran, np.float64))))))
    H.arbitrate(r, ref, (c_np, q_np, ran_np), nrows.size, dtype,  # no scores, no ties: never expected
                lambda idx: nb.threshold_cascade(q.astype(np.float64), c.astype(np.float64),
                                                 post.astype(np.float64), thetas[idx]))
    H.emit([r], args.json, dtype)


if __name__ == "__main__":
    main()
