"""Cascade benchmark: the paper's optimal cascade over a λ grid, JAX sweep vs the NumPy loop oracle.

    python benchmarks/bench_cascade.py            # 36,000 x 11, max_depth 5, K 64, 1,024 λ ('low' noise)
    python benchmarks/bench_cascade.py --quick    # small sizes, a smoke run

Prints sizes, device, jax version, compile and run times, and the throughput in decisions per second (one
decision = one query at one λ at one step actually taken) of the jitted sweep and of the loop oracle
(tests/oracle.py, one query, state and candidate at a time) on a subsample, side by side in one run; and the
time of the exact λ-path (``cascjax.cascade_path``) on the same data, with its agreement with the grid.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import jax
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
    parser.add_argument("--oracle-queries", type=int, default=20, help="subsample for the loop oracle")
    parser.add_argument("--oracle-lambdas", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.queries, args.lambdas, args.oracle_queries, args.oracle_lambdas = 2_000, 64, 4, 4
    jax.config.update("jax_enable_x64", True)
    print(f"jax {jax.__version__} | device {jax.devices()[0].device_kind} ({jax.default_backend()}) | "
          f"{os.cpu_count()} CPU cores | {platform.processor() or platform.machine()} | float64")

    ds = cascjax.synthetic(seed=0, n_queries=args.queries, n_models=args.models)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    lam = cascjax.lambda_grid(est, args.lambdas)
    kw = dict(max_depth=args.depth, samples=args.samples)
    t0 = time.perf_counter()
    curve = jax.block_until_ready(cascjax.sweep(ds, est, lam, "cascade", **kw))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    curve = jax.block_until_ready(cascjax.sweep(ds, est, lam, "cascade", **kw))
    run = time.perf_counter() - t0
    decisions = float(np.sum(np.asarray(curve.ran))) * args.queries  # steps taken, summed over λ and queries
    print(f"\ncascade sweep  {args.queries:,} queries x {args.models} models, max_depth {args.depth}, "
          f"K {args.samples}, {args.lambdas:,} λ: first call {first:.2f} s | run {run:.2f} s | "
          f"{decisions:,.0f} decisions, {decisions / run:,.0f} per second")
    t0 = time.perf_counter()
    path = jax.block_until_ready(cascjax.cascade_path(ds, est, **kw))
    path_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    path = jax.block_until_ready(cascjax.cascade_path(ds, est, **kw))
    path_run = time.perf_counter() - t0
    at = cascjax.path_at(path, lam)
    gap = max(float(np.max(np.abs(np.asarray(at.cost) - np.asarray(curve.cost)))),
              float(np.max(np.abs(np.asarray(at.quality) - np.asarray(curve.quality)))))
    print(f"exact path     same data, every λ >= 0: first call {path_first:.2f} s | run {path_run:.2f} s | "
          f"{path.lam.shape[0]:,} vertices | AUC {cascjax.auc(path, ds):.3f} (grid {cascjax.auc(curve, ds):.3f}) | "
          f"path at the grid's λ vs the grid sweep: max deviation {gap:.1e} | "
          f"grid run / path run: {run / path_run:.1f}x")

    rows = np.arange(args.oracle_queries)
    sub = ds.take(rows)
    sub_est = jax.tree.map(lambda a: np.asarray(a)[rows], est)
    sub_lam = lam[np.linspace(0, len(lam) - 1, args.oracle_lambdas).astype(int)]
    loop_est = dict(mu_ante=sub_est.quality_ante, mu_post=sub_est.quality_post, sd_ante=sub_est.sd_ante,
                    sd_post=sub_est.sd_post, c_ante=sub_est.cost_ante, c_post=sub_est.cost_post)
    z = np.asarray(normal_points(args.samples, args.models))
    t0 = time.perf_counter()
    c, q, ran, _ = oracle.strategy(sub.quality, sub.cost, loop_est, sub_lam, "cascade", max_depth=args.depth, z=z)
    t_loop = time.perf_counter() - t0
    loop_decisions = float(np.sum(ran)) * args.oracle_queries
    check = cascjax.sweep(sub, sub_est, sub_lam, "cascade", **kw)
    err = max(np.max(np.abs(np.asarray(check.cost) - c)), np.max(np.abs(np.asarray(check.quality) - q)))
    print(f"loop oracle    {args.oracle_queries} queries x {args.oracle_lambdas} λ: {t_loop:.2f} s | "
          f"{loop_decisions:,.0f} decisions, {loop_decisions / t_loop:,.1f} per second")
    print(f"speed-up (decisions per second, JAX sweep / loop oracle): {decisions / run / (loop_decisions / t_loop):,.0f}x"
          f" | JAX vs oracle on the subsample: max deviation {err:.1e}")


if __name__ == "__main__":
    main()
