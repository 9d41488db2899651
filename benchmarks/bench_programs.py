"""Compile once: many random-shaped problems in one process, with programs, memory maps and RSS over the run.

    python benchmarks/bench_programs.py                    # 2,000 instances: N 3-200, M 2-6, every strategy and tie
    python benchmarks/bench_programs.py --instances 200    # a shorter run
    python benchmarks/bench_programs.py --no-buckets       # the same without shape buckets (a program per shape)

Each instance draws N (3-200 queries), M (2-6 models), a strategy (routing, cascade, cascade routing, threshold
cascade, and the exact routing and cascade paths), a tie rule and 1-5 λ values, with estimates drawn in NumPy
(a user's own estimator), and runs it through the public API. Printed every ``--every`` instances: the
instances done, programs compiled or loaded (``cascjax._compile.programs``), clears of the caches (the bound on
live programs), memory maps (``/proc/self/maps`` lines; Linux stops a process at vm.max_map_count, 65,530 by
default) and resident memory. "Flat after warm-up" means maps and RSS of the second half stay within the range
of the first half's end. ``--json PATH`` writes the rows.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import time

import numpy as np

import _harness as H

STRATEGIES = ("routing", "cascade", "cascade_routing", "threshold_cascade", "routing_path", "cascade_path")


def maps() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _programs() -> dict:
    """:func:`cascjax._compile.programs`, its compile seconds as ``compile_s`` (``seconds`` is the run's clock)."""
    from cascjax import _compile

    p = _compile.programs()
    p["compile_s"] = round(p.pop("seconds"), 2)
    return p


def anon_mb(trim: bool = True) -> float:
    """The anonymous resident memory (heap, compiled code) once the C allocator has handed its free pages back
    (glibc's ``malloc_trim``, where there is one): what the process holds, where a leak shows. The RSS also
    counts file pages (jaxlib's shared library, evicted and faulted back in as other processes need memory)
    and, without the trim, the heap's high-water mark: in the test suite a pass that compiled nothing kept
    ~80 MB more anonymous memory than the one before it."""
    if trim:
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:")) / 2**10


def instance(rng, cascjax):
    n, m = int(rng.integers(3, 201)), int(rng.integers(2, 7))
    quality = rng.integers(0, 2, (n, m)).astype(np.float32)
    cost = np.sort(rng.random((n, m)).astype(np.float32), axis=1) + np.float32(0.01)
    ds = cascjax.Dataset.from_arrays(quality, cost, sort=False)
    noise = rng.normal(0, 0.3, (2, n, m)).astype(np.float32)
    est = cascjax.Estimates(quality + noise[0], quality + noise[1], np.full((n, m), 0.3, np.float32),
                            np.zeros((n, m), np.float32), cost, cost)
    return ds, est


def run_one(rng, cascjax):
    ds, est = instance(rng, cascjax)
    strategy = STRATEGIES[int(rng.integers(len(STRATEGIES)))]
    tie = ("min", "max")[int(rng.integers(2))]
    lam = np.sort(rng.random(int(rng.integers(1, 6))) * 3).astype(np.float32)
    if strategy == "routing_path":
        curve = cascjax.routing_path(ds, est)
    elif strategy == "cascade_path":
        curve = cascjax.cascade_path(ds, est, samples=8)
    elif strategy == "threshold_cascade":
        curve = cascjax.sweep(ds, est, lam, strategy, tie)
    else:
        options = {} if strategy == "routing" else dict(samples=8)
        curve = cascjax.sweep(ds, est, lam, strategy, tie, **options)
    return float(np.asarray(curve.quality).sum())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2_000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-buckets", action="store_true", help="no shape buckets: a program per shape")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    import cascjax
    from cascjax import _compile

    print(H.environment("float32"))
    print(f"instances {args.instances}; buckets {'off' if args.no_buckets else 'on'}; persistent cache "
          f"{cascjax.CACHE_DIR or 'off'}; max live programs {_compile.max_programs()}; "
          f"vm.max_map_count {open('/proc/sys/vm/max_map_count').read().strip()}")
    rng = np.random.default_rng(args.seed)
    rows = []
    start = time.perf_counter()
    row = dict(done=0, seconds=0.0, maps=maps(), rss_mb=round(rss_mb(), 1), anon_mb=round(anon_mb(), 1),
               **_programs())
    rows.append(row)
    print(f"{'done':>6} {'seconds':>8} {'programs':>9} {'live':>5} {'clears':>6} {'maps':>6} {'rss MB':>7} "
          f"{'anon MB':>8}")
    with _compile.buckets(not args.no_buckets):
        for i in range(1, args.instances + 1):
            run_one(rng, cascjax)
            if i % args.every == 0 or i == args.instances:
                p = _programs()
                row = dict(done=i, seconds=round(time.perf_counter() - start, 1), maps=maps(),
                           rss_mb=round(rss_mb(), 1), anon_mb=round(anon_mb(), 1), **p)
                rows.append(row)
                print(f"{i:>6} {row['seconds']:>8} {p['total']:>9} {p['live']:>5} {p['clears']:>6} {row['maps']:>6} "
                      f"{row['rss_mb']:>7} {row['anon_mb']:>8}", flush=True)
    half = rows[len(rows) // 2:]
    print(f"second half: maps {min(r['maps'] for r in half)}-{max(r['maps'] for r in half)}, RSS "
          f"{min(r['rss_mb'] for r in half)}-{max(r['rss_mb'] for r in half)} MB (anonymous "
          f"{min(r['anon_mb'] for r in half)}-{max(r['anon_mb'] for r in half)}); programs per instance "
          f"{rows[-1]['total'] / args.instances:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(rows=rows, instances=args.instances, buckets=not args.no_buckets), f, indent=1)


if __name__ == "__main__":
    main()
