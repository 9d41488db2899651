"""Ablation-grid benchmark: the vmapped noise-model grid behind ``cascjax ablate``, and ``ablate`` on a reduced grid.

    python benchmarks/bench_ablation.py            # noise grid: 136 cells x 12,000 x 5; ablate: 6 cells on 4,000 x 5
    python benchmarks/bench_ablation.py --quick    # small sizes, a smoke run
    python benchmarks/bench_ablation.py --part noise   # or --part ablate: one part per process (peak memory)

Two rows, each side by side with NumPy in the same run:

* ``noise_grid``: the estimates of every (σ_ante, σ_post) cell of the paper's grid (``ablation_grid()``: step
  0.2 up to 3.0, 136 cells) in one vmapped call of ``noisy_estimates``, as ``cascjax._ablation.ablate`` draws
  them. Throughput in estimates (cells x queries x models) per second. (a) the NumPy loop of the tests
  (``tests/test_estimates.py`` ``_oracle_noisy``: per model ``np.polyfit``) on a few cells, one cell at a time;
  (b) ``numpy_baselines.noise_grid``, every cell at once (closed-form least squares over [cells, N, M], in
  batches of cells), timed with its own normal draws (NumPy's generator; one seed: one draw shared by every
  cell, as `ablate` draws);
  its deviation is checked on JAX's draws of the loop's cells.
* ``ablate``: ``cascjax._ablation.ablate`` on a reduced grid (``--step 1.0 --top 2.0``: 6 cells, one seed,
  constant λ as the CLI's default) — per cell, routing, the threshold cascade and cascade routing fitted to the
  paper's budgets on the 5% fit split and evaluated on the test split. Throughput in cells per second. No
  loop version of the whole protocol exists (the loop ratios of its sweeps are the other kernels' rows);
  (b) the same cell computed with ``numpy_baselines.fit`` and the NumPy sweeps (fit and test evaluation,
  γ-mixing, AUC) on ``--numpy-cells`` cells (default 1), scaled per cell; deviation = the largest difference
  of the three AUCs (x100 scale) from ``ablate``'s.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import _harness as H


def noise_part(args, dtype):
    import jax

    import cascjax
    import numpy_baselines as nb
    from cascjax._noise import NOISE_LEVELS, ROUTERBENCH_MEAN_COST
    from cascjax._ablation import ablation_grid

    ds = cascjax.synthetic(seed=0, n_queries=args.noise_queries, n_models=args.models)
    grid = ablation_grid(args.noise_step, 3.0)
    g, n, m = grid.shape[0], ds.n_queries, ds.n_models
    key = jax.random.key(0)  # one seed, as ablate with seeds=1
    keys = [key] * g

    def go():  # as ablate: the cells vmap with the key unbatched, so the normal draws happen once
        return jax.vmap(lambda ante, post: cascjax.noisy_estimates(ds, key, "low", quality_noise=(ante, post)))(
            grid[:, 0], grid[:, 1])

    first, run = H.timed(go, args.repeat)
    mem = H.peak_memory()
    batch = go()
    r = H.row("ablation_grid", "noise_grid", N=n, M=m, L=g, dtype=dtype.name, compile_s=first, run_s=run,
              decisions=float(g * n * m), unit="estimates", **mem,
              note=f"{g} cells (σ step {args.noise_step}), one seed; L = cells")

    # (a) the tests' NumPy loop (np.polyfit per model and phase), a few cells
    H.oracle()  # puts the repository root on sys.path
    from tests.test_estimates import _oracle_noisy

    c_noise = np.asarray(NOISE_LEVELS["low"][1]) * float(np.mean(np.asarray(ds.cost, np.float64))) / \
        ROUTERBENCH_MEAN_COST
    cells = H.spread_rows(g, args.loop_cells)
    with warnings.catch_warnings():  # it asks jax for float64 draws; without x64 they are float32, as JAX's
        warnings.simplefilter("ignore", UserWarning)
        t0 = time.perf_counter()
        loop = [_oracle_noisy(ds, keys[i], tuple(grid[i]), tuple(c_noise)) for i in cells]
        t_loop = time.perf_counter() - t0
    cmax = float(np.max(np.asarray(ds.cost)))

    def dev_to_jax(i, q_ante, q_post, c_ante, c_post):
        return max(float(np.max(np.abs(np.asarray(batch.quality_ante[i], np.float64) - q_ante))),
                   float(np.max(np.abs(np.asarray(batch.quality_post[i], np.float64) - q_post))),
                   float(np.max(np.abs(np.asarray(batch.cost_ante[i], np.float64) - c_ante))) / cmax,
                   float(np.max(np.abs(np.asarray(batch.cost_post[i], np.float64) - c_post))) / cmax)

    r.update(numpy_loop_ratio=H.ratio(r["decisions_per_s"], cells.size * n * m, t_loop),
             loop_sizes=f"{cells.size} cells",
             loop_deviation=max(dev_to_jax(i, o["quality", 0], o["quality", 1], o["cost", 0], o["cost", 1])
                                for i, o in zip(cells, loop)))

    # (b) NumPy, every cell at once (in batches of cells), with its own normal draws: one seed, so one draw
    # shared by every cell, as a user would write it (and as ablate draws)
    quality, cost = np.asarray(ds.quality), np.asarray(ds.cost)
    q_levels = grid.astype(dtype)
    c_levels = np.broadcast_to(c_noise.astype(dtype), (g, 2))
    rng = np.random.default_rng(0)

    def numpy_grid():
        out = []
        eps_q = rng.standard_normal((1, 2, n, m), dtype=dtype)
        eps_c = rng.standard_normal((1, 2, n, m), dtype=dtype)
        for s in range(0, g, args.cell_batch):
            b = min(args.cell_batch, g - s)
            out.append(nb.noise_grid(quality, cost, eps_q, eps_c, q_levels[s:s + b], c_levels[s:s + b]))
        return out

    t_np, _ = H.timed_numpy(numpy_grid, max(1, args.repeat))
    devs = []
    for i in cells:  # on JAX's own draws: the calibration must match
        kq, kc = jax.random.split(keys[i])
        eps_q = np.asarray(jax.random.normal(kq, (2, n, m), ds.quality.dtype))[None]
        eps_c = np.asarray(jax.random.normal(kc, (2, n, m), ds.quality.dtype))[None]
        qa, qp, sd, ca, cp = nb.noise_grid(quality, cost, eps_q, eps_c, q_levels[i:i + 1], c_levels[i:i + 1])
        devs.append(max(dev_to_jax(i, qa[0], qp[0], ca[0], cp[0]),
                        float(np.max(np.abs(np.asarray(batch.sd_ante[i, 0], np.float64) - sd[0, 0])))))
    r.update(numpy_vec_ratio=H.ratio(r["decisions_per_s"], g * n * m, t_np), numpy_s=t_np, numpy_sizes="same sizes",
             numpy_deviation=max(devs))
    return r


def numpy_cell(fit_ds, test_ds, fe, te, budgets, depth, samples, dtype):
    """One ablation cell by NumPy: routing, threshold cascade and cascade routing fitted (constant λ / θ) on the
    fit split and evaluated on the test split, as ``ablate`` does. Returns the three AUCs."""
    import numpy_baselines as nb
    from cascjax._protocol import curve_auc
    from cascjax._supermodels import normal_points

    m = fit_ds.n_models
    z = np.asarray(normal_points(samples, m, dtype=dtype))
    out = {}
    for strategy, d in (("routing", 1), ("threshold_cascade", m), ("cascade_routing", min(depth, m))):
        sweeps = []
        for ds, est in ((fit_ds, fe), (test_ds, te)):
            e = H.numpy_estimates(est, dtype)
            q, c = np.asarray(ds.quality), np.asarray(ds.cost)
            if strategy == "routing":
                sweeps.append(lambda p, q=q, c=c, e=e: nb.routing_grid(q, c, e["mu_ante"], e["c_ante"], p[:, 0]))
            elif strategy == "threshold_cascade":
                sweeps.append(lambda p, q=q, c=c, e=e: nb.threshold_cascade(q, c, e["mu_post"], p)[:2])
            else:
                sweeps.append(lambda p, q=q, c=c, e=e, d=d: nb.cascade_routing(q, c, e, p, z, d)[:2])
        lo, hi, gamma, _, _, ok = nb.fit(lambda p: tuple(np.asarray(a, np.float64) for a in sweeps[0](p)), fe,
                                         budgets, strategy, d, per_step=())
        fill = lo[np.argmax(ok)] if ok.any() else np.zeros(lo.shape[1])
        params = np.concatenate([np.where(ok[:, None], lo, fill), np.where(ok[:, None], hi, fill)])
        unique, index = np.unique(params, axis=0, return_inverse=True)
        c_u, q_u = (np.asarray(a, np.float64)[index.reshape(-1)] for a in sweeps[1](unique))
        nb_ = budgets.size
        cost = np.where(ok, (1 - gamma) * c_u[:nb_] + gamma * c_u[nb_:], np.nan)
        quality = np.where(ok, (1 - gamma) * q_u[:nb_] + gamma * q_u[nb_:], np.nan)
        out[strategy] = curve_auc(cost, quality, test_ds)
    return out


def ablate_part(args, dtype):
    import cascjax
    from cascjax import _ablation, _protocol

    data = cascjax.synthetic(seed=0, n_queries=args.queries, n_models=args.models)
    grid = _ablation.ablation_grid(args.step, args.top)
    kw = dict(pool="all", grid=grid, seeds=1, max_depth=args.depth, samples=args.samples, per_step=())
    t0 = time.perf_counter()
    _ablation.ablate(data, **kw)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = _ablation.ablate(data, **kw)
    run = time.perf_counter() - t0
    mem = H.peak_memory()
    cells = grid.shape[0]
    r = H.row("ablation_grid", "ablate", N=args.queries, M=args.models, L=cells, D=args.depth, K=args.samples,
              dtype=dtype.name, compile_s=first, run_s=run, decisions=float(cells), unit="cells", **mem,
              note=f"{cells} cells (σ step {args.step} up to {args.top}) x 3 strategies fitted (constant λ) and "
                   "evaluated; L = cells; no loop version of the protocol (see the kernels' rows)")

    # (b) the same cells by NumPy, scaled per cell
    data_s = data.select(_protocol.pool_models(data, "all"))
    fit_rows, test_rows = data_s.split_indices(0.05, 42)
    fit_ds, test_ds = data_s.take(fit_rows), data_s.take(test_rows)
    budgets = _protocol.paper_budgets(test_ds, 10)
    import jax

    keys = jax.random.split(jax.random.key(0), 1)
    chosen = H.spread_rows(cells, args.numpy_cells)
    t_np, dev = 0.0, 0.0
    for i in chosen:
        est = cascjax.noisy_estimates(data_s, keys[0], "low", quality_noise=(grid[i, 0], grid[i, 1]))
        fe, te = _protocol.take_estimates(est, fit_rows), _protocol.take_estimates(est, test_rows)
        t0 = time.perf_counter()
        aucs = numpy_cell(fit_ds, test_ds, fe, te, budgets, args.depth, args.samples, dtype)
        t_np += time.perf_counter() - t0
        dev = max(dev, *(abs(aucs[s] - rows[i][f"auc_{s}"]) for s in aucs))
    r.update(numpy_vec_ratio=(t_np / chosen.size) / (run / cells), numpy_s=t_np,
             numpy_sizes=f"{chosen.size} of {cells} cells, scaled per cell", numpy_deviation=dev)
    r["note"] += "; NumPy deviation = largest |ΔAUC| (x100 scale) over the three strategies"
    return r


def main(argv=None):
    p = H.parser(__doc__)
    p.add_argument("--part", choices=("noise", "ablate", "both"), default="both")
    p.add_argument("--models", type=int, default=5, help="the pool (synthetic models)")
    p.add_argument("--noise-queries", type=int, default=None, help="noise grid queries (12,000 CPU, 36,000 GPU)")
    p.add_argument("--noise-step", type=float, default=0.2, help="σ step of the noise grid (0.2: 136 cells)")
    p.add_argument("--loop-cells", type=int, default=3, help="cells for the tests' NumPy loop")
    p.add_argument("--cell-batch", type=int, default=8, help="cells per NumPy batch")
    p.add_argument("--queries", type=int, default=None, help="ablate's queries (4,000 CPU, 36,000 GPU)")
    p.add_argument("--step", type=float, default=1.0, help="σ step of ablate's reduced grid")
    p.add_argument("--top", type=float, default=2.0, help="largest σ of ablate's reduced grid")
    p.add_argument("--depth", type=int, default=3, help="cascade routing's max_depth in ablate")
    p.add_argument("--samples", type=int, default=32, help="cascade routing's K in ablate")
    p.add_argument("--numpy-cells", type=int, default=1)
    args = p.parse_args(argv)
    big = H.accelerator()
    args.noise_queries = args.noise_queries or (36_000 if big else 12_000)
    args.queries = args.queries or (36_000 if big else 4_000)
    if args.quick:
        args.noise_queries, args.noise_step, args.loop_cells, args.repeat = 2_000, 0.5, 2, 1
        args.queries, args.step, args.top, args.samples = 1_000, 2.0, 2.0, 16
    dtype = H.set_precision(args.float64)
    print(H.environment(dtype))
    rows = []
    if args.part in ("noise", "both"):
        rows.append(noise_part(args, dtype))
    if args.part in ("ablate", "both"):
        rows.append(ablate_part(args, dtype))
    H.emit(rows, args.json, dtype)


if __name__ == "__main__":
    main()
