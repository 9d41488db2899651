"""Pool and order search on the embedded example (M = 6: 63 subsets, 1,956 orders): ``cascjax.search_pools``
per strategy, cold (its first call in this process, compiling one program per pool size, unless the persistent
cache has them) and warm, side by side with what a user would otherwise write — a Python loop of plain
``cascjax.sweep`` calls on ``ds.select(pool, sort=False)`` — timed on an evenly spaced sample of the pools (the
loop's programs compiled first), per pool. Prints what the search finds: the frontier over every pool, the best
pool's AUC and the full cheapest-first pool's.

    python benchmarks/bench_pools.py            # 32 λ, cascades with 16 samples
    python benchmarks/bench_pools.py --quick    # 2,000 queries, 4 models, 8 λ
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import cascjax

OPTIONS = {"routing": {}, "threshold_cascade": {}, "cascade": dict(samples=16),
           "cascade_routing": dict(samples=16, max_depth=3)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sample", type=int, default=24, help="pools the loop runs, per strategy")
    args = parser.parse_args()
    ds = cascjax.load_example()
    n_lam = 32
    if args.quick:
        ds, n_lam = ds.select(list(ds.models[::2]) + [ds.models[-1]]).take(np.arange(2000)), 8
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    print(f"jax {jax.__version__} | device {jax.devices()[0].platform} x {len(jax.devices())} | "
          f"{jax.numpy.zeros(()).dtype} | example {ds.n_queries} x {ds.n_models} | {n_lam} λ (θ) | options "
          f"{OPTIONS}")
    print(f"\n{'strategy':<18} {'pools':>6} {'cold s':>7} {'warm s':>7} {'ms/pool':>8} {'loop ms/pool':>13} "
          f"{'ratio':>6}  frontier / best / cheapest-first AUC")
    total = 0.0
    for strategy, options in OPTIONS.items():
        t = time.perf_counter()
        cascjax.search_pools(ds, est, n_lam, strategy, **options)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        found = cascjax.search_pools(ds, est, n_lam, strategy, **options)
        warm = time.perf_counter() - t
        total += warm
        multi = [p for p, pool in enumerate(found.members) if len(pool) > 1]
        sample = [multi[i] for i in np.unique(np.linspace(0, len(multi) - 1, args.sample).round().astype(int))]

        def loop():
            for p in sample:
                pool = list(found.members[p])
                opts = dict(options)
                if strategy != "routing":
                    opts["max_depth"] = min(options.get("max_depth", len(pool)), len(pool))
                sub_est = cascjax.Estimates(*(np.asarray(a)[:, pool] for a in est[:6]))
                curve = cascjax.sweep(ds.select(pool, sort=False), sub_est, found.lam, strategy, **opts)
                jax.block_until_ready(curve.cost)

        loop()  # compiles the loop's programs (one per pool size)
        t = time.perf_counter()
        loop()
        per_loop = (time.perf_counter() - t) / len(sample)
        front = cascjax.pool_frontier(found)
        per_pool = warm / len(multi)
        print(f"{strategy:<18} {len(found.members):>6} {cold:>7.1f} {warm:>7.1f} {1e3 * per_pool:>8.1f} "
              f"{1e3 * per_loop:>13.1f} {per_loop / per_pool:>5.2f}x  {front.auc:.2f} / {front.best_auc:.2f} "
              f"({found.names[front.best_pool]}) / {front.default_auc:.2f}")
    print(f"\nall four strategies, warm: {total:.1f} s")


if __name__ == "__main__":
    main()
