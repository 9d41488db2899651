"""Fitting benchmark: ``cascjax.fit(fit_ds, fit_est, budgets, strategy)`` for a grid of budgets at once.

    python benchmarks/bench_fit.py --strategy routing            # 2,000 x 8 fit split, 20 budgets (CPU sizes)
    python benchmarks/bench_fit.py --strategy cascade_routing    # max_depth 3, K 32, 512 search vectors
    python benchmarks/bench_fit.py --quick                       # all three strategies, small sizes

A fit evaluates many candidate parameter vectors on the fit split (a constant λ grid, a bisection around
every budget, random per-step vectors for the cascades; see ``cascjax.fit``), then picks the best γ-mixture
per budget. Prints the environment, the first call (compile + run) and a further call's time, budgets and
decisions per second (decisions: one query at one candidate λ vector at one step actually taken, summed over
the fit's sweeps, as counted by the NumPy version below, which evaluates the same candidates without the
kernel's padding), peak resident memory, and side by side in the same run:

* the loop oracle (``tests/oracle.py`` ``reference_sweep``) on a sample of the fit's candidate vectors and
  fit queries, as decisions per second, with its deviation from the JAX sweep on the same sample;
* the same fit with the plain-NumPy vectorised sweeps of ``numpy_baselines.py`` (``numpy_baselines.fit``:
  cascjax's own orchestration — grid, bisection, search, hull selection — around NumPy sweeps; no gradient
  method), as the ratio of the two fits' run times, with the largest deviation of the fitted cost and quality
  over the budgets.
"""

from __future__ import annotations

import time

import numpy as np

import _harness as H

STRATEGIES = ("routing", "cascade", "cascade_routing")


def measure(args, strategy, dtype):
    import cascjax
    import numpy_baselines as nb
    from cascjax import _fit_search as _fit
    from cascjax._supermodels import normal_points

    ds, est = H.data(args.queries, args.models)
    depth = 1 if strategy == "routing" else args.depth
    e_np = H.numpy_estimates(est, dtype)
    z = np.asarray(normal_points(args.samples, args.models, dtype=dtype))
    inner_args = (np.asarray(ds.quality), np.asarray(ds.cost), e_np["mu_ante"], e_np["c_ante"])
    # Budgets spread over the strategy's own cost range: the cheapest model's mean cost to the cost at λ = 0.
    at_zero = np.zeros((1, depth))
    top = (nb.routing_grid(*inner_args, at_zero[:, 0]) if strategy == "routing" else
           (nb.cascade if strategy == "cascade" else nb.cascade_routing)(*inner_args[:2], e_np, at_zero, z, depth))
    lowest = float(np.asarray(ds.cost, np.float64).mean(axis=0).min())
    budgets = np.linspace(lowest, float(top[0][0]), args.budgets + 2)[1:-1]
    options = {} if strategy == "routing" else dict(max_depth=depth, samples=args.samples)
    fit_kw = dict(grid=args.grid, candidates=args.candidates, **options)
    go = lambda: cascjax.fit(ds, est, budgets, strategy, **fit_kw)  # noqa: E731
    first, run = H.timed(lambda: go().quality, args.repeat)
    mem = H.peak_memory()
    fitted = go()

    # (b) the same fit around the NumPy sweeps; it also counts the fit's decisions (unpadded)
    counted = dict(decisions=0.0, vectors=0)

    def run_np(params):  # the NumPy sweeps, counting the steps taken
        params = np.asarray(params, np.float64)
        if strategy == "routing":
            c, q = nb.routing_grid(*inner_args, params[:, 0])
            ran = np.ones(params.shape[0])
        elif strategy == "cascade":
            c, q, ran = nb.cascade(*inner_args[:2], e_np, params, z, depth, tables=tables)
        else:
            c, q, ran = nb.cascade_routing(*inner_args[:2], e_np, params, z, depth)
        counted["decisions"] += float(np.sum(ran)) * args.queries
        counted["vectors"] += params.shape[0]
        return np.asarray(c, np.float64), np.asarray(q, np.float64)

    t0 = time.perf_counter()
    tables = nb.cascade_tables(e_np, z, depth) if strategy == "cascade" else None
    lo, hi, gamma, f_cost, f_quality, feasible = nb.fit(run_np, est, budgets, strategy, depth, grid=args.grid,
                                                        candidates=args.candidates)
    t_np = time.perf_counter() - t0
    both = feasible & fitted.feasible
    dev = H.deviation(f_cost[both], f_quality[both], fitted.cost[both], fitted.quality[both]) if both.any() else 0.0
    if (feasible != fitted.feasible).any():
        dev = float("inf")
    decisions = counted["decisions"]
    sizes = dict(N=args.queries, M=args.models, L=counted["vectors"], D=depth,
                 K=None if strategy == "routing" else args.samples)
    r = H.row("fit", strategy, **sizes, dtype=dtype.name, compile_s=first, run_s=run, decisions=decisions,
              unit="decisions", budgets=args.budgets, budgets_per_s=args.budgets / run, **mem,
              numpy_vec_ratio=t_np / run, numpy_s=t_np, numpy_sizes="same fit (ratio of fit times)",
              numpy_deviation=dev,
              note=f"{args.budgets} budgets, {args.budgets / run:,.1f} budgets/s; L = candidate vectors evaluated")

    # (a) the loop oracle on a sample of the fit's candidate vectors and fit queries
    oracle = H.oracle()
    base = cascjax.lambda_grid(est, max(args.grid - 2, 2))
    vectors = np.repeat(H.spread_lambdas(base, args.oracle_vectors)[:, None], depth, axis=1)
    if depth > 1:
        vectors = np.concatenate([vectors, _fit._search(base, args.oracle_vectors, depth, False, 0)])
    sel = H.spread_rows(args.queries, args.oracle_queries)
    sub, sub_est = H.take(ds, est, sel)
    loop_kw = {} if strategy == "routing" else dict(max_depth=depth, z=np.asarray(z, np.float64))
    t0 = time.perf_counter()
    c_loop, q_loop, ran_loop, _ = oracle.reference_sweep(np.asarray(sub.quality), np.asarray(sub.cost),
                                                         H.numpy_estimates(sub_est), vectors, strategy,
                                                         rtol=nb.tie_rtol(dtype), **loop_kw)
    t_loop = time.perf_counter() - t0
    check = cascjax.sweep(sub, sub_est, vectors[:, 0] if strategy == "routing" else vectors, strategy, **options)
    r.update(numpy_loop_ratio=H.ratio(r["decisions_per_s"], float(np.sum(ran_loop)) * sel.size, t_loop),
             loop_sizes=f"{sel.size} queries x {vectors.shape[0]} vectors",
             loop_deviation=H.deviation(check.cost, check.quality, c_loop, q_loop))
    return r


def main(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--strategy", default="routing,cascade,cascade_routing",
                   help="comma-separated, of " + ", ".join(STRATEGIES))
    p.add_argument("--queries", type=int, default=None, help="fit-split queries (default 2,000 CPU, 10,000 GPU)")
    p.add_argument("--models", type=int, default=None, help="default 8 (CPU) or 11 (accelerator)")
    p.add_argument("--depth", type=int, default=None, help="cascades' max_depth (default 3 CPU, 5 accelerator)")
    p.add_argument("--samples", type=int, default=None, help="K (default 32 CPU, 64 accelerator)")
    p.add_argument("--budgets", type=int, default=20)
    p.add_argument("--grid", type=int, default=256, help="constant λ grid points (cascjax.fit's grid)")
    p.add_argument("--candidates", type=int, default=512, help="random per-step vectors (cascjax.fit's search)")
    p.add_argument("--oracle-queries", type=int, default=3)
    p.add_argument("--oracle-vectors", type=int, default=2, help="constant and random vectors for the oracle")
    p.set_defaults(repeat=1)
    args = p.parse_args(argv)
    big = H.accelerator()
    args.queries = args.queries or (10_000 if big else 2_000)
    args.models = args.models or (11 if big else 8)
    args.depth = args.depth or (5 if big else 3)
    args.samples = args.samples or (64 if big else 32)
    if args.quick:
        args.queries, args.models, args.depth, args.samples, args.budgets = 500, 5, 3, 16, 8
        args.grid, args.candidates, args.oracle_queries = 64, 64, 2
    dtype = H.set_precision(args.float64)
    print(H.environment(dtype))
    rows = [measure(args, s, dtype) for s in args.strategy.split(",")]
    H.emit(rows, args.json, dtype)


if __name__ == "__main__":
    main()
