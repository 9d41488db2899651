"""Cascade-routing benchmark: the paper's method over a λ grid, JAX sweep vs the NumPy loop oracle.

    python benchmarks/bench_cascade_routing.py           # 36,000 x 11, max_depth 5, K 64, 1,024 λ ('low' noise)
    python benchmarks/bench_cascade_routing.py --quick   # 2,000 x 8, max_depth 3, K 32, 64 λ: a smoke run
    python benchmarks/bench_cascade_routing.py --option greedy        # one of the options below

Prints sizes, device, jax version, dtype, compile and run times, peak resident memory of the process, and the
throughput in decisions per second (one decision = one query at one λ at one step actually taken) of the
jitted sweep and of the loop oracle (tests/oracle.py: one query, state and candidate at a time) on a
subsample, side by side in one run, with the largest deviation between the two on that subsample.

Options (``--option``, one per process so that the peak memory is the option's own): ``default``;
``force_order`` (models in ascending index order); ``greedy`` (one new model per candidate); ``no_prune``
(``prune=False``); ``no_deviation`` (σ = 0); ``covariance`` (a covariance per run-pattern,
``cascjax.fit_covariances``; ``--covariance`` is the same). Also side by side: the plain-NumPy vectorised
cascade routing of ``numpy_baselines.py`` (Q once per distinct (query, state) pair reached, every candidate
scored, all live (query, λ) decided at once per state) on ``--numpy-queries`` queries (default: all up to
8,000, else 2,000, scaled by decisions), with its deviation from the JAX sweep on the same queries.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import _harness as H

OPTIONS = {"default": {}, "force_order": dict(force_order=True), "greedy": dict(greedy=True),
           "no_prune": dict(prune=False), "no_deviation": dict(no_deviation=True), "covariance": {}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=36_000)
    parser.add_argument("--models", type=int, default=11)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--lambdas", type=int, default=1_024)
    parser.add_argument("--float64", action="store_true", help="run in float64 (default float32)")
    parser.add_argument("--option", choices=list(OPTIONS), default="default")
    parser.add_argument("--covariance", action="store_true",
                        help="correlated uncertainty: a covariance per run-pattern (cascjax.fit_covariances)")
    parser.add_argument("--oracle-queries", type=int, default=3, help="subsample for the loop oracle")
    parser.add_argument("--oracle-lambdas", type=int, default=3)
    parser.add_argument("--numpy-queries", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="timed calls after the compiling one (median)")
    parser.add_argument("--json", metavar="PATH", help="also write the result row to this JSON file (run.py)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.queries, args.models, args.depth, args.samples, args.lambdas = 2_000, 8, 3, 32, 64
        args.oracle_queries, args.oracle_lambdas = 2, 2
    if args.covariance:
        args.option = "covariance"
    dtype = H.set_precision(args.float64)
    import jax
    import jax.numpy as jnp

    import cascjax
    import numpy_baselines as nb
    from cascjax._supermodels import normal_points

    print(H.environment(dtype))
    ds, est = H.data(args.queries, args.models)
    covariance = args.option == "covariance"
    if covariance:
        est = cascjax.fit_covariances(est)
    options = OPTIONS[args.option]
    lam = cascjax.lambda_grid(est, args.lambdas)
    kw = dict(max_depth=args.depth, samples=args.samples, **options)
    go = lambda: cascjax.sweep(ds, est, lam, "cascade_routing", **kw)  # noqa: E731
    first, run = H.timed(go, args.repeat)
    mem = H.peak_memory()
    curve = go()
    decisions = float(np.sum(np.asarray(curve.ran, np.float64))) * args.queries  # steps taken, over λ and queries
    label = "" if args.option == "default" else f", {args.option.replace('_', ' ')}"
    print(f"\ncascade routing sweep  {args.queries:,} queries x {args.models} models, max_depth {args.depth}, "
          f"K {args.samples}, {args.lambdas:,} λ{label}: "
          f"first call {first:.2f} s (compile + run) | run {run:.2f} s | "
          f"{decisions:,.0f} decisions, {decisions / run:,.0f} per second | peak RSS {mem['peak_rss_gb']:.2f} GB | "
          f"AUC {cascjax.auc(curve, ds):.2f}")
    r = H.row("cascade_routing", args.option, N=args.queries, M=args.models, L=args.lambdas, D=args.depth,
              K=args.samples, dtype=dtype.name, compile_s=first, run_s=run, decisions=decisions, unit="decisions",
              auc=float(cascjax.auc(curve, ds)), **mem)

    loop_options = {k: v for k, v in options.items() if k != "prune"}  # the oracle never prunes
    factor = None if est.covariance is None else np.asarray(cascjax.covariance_factors(est.covariance), np.float64)
    oracle = H.oracle()
    sel = np.arange(min(args.oracle_queries, args.queries))
    sub, sub_est = H.take(ds, est, sel)
    sub_lam = lam[np.linspace(0, len(lam) - 1, args.oracle_lambdas).astype(int)]
    z = np.asarray(normal_points(args.samples, args.models))
    t0 = time.perf_counter()
    c, q, ran, _ = oracle.reference_sweep(np.asarray(sub.quality, np.float64), np.asarray(sub.cost, np.float64),
                                          H.numpy_estimates(sub_est, np.float64), sub_lam, "cascade_routing",
                                          max_depth=args.depth, z=z, factor=factor, rtol=nb.tie_rtol(dtype),
                                          **loop_options)
    t_loop = time.perf_counter() - t0
    loop_decisions = float(np.sum(ran)) * sel.size
    check = cascjax.sweep(sub, jax.tree.map(lambda a: jnp.asarray(a, dtype), sub_est), sub_lam,
                          "cascade_routing", **kw)
    err = max(np.max(np.abs(np.asarray(check.cost) - c)), np.max(np.abs(np.asarray(check.quality) - q)))
    print(f"loop oracle    {sel.size} queries x {sub_lam.size} λ: {t_loop:.2f} s | "
          f"{loop_decisions:,.0f} decisions, {loop_decisions / t_loop:,.2f} per second")
    speedup = decisions / run / (loop_decisions / t_loop)
    print(f"speed-up (decisions per second, JAX sweep / loop oracle): {speedup:,.0f}x"
          f" | JAX vs oracle on the subsample: max deviation {err:.1e} (oracle in float64)")
    r.update(numpy_loop_ratio=H.ratio(r["decisions_per_s"], loop_decisions, t_loop),
             loop_sizes=f"{sel.size} queries x {sub_lam.size} λ",
             loop_deviation=H.deviation(check.cost, check.quality, c, q))

    n_np = args.numpy_queries or (args.queries if args.queries <= 8_000 else 2_000)
    nsel = H.spread_rows(args.queries, n_np)
    e_np = jax.tree.map(lambda a: a[nsel], H.numpy_estimates(est, dtype))
    q_in, c_in = np.asarray(ds.quality)[nsel], np.asarray(ds.cost)[nsel]
    lam_d = np.repeat(lam[:, None], args.depth, axis=1)
    z_np = np.asarray(normal_points(args.samples, args.models, dtype=dtype))
    np_options = dict(loop_options, factor=None if factor is None else factor.astype(dtype))
    t_np, (c_np, q_np, ran_np) = H.timed_numpy(
        lambda: nb.cascade_routing(q_in, c_in, e_np, lam_d, z_np, args.depth, **np_options))
    ref = curve if nsel.size == args.queries else cascjax.sweep(*H.take(ds, est, nsel), lam, "cascade_routing", **kw)
    H.record_numpy(r, t_np, (c_np, q_np, ran_np), ref, nsel.size, args.queries)

    def rerun64(idx):
        e64 = {k: v.astype(np.float64) for k, v in e_np.items()}
        f64 = None if factor is None else factor.astype(dtype).astype(np.float64)
        return nb.cascade_routing(q_in.astype(np.float64), c_in.astype(np.float64), e64, lam_d[idx],
                                  z_np.astype(np.float64), args.depth, rtol=nb.tie_rtol(dtype),
                                  **dict(np_options, factor=f64))

    H.arbitrate(r, ref, (c_np, q_np, ran_np), nsel.size, dtype, rerun64)
    print(f"NumPy vectorised {nsel.size:,} queries x {args.lambdas:,} λ: {t_np:.2f} s | JAX sweep / NumPy "
          f"(decisions per second): {r['numpy_vec_ratio']:,.2f}x | max deviation {r['numpy_deviation']:.1e}"
          f"{' | ' + r['note'] if r.get('note') else ''}")
    if args.json:
        H.emit([r], args.json, dtype, show=False)


if __name__ == "__main__":
    main()
