"""The paper's ablations (its Tables 6 and 7): the noise grid over (σ_ante, σ_post), every cell's estimates
drawn in one vmapped call, and cascade routing's variants; each cell runs the protocol of
:mod:`cascjax._protocol` (pools, budgets, fit on the fit split, AUC on the test split).
"""

from __future__ import annotations

import time
from typing import Callable

import jax
import numpy as np

from ._data import Dataset
from ._errors import CascjaxError
from ._estimates import Estimates
from ._noise import noisy_estimates
from ._fit import MIN_FIT_QUERIES, evaluate, fit
from ._protocol import curve_auc, paper_budgets, pool_models, take_estimates

#: The paper's ablation grid: σ_ante in 0..3, σ_post ≤ σ_ante, step 0.2 (scripts/routerbench_ablation.sh).
ABLATION_STEP, ABLATION_MAX = 0.2, 3.0
#: Table 7 of the paper: cascade-routing variants (label, sweep options).
VARIANTS = (("normal", {}), ("greedy", {"greedy": True}), ("no deviation", {"no_deviation": True}),
            ("no pruning", {"prune": False}))


def ablation_grid(step: float = ABLATION_STEP, top: float = ABLATION_MAX) -> np.ndarray:
    """The paper's noise grid: (σ_ante, σ_post) with σ_ante in 0..top and 0 ≤ σ_post ≤ σ_ante, by ``step``.

    Args:
      step: the grid step (> 0).
      top: the largest σ_ante (≥ 0).

    Returns:
      [C, 2] float64 array of (σ_ante, σ_post), σ_ante-major.

    Example:
      >>> import cascjax.protocol as cp
      >>> cp.ablation_grid().shape   # σ_ante in 0, 0.2, ..., 3: 16·17/2 cells
      (136, 2)
      >>> cp.ablation_grid(0.5, 1.0).tolist()
      [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [1.0, 0.0], [1.0, 0.5], [1.0, 1.0]]
    """
    if not (step > 0 and top >= 0):
        raise CascjaxError(f"the ablation grid needs step > 0 and max >= 0, got {step}, {top}")
    values = np.round(np.arange(0.0, top + step / 2, step), 10)
    return np.asarray([(a, p) for a in values for p in values if p <= a + 1e-12])


def ablate(ds: Dataset, pool: str = "5", *, grid=None, seeds: int = 1, fit_fraction: float = 0.05,
           split_seed: int = 42, per_segment: int = 10, max_depth: int = 5, samples: int = 100,
           per_step=(), candidates: int = 512, cost_noise: str = "low",
           progress: Callable[[str], None] | None = None) -> list[dict]:
    """The paper's noise ablation: for every (σ_ante, σ_post) of ``grid`` (default :func:`ablation_grid`) and
    noise seed, AUC of routing, the threshold cascade and cascade routing on the test split (fitted per
    budget as in :func:`reproduce`); the cost noise stays at ``cost_noise`` (the paper's script: low).

    The estimates of the whole grid × seeds come from one vmapped call of the noise model; the fits then run
    cell by cell with the same shapes (compiled once).

    Args:
      ds: the data.
      pool: the pool spec (:func:`pool_models`).
      grid: [C, 2] (σ_ante, σ_post) cells (default :func:`ablation_grid`).
      seeds: noise seeds per cell.
      fit_fraction, split_seed, per_segment: split and budgets, as :func:`reproduce`.
      max_depth, samples, per_step, candidates: cascade routing's and :func:`cascjax.fit`'s options.
      cost_noise: the cost noise level.
      progress: called with a line of text before each fit.

    Returns:
      One dict per (cell, seed) (C·seeds of them): sigma_ante, sigma_post, seed, auc_routing,
      auc_threshold_cascade, auc_cascade_routing, and the differences cr_minus_routing, cr_minus_threshold.

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]] * 4, [[1, 2]] * 16, models=["small", "big"])
      >>> rows = cp.ablate(ds, "all", grid=[(0.6, 0.3)], fit_fraction=0.5, per_segment=8, max_depth=1,
      ...                  samples=1)   # doctest: +SKIP
      >>> len(rows), rows[0]["sigma_ante"], rows[0]["sigma_post"]   # doctest: +SKIP
      (1, 0.6, 0.3)
      >>> rows[0]["cr_minus_routing"]   # doctest: +SKIP
      0.0

    (Skipped in the doctest run, which it would slow down by ~10 s of compilation; ``tests/test_docs.py``
    runs it. At ``max_depth=1`` cascade routing is routing, hence the 0.0.)
    """
    from ._noise import NOISE_LEVELS

    names = pool_models(ds, pool)
    data = ds.select(names)
    grid = ablation_grid() if grid is None else np.asarray(grid, np.float64).reshape(-1, 2)
    if (grid < 0).any() or not np.isfinite(grid).all():
        raise CascjaxError("ablation noise values must be finite and non-negative")
    if cost_noise not in NOISE_LEVELS:
        raise CascjaxError(f"unknown cost noise level {cost_noise!r}; choose one of {sorted(NOISE_LEVELS)}")
    fit_rows, test_rows = data.split_indices(fit_fraction, split_seed)
    if fit_rows.size < MIN_FIT_QUERIES:
        raise CascjaxError(f"the split leaves {fit_rows.size} fit queries; at least {MIN_FIT_QUERIES} are needed")
    fit_ds, test_ds = data.take(fit_rows), data.take(test_rows)
    budgets = paper_budgets(test_ds, per_segment)
    # One vmapped call of the noise model: estimates for every (cell, seed), cell-major. The cells vmap outside
    # the seeds with the keys unbatched, so the normal draws (threefry: most of the time) happen once per seed,
    # not once per cell: the draws depend on the key only, the noise levels scale them.
    keys = jax.random.split(jax.random.key(0), seeds)
    per_seed = jax.vmap(lambda k, ante, post: noisy_estimates(data, k, cost_noise, quality_noise=(ante, post)),
                        in_axes=(0, None, None))
    batch = jax.vmap(per_seed, in_axes=(None, 0, 0))(keys, grid[:, 0], grid[:, 1])
    batch = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), batch)
    out = []
    strategies = (("routing", {}), ("threshold_cascade", {}),
                  ("cascade_routing", dict(max_depth=min(max_depth, data.n_models), samples=samples)))
    for i in range(grid.shape[0] * seeds):
        cell, seed = divmod(i, seeds)
        est = Estimates(*(a[i] for a in batch[:6]))
        fe, te = take_estimates(est, fit_rows), take_estimates(est, test_rows)
        row = dict(sigma_ante=float(grid[cell, 0]), sigma_post=float(grid[cell, 1]), seed=seed)
        for strategy, options in strategies:
            if progress:
                progress(f"σ_ante {grid[cell, 0]:.1f}, σ_post {grid[cell, 1]:.1f}, seed {seed}: {strategy}")
            f = fit(fit_ds, fe, budgets, strategy, per_step=per_step, candidates=candidates, seed=seed, **options)
            ev = evaluate(f, test_ds, te)
            row[f"auc_{strategy}"] = curve_auc(ev.cost, ev.quality, test_ds)
        row["cr_minus_routing"] = row["auc_cascade_routing"] - row["auc_routing"]
        row["cr_minus_threshold"] = row["auc_cascade_routing"] - row["auc_threshold_cascade"]
        out.append(row)
    return out


def variants(ds: Dataset, pool: str = "all", noise: str = "low", *, seed: int = 0, fit_fraction: float = 0.05,
             split_seed: int = 42, per_segment: int = 10, max_depth: int = 5, samples: int = 100,
             per_step=(), progress: Callable[[str], None] | None = None) -> list[dict]:
    """The paper's Table 7: cascade routing normal, greedy, without deviation (σ = 0) and without pruning —
    test AUC and the time per decision (one query at one λ) of the test evaluation's sweep, measured after
    a warm-up call, on this machine.

    Args:
      ds: the data.
      pool: the pool spec (:func:`pool_models`).
      noise: the noise level of the estimates.
      seed: the noise seed (and the fits' seed).
      fit_fraction, split_seed, per_segment: split and budgets, as :func:`reproduce`.
      max_depth, samples, per_step: cascade routing's and :func:`cascjax.fit`'s options.
      progress: called with a line of text before each variant.

    Returns:
      Four dicts, one per variant: ``variant``, ``auc``, ``ms_per_decision``, ``seconds``, ``decisions``
      (N_test · 2B).

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]] * 4, [[1, 2]] * 16, models=["small", "big"])
      >>> rows = cp.variants(ds, "all", fit_fraction=0.5, per_segment=8, max_depth=1,
      ...                    samples=1)   # doctest: +SKIP
      >>> [r["variant"] for r in rows], rows[0]["decisions"]   # doctest: +SKIP
      (['normal', 'greedy', 'no deviation', 'no pruning'], 128)
      >>> len({r["auc"] for r in rows})   # doctest: +SKIP
      1

    (Skipped in the doctest run, which it would slow down by ~10 s of compilation; ``tests/test_docs.py``
    runs it. Decisions: 8 test queries × 2·8 parameter vectors; at ``max_depth=1`` the four variants decide
    alike, hence one AUC.)
    """
    from ._sweep import sweep

    names = pool_models(ds, pool)
    data = ds.select(names)
    fit_rows, test_rows = data.split_indices(fit_fraction, split_seed)
    fit_ds, test_ds = data.take(fit_rows), data.take(test_rows)
    budgets = paper_budgets(test_ds, per_segment)
    est = noisy_estimates(data, jax.random.key(seed), noise)
    fe, te = take_estimates(est, fit_rows), take_estimates(est, test_rows)
    depth = min(max_depth, data.n_models)
    out = []
    for label, options in VARIANTS:
        if progress:
            progress(f"cascade routing, {label}")
        f = fit(fit_ds, fe, budgets, "cascade_routing", per_step=per_step, max_depth=depth, samples=samples, seed=seed,
                **options)
        ev = evaluate(f, test_ds, te)
        lam = np.concatenate([f.lo, f.hi])
        sweep(test_ds, te, lam, "cascade_routing", max_depth=depth, samples=samples, **options)  # warm-up
        t0 = time.perf_counter()
        curve = sweep(test_ds, te, lam, "cascade_routing", max_depth=depth, samples=samples, **options)
        np.asarray(curve.cost)
        seconds = time.perf_counter() - t0
        out.append(dict(variant=label, auc=curve_auc(ev.cost, ev.quality, test_ds),
                        ms_per_decision=1e3 * seconds / (test_ds.n_queries * lam.shape[0]), seconds=seconds,
                        decisions=test_ds.n_queries * lam.shape[0]))
    return out
