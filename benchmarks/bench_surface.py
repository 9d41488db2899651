"""A second cost on the embedded example (with a synthetic latency column): ``cascjax.surface`` (every weight in
one vmapped call) side by side with what a user would otherwise write — a Python loop over the weights of two
plain sweeps each (one paying the costs, one the latencies, on the combined estimates) — and, for routing, a
NumPy loop over (weight, λ). All warm (each run once first).

    python benchmarks/bench_surface.py            # 8 weights x 64 λ
    python benchmarks/bench_surface.py --quick    # 4 weights, 2,000 queries, 16 λ

The latency is synthetic (gamma-distributed, the cheap models slower: a local small model against a fast API);
the example has none. Prints sizes, device and jax version, the seconds of each, their ratios, and whether the
surface equals the loop's sweeps to the bit.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import cascjax
from cascjax._surface import default_weights

OPTIONS = {"routing": {}, "cascade": dict(max_depth=6, samples=64), "cascade_routing": dict(max_depth=3, samples=64)}


def numpy_routing(quality, cost, latency, mu, c_hat, l_hat, weights, lam):
    """Routing over (weight, λ) as a NumPy loop: argmax of μ̂ − λ(ĉ + w ℓ̂) (first on ties), the means."""
    out = np.zeros((3, weights.size, lam.size))
    rows = np.arange(quality.shape[0])
    for i, w in enumerate(weights):
        combined = l_hat if np.isinf(w) else c_hat + w * l_hat
        for j, value in enumerate(lam):
            pick = np.argmax(mu - value * combined, axis=1)
            out[:, i, j] = cost[rows, pick].mean(), latency[rows, pick].mean(), quality[rows, pick].mean()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    ds = cascjax.load_example()
    if args.quick:
        ds = ds.take(np.arange(2000))
    n_weights, n_lam = (4, 16) if args.quick else (8, 64)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    latency = np.random.default_rng(0).gamma(4.0, 0.25, ds.cost.shape) * np.arange(ds.n_models, 0, -1)
    lat = cascjax.Latency.perfect(latency)
    weights = default_weights(est, lat, n_weights)
    lam = cascjax.surface(ds, est, lat, n_lam, weights).lam[0]  # the λ grid of every weight's estimates
    print(f"jax {jax.__version__} | device {jax.devices()[0].platform} x {len(jax.devices())} | "
          f"{jax.numpy.zeros(()).dtype} | example {ds.n_queries} x {ds.n_models} + synthetic latency | "
          f"{n_weights} weights x {n_lam} λ")
    paying = cascjax.Dataset.from_arrays(ds.quality, latency, models=list(ds.models), sort=False)
    combined = []
    for w in weights:
        ante = latency if np.isinf(w) else np.asarray(est.cost_ante, np.float64) + w * latency
        post = latency if np.isinf(w) else np.asarray(est.cost_post, np.float64) + w * latency
        combined.append(est._replace(cost_ante=ante, cost_post=post))
    print(f"\n{'strategy':<16} {'surface s':>10} {'loop s':>8} {'ratio':>6}  same bits")
    for strategy, options in OPTIONS.items():
        def vmapped():
            return cascjax.surface(ds, est, lat, lam, weights, strategy, **options)

        def loop():
            curves = [(cascjax.sweep(ds, e, lam, strategy, **options), cascjax.sweep(paying, e, lam, strategy,
                                                                                     **options)) for e in combined]
            jax.block_until_ready([(a.cost, b.cost) for a, b in curves])
            return curves

        vmapped(), loop()  # warm: both compile first
        t = time.perf_counter()
        s = vmapped()
        t_v = time.perf_counter() - t
        t = time.perf_counter()
        curves = loop()
        t_l = time.perf_counter() - t
        same = all(np.array_equal(s.cost[i], np.asarray(a.cost, np.float64)) and
                   np.array_equal(s.latency[i], np.asarray(b.cost, np.float64)) and
                   np.array_equal(s.quality[i], np.asarray(a.quality, np.float64))
                   for i, (a, b) in enumerate(curves))
        print(f"{strategy:<16} {t_v:>10.2f} {t_l:>8.2f} {t_l / t_v:>5.2f}x  {same}")
        if strategy == "routing":
            host = [np.asarray(a, np.float64) for a in (ds.quality, ds.cost, est.quality_ante, est.cost_ante)]
            t = time.perf_counter()
            ref = numpy_routing(host[0], host[1], latency, host[2], host[3], latency, weights, lam)
            t_n = time.perf_counter() - t
            agree = np.mean(np.isclose(ref[2], s.quality, atol=1e-6))
            print(f"{'  NumPy loop':<16} {t_v:>10.2f} {t_n:>8.2f} {t_n / t_v:>5.2f}x  (quality agrees at "
                  f"{100 * agree:.0f}% of points; ties differ in rule)")


if __name__ == "__main__":
    main()
