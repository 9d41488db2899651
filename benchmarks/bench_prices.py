"""What-if prices on the embedded example: ``sweep(..., prices=P)`` (S scenarios, one vmapped call) side by side
with what a user would otherwise write — a Python loop of S plain sweeps, each on a priced copy of the data and
its estimates — per strategy, both warm (each run once first).

    python benchmarks/bench_prices.py            # 9 scenarios (one model's price x 0.25 .. x 4), 256 λ
    python benchmarks/bench_prices.py --quick    # 3 scenarios, 2,000 queries, 32 λ

Prints sizes, device and jax version, the seconds of both, their ratio, and whether every scenario's curve is
the loop's to the bit.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import cascjax
from cascjax._prices import scale_model

OPTIONS = {"routing": {}, "threshold_cascade": dict(max_depth=6), "cascade": dict(max_depth=6, samples=64),
           "cascade_routing": dict(max_depth=3, samples=64)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    ds = cascjax.load_example()
    if args.quick:
        ds = ds.take(np.arange(2000))
    scenarios, n_lam = (3, 32) if args.quick else (9, 256)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    prices = scale_model(ds.models, ds.models[-1], np.geomspace(0.25, 4.0, scenarios))
    lam = cascjax.lambda_grid(est, n_lam)
    print(f"jax {jax.__version__} | device {jax.devices()[0].platform} x {len(jax.devices())} | "
          f"{jax.numpy.zeros(()).dtype} | example {ds.n_queries} x {ds.n_models} | {scenarios} price scenarios "
          f"({ds.models[-1]} x 0.25 .. x 4) | {n_lam} λ (θ: up to {n_lam})")
    priced = []
    for s in range(scenarios):
        data = cascjax.Dataset.from_arrays(ds.quality, np.asarray(ds.cost, np.float64) * prices[s],
                                           models=list(ds.models), sort=False)
        priced.append((data, est._replace(cost_ante=np.asarray(est.cost_ante, np.float64) * prices[s],
                                          cost_post=np.asarray(est.cost_post, np.float64) * prices[s])))
    print(f"\n{'strategy':<18} {'vmapped s':>10} {'loop s':>8} {'ratio':>6}  same bits")
    for strategy, options in OPTIONS.items():
        values = cascjax.threshold_grid(est, n_lam, max_depth=6) if strategy == "threshold_cascade" else lam

        def vmapped():
            curves = cascjax.sweep(ds, est, values, strategy, prices=prices, **options)
            jax.block_until_ready([c.cost for c in curves])
            return curves

        def loop():
            curves = [cascjax.sweep(d, e, values, strategy, **options) for d, e in priced]
            jax.block_until_ready([c.cost for c in curves])
            return curves

        vmapped(), loop()  # warm: both compile first
        t = time.perf_counter()
        a = vmapped()
        t_v = time.perf_counter() - t
        t = time.perf_counter()
        b = loop()
        t_l = time.perf_counter() - t
        same = all(np.array_equal(np.asarray(x), np.asarray(y)) for c, d in zip(a, b) for x, y in zip(c[:5], d[:5]))
        print(f"{strategy:<18} {t_v:>10.2f} {t_l:>8.2f} {t_l / t_v:>5.2f}x  {same}")


if __name__ == "__main__":
    main()
