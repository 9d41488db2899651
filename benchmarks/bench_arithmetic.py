"""Arithmetic per decision, and the fraction of this CPU's peak each strategy's sweep reaches (issue 19).

    python benchmarks/bench_arithmetic.py            # 3,150 x 11 (RouterBench's test split), depth 5, K 100
    python benchmarks/bench_arithmetic.py --quick    # 500 x 6, depth 3, K 16: a smoke run

**The count.** XLA's own ``cost_analysis()`` counts a loop body once whatever its trip count (a 100-step
``fori_loop`` of 1,000-element updates reports 2,002 flops), and every kernel here runs in ``lax.map`` over
query chunks and ``lax.scan`` over steps, so this script counts the programs' jaxprs instead: each equation's
operations, times the trip count of every ``scan`` (``lax.map`` included) it sits in; a ``cond`` counts its
largest branch; a ``while_loop`` (data-dependent trips: the hull walk's candidate compaction) counts its body
once, and the table says how many such loops there were. Kinds:

* *arithmetic*: one per output element of an elementwise op (add, multiply, max, compare, select, exp, ...),
  one per input element of a reduction or cumulative op, 2·M·N·K for a matrix product, n·log2(n) per sorted
  row (and n·log2(k) for ``top_k``);
* *data movement*: elements written by gathers, scatters, slices, concatenations, broadcasts, transposes,
  iotas and conversions (not arithmetic, but they take the time of the gather-heavy kernels).

The counts are of the programs a public ``sweep`` runs (every jitted kernel it calls, intercepted once, on its
padded shapes) and are divided by the *real* decisions N·L. **Peak**: cores × clock (``/proc/cpuinfo``'s MHz)
× FP32 operations per cycle (AVX-512: 16 lanes, AVX2: 8; × 2 for a fused multiply-add; × 2 FMA units): an
upper bound no kernel of max/compare/select reaches (they are one operation per lane, not two). Each sweep's
time is the median of ``--repeat`` calls after a warm-up, in this process. Prints sizes, device, jax version.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import platform
import sys
import time

import numpy as np

ELEMENTWISE = {"add", "sub", "mul", "div", "max", "min", "neg", "abs", "exp", "exp2", "log", "log1p", "expm1",
               "sqrt", "rsqrt", "cbrt", "erf_inv", "erf", "erfc", "pow", "integer_pow", "sign", "floor", "ceil",
               "round", "select_n", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "xor",
               "shift_left", "shift_right_logical", "shift_right_arithmetic", "rem", "clamp", "nextafter",
               "tanh", "logistic", "is_finite", "square", "population_count", "atan2", "sin", "cos", "tan",
               "threefry2x32", "random_bits", "add_any", "lgamma", "digamma", "lt_to", "le_to"}
REDUCTIONS = {"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and", "reduce_or", "reduce_xor",
              "argmax", "argmin", "cumsum", "cummax", "cummin", "cumprod", "cumlogsumexp", "reduce_precision"}
MOVEMENT = {"gather", "scatter", "scatter-add", "scatter_add", "scatter-max", "scatter-min", "scatter-mul",
            "scatter_max", "scatter_min", "scatter_mul", "stack",
            "dynamic_slice", "dynamic_update_slice", "concatenate", "pad", "broadcast_in_dim", "transpose", "iota",
            "slice", "rev", "convert_element_type", "bitcast_convert_type", "copy", "copy_p", "select_and_gather_add"}
#: The modules whose jitted kernels a sweep calls (intercepted by :func:`counting`).
KERNEL_MODULES = ("cascjax._routing", "cascjax._routing_events", "cascjax._cascade", "cascjax._cascade_events",
                  "cascjax._cascade_routing", "cascjax._threshold", "cascjax._events", "cascjax._sweep")


def _size(aval) -> int:
    return int(np.prod(getattr(aval, "shape", ()), dtype=np.int64))


KINDS = ("arithmetic", "arithmetic_low", "movement", "movement_low", "other", "while_loops")


def count(jaxpr, times: float = 1.0, out=None) -> dict:
    """Operations of a jaxpr, loops multiplied out: {"arithmetic", "movement"} with every ``cond``'s largest
    branch, {"arithmetic_low", "movement_low"} with its smallest (the kernels skip padding blocks of states by a
    ``cond``: the truth lies between), "other", and the number of ``while_loops`` (bodies counted once)."""
    out = dict.fromkeys(KINDS, 0.0) if out is None else out

    def add(kind, value):
        out[kind] += value
        if kind in ("arithmetic", "movement"):
            out[kind + "_low"] += value

    for eqn in jaxpr.eqns:
        name, params = eqn.primitive.name, eqn.params
        outs = sum(_size(v.aval) for v in eqn.outvars)
        ins = sum(_size(v.aval) for v in eqn.invars if hasattr(v, "aval"))
        if name == "scan":
            count(params["jaxpr"].jaxpr, times * params["length"], out)
        elif name == "while":
            out["while_loops"] += 1
            count(params["body_jaxpr"].jaxpr, times, out)
            count(params["cond_jaxpr"].jaxpr, times, out)
        elif name == "cond":
            branches = [count(b.jaxpr, times) for b in params["branches"]]
            high = max(branches, key=lambda c: c["arithmetic"] + c["movement"])
            low = min(branches, key=lambda c: c["arithmetic_low"] + c["movement_low"])
            for k in ("arithmetic", "movement", "other", "while_loops"):
                out[k] += high[k]
            for k in ("arithmetic_low", "movement_low"):
                out[k] += low[k]
        elif "jaxpr" in params or "call_jaxpr" in params or "fun_jaxpr" in params:  # pjit, custom_jvp, shard_map
            inner = params.get("jaxpr", params.get("call_jaxpr", params.get("fun_jaxpr")))
            count(getattr(inner, "jaxpr", inner), times, out)
        elif name == "dot_general":
            (lc, _), _ = params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            k = int(np.prod([lhs[i] for i in lc], dtype=np.int64))
            add("arithmetic", times * 2 * outs * k)
        elif name in ELEMENTWISE:
            add("arithmetic", times * outs)
        elif name in REDUCTIONS:
            add("arithmetic", times * _size(eqn.invars[0].aval))
        elif name == "sort":
            shape = eqn.invars[0].aval.shape
            n = shape[params.get("dimension", -1)] if shape else 1
            add("arithmetic", times * _size(eqn.invars[0].aval) * max(1.0, math.log2(max(n, 2))))
        elif name == "top_k":
            k = params.get("k", 1)
            add("arithmetic", times * _size(eqn.invars[0].aval) * max(1.0, math.log2(max(k, 2))))
        elif name in MOVEMENT:
            add("movement", times * outs)
        elif name in ("reshape", "squeeze", "expand_dims", "stop_gradient", "device_put", "sharding_constraint"):
            pass  # no work: a view or an annotation
        else:
            add("other", times * max(outs, ins))
    return out


@contextlib.contextmanager
def counting():
    """Within the block, every call of a cascjax kernel (a jitted function of :data:`KERNEL_MODULES`, wherever
    it is referenced) is first traced to a jaxpr and counted; yields the list of (kernel, counts)."""
    import cascjax

    kernels = {}
    for name in KERNEL_MODULES:
        module = importlib.import_module(name)
        for attr, f in vars(module).items():
            if hasattr(f, "lower") and hasattr(f, "trace"):
                kernels[id(f)] = (f"{getattr(f, '__module__', name)}.{getattr(f, '__name__', attr)}", f)
    seen = []

    def wrap(label, f):
        import jax

        def counted(*args, **kwargs):
            # Arrays (and pytrees of them) are traced; anything else (a static int, a plan) is passed as it is.
            def is_array(a):
                leaves = jax.tree.leaves(a)
                return bool(leaves) and all(isinstance(x, (np.ndarray, np.generic, jax.Array)) for x in leaves)

            traced = [i for i, a in enumerate(args) if is_array(a)]

            def call(*dynamic):
                full = list(args)
                for i, a in zip(traced, dynamic):
                    full[i] = a
                return f(*full, **kwargs)

            jaxpr = jax.make_jaxpr(call)(*(args[i] for i in traced))
            seen.append((label, count(jaxpr.jaxpr)))
            return f(*args, **kwargs)

        return counted

    patched = []
    for module in [m for n, m in sys.modules.items() if n.startswith("cascjax") and m is not None]:
        for attr, f in list(vars(module).items()):
            if id(f) in kernels and kernels[id(f)][1] is f:
                patched.append((module, attr, f))
                setattr(module, attr, wrap(kernels[id(f)][0], f))
    try:
        yield seen
    finally:
        for module, attr, f in patched:
            setattr(module, attr, f)
    del cascjax


def peak_ops_per_s() -> tuple[float, str]:
    """cores × clock × FP32 operations per cycle, and how that was derived."""
    mhz, flags, model = float("nan"), "", platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "cpu MHz" and not np.isfinite(mhz):
                    mhz = float(value)
                elif key == "flags" and not flags:
                    flags = value
                elif key == "model name":
                    model = value.strip()
    except OSError:
        pass
    lanes = 16 if " avx512f" in flags else 8 if " avx2" in flags else 4
    per_cycle = lanes * 2 * 2  # FMA = 2 operations, 2 FMA units
    cores = os.cpu_count() or 1
    return cores * mhz * 1e6 * per_cycle, (f"{cores} cores x {mhz:.0f} MHz x {per_cycle} FP32 ops/cycle "
                                           f"({'AVX-512' if lanes == 16 else 'AVX2' if lanes == 8 else 'SSE'}, "
                                           f"FMA, 2 units) [{model}]")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3_150)
    parser.add_argument("--models", type=int, default=11)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--lambdas", default="1,1024", help="comma-separated grid sizes (default 1,1024)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strategies", default="routing,threshold_cascade,cascade,cascade_routing")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.queries, args.models, args.depth, args.samples = 500, 6, 3, 16
    import jax

    import cascjax

    peak, how = peak_ops_per_s()
    print(f"jax {jax.__version__} | device {jax.devices()[0].device_kind} ({jax.default_backend()}) | float32 | "
          f"N {args.queries:,}, M {args.models}, depth {args.depth}, K {args.samples}")
    print(f"peak: {peak / 1e9:.0f} G ops/s = {how}")
    ds = cascjax.synthetic(0, args.queries, args.models)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    print(f"{'strategy':<18} {'λ':>5} {'s/call':>9} {'arithmetic/decision':>21} {'moved/decision':>19} "
          f"{'G arith/s':>13} {'of peak':>15} {'while':>6}")
    for strategy in args.strategies.split(","):
        opts = (dict(max_depth=args.depth, samples=args.samples) if strategy in ("cascade", "cascade_routing")
                else dict(max_depth=args.depth) if strategy == "threshold_cascade" else {})
        for n_lam in (int(x) for x in args.lambdas.split(",")):
            if strategy == "threshold_cascade":
                grid = cascjax.threshold_grid(est, max(n_lam, 3), max_depth=args.depth)
            else:
                grid = cascjax.lambda_grid(est, max(n_lam, 2))
            lam = grid[len(grid) * 5 // 8: len(grid) * 5 // 8 + 1] if n_lam == 1 else grid
            run = lambda: jax.block_until_ready(cascjax.sweep(ds, est, lam, strategy, **opts).quality)  # noqa: E731
            run()  # compile, and the room that suffices
            with counting() as seen:
                run()
            runs = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                run()
                runs.append(time.perf_counter() - t0)
            seconds = float(np.median(runs))
            total = {k: sum(c[k] for _, c in seen) for k in KINDS}
            per = {k: v / (ds.n_queries * len(lam)) for k, v in total.items()}

            def span(lo, hi, fmt="{:,.0f}"):
                return fmt.format(hi) if lo == hi else f"{fmt.format(lo)}-{fmt.format(hi)}"

            rate = (total["arithmetic_low"] / seconds, total["arithmetic"] / seconds)
            print(f"{strategy:<18} {len(lam):>5} {seconds:>9.4f} "
                  f"{span(per['arithmetic_low'], per['arithmetic']):>21} "
                  f"{span(per['movement_low'], per['movement']):>19} "
                  f"{span(rate[0] / 1e9, rate[1] / 1e9, '{:.2f}'):>13} "
                  f"{span(rate[0] / peak * 100, rate[1] / peak * 100, '{:.2f}'):>13} % "
                  f"{int(total['while_loops']):>6}")
            print(f"{'':<18} kernels: {', '.join(sorted({label for label, _ in seen}))}"
                  + (f"; other ops {per['other']:,.0f}/decision" if per["other"] else ""))


if __name__ == "__main__":
    main()
