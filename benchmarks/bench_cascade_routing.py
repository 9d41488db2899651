"""Cascade-routing benchmark: the paper's method over a λ grid, JAX sweep vs the NumPy loop oracle.

    python benchmarks/bench_cascade_routing.py           # 36,000 x 11, max_depth 5, K 64, 1,024 λ ('low' noise)
    python benchmarks/bench_cascade_routing.py --quick   # small sizes, a smoke run

Prints sizes, device, jax version, dtype, compile and run times, peak resident memory of the process, and the
throughput in decisions per second (one decision = one query at one λ at one step actually taken) of the
jitted sweep and of the loop oracle (tests/oracle.py: one query, state and candidate at a time) on a
subsample, side by side in one run, with the largest deviation between the two on that subsample.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import cascjax
from cascjax._supermodels import normal_points

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests import oracle  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=36_000)
    parser.add_argument("--models", type=int, default=11)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--lambdas", type=int, default=1_024)
    parser.add_argument("--float64", action="store_true", help="run in float64 (default float32)")
    parser.add_argument("--covariance", action="store_true",
                        help="correlated uncertainty: a covariance per run-pattern (cascjax.fit_covariances)")
    parser.add_argument("--oracle-queries", type=int, default=3, help="subsample for the loop oracle")
    parser.add_argument("--oracle-lambdas", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.queries, args.lambdas, args.oracle_queries, args.oracle_lambdas = 2_000, 64, 2, 2
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    dtype = jnp.float64 if args.float64 else jnp.float32
    print(f"jax {jax.__version__} | device {jax.devices()[0].device_kind} ({jax.default_backend()}) | "
          f"{os.cpu_count()} CPU cores | {platform.processor() or platform.machine()} | {jnp.dtype(dtype).name}")

    ds = cascjax.synthetic(seed=0, n_queries=args.queries, n_models=args.models)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    if args.covariance:
        est = cascjax.fit_covariances(est)
    lam = cascjax.lambda_grid(est, args.lambdas)
    ds32, est32 = ds, jax.tree.map(lambda a: jnp.asarray(a, dtype), est)  # float32 unless x64 is enabled
    kw = dict(max_depth=args.depth, samples=args.samples)
    t0 = time.perf_counter()
    curve = jax.block_until_ready(cascjax.sweep(ds32, est32, lam, "cascade_routing", **kw))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    curve = jax.block_until_ready(cascjax.sweep(ds32, est32, lam, "cascade_routing", **kw))
    run = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GB
    decisions = float(np.sum(np.asarray(curve.ran))) * args.queries  # steps taken, summed over λ and queries
    print(f"\ncascade routing sweep  {args.queries:,} queries x {args.models} models, max_depth {args.depth}, "
          f"K {args.samples}, {args.lambdas:,} λ{', covariance' if args.covariance else ''}: "
          f"first call {first:.2f} s (compile + run) | run {run:.2f} s | "
          f"{decisions:,.0f} decisions, {decisions / run:,.0f} per second | peak RSS {peak:.2f} GB | "
          f"AUC {cascjax.auc(curve, ds):.2f}")

    rows = np.arange(args.oracle_queries)
    sub = ds32.take(rows)
    per_query = jax.tree.map(lambda a: np.asarray(a, np.float64)[rows], est._replace(covariance=None))
    sub_est = per_query._replace(covariance=est.covariance)
    sub_lam = lam[np.linspace(0, len(lam) - 1, args.oracle_lambdas).astype(int)]
    loop_est = dict(mu_ante=sub_est.quality_ante, mu_post=sub_est.quality_post, sd_ante=sub_est.sd_ante,
                    sd_post=sub_est.sd_post, c_ante=sub_est.cost_ante, c_post=sub_est.cost_post)
    z = np.asarray(normal_points(args.samples, args.models))
    t0 = time.perf_counter()
    c, q, ran, _ = oracle.strategy(np.asarray(sub.quality, np.float64), np.asarray(sub.cost, np.float64), loop_est,
                                   sub_lam, "cascade_routing", max_depth=args.depth, z=z,
                                   factor=None if est.covariance is None else
                                   np.asarray(cascjax.covariance_factors(est.covariance), np.float64))
    t_loop = time.perf_counter() - t0
    loop_decisions = float(np.sum(ran)) * args.oracle_queries
    check = cascjax.sweep(sub, jax.tree.map(lambda a: jnp.asarray(a, dtype), sub_est), sub_lam,
                          "cascade_routing", **kw)
    err = max(np.max(np.abs(np.asarray(check.cost) - c)), np.max(np.abs(np.asarray(check.quality) - q)))
    print(f"loop oracle    {args.oracle_queries} queries x {args.oracle_lambdas} λ: {t_loop:.2f} s | "
          f"{loop_decisions:,.0f} decisions, {loop_decisions / t_loop:,.2f} per second")
    print(f"speed-up (decisions per second, JAX sweep / loop oracle): {decisions / run / (loop_decisions / t_loop):,.0f}x"
          f" | JAX vs oracle on the subsample: max deviation {err:.1e} (oracle in float64)")


if __name__ == "__main__":
    main()
