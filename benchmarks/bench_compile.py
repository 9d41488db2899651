"""Compile time per program (cold, and warm from the persistent cache in a new process) and the single-λ path.

    python benchmarks/bench_compile.py            # 3,150 x 11 (RouterBench's test split size), depth 5, K 100
    python benchmarks/bench_compile.py --quick    # 500 x 6, depth 3, K 16: a smoke run

For each strategy (routing, threshold cascade, cascade, cascade routing) it runs, each in a fresh process:
the first call with an empty cache folder (cold: trace + XLA compile + run) at one λ, then the first call on the
``--lambdas``-λ grid (its own programs: the event routes, the shortlists); the same two first calls in a second
process on the same folder (warm: programs loaded from the persistent cache), then in that process the run time
at one λ and on the grid (median of ``--repeat``), as µs per decision (one query at one λ), side by side with
the plain-NumPy vectorised version of ``numpy_baselines.py`` at the same λ on the same data (ratio > 1: cascjax
faster). Also the cold process's first ``noisy_estimates`` call. Prints sizes, device and jax version.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {here!r})
import numpy as np, jax, cascjax
from cascjax import _compile
import _harness as H, numpy_baselines as nb
from cascjax._supermodels import normal_points
n, m, depth, k, n_lam, strategy, repeat, numpy = {n}, {m}, {depth}, {k}, {n_lam}, {strategy!r}, {repeat}, {numpy}
ds = cascjax.synthetic(0, n, m)
t = time.perf_counter()
est = cascjax.noisy_estimates(ds, jax.random.key(0), "low"); jax.block_until_ready(est.quality_ante)
noise_s = time.perf_counter() - t
opts = dict(max_depth=depth, samples=k) if strategy in ("cascade", "cascade_routing") else (
    dict(max_depth=depth) if strategy == "threshold_cascade" else {{}})
grid = cascjax.threshold_grid(est, n_lam, max_depth=depth) if strategy == "threshold_cascade" else \
    cascjax.lambda_grid(est, n_lam)
one = grid[len(grid) * 5 // 8: len(grid) * 5 // 8 + 1]
setup = time.perf_counter() - t0
out = dict(setup_s=setup, noise_s=noise_s)
t = time.perf_counter()
c = cascjax.sweep(ds, est, one, strategy, **opts); jax.block_until_ready(c.quality)
out["first_s"] = time.perf_counter() - t
out.update(_compile.programs())
t = time.perf_counter()  # then the grid's first call: its own programs (the event routes, the shortlists)
c = cascjax.sweep(ds, est, grid, strategy, **opts); jax.block_until_ready(c.quality)
out["grid_first_s"] = time.perf_counter() - t
def timed(lam):
    runs = []
    for _ in range(repeat):
        t = time.perf_counter(); c = cascjax.sweep(ds, est, lam, strategy, **opts); jax.block_until_ready(c.quality)
        runs.append(time.perf_counter() - t)
    return float(np.median(runs)), c
if numpy:
    for name, lam in (("one", one), ("grid", grid)):
        cascjax.sweep(ds, est, lam, strategy, **opts)  # compile
        s, c = timed(lam)
        out[name + "_s"] = s
        q, cost = np.asarray(ds.quality), np.asarray(ds.cost)
        e = H.numpy_estimates(est)
        per_step = np.repeat(np.asarray(lam)[:, None], depth, axis=1)
        if strategy == "routing":
            f = lambda: nb.routing_grid(q, cost, e["mu_ante"], e["c_ante"], np.asarray(lam, q.dtype))
        elif strategy == "threshold_cascade":
            f = lambda: nb.threshold_cascade(q, cost, e["mu_post"], per_step)
        elif strategy == "cascade":
            z = np.asarray(normal_points(k, m, dtype=ds.quality.dtype))
            f = lambda: nb.cascade(q, cost, e, per_step, z, depth)
        else:
            z = np.asarray(normal_points(k, m, dtype=ds.quality.dtype))
            f = lambda: nb.cascade_routing(q, cost, e, per_step, z, depth)
        s_np, _ = H.timed_numpy(f, repeat if strategy != "cascade_routing" or name == "one" else 1)
        out[name + "_numpy_s"] = s_np
print(json.dumps(out))
"""


def child(args, strategy, cache, numpy):
    code = CHILD.format(here=HERE, n=args.queries, m=args.models, depth=args.depth, k=args.samples,
                        n_lam=args.lambdas, strategy=strategy, repeat=args.repeat, numpy=numpy)
    env = {**os.environ, "CASCJAX_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=HERE)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3_150)
    parser.add_argument("--models", type=int, default=11)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--lambdas", type=int, default=1_024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strategies", default="routing,threshold_cascade,cascade,cascade_routing")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.queries, args.models, args.depth, args.samples, args.lambdas = 500, 6, 3, 16, 64
    sys.path.insert(0, HERE)
    import _harness as H

    print(H.environment("float32"))
    print(f"N {args.queries}, M {args.models}, depth {args.depth}, K {args.samples}, grid {args.lambdas} λ; "
          "each cell a fresh process")
    print(f"{'strategy':<18} {'cold s':>7} {'warm s':>7} {'grid cold':>9} {'grid warm':>9} {'noise cold':>10} "
          f"{'1 λ µs/dec':>11} {'NumPy':>9} {'ratio':>7} {'grid µs/dec':>12} {'NumPy':>9} {'ratio':>7}")
    rows = []
    for strategy in args.strategies.split(","):
        with tempfile.TemporaryDirectory() as cache:
            cold = child(args, strategy, cache, numpy=False)
            warm = child(args, strategy, cache, numpy=True)
        n = args.queries
        one, one_np = warm["one_s"] / n * 1e6, warm["one_numpy_s"] / n * 1e6
        grid, grid_np = warm["grid_s"] / n / args.lambdas * 1e6, warm["grid_numpy_s"] / n / args.lambdas * 1e6
        row = dict(strategy=strategy, cold_first_s=cold["first_s"], warm_first_s=warm["first_s"],
                   cold_grid_first_s=cold["grid_first_s"], warm_grid_first_s=warm["grid_first_s"],
                   cold_noise_s=cold["noise_s"],
                   cold_compiled=cold["compiled"], warm_compiled=warm["compiled"], warm_loaded=warm["loaded"],
                   one_us=one, one_numpy_us=one_np, grid_us=grid, grid_numpy_us=grid_np,
                   N=n, M=args.models, depth=args.depth, K=args.samples, L=args.lambdas)
        rows.append(row)
        print(f"{strategy:<18} {cold['first_s']:>7.2f} {warm['first_s']:>7.2f} {cold['grid_first_s']:>9.2f} "
              f"{warm['grid_first_s']:>9.2f} {cold['noise_s']:>10.2f} {one:>11.2f} {one_np:>9.2f} "
              f"{one_np / one:>6.1f}x {grid:>12.3f} {grid_np:>9.3f} {grid_np / grid:>6.1f}x", flush=True)
    print("grid cold / warm: the grid's first call after the one-λ call, in the same processes; noise cold: "
          "noisy_estimates' first call in the cold process")
    print("cold: first call with an empty cache folder (programs compiled: "
          + ", ".join(f"{r['strategy']} {r['cold_compiled']}" for r in rows) + "); warm: first call of a new "
          "process on that folder (compiled: " + ", ".join(str(r["warm_compiled"]) for r in rows) + ")")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
