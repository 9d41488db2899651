"""The persistent cache folder's bound: JAX's per-write eviction against cascjax's trim, side by side.

    python benchmarks/bench_cache.py                   # 7,000 entries of 40 KB, 100 writes and 100 reads
    python benchmarks/bench_cache.py --entries 1000    # a smaller folder

Two copies of one synthetic folder (``--entries`` entries of ``--kb`` KB, each with the access stamp JAX's
bound keeps). On the first, JAX's own cache with ``max_size`` = cascjax's CACHE_BYTES (what cascjax set until
2026-12-07): every write lists the folder and reads every stamp, every read writes a stamp, under a file lock.
On the second, JAX's cache unbounded (what cascjax sets now) and one ``cascjax._compile.trim_cache`` of the
folder (what cascjax does at import and at each clear). Each side writes ``--writes`` new entries and reads
``--writes`` existing ones; prints the seconds of each and the ratio. Uses JAX's private ``lru_cache`` module.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _folder(path, entries, size):
    os.makedirs(path)
    payload = os.urandom(size)
    for i in range(entries):
        with open(os.path.join(path, f"e{i:06d}-cache"), "wb") as f:
            f.write(payload)
        with open(os.path.join(path, f"e{i:06d}-atime"), "wb") as f:
            f.write(time.time_ns().to_bytes(8, "little"))


def _side(cache, entries, writes, payload, trim=None):
    t = time.perf_counter()
    if trim is not None:
        trim()
    for i in range(writes):
        cache.put(f"new{i:06d}", payload)
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(writes):
        assert cache.get(f"e{i * entries // writes:06d}") is not None
    return write_s, time.perf_counter() - t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=7_000)
    parser.add_argument("--kb", type=int, default=40)
    parser.add_argument("--writes", type=int, default=100)
    args = parser.parse_args(argv)
    sys.path.insert(0, HERE)
    import _harness as H
    from jax._src.lru_cache import LRUCache

    from cascjax import _compile

    print(H.environment("float32"))
    print(f"{args.entries:,} entries of {args.kb} KB; {args.writes} writes and {args.writes} reads per side")
    payload = os.urandom(args.kb * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        jax_dir, ours_dir = os.path.join(tmp, "jax"), os.path.join(tmp, "ours")
        _folder(jax_dir, args.entries, args.kb * 1024)
        shutil.copytree(jax_dir, ours_dir)
        try:
            bounded = LRUCache(jax_dir, max_size=_compile.CACHE_BYTES)
        except RuntimeError as error:  # JAX's bound needs the filelock package, which cascjax no longer needs
            raise SystemExit(f"{error} (pip install filelock)")
        jax_w, jax_r = _side(bounded, args.entries, args.writes, payload)
        ours_w, ours_r = _side(LRUCache(ours_dir, max_size=-1), args.entries, args.writes, payload,
                               trim=lambda: _compile.trim_cache(ours_dir))
    print(f"{'':<34} {'writes s':>9} {'reads s':>9}")
    print(f"{'JAX bound (max_size 2 GiB)':<34} {jax_w:>9.3f} {jax_r:>9.3f}")
    print(f"{'unbounded + one trim_cache':<34} {ours_w:>9.3f} {ours_r:>9.3f}")
    print(f"ratio (JAX bound / ours): writes {jax_w / ours_w:.1f}x, reads {jax_r / ours_r:.1f}x")


if __name__ == "__main__":
    main()
