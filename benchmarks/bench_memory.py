"""Memory benchmark: the issue's sizes within 8 GB of RAM, peak resident memory measured per kernel.

    python benchmarks/bench_memory.py                     # both cases below (the CR sweep takes minutes on 2 cores)
    python benchmarks/bench_memory.py --only routing_path
    python benchmarks/bench_memory.py --quick             # 1/20 of the sizes, a smoke run

Cases (float32, 'low' noise estimates, `cascjax.synthetic` data in blocks of 1,000,000 queries):
* ``routing_path``: `cascjax.routing_path` on 10,000,000 queries x 11 models;
* ``cascade_routing``: a cascade-routing sweep on 1,000,000 x 11, max_depth 5, K 64, 256 λ;
* only when named with ``--only`` (issue 23, routing over large pools, 100,000 queries x 1,000 models):
  ``pools_path`` (`routing_path`), ``pools_sweep`` (a routing `sweep` over a 1,024-λ `lambda_grid`),
  ``pools_fit`` (`fit` to 20 budgets, then `evaluate` on the same data), each holding what routing reads —
  ``quality``, ``cost`` and the ex-ante estimates; the post-hoc fields are the ex-ante arrays and both
  standard deviations one zero array (2.0 GB in all) —; and ``pools_frontier``: the data written as a wide
  Parquet file (float32 columns), then ``cascjax frontier FILE --strategy routing --estimates perfect`` in a
  process of its own, whose whole peak (reading included: ``ru_maxrss`` of the child) is reported.

Each case runs in its own process (peak RSS, ``ru_maxrss``, is per process and never goes down): the data and
estimates are generated once into a temporary directory of ``.npy`` files, and the measuring process only
loads them and runs the kernel, so its peak is the data held by the user plus the kernel's working set. It
prints the resident memory after loading, the peak during the run (Linux's VmHWM, reset after loading; the
peak of loading itself — a .npy read and its device copy — is not the kernel's), the first call (compile + run) and, for
the routing path, a second call's time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

FIELDS = ("quality", "cost", "quality_ante", "quality_post", "sd_ante", "sd_post", "cost_ante", "cost_post")
CASES = {"routing_path": dict(queries=10_000_000, models=11),
         "cascade_routing": dict(queries=1_000_000, models=11, depth=5, samples=64, lambdas=256),
         # issue 23: routing over a pool of 1,000 models (not in the default run: --only pools_path,...)
         "pools_path": dict(queries=100_000, models=1_000),
         "pools_sweep": dict(queries=100_000, models=1_000, lambdas=1_024),
         "pools_fit": dict(queries=100_000, models=1_000, budgets=20),
         "pools_frontier": dict(queries=100_000, models=1_000)}
DEFAULT = ("routing_path", "cascade_routing")
BLOCK = 1_000_000


def _rss_gb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _peak_gb() -> float:
    """Peak resident memory since the last :func:`_reset_peak` (Linux's VmHWM), else of the whole process."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GB


def _reset_peak() -> None:
    """Starts the peak afresh (Linux: writing 5 to /proc/self/clear_refs resets VmHWM), so that loading the
    data (np.load, then a device copy) does not count as the kernel's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def prepare(directory: str, queries: int, models: int) -> None:
    """Data and 'low' noise estimates in blocks of ``BLOCK`` queries (each block its own seed; the noise
    model is calibrated per block), written as float32 .npy files of [queries, models]."""
    import jax

    import cascjax

    out = {f: np.lib.format.open_memmap(os.path.join(directory, f + ".npy"), "w+", np.float32, (queries, models))
           for f in FIELDS}
    for b, start in enumerate(range(0, queries, BLOCK)):
        n = min(BLOCK, queries - start)
        ds = cascjax.synthetic(seed=b, n_queries=n, n_models=models)
        est = cascjax.noisy_estimates(ds, jax.random.key(b), "low")
        for f in FIELDS:
            src = getattr(ds, f) if f in ("quality", "cost") else getattr(est, f)
            out[f][start:start + n] = np.asarray(src, np.float32)
    for a in out.values():
        a.flush()


def measure(case: str, directory: str, spec: dict) -> dict:
    """Runs in a fresh process: load, build the Dataset and Estimates, run the kernel twice."""
    import jax
    import jax.numpy as jnp

    import cascjax

    if case == "pools_frontier":
        return _frontier(directory, spec)
    routing = case.startswith("pools")
    fields = ("quality", "cost", "quality_ante", "cost_ante") if routing else FIELDS
    arrays = {f: jnp.asarray(np.load(os.path.join(directory, f + ".npy"))) for f in fields}
    ds = cascjax.Dataset(arrays.pop("quality"), arrays.pop("cost"))
    if routing:  # what routing reads; the other fields share arrays (routing never reads them)
        zeros = jax.device_put(np.zeros(ds.quality.shape, np.float32))
        est = cascjax.Estimates(arrays["quality_ante"], arrays["quality_ante"], zeros, zeros, arrays["cost_ante"],
                                arrays["cost_ante"])
    else:
        est = cascjax.Estimates(**arrays)
    del arrays
    loaded = _rss_gb()
    _reset_peak()
    if case in ("routing_path", "pools_path"):
        run = lambda: cascjax.routing_path(ds, est)  # noqa: E731
    elif case == "pools_sweep":
        lam = cascjax.lambda_grid(est, spec["lambdas"])
        run = lambda: cascjax.sweep(ds, est, lam)  # noqa: E731
    elif case == "pools_fit":
        mean = np.asarray(ds.cost).mean(axis=0)
        budgets = np.linspace(mean.min(), mean.max(), spec["budgets"])

        def run():
            fitted = cascjax.fit(ds, est, budgets, "routing")
            return cascjax.evaluate(fitted, ds, est).quality
    else:
        lam = cascjax.lambda_grid(est, spec["lambdas"])
        run = lambda: cascjax.sweep(ds, est, lam, "cascade_routing", max_depth=spec["depth"],  # noqa: E731
                                    samples=spec["samples"])
    t0 = time.perf_counter()
    out = jax.block_until_ready(run())
    first = time.perf_counter() - t0
    second = float("nan")
    if case != "cascade_routing":  # the sweep's single call is long enough: its compilation is a few percent
        t0 = time.perf_counter()
        out = jax.block_until_ready(run())
        second = time.perf_counter() - t0
    row = dict(case=case, **spec, dtype=str(ds.quality.dtype), loaded_rss_gb=loaded, peak_rss_gb=_peak_gb(),
               first_s=first, run_s=second, jax=jax.__version__, backend=jax.default_backend(),
               devices=jax.device_count())
    if case in ("routing_path", "pools_path"):
        row["vertices"] = int(out.lam.shape[0])
    elif case != "pools_fit":
        row["auc"] = float(cascjax.auc(out, ds))
    return row


def _frontier(directory: str, spec: dict) -> dict:
    """Writes the data as a wide Parquet file and runs ``cascjax frontier`` on it in a child process: its peak
    resident memory (reading, estimates, sweeps, exact path, files) and wall time."""
    import jax
    import pandas as pd

    quality, cost = (np.load(os.path.join(directory, f + ".npy"), mmap_mode="r") for f in ("quality", "cost"))
    names = [f"m{j:04d}" for j in range(quality.shape[1])]
    frame = {}
    for j, name in enumerate(names):
        frame[name] = np.ascontiguousarray(quality[:, j])
        frame[name + "|total_cost"] = np.ascontiguousarray(cost[:, j])
    path = os.path.join(directory, "pools.parquet")
    pd.DataFrame(frame).to_parquet(path)
    del frame
    out = os.path.join(directory, "out")
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "cascjax.cli", "frontier", path, "--strategy", "routing",
                              "--estimates", "perfect", "--out", out, "--quiet"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - t0
    if child.returncode != 0:
        raise SystemExit(f"cascjax frontier failed: {stderr[-2000:]}")
    summary = pd.read_csv(os.path.join(out, "summary.csv"))
    return dict(case="pools_frontier", **spec, dtype="float32", loaded_rss_gb=float("nan"),
                peak_rss_gb=_child_peak_gb(), first_s=wall, run_s=float("nan"), jax=jax.__version__,
                backend=jax.default_backend(), devices=jax.device_count(),
                auc=float(summary.loc[summary["name"] == "routing", "auc"].iloc[0]))


def _child_peak_gb() -> float:
    """The largest peak resident memory of this process's finished children (``ru_maxrss``, kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated cases of {list(CASES)} (default {','.join(DEFAULT)})")
    parser.add_argument("--quick", action="store_true", help="1/20 of the sizes")
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # the measuring subprocess
        print(json.dumps(measure(args.case, args.data, json.loads(args.spec))))
        return
    import jax

    print(f"jax {jax.__version__} | device {jax.devices()[0].device_kind} ({jax.default_backend()}) x "
          f"{jax.device_count()} | {os.cpu_count()} CPU cores | {platform.processor() or platform.machine()} | "
          f"float32 | target: peak resident memory <= 8 GB (pools: 4 GB)")
    rows = []
    chosen = args.only.split(",") if args.only else list(DEFAULT)
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    for case in chosen:
        spec = CASES[case]
        spec = dict(spec, queries=spec["queries"] // 20 if args.quick else spec["queries"])
        with tempfile.TemporaryDirectory() as directory:
            t0 = time.perf_counter()
            prepare(directory, spec["queries"], spec["models"])
            made = time.perf_counter() - t0
            out = subprocess.run([sys.executable, __file__, "--case", case, "--data", directory,
                                  "--spec", json.dumps(spec)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{case}: FAILED\n{out.stderr[-3000:]}")
            sys.exit(1)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        sizes = ", ".join(f"{k} {v:,}" for k, v in spec.items())
        limit = 4 if case.startswith("pools") else 8  # issue 23's target for pools, issue 6's for the others
        extra = (f"{row['vertices']:,} vertices" if "vertices" in row else f"AUC {row['auc']:.2f}" if "auc" in row
                 else "fit + evaluate")
        if case == "pools_frontier":
            print(f"{case:16s} {sizes}: data made in {made:.0f} s | cascjax frontier --strategy routing --estimates "
                  f"perfect: peak {row['peak_rss_gb']:.2f} GB, the whole process, reading included "
                  f"({'within' if row['peak_rss_gb'] <= limit else 'OVER'} {limit} GB) | {row['first_s']:.1f} s "
                  f"wall | AUC {row['auc']:.2f}")
            continue
        print(f"{case:16s} {sizes}: data made in {made:.0f} s | resident after loading {row['loaded_rss_gb']:.2f} GB"
              f" | peak {row['peak_rss_gb']:.2f} GB ({'within' if row['peak_rss_gb'] <= limit else 'OVER'} {limit} GB; "
              f"{row['peak_rss_gb'] - row['loaded_rss_gb']:.2f} GB above the loaded data) | "
              f"first call {row['first_s']:.1f} s | second call {row['run_s']:.1f} s | {extra}".replace(
                  " | second call nan s", ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
