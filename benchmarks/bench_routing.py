"""Routing benchmark: the exact λ-path at scale, and side by side against a NumPy loop over λ.

    python benchmarks/bench_routing.py            # the issue's sizes: 1,000,000 x 11 and 30,000 x 11 / 1,000 λ
    python benchmarks/bench_routing.py --quick    # small sizes, a smoke run

Prints sizes, device, jax version, compile and run times (median of repeats after the compiling call), and
checks that the exact path reproduces the NumPy loop's curve at every λ of its grid.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

import cascjax


def timed(fn, repeats):
    """(first call seconds, median of ``repeats`` further calls); results are blocked on."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t0)
    return first, float(np.median(runs))


def numpy_routing_loop(quality, cost, mu, c_hat, lambdas):
    """The way peers evaluate a router: a Python loop over λ, NumPy over queries (argmax; ties to the cheaper)."""
    n = quality.shape[0]
    rows = np.arange(n)
    out_c, out_q = np.empty(len(lambdas)), np.empty(len(lambdas))
    for i, lam in enumerate(lambdas):
        choice = np.argmax(mu - lam * c_hat, axis=1)
        out_c[i] = cost[rows, choice].mean()
        out_q[i] = quality[rows, choice].mean()
    return out_c, out_q


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=1_000_000, help="queries for the exact-path timing")
    parser.add_argument("--small", type=int, default=30_000, help="queries for the side-by-side comparison")
    parser.add_argument("--models", type=int, default=11)
    parser.add_argument("--lambdas", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.big, args.small, args.lambdas, args.repeats = 20_000, 3_000, 200, 1

    print(f"jax {jax.__version__} | device {jax.devices()[0].device_kind} ({jax.default_backend()}) | "
          f"{os.cpu_count()} CPU cores | {platform.processor() or platform.machine()}")

    # -- 1. the exact path at scale, in cascjax's default float32 and in float64 ----------------------------
    for x64 in (False, True):
        jax.config.update("jax_enable_x64", x64)
        ds = cascjax.synthetic(seed=0, n_queries=args.big, n_models=args.models)
        est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
        jax.block_until_ready(est)
        first, run = timed(lambda: cascjax.routing_path(ds, est), args.repeats)
        path = cascjax.routing_path(ds, est)
        print(f"\nrouting_path  {args.big:,} queries x {args.models} models ('low' noise), {ds.quality.dtype}: "
              f"{path.lam.shape[0]:,} vertices | first call (compile + run) {first:.2f} s | "
              f"run {run:.3f} s (median of {args.repeats})")
    del ds, est, path

    # -- 2. side by side: exact path vs NumPy loop over a λ grid (float64) -------------------------------------
    ds = cascjax.synthetic(seed=1, n_queries=args.small, n_models=args.models)
    est = cascjax.noisy_estimates(ds, jax.random.key(1), "low")
    lam = cascjax.lambda_grid(est, args.lambdas)
    arrays = [np.asarray(a) for a in (ds.quality, ds.cost, est.quality_ante, est.cost_ante)]
    _, t_numpy = timed(lambda: numpy_routing_loop(*arrays, lam), args.repeats)
    first_path, t_path = timed(lambda: cascjax.routing_path(ds, est), args.repeats)
    first_sweep, t_sweep = timed(lambda: cascjax.sweep(ds, est, lam).cost, args.repeats)

    ref_c, ref_q = numpy_routing_loop(*arrays, lam)
    path = cascjax.routing_path(ds, est)
    at = cascjax.path_at(path, lam, "min")
    err = max(np.max(np.abs(np.asarray(at.cost) - ref_c) / np.max(ref_c)),
              np.max(np.abs(np.asarray(at.quality) - ref_q)))
    print(f"\nside by side  {args.small:,} queries x {args.models} models, {args.lambdas:,} λ values, float64:")
    print(f"  NumPy loop over λ              {t_numpy:8.3f} s")
    print(f"  cascjax.routing_path (exact)   {t_path:8.3f} s  (first call {first_path:.2f} s)  "
          f"speed-up {t_numpy / t_path:6.1f}x, {path.lam.shape[0]:,} vertices = every λ")
    print(f"  cascjax.sweep on the same grid {t_sweep:8.3f} s  (first call {first_sweep:.2f} s)  "
          f"speed-up {t_numpy / t_sweep:6.1f}x")
    print(f"  exactness: path at the grid vs NumPy loop, max relative deviation {err:.2e}")
    if err > 1e-9:
        raise SystemExit("the exact path does not reproduce the NumPy loop")


if __name__ == "__main__":
    main()
