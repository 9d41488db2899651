"""Routing over pools of 11 to 10,000 models: the exact path, and the λ-grid sweep through hull breakpoints.

    python benchmarks/bench_routing_pools.py                  # N 20,000; M 11, 33, 100, 1,000 (and 10,000 at N 2,000)
    python benchmarks/bench_routing_pools.py --quick          # N 2,000; M 11, 100, 1,000
    python benchmarks/bench_routing_pools.py --scaling        # N 2,000; M 11, 33, 100, 1,000, 10,000: scaling rows

Per pool size M (``cascjax.synthetic`` data, "low" noisy estimates, float32, 1,024 λ from ``lambda_grid``),
side by side in one process: ``routing_path``; ``sweep`` (the event route: each query's hull breakpoints
placed on the grid, the rule itself at the pairs near a breakpoint or a near-tie, sums from the events); the
direct grid (the rule at every (query, λ) pair, as before issue 23) on every 64th λ, scaled ×64, with the
sweep's choices checked equal to its own on those λ and the largest relative difference of the sums; and a
plain NumPy loop over λ (argmax of μ − λ·ĉ per query, realised means: what a user would write, without ties)
on every 64th λ, scaled ×64; and a naive jitted loop (``lax.map`` over λ of the same argmax, no ties) on the
same λ, scaled alike. Times are medians of ``--repeat`` runs after a warm-up call.

With ``--scaling`` every pool has the same N (default 2,000, so that 10,000 models fit) and the rows are
scaling rows (``vary = "M"``) of the path, the sweep and the NumPy loop, which ``run.py`` plots in
``figures/scaling_M.png`` beside the other kernels.
"""

from __future__ import annotations

import time

import numpy as np

import _harness as H


def main(argv=None):
    parser = H.parser(__doc__)
    parser.add_argument("--queries", type=int, default=None, help="N (default 20,000; 2,000 with --scaling)")
    parser.add_argument("--models", default=None, help="pool sizes (default 11,33,100,1000; with --scaling "
                                                       "11,33,100,1000,10000)")
    parser.add_argument("--huge", type=int, default=10_000, help="one more pool at N/10 queries (0: none)")
    parser.add_argument("--lambdas", type=int, default=1_024)
    parser.add_argument("--scaling", action="store_true",
                        help="one N for every pool (M 11 to 10,000 at N 2,000 unless given): scaling rows for run.py")
    args = parser.parse_args(argv)
    if args.scaling:
        args.queries = args.queries or 2_000
        args.models = args.models or "11,33,100,1000,10000"
        args.huge = 0
    args.queries = args.queries or 20_000
    args.models = args.models or "11,33,100,1000"
    if args.quick:
        args.queries, args.models, args.huge = 2_000, "11,100,1000", 0
    import jax
    import jax.numpy as jnp

    import cascjax
    from cascjax import _sweep

    dtype = H.set_precision(args.float64)
    print(H.environment(dtype.name))
    sizes = [(args.queries, int(m)) for m in args.models.split(",")]
    if args.huge:
        sizes.append((args.queries // 10, args.huge))
    print(f"{'N':>7} {'M':>6} {'path s':>8} {'sweep s':>8} {'direct s':>9} {'NumPy s':>8} {'jit s':>7} "
          f"{'vs direct':>9} {'vs NumPy':>9} {'vs jit':>7} {'choices':>7} {'sum dev':>8}")
    rows = []
    for n, m in sizes:
        ds = cascjax.synthetic(0, n, m)
        est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
        lam = cascjax.lambda_grid(est, args.lambdas)
        every = lam[::64]

        firsts = []

        def median(fn):
            t = time.perf_counter()
            jax.block_until_ready(fn())
            firsts.append(time.perf_counter() - t)
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                jax.block_until_ready(fn())
                runs.append(time.perf_counter() - t)
            return float(np.median(runs))

        path_s = median(lambda: cascjax.routing_path(ds, est).cost)
        sweep_s = median(lambda: cascjax.sweep(ds, est, lam).cost)
        events = cascjax.sweep(ds, est, lam, return_choices=True)
        threshold, _sweep.EVENT_LAMBDAS = _sweep.EVENT_LAMBDAS, ((None, 1 << 30),)
        try:
            direct = cascjax.sweep(ds, est, every, return_choices=True)
            direct_s = median(lambda: cascjax.sweep(ds, est, every).cost) * len(lam) / len(every)
        finally:
            _sweep.EVENT_LAMBDAS = threshold
        same = all(np.array_equal(np.asarray(getattr(events, f))[::64], np.asarray(getattr(direct, f)))
                   for f in ("choice", "answered"))
        dev = max(float(np.max(np.abs(np.asarray(getattr(events, f), np.float64)[::64]
                                      - np.asarray(getattr(direct, f), np.float64)) / np.asarray(getattr(direct, f))))
                  for f in ("cost", "quality"))
        q, c = np.asarray(ds.quality), np.asarray(ds.cost)
        mu, ch = np.asarray(est.quality_ante), np.asarray(est.cost_ante)
        rows_ = np.arange(n)

        def numpy_loop():
            out = []
            for x in every:
                k = np.argmax(mu - x * ch, axis=1)
                out.append((c[rows_, k].mean(), q[rows_, k].mean()))
            return np.array(out)

        numpy_s = H.timed_numpy(numpy_loop, args.repeat)[0] * len(lam) / len(every)

        @jax.jit
        def jitted_loop(mu, ch, q, c, lams):  # a naive jitted loop over λ: argmax, realised means (no ties)
            def at(x):
                k = jnp.argmax(mu - x * ch, axis=1)[:, None]
                return jnp.take_along_axis(c, k, axis=1).mean(), jnp.take_along_axis(q, k, axis=1).mean()
            return jax.lax.map(at, lams)

        args_ = (est.quality_ante, est.cost_ante, ds.quality, ds.cost, jnp.asarray(every, ds.quality.dtype))
        jit_s = median(lambda: jitted_loop(*args_)) * len(lam) / len(every)
        print(f"{n:>7,} {m:>6,} {path_s:>8.3f} {sweep_s:>8.3f} {direct_s:>9.2f} {numpy_s:>8.2f} {jit_s:>7.3f} "
              f"{direct_s / sweep_s:>8.1f}x {numpy_s / sweep_s:>8.1f}x {jit_s / sweep_s:>6.1f}x {str(same):>7} {dev:>8.1e}", flush=True)
        if args.scaling:
            for kernel, seconds, first, unit in (("routing_path over pools", path_s, firsts[0], "queries"),
                                                 (f"routing sweep, {len(lam):,} λ", sweep_s, firsts[1], "decisions"),
                                                 (f"routing NumPy loop, {len(lam):,} λ", numpy_s, numpy_s, "decisions")):
                per = n if unit == "queries" else n * len(lam)
                rows.append(H.row(kernel, "scaling M", N=n, M=m, L=None if unit == "queries" else len(lam),
                                  dtype=dtype.name, run_s=seconds, compile_s=first, decisions=float(per), unit=unit,
                                  vary="M", value=m))
            continue
        for option, seconds in (("routing_path", path_s), ("sweep", sweep_s)):
            r = H.row("routing_pools", option, N=n, M=m, L=1 if option == "routing_path" else len(lam),
                      dtype=dtype.name, run_s=seconds, decisions=float(n * (1 if option == "routing_path" else len(lam))),
                      unit="queries" if option == "routing_path" else "decisions",
                      note=f"direct grid {direct_s:.2f} s (x64 from every 64th λ, same choices: {same}, sums within "
                           f"{dev:.1e}); NumPy loop "
                           f"{numpy_s:.2f} s, naive jitted loop {jit_s:.3f} s (x64)")
            if option == "sweep":
                r.update(numpy_vec_ratio=numpy_s / seconds, numpy_s=numpy_s, numpy_sizes="every 64th λ, x64")
            rows.append(r)
    H.emit(rows, args.json, dtype, show=False)


if __name__ == "__main__":
    main()
