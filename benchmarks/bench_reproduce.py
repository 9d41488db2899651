"""The full `cascjax reproduce` protocol on a RouterBench-shaped file: 36,000 queries x 11 models, the paper's
3 pools x 3 noise levels x 5 strategies, one seed (issue 4's target: at most 10 minutes on a 2-core CPU).

The data is `cascjax.synthetic` (seeded, binary qualities, log-spaced costs) under RouterBench's 11 model names,
so the paper's pools by index (3: 9,4,5; 5: 0,9,4,3,5; all) apply. Prints the sizes, device, jax version, the
wall time per cell and in total, and the table.

    python benchmarks/bench_reproduce.py [--queries 36000] [--seeds 1] [--boot 1000] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import jax
import numpy as np

import cascjax
from cascjax import _protocol


def routerbench_shaped(n_queries: int, seed: int = 0) -> cascjax.Dataset:
    syn = cascjax.synthetic(seed, n_queries, 11)
    # RouterBench's model order is not its cost order: shuffle which synthetic model gets which name.
    order = np.random.default_rng(seed).permutation(11)
    return cascjax.Dataset.from_arrays(np.asarray(syn.quality)[:, order], np.asarray(syn.cost)[:, order],
                                       models=_protocol.ROUTERBENCH_MODELS)


def main(argv=None) -> int:
    import pandas as pd

    from cascjax.cli import main as cli

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, default=36_000)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--boot", type=int, default=1000)
    p.add_argument("--pools", default="3,5,all")
    p.add_argument("--noise", default="low,medium,high")
    p.add_argument("--out", default=None, help="output directory (default: a temporary one)")
    args = p.parse_args(argv)
    ds = routerbench_shaped(args.queries)
    work = tempfile.mkdtemp(prefix="cascjax-bench-")
    path = os.path.join(work, "routerbench_shaped.csv")
    frame = {}
    for j, name in enumerate(ds.models):
        frame[name] = np.asarray(ds.quality[:, j])
        frame[f"{name}|total_cost"] = np.asarray(ds.cost[:, j])
    pd.DataFrame(frame).to_csv(path, index=False)
    out = args.out or os.path.join(work, "out")
    print(f"data: {ds.n_queries:,} queries x {ds.n_models} models (RouterBench-shaped synthetic, {path}); "
          f"pools {args.pools}; noise {args.noise}; seeds {args.seeds}; bootstrap {args.boot}")
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), {os.cpu_count()} cores, "
          f"jax {jax.__version__}, python {platform.python_version()}, x64 {jax.config.jax_enable_x64}")
    command = ["reproduce", path, "--pools", args.pools, "--noise", args.noise, "--seeds", str(args.seeds),
               "--bootstrap", str(args.boot), "--out", out]
    print("command: cascjax " + " ".join(command), flush=True)
    t0 = time.perf_counter()
    code = cli(command)
    total = time.perf_counter() - t0
    if code:
        return code
    table = pd.read_csv(os.path.join(out, "table.csv"))
    for (pool, noise), rows in table.groupby(["pool", "noise"], sort=False):
        print(f"cell {pool:>3} {noise:<6}: " + ", ".join(f"{r.strategy} {r.seconds:.1f} s" for r in rows.itertuples()
                                                        if r.seconds))
    print(f"total wall time of `cascjax reproduce` (reading, all cells, bootstrap, figures): {total:.1f} s = "
          f"{total / 60:.2f} min; target <= 10 min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
