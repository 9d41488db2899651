"""Hot spots of the cascade-routing kernel: the avoidable work, before and after, side by side in one run.

    python benchmarks/bench_hotspots.py            # 6,000 x 11, max_depth 5, K 64, 256 and 1,024 λ
    python benchmarks/bench_hotspots.py --quick

Cascade routing spends its time in two places (see benchmarks/README.md): the states' candidate tables (Q by
the shared points, once per query and *state reached*, not per λ) and the per-λ decisions on each state's
shortlist (one gather of the shortlist and one application of the rule per query, λ and step). Variants,
each run twice (first call = compile + run; the second is timed) on the same data, decisions compared:

* ``before``      — the kernel before issue 6: chunks of as many queries as the memory budget allows (the
                    last one padded with weight-0 queries), and the Monte-Carlo tables computed for every
                    slot of each step's state buffer (sized for the worst chunk), padding included;
* ``+ even``      — chunks filled evenly (what ``cascjax._chunks.plan`` does now);
* ``after``       — the default: even chunks, and the buffer's padding blocks skipped (``lax.cond``);
* ``no pruning``  — ``after`` with ``prune=False``: the candidates the pruning lemma excludes stay in the
                    shortlist's hull test (Q of every supermodel is computed anyway, level by level, so
                    pruning cannot save the Monte-Carlo work here).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import cascjax
from cascjax import _cascade_routing as cr
from cascjax import _chunks
from cascjax._checks import _per_step, _strategy_inputs
from cascjax._decide import tie_rtol


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=6_000)
    parser.add_argument("--models", type=int, default=11)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--lambdas", default="256,1024")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.queries, args.lambdas = 1_000, "64"
    print(f"jax {jax.__version__} | device {jax.devices()[0].device_kind} ({jax.default_backend()}) | "
          f"{os.cpu_count()} CPU cores | {platform.processor() or platform.machine()} | float32")
    ds = cascjax.synthetic(seed=0, n_queries=args.queries, n_models=args.models)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    e, z, factor, depth = _strategy_inputs(ds, est, args.depth, args.samples, False)
    for n_lam in (int(x) for x in args.lambdas.split(",")):
        lam = _per_step(jnp.asarray(cascjax.lambda_grid(est, n_lam), ds.quality.dtype), depth, "λ")
        per_query, fixed = cr.chunk_bytes(ds.n_models, depth, args.samples, n_lam, 4)
        plan = _chunks.plan(ds.n_queries, None, None, per_query, fixed, 1)
        padded = _chunks.Plan(int(min(ds.n_queries, (_chunks.MEMORY_BUDGET - fixed) // per_query)))

        def run(**kw):
            options = dict(depth=depth, rtol=tie_rtol(ds.quality.dtype), tie_max=False, force_order=False,
                           greedy=False, prune=True, return_choices=True, plan=plan)
            options.update(kw)
            go = lambda: jax.block_until_ready(cr.cascade_routing_sweep(ds.quality, ds.cost, e, lam, z,  # noqa
                                                                         factor, **options))
            t0 = time.perf_counter()
            go()
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = go()
            return out, first, time.perf_counter() - t0

        print(f"\ncascade routing sweep  {args.queries:,} queries x {args.models} models, max_depth {depth}, "
              f"K {args.samples}, {n_lam:,} λ, chunks of {plan.chunk:,} (before: {padded.chunk:,}):")
        rows = {"before": run(skip_padding=False, plan=padded), "+ even": run(skip_padding=False),
                "after": run(), "no pruning": run(prune=False)}
        base = rows["after"][0]
        decisions = float(np.sum(np.asarray(base.ran))) * args.queries
        for name, (out, first, t) in rows.items():
            same = np.array_equal(np.asarray(out.choice), np.asarray(base.choice))
            print(f"  {name:11s} first call {first:6.2f} s | run {t:6.2f} s | {decisions / t:12,.0f} decisions/s | "
                  f"run / after {t / rows['after'][2]:5.2f}x | same decisions as after: {same}")


if __name__ == "__main__":
    main()
