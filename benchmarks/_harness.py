"""Shared helpers of the benchmark scripts: environment line, timing, peak memory, data, rows for the runner.

Every script in this directory prints a human-readable block and, with ``--json PATH``, writes its rows (one
dict per measurement, the keys of :data:`FIELDS`) for ``benchmarks/run.py``. Conventions:

* ``compile_s`` is the first call (compilation + one run), ``run_s`` the median of further calls; every JAX
  result is blocked on (``jax.block_until_ready``) before the clock stops.
* ``decisions`` counts the unit of ``unit``: for sweeps one query at one λ (``"decisions"``; for cascades one
  step actually taken: ``sum(curve.ran) * N``); for exact paths ``"queries"`` (every λ at once); for fits
  ``"budgets"``; for the noise grid ``"estimates"`` (cells x queries x models).
* ``numpy_loop_ratio``: JAX throughput ÷ the throughput of the NumPy loop oracle of ``tests/oracle.py``
  (= :mod:`cascjax.testing._reference`) on a small subsample, measured in the same process right after;
  ``loop_deviation`` the largest difference between the two on that subsample.
* ``numpy_vec_ratio``: JAX throughput ÷ the throughput of the plain-NumPy vectorised version of
  :mod:`numpy_baselines` (same sizes unless ``numpy_sizes`` says otherwise); ``numpy_deviation`` its largest
  difference from JAX on the same inputs. Both ratios are speed-ups: > 1 means JAX is faster.
* Deviations are ``max(|Δquality|, |Δcost| / max|cost|)`` over the curve's points (mean quality per query
  and mean cost relative to the largest mean cost), unless a script says otherwise.
* ``peak_rss_gb`` is the process's peak resident memory (``ru_maxrss``; it never goes down, so the runner runs
  every measurement in its own process); on an accelerator ``peak_device_gb`` is the device's
  ``peak_bytes_in_use``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FIELDS = ("kernel", "option", "N", "M", "L", "D", "K", "dtype", "compile_s", "run_s", "decisions", "unit",
          "decisions_per_s", "peak_rss_gb", "peak_device_gb", "numpy_loop_ratio", "loop_sizes", "loop_deviation",
          "numpy_vec_ratio", "numpy_s", "numpy_sizes", "numpy_deviation", "max_deviation", "note")


def accelerator() -> bool:
    return jax.default_backend() != "cpu"


def set_precision(float64: bool) -> np.dtype:
    """Enables x64 when asked; returns the dtype the data will have (cascjax's default is float32)."""
    if float64:
        jax.config.update("jax_enable_x64", True)
    return np.dtype(np.float64 if float64 else np.float32)


def env_info(dtype) -> dict:
    dev = jax.devices()[0]
    return dict(jax=jax.__version__, backend=jax.default_backend(), device_kind=dev.device_kind,
                device_count=jax.device_count(), cpu_cores=os.cpu_count(),
                machine=platform.processor() or platform.machine(), dtype=np.dtype(dtype).name,
                python=platform.python_version())


def environment(dtype) -> str:
    """One line: jax version, backend, device kind, device count, CPU cores, dtype."""
    e = env_info(dtype)
    return (f"jax {e['jax']} | device {e['device_kind']} ({e['backend']}) x {e['device_count']} | "
            f"{e['cpu_cores']} CPU cores | {e['machine']} | {e['dtype']}")


def timed(fn, repeat: int = 3):
    """(first call seconds = compile + run, median seconds of ``repeat`` further calls); every result is
    blocked on. With ``repeat=0`` the median is the first call's time."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t0)
    return first, float(np.median(runs)) if runs else first


def timed_numpy(fn, repeat: int = 1):
    """(median seconds of ``repeat`` calls, the last result) for a NumPy (or any synchronous) function."""
    runs, out = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs)), out


def peak_memory() -> dict:
    """Peak resident memory of this process (GB) and, on an accelerator, the device's peak bytes in use (GB)."""
    out = dict(peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)  # kB on Linux
    if accelerator():
        try:
            stats = jax.devices()[0].memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                out["peak_device_gb"] = stats["peak_bytes_in_use"] / 2**30
        except Exception:  # some backends have no memory_stats
            pass
    return out


def oracle():
    """The NumPy loop oracle of the tests (``tests/oracle.py`` = :mod:`cascjax.testing._reference`)."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from tests import oracle as module

    return module


def data(n_queries: int, n_models: int, seed: int = 0, noise: str = "low"):
    """``cascjax.synthetic`` data and the paper's noisy estimates (in the default dtype)."""
    import cascjax

    ds = cascjax.synthetic(seed=seed, n_queries=n_queries, n_models=n_models)
    est = cascjax.noisy_estimates(ds, jax.random.key(seed), noise)
    return jax.block_until_ready((ds, est))


def take(ds, est, rows):
    """The queries ``rows`` of a dataset and its estimates (covariance kept: it is shared by all queries)."""
    rows = np.asarray(rows)
    per_query = jax.tree.map(lambda a: jnp.asarray(np.asarray(a)[rows]), est._replace(covariance=None))
    return ds.take(rows), per_query._replace(covariance=est.covariance)


def numpy_estimates(est, dtype=None) -> dict:
    """The estimates as the dict of NumPy arrays the loop oracle and the NumPy baselines take."""
    fields = dict(mu_ante=est.quality_ante, mu_post=est.quality_post, sd_ante=est.sd_ante, sd_post=est.sd_post,
                  c_ante=est.cost_ante, c_post=est.cost_post)
    return {k: np.asarray(v, dtype) for k, v in fields.items()}


def spread_rows(n_total: int, n: int) -> np.ndarray:
    """``n`` evenly spaced query indices of ``n_total``."""
    return np.unique(np.linspace(0, n_total - 1, max(1, min(n, n_total))).astype(int))


def spread_lambdas(lam: np.ndarray, n: int) -> np.ndarray:
    """``n`` evenly spaced entries of a λ grid (rows of an [L, D] grid)."""
    lam = np.asarray(lam)
    return lam[np.unique(np.linspace(0, lam.shape[0] - 1, max(1, min(n, lam.shape[0]))).astype(int))]


def deviation(cost_a, quality_a, cost_b, quality_b) -> float:
    """max(|Δquality|, |Δcost| / max|cost|) between two curves (NaN-free arrays of the same shape)."""
    ca, qa = np.asarray(cost_a, np.float64), np.asarray(quality_a, np.float64)
    cb, qb = np.asarray(cost_b, np.float64), np.asarray(quality_b, np.float64)
    scale = max(float(np.max(np.abs(cb))), 1e-300) if cb.size else 1.0
    dc = float(np.max(np.abs(ca - cb))) / scale if ca.size else 0.0
    dq = float(np.max(np.abs(qa - qb))) if qa.size else 0.0
    return max(dc, dq)


def flipped(ref, cost, quality, ran, n_queries: int) -> np.ndarray:
    """Indices of the λ at which another implementation realises a different decision than the JAX curve
    ``ref`` for at least one query: mean quality or models run off by half a query or more, or mean cost off
    by more than 1e-4 relative (float32 sums round far less)."""
    half = 0.5 / n_queries
    rq, rc = np.asarray(ref.quality, np.float64), np.asarray(ref.cost, np.float64)
    bad = np.abs(np.asarray(quality, np.float64) - rq) >= half
    bad |= np.abs(np.asarray(cost, np.float64) - rc) > 1e-4 * max(float(np.max(np.abs(rc))), 1e-300)
    if ran is not None and ref.ran is not None:
        bad |= np.abs(np.asarray(ran, np.float64) - np.asarray(ref.ran, np.float64)) >= half
    return np.flatnonzero(bad)


def arbitrate(row_: dict, ref, result, n_queries: int, dtype, rerun64) -> None:
    """Notes on ``row_`` where the NumPy baseline's decisions differ from JAX's. In float32 the two sum the
    Monte-Carlo maxima in different orders, so a score gap within an ulp of the tie band's edge can fall on
    either side; ``rerun64(indices)`` recomputes the NumPy baseline at those λ in float64 (the same float32
    inputs, exact up to 1e-16) and the note says at how many of them it agrees with JAX."""
    cost, quality, ran = (tuple(result) + (None,))[:3]
    bad = flipped(ref, cost, quality, ran, n_queries)
    if bad.size == 0:
        return
    text = f"NumPy's decisions differ from JAX's at {bad.size} of {np.size(ref.quality)} λ"
    if np.dtype(dtype) == np.float32:
        c64, q64, ran64 = (tuple(rerun64(bad)) + (None,))[:3]
        sub = type(ref)(*(None if a is None or np.ndim(a) == 0 else np.asarray(a)[bad] for a in ref))
        agree = bad.size - flipped(sub, c64, q64, ran64, n_queries).size
        text += f"; NumPy in float64 agrees with JAX at {agree} of them (float32 rounding at the tie band's edge)"
    row_["note"] = "; ".join(x for x in (row_.get("note"), text) if x)


def row(kernel: str, option: str = "default", **values) -> dict:
    """A result row with every field of :data:`FIELDS` (None where not measured), plus any extra keys."""
    out = {f: None for f in FIELDS}
    out.update(kernel=kernel, option=option)
    out.update(values)
    if out.get("decisions") is not None and out.get("run_s"):
        out["decisions_per_s"] = out["decisions"] / out["run_s"]
    return out


def ratio(jax_per_s, other_decisions, other_seconds):
    """JAX throughput ÷ another implementation's throughput (None if either is missing)."""
    if not jax_per_s or not other_decisions or not other_seconds:
        return None
    return jax_per_s / (other_decisions / other_seconds)


def record_numpy(r: dict, seconds: float, result, ref, n_sel: int, n_total: int) -> None:
    """Adds the NumPy vectorised comparison of a cascade kernel to row ``r``: its speed-up (by decisions,
    scaled when it ran on ``n_sel`` of ``n_total`` queries) and its deviation from the JAX curve ``ref``."""
    cost, quality, ran = result
    r.update(numpy_vec_ratio=ratio(r["decisions_per_s"], float(np.sum(ran)) * n_sel, seconds), numpy_s=seconds,
             numpy_sizes="same sizes" if n_sel == n_total else f"{n_sel:,} queries, scaled by decisions",
             numpy_deviation=max(deviation(cost, quality, ref.cost, ref.quality),
                                 float(np.max(np.abs(ran - np.asarray(ref.ran, np.float64))))))


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every script shares: ``--quick``, ``--json``, ``--repeat``, ``--float64``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, a smoke run (seconds)")
    p.add_argument("--json", metavar="PATH", help="also write the result rows to this JSON file (for run.py)")
    p.add_argument("--repeat", type=int, default=3, help="timed calls after the compiling one (median)")
    p.add_argument("--float64", action="store_true", help="run in float64 (default: float32, cascjax's default)")
    return p


def describe(r: dict) -> str:
    """A human-readable line for a row."""
    sizes = ", ".join(f"{k} {r[k]:,}" for k in ("N", "M", "L", "D", "K") if r.get(k) is not None)
    parts = [f"{r['kernel']} [{r['option']}]  {sizes}, {r['dtype']}"]
    if r.get("compile_s") is not None:
        parts.append(f"first call (compile + run) {r['compile_s']:.2f} s | run {r['run_s']:.3f} s")
    if r.get("decisions") is not None:
        parts.append(f"{r['decisions']:,.0f} {r['unit']}, {r['decisions_per_s']:,.0f} per s")
    mem = r.get("peak_rss_gb")
    if mem is not None:
        parts.append(f"peak RSS {mem:.2f} GB" + (f", device {r['peak_device_gb']:.2f} GB"
                                                 if r.get("peak_device_gb") is not None else ""))
    if r.get("numpy_loop_ratio") is not None:
        parts.append(f"vs loop oracle ({r['loop_sizes']}) {r['numpy_loop_ratio']:,.0f}x, "
                     f"deviation {r['loop_deviation']:.1e}")
    if r.get("numpy_vec_ratio") is not None:
        parts.append(f"vs NumPy vectorised ({r['numpy_sizes']}, {r['numpy_s']:.3f} s) {r['numpy_vec_ratio']:,.2f}x, "
                     f"deviation {r['numpy_deviation']:.1e}")
    if r.get("max_deviation") is not None:
        parts.append(f"max deviation {r['max_deviation']:.1e}")
    if r.get("note"):
        parts.append(r["note"])
    return "\n    ".join(parts)


def emit(rows: list, path: str | None, dtype, show: bool = True) -> None:
    """Prints the rows (unless ``show`` is False) and, with ``path``, writes them and the environment as JSON."""
    if show:
        for r in rows:
            print(describe(r))
    if path:
        with open(path, "w") as f:
            json.dump(dict(env=env_info(dtype), rows=rows), f, indent=1, default=_plain)


def _plain(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
