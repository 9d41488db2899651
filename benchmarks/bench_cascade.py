"""Cascade benchmark: the paper's optimal cascade over a λ grid, JAX sweep vs the NumPy loop oracle.

    python benchmarks/bench_cascade.py            # 36,000 x 11, max_depth 5, K 64, 1,024 λ ('low' noise)
    python benchmarks/bench_cascade.py --quick    # small sizes, a smoke run

Prints sizes, device, jax version, compile and run times, and the throughput in decisions per second (one
decision = one query at one λ at one step actually taken) of the jitted sweep and of the loop oracle
(tests/oracle.py, one query, state and candidate at a time) on a subsample, side by side in one run; and the
time of the exact λ-path (``cascjax.cascade_path``) on the same data, with its agreement with the grid.

Also side by side: the plain-NumPy vectorised cascade of ``numpy_baselines.py`` (the Q tables of every
(query, step, prefix) by the same shared points, then the selection for a batch of λ at once) on
``--numpy-queries`` queries (default all), with its deviation from the JAX sweep; and, with ``--json``, the
rows for ``run.py``. float64 by default (``--float32`` for cascjax's default dtype).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import _harness as H


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=36_000)
    parser.add_argument("--models", type=int, default=11)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--lambdas", type=int, default=1_024)
    parser.add_argument("--oracle-queries", type=int, default=20, help="subsample for the loop oracle")
    parser.add_argument("--oracle-lambdas", type=int, default=8)
    parser.add_argument("--numpy-queries", type=int, default=None, help="subsample for NumPy (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="timed calls after the compiling one (median)")
    parser.add_argument("--float32", action="store_true", help="run in float32 (default float64)")
    parser.add_argument("--skip-path", action="store_true", help="no exact-path timing")
    parser.add_argument("--skip-direct", action="store_true",
                        help="no timing of the direct grid route (every step's rule at every λ)")
    parser.add_argument("--json", metavar="PATH", help="also write the result rows to this JSON file (run.py)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.queries, args.lambdas, args.oracle_queries, args.oracle_lambdas = 2_000, 64, 4, 4
    dtype = H.set_precision(not args.float32)
    import jax

    import cascjax
    import numpy_baselines as nb
    from cascjax._supermodels import normal_points

    print(H.environment(dtype))
    ds, est = H.data(args.queries, args.models)
    lam = cascjax.lambda_grid(est, args.lambdas)
    kw = dict(max_depth=args.depth, samples=args.samples)
    go = lambda: cascjax.sweep(ds, est, lam, "cascade", **kw)  # noqa: E731
    first, run = H.timed(go, args.repeat)
    mem = H.peak_memory()
    curve = go()
    decisions = float(np.sum(np.asarray(curve.ran, np.float64))) * args.queries  # steps taken, over λ and queries
    print(f"\ncascade sweep  {args.queries:,} queries x {args.models} models, max_depth {args.depth}, "
          f"K {args.samples}, {args.lambdas:,} λ: first call {first:.2f} s | run {run:.2f} s | "
          f"{decisions:,.0f} decisions, {decisions / run:,.0f} per second")
    sizes = dict(N=args.queries, M=args.models, D=args.depth, K=args.samples, dtype=dtype.name)
    r = H.row("cascade", "grid", L=args.lambdas, compile_s=first, run_s=run, decisions=decisions, unit="decisions",
              **sizes, **mem)
    rows = [r]
    if not args.skip_direct:
        # The route sweep takes from 4 λ (each step's stop interval, cascjax._cascade_events) against the direct
        # grid (the rule at every step and λ), which it replaced: same bits, side by side.
        from cascjax import _sweep

        threshold, _sweep.CASCADE_EVENT_LAMBDAS = _sweep.CASCADE_EVENT_LAMBDAS, 10**9
        try:
            direct_first, direct_run = H.timed(go, min(args.repeat, 1))
            direct = go()
        finally:
            _sweep.CASCADE_EVENT_LAMBDAS = threshold
        same = all(np.array_equal(np.asarray(getattr(curve, f)), np.asarray(getattr(direct, f)))
                   for f in ("cost", "quality", "answered", "ran"))
        print(f"direct grid    same data, the rule at every step and λ: first call {direct_first:.2f} s | "
              f"run {direct_run:.2f} s | direct / event route: {direct_run / run:.1f}x | same bits: {same}")
        r.update(direct_run_s=direct_run, direct_ratio=direct_run / run, direct_same_bits=same)
    if not args.skip_path:
        path_first, path_run = H.timed(lambda: cascjax.cascade_path(ds, est, **kw), args.repeat)
        _, at_run = H.timed(lambda: cascjax.path_at(cascjax.cascade_path(ds, est, **kw), lam).quality, args.repeat)
        path = cascjax.cascade_path(ds, est, **kw)
        at = cascjax.path_at(path, lam)
        gap = max(float(np.max(np.abs(np.asarray(at.cost) - np.asarray(curve.cost)))),
                  float(np.max(np.abs(np.asarray(at.quality) - np.asarray(curve.quality)))))
        print(f"exact path     same data, every λ >= 0: first call {path_first:.2f} s | run {path_run:.2f} s | "
              f"{path.lam.shape[0]:,} vertices | AUC {cascjax.auc(path, ds):.3f} (grid {cascjax.auc(curve, ds):.3f}) | "
              f"path at the grid's λ vs the grid sweep: max deviation {gap:.1e} | "
              f"grid run / path run: {run / path_run:.1f}x | path + path_at at the grid's λ: run {at_run:.2f} s, "
              f"grid run / that: {run / at_run:.2f}x")
        rows.append(H.row("cascade_path", "exact", compile_s=path_first, run_s=path_run, decisions=float(args.queries),
                          unit="queries", vertices=int(path.lam.shape[0]), **sizes,
                          max_deviation=H.deviation(at.cost, at.quality, curve.cost, curve.quality),
                          note=f"{path.lam.shape[0]:,} vertices; max deviation = path at the grid's λ vs the grid "
                               f"sweep; grid run / path run {run / path_run:.1f}x, / (path + path_at) "
                               f"{run / at_run:.2f}x; no loop or NumPy version of the path"))

    oracle = H.oracle()
    sel = H.spread_rows(args.queries, args.oracle_queries)
    sub, sub_est = H.take(ds, est, sel)
    sub_lam = H.spread_lambdas(lam, args.oracle_lambdas)
    z = np.asarray(normal_points(args.samples, args.models))
    t0 = time.perf_counter()
    c, q, ran, _ = oracle.reference_sweep(sub.quality, sub.cost, H.numpy_estimates(sub_est), sub_lam, "cascade",
                                          max_depth=args.depth, z=z, rtol=nb.tie_rtol(dtype))
    t_loop = time.perf_counter() - t0
    loop_decisions = float(np.sum(ran)) * sel.size
    check = cascjax.sweep(sub, sub_est, sub_lam, "cascade", **kw)
    err = max(np.max(np.abs(np.asarray(check.cost) - c)), np.max(np.abs(np.asarray(check.quality) - q)))
    print(f"loop oracle    {sel.size} queries x {sub_lam.size} λ: {t_loop:.2f} s | "
          f"{loop_decisions:,.0f} decisions, {loop_decisions / t_loop:,.1f} per second")
    speedup = decisions / run / (loop_decisions / t_loop)
    print(f"speed-up (decisions per second, JAX sweep / loop oracle): {speedup:,.0f}x"
          f" | JAX vs oracle on the subsample: max deviation {err:.1e}")
    r.update(numpy_loop_ratio=H.ratio(r["decisions_per_s"], loop_decisions, t_loop),
             loop_sizes=f"{sel.size} queries x {sub_lam.size} λ",
             loop_deviation=H.deviation(check.cost, check.quality, c, q))

    nsel = H.spread_rows(args.queries, args.numpy_queries or args.queries)
    e_np = jax.tree.map(lambda a: a[nsel], H.numpy_estimates(est))
    q_np_in, c_np_in = np.asarray(ds.quality)[nsel], np.asarray(ds.cost)[nsel]
    lam_d = np.repeat(lam[:, None], args.depth, axis=1)
    z_np = np.asarray(normal_points(args.samples, args.models, dtype=dtype))
    t_np, (c_np, q_np, ran_np) = H.timed_numpy(lambda: nb.cascade(q_np_in, c_np_in, e_np, lam_d, z_np, args.depth))
    ref = curve if nsel.size == args.queries else cascjax.sweep(*H.take(ds, est, nsel), lam, "cascade", **kw)
    H.record_numpy(r, t_np, (c_np, q_np, ran_np), ref, nsel.size, args.queries)

    def rerun64(idx):
        e64 = {k: v.astype(np.float64) for k, v in e_np.items()}
        return nb.cascade(q_np_in.astype(np.float64), c_np_in.astype(np.float64), e64, lam_d[idx],
                          z_np.astype(np.float64), args.depth, rtol=nb.tie_rtol(dtype))

    H.arbitrate(r, ref, (c_np, q_np, ran_np), nsel.size, dtype, rerun64)
    print(f"NumPy vectorised {nsel.size:,} queries x {args.lambdas:,} λ: {t_np:.2f} s | JAX sweep / NumPy "
          f"(decisions per second): {r['numpy_vec_ratio']:,.2f}x | max deviation {r['numpy_deviation']:.1e}"
          f"{' | ' + r['note'] if r.get('note') else ''}")
    if args.json:
        H.emit(rows, args.json, dtype, show=False)


if __name__ == "__main__":
    main()
