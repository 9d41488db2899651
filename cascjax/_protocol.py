"""The paper's evaluation protocol end to end (DESIGN section 5): pools, noise, fit/test split, budgets,
fitted strategies, AUC per cell, paired bootstrap intervals (the paper's ablations: :mod:`cascjax._ablation`).

Host-side orchestration: every strategy is fitted and evaluated by the vectorised kernels (one sweep per
candidate batch), the loops here run over cells (pool × noise), seeds and strategies only.
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple, Sequence

import jax
import numpy as np

from ._data import Dataset
from ._errors import CascjaxError
from ._estimates import Estimates
from ._noise import noisy_estimates
from ._fit import MIN_FIT_QUERIES, evaluate_many, fit
from ._metrics import model_hull
from ._outcomes import REFERENCE, Outcomes, baseline_outcomes, bootstrap, curve_auc, _mean_auc

#: RouterBench's 11 models in the order of its files (the paper's model indices 0..10).
ROUTERBENCH_MODELS = (
    "WizardLM/WizardLM-13B-V1.2", "claude-instant-v1", "claude-v1", "claude-v2", "gpt-3.5-turbo-1106",
    "gpt-4-1106-preview", "meta/code-llama-instruct-34b-chat", "meta/llama-2-70b-chat",
    "mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat", "zero-one-ai/Yi-34B-Chat",
)
#: The paper's RouterBench pools (its scripts/main.sh): indices into ROUTERBENCH_MODELS.
PAPER_POOLS = {"3": (9, 4, 5), "5": (0, 9, 4, 3, 5), "all": tuple(range(11))}
#: The rows of the paper's tables, in order: (row label, strategy name or None for the baseline).
ROWS = (("linear interpolation", None), ("routing", "routing"), ("threshold cascade", "threshold_cascade"),
        ("cascade", "cascade"), ("cascade routing", "cascade_routing"))


def is_routerbench(ds: Dataset) -> bool:
    """True when the dataset has exactly RouterBench's 11 models.

    Args:
      ds: a :class:`cascjax.Dataset` (its ``models`` are compared, in any order).

    Returns:
      A bool.

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> rb = cascjax.Dataset.from_arrays([[0.0] * 11], [list(range(1, 12))], models=cp.ROUTERBENCH_MODELS)
      >>> cp.is_routerbench(rb), cp.is_routerbench(rb.select(range(10)))
      (True, False)
    """
    return set(ds.models) == set(ROUTERBENCH_MODELS)


def pool_models(ds: Dataset, spec: str) -> tuple[str, ...]:
    """The model names of a pool: ``"3"``, ``"5"``, ``"all"`` (the paper's RouterBench pools; ``"all"`` is
    every model of any dataset) or models joined by ``+`` — names, or the paper's RouterBench indices (0..10)
    when the data has RouterBench's 11 models.

    Args:
      ds: the dataset (M models).
      spec: the pool: ``"3"``, ``"5"``, ``"all"`` or ``"a+b+..."``.

    Returns:
      A tuple of at least two model names, in the order named.

    Raises:
      CascjaxError: a paper pool on non-RouterBench data, an unknown model or index, fewer than two models.

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> rb = cascjax.Dataset.from_arrays([[0.0] * 11], [list(range(1, 12))], models=cp.ROUTERBENCH_MODELS)
      >>> cp.pool_models(rb, "3")   # the paper's indices 9, 4, 5
      ('mistralai/mixtral-8x7b-chat', 'gpt-3.5-turbo-1106', 'gpt-4-1106-preview')
      >>> cp.pool_models(rb, "0+5")
      ('WizardLM/WizardLM-13B-V1.2', 'gpt-4-1106-preview')
      >>> cp.pool_models(cascjax.Dataset.from_arrays([[0, 1]], [[1, 2]], models=["small", "big"]), "big+small")
      ('big', 'small')
    """
    spec = str(spec).strip()
    if spec == "all":
        return tuple(ds.models)
    if spec in PAPER_POOLS:
        if not is_routerbench(ds):
            raise CascjaxError(f"pool {spec!r} is one of the paper's RouterBench pools, but the data does not have "
                               f"RouterBench's 11 models; name the models instead, e.g. "
                               f"--pools '{'+'.join(ds.models[:2])}'")
        return tuple(ROUTERBENCH_MODELS[i] for i in PAPER_POOLS[spec])
    names = []
    for part in spec.split("+"):
        part = part.strip()
        if part.isdigit() and is_routerbench(ds):
            i = int(part)
            if i >= len(ROUTERBENCH_MODELS):
                raise CascjaxError(f"pool {spec!r}: RouterBench index {i} is out of range 0..10")
            names.append(ROUTERBENCH_MODELS[i])
        elif part in ds.models:
            names.append(part)
        else:
            raise CascjaxError(f"pool {spec!r}: unknown model {part!r}; the data has {list(ds.models)}"
                               + (" (or RouterBench indices 0..10)" if is_routerbench(ds) else ""))
    if len(set(names)) != len(names) or len(names) < 2:
        raise CascjaxError(f"pool {spec!r} must name at least two different models")
    return tuple(names)


def paper_budgets(ds: Dataset, per_segment: int = 10) -> np.ndarray:
    """The paper's budget grid: ``per_segment`` evenly spaced budgets between each pair of consecutive mean
    costs of the non-dominated models (the upper hull of the single models' points), joints once.

    The paper computes it on the test split's means (its ``test_everything``); pass the split you evaluate on.

    Args:
      ds: the split, ``cost`` and ``quality`` [N, M].
      per_segment: budgets per hull segment (≥ 2), both ends included.

    Returns:
      [B] float64 budgets, ascending: B = (H − 1)·(per_segment − 1) + 1 for H hull models (B = 1 if H = 1).

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)   # mean costs 1, 2
      >>> cp.paper_budgets(ds, per_segment=3).tolist()
      [1.0, 1.5, 2.0]
    """
    return hull_budgets(ds.model_costs(), ds.model_qualities(), per_segment)


def hull_budgets(model_cost, model_quality, per_segment: int = 10) -> np.ndarray:
    """:func:`paper_budgets` from the single models' mean costs and qualities [M] of the split."""
    if per_segment < 2:
        raise CascjaxError(f"per_segment must be at least 2, got {per_segment}")
    cost = np.asarray(model_cost)[model_hull((np.asarray(model_cost), np.asarray(model_quality)))]
    if cost.size < 2:
        return cost.astype(np.float64)
    parts = [np.linspace(cost[i], cost[i + 1], per_segment)[(i > 0):] for i in range(cost.size - 1)]
    return np.concatenate(parts)


def take_estimates(est: Estimates, rows) -> Estimates:
    """The estimates of the queries at ``rows`` (:meth:`cascjax.Estimates.take`)."""
    return est.take(rows)


class Cell(NamedTuple):
    """One cell of the paper's table: a pool at a noise level (averaged over seeds).

    Attributes:
      pool: the pool's spec (``"3"``, ``"all"``, ``"a+b"``, ...).
      noise: the noise level.
      models: the pool's model names (M).
      rows: one dict per table row: ``strategy``, ``auc``, ``auc_sd``, ``diff``, ``ci_low``, ``ci_high``,
        ``auc_constant``, ``fit_gain``, ``infeasible``, ``budgets``, ... (see :func:`reproduce`).
      curves: row label → (cost [B], quality [B]) of noise seed 0 on the test split.
      test: the test split, a :class:`cascjax.Dataset` [N_test, M].

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]] * 4, [[1, 2]] * 16, models=["small", "big"])
      >>> cells = cp.reproduce(ds, pools=("all",), noises=("low",), strategies=("routing",), fit_fraction=0.5,
      ...                      per_segment=8, n_boot=0)
      >>> cell = cells[0]
      >>> cell.pool, cell.noise, cell.models, cell.test.n_queries
      ('all', 'low', ('small', 'big'), 8)
      >>> [a.shape for a in cell.curves["routing"]]   # (cost [B], quality [B]), B = 8 budgets
      [(8,), (8,)]
    """

    pool: str
    noise: str
    models: tuple
    rows: list  # dicts, one per table row
    curves: dict  # row label → (cost [B], quality [B]) of seed 0 on the test split
    test: Dataset


def reproduce(ds: Dataset, pools: Sequence[str] = ("3", "5", "all"), noises: Sequence[str] = ("low", "medium", "high"),
              seeds: int = 1, *, fit_fraction: float = 0.05, split_seed: int = 42, per_segment: int = 10,
              max_depth: int = 5, samples: int = 100, per_step=("search",), candidates: int = 512,
              grid: int = 256, n_boot: int = 1000, boot_seed: int = 0,
              strategies: Sequence[str] | None = None, progress: Callable[[str], None] | None = None,
              estimates: Estimates | None = None, confidence: float | None = None,
              choose: str = "all") -> list[Cell]:
    """The paper's RouterBench protocol on ``ds`` for every pool × noise level (a list of :class:`Cell`).

    For each pool (:func:`pool_models`) and noise level: the paper's noise model on all queries of the pool
    (:func:`cascjax.noisy_estimates`, calibrated on all queries as the paper's ground-truth computers are;
    noise seed s = 0..``seeds``−1), the fit/test split (:meth:`Dataset.split_indices`, the paper's 5%/95%,
    seed 42), the budget grid on the test split (:func:`paper_budgets`), and the five rows of the paper's
    tables: the linear interpolation of the non-dominated models, routing, the threshold cascade, the optimal
    cascade (all models) and cascade routing (``max_depth`` 5, ``samples`` 100 as the paper), each fitted per
    budget on the fit split (:func:`cascjax.fit`: constant λ with bisection plus ``per_step`` methods) and
    evaluated on the test split. Per row: AUC (mean over seeds), its spread over seeds, the paired bootstrap
    95% interval of the difference to cascade routing, for the per-step strategies the test AUC of the
    constant-λ fit, and how many of the ``budgets`` were infeasible on the fit split (below every candidate's
    fit cost: left out of the curve, never exceeded).

    Args:
      ds: the data (every pool is selected from it).
      pools: pool specs (:func:`pool_models`).
      noises: noise levels of :func:`cascjax.noisy_estimates`, or ``"columns"``: the user's own ``estimates``
        (one seed; restricted to each pool's models).
      seeds: noise seeds per cell.
      fit_fraction, split_seed: the fit/test split (:meth:`cascjax.Dataset.split_indices`).
      per_segment: budgets per hull segment (:func:`paper_budgets`).
      max_depth, samples: cascade routing's depth and K (the cascade uses K too).
      per_step, candidates, grid: :func:`cascjax.fit`'s options.
      n_boot, boot_seed: the paired bootstrap (``n_boot=0``: none).
      strategies: the strategies to fit (default all four; the baseline row is always there).
      progress: called with a line of text before each fit.
      estimates: the estimates of ``ds`` (e.g. :func:`cascjax.read_estimates`) for the noise level
        ``"columns"``; without a covariance.
      confidence: None, or budgets that hold on the test split with this probability
        (:func:`cascjax.fit`'s ``confidence``, ``holdout`` = the test split's size).
      choose: ``"all"`` (the paper's: every candidate of every λ method competes on the fit split) or
        ``"validation"`` (constant or per-step λ, chosen on a held-out half of the fit split; see
        :func:`cascjax.fit`); the choice per cell is in ``Fitted.chosen``.

    Returns:
      A list of :class:`Cell`, pool-major then noise.

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]] * 4, [[1, 2]] * 16, models=["small", "big"])
      >>> cells = cp.reproduce(ds, pools=("all",), noises=("low",), strategies=("routing",), fit_fraction=0.5,
      ...                      per_segment=8, n_boot=0)
      >>> [(c.pool, c.noise) for c in cells], [row["strategy"] for row in cells[0].rows]
      ([('all', 'low')], ['linear interpolation', 'routing'])
      >>> baseline = cells[0].rows[0]
      >>> baseline["budgets"], baseline["infeasible"], round(baseline["auc"], 2)
      (8, 0.0, 75.0)
    """
    if seeds < 1:
        raise CascjaxError(f"seeds must be at least 1, got {seeds}")
    wanted = [r for r in ROWS if strategies is None or r[1] is None or r[1] in strategies]
    cells = []
    for spec in pools:
        names = pool_models(ds, spec)
        pool = ds.select(names)
        fit_rows, test_rows = pool.split_indices(fit_fraction, split_seed)
        if fit_rows.size < MIN_FIT_QUERIES or test_rows.size < MIN_FIT_QUERIES:
            raise CascjaxError(f"pool {spec!r}: the split leaves {fit_rows.size} fit and {test_rows.size} test "
                               f"queries (fit_fraction {fit_fraction}, {pool.n_queries} queries); each needs "
                               f"at least {MIN_FIT_QUERIES}")
        fit_ds, test_ds = pool.take(fit_rows), pool.take(test_rows)
        budgets = paper_budgets(test_ds, per_segment)
        for noise in noises:
            if noise == "columns":
                if estimates is None or estimates.covariance is not None:
                    raise CascjaxError("the noise level 'columns' needs the data's own estimates (estimates=), "
                                       "without a covariance")
                cols = np.asarray([ds.models.index(name) for name in names])
                own = Estimates(*(np.asarray(a)[:, cols] for a in estimates[:6]))

            def draw(seed, pool=pool, noise=noise, fit_rows=fit_rows, test_rows=test_rows):
                est = own if noise == "columns" else noisy_estimates(pool, jax.random.key(seed), noise)
                return take_estimates(est, fit_rows), take_estimates(est, test_rows)

            cells.append(run_cell(spec, noise, names, fit_ds, test_ds, budgets, draw,
                                  1 if noise == "columns" else seeds, wanted,
                                  dict(max_depth=max_depth, samples=samples, per_step=per_step, candidates=candidates,
                                       grid=grid, confidence=confidence, choose=choose), n_boot, boot_seed,
                                  progress))
    return cells


def run_cell(spec, label, names, fit_ds, test_ds, budgets, estimates, seeds, wanted, options, n_boot, boot_seed,
             progress) -> Cell:
    """One :class:`Cell`: every row of ``wanted`` (of :data:`ROWS`) fitted per budget on ``fit_ds`` and evaluated
    on ``test_ds``, with ``estimates(seed)`` → (fit estimates, test estimates) for each seed (``label``: the noise
    level or estimator, the cell's ``noise`` field); ``options``: :func:`reproduce`'s ``max_depth``,
    ``samples``, ``per_step``, ``candidates``, ``grid`` (and optionally ``confidence``: budgets that hold on
    ``test_ds``, see :func:`cascjax.fit`). The building block of :func:`reproduce` and
    :func:`reproduce_learned`, for a study with estimates of its own.

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 3]] * 4, models=["small", "big"])
      >>> est = cascjax.perfect_estimates(ds)
      >>> options = dict(max_depth=2, samples=8, per_step=(), candidates=64, grid=16)
      >>> cell = cp.run_cell("all", "perfect", ds.models, ds, ds, cp.paper_budgets(ds, 4), lambda seed: (est, est), 1,
      ...                    cp.ROWS[:2], options, 0, 0, None)
      >>> [(r["strategy"], round(r["auc"], 2)) for r in cell.rows]
      [('linear interpolation', 62.5), ('routing', 87.5)]
    """
    runs = {row: [] for row, _ in wanted}
    extra = {row: dict(auc_constant=[], fit_gain=[], seconds=0.0, infeasible=0) for row, _ in wanted}
    m = test_ds.n_models
    for seed in range(seeds):
        fit_est, test_est = estimates(seed)
        for row, strategy in wanted:
            if progress:
                progress(f"pool {spec}, {label}, seed {seed}: {row}")
            t0 = time.perf_counter()
            if strategy is None:
                runs[row].append(baseline_outcomes(test_ds, budgets))
                continue
            kw = {}
            if strategy == "cascade_routing":
                kw = dict(max_depth=min(options["max_depth"], m), samples=options["samples"])
            elif strategy == "cascade":
                kw = dict(samples=options["samples"])
            if options.get("confidence") is not None:
                kw.update(confidence=options["confidence"], holdout=test_ds.n_queries)
            if options.get("choose", "all") != "all" and strategy != "routing":
                kw.update(choose=options["choose"])
            f = fit(fit_ds, fit_est, budgets, strategy, per_step=options["per_step"],
                    candidates=options["candidates"], grid=options["grid"], seed=seed, **kw)
            ev, *ec = evaluate_many([f] + ([f.constant] if f.constant is not None else []), test_ds, test_est,
                                    per_query=True)
            runs[row].append(Outcomes(ev.query_cost, ev.query_quality))
            extra[row]["infeasible"] += int((~f.feasible).sum())
            if ec:
                extra[row]["auc_constant"].append(curve_auc(ec[0].cost, ec[0].quality, test_ds))
                extra[row]["fit_gain"].append(float(np.nanmean(f.quality - f.constant_quality)) * 100)
            extra[row]["seconds"] += time.perf_counter() - t0
    boot = bootstrap(runs, test_ds, n_boot=n_boot, seed=boot_seed) if REFERENCE in runs and n_boot > 0 else None
    rows, curves = [], {}
    for row, strategy in wanted:
        per_seed = [_mean_auc([o], test_ds) for o in runs[row]]
        o0 = runs[row][0]
        curves[row] = (np.mean(o0.cost, axis=1), np.mean(o0.quality, axis=1))
        out = dict(pool=spec, noise=label, models=len(names), seeds=seeds, strategy=row,
                   auc=float(np.mean(per_seed)), auc_sd=float(np.std(per_seed)) if seeds > 1 else float("nan"),
                   diff=float("nan"), ci_low=float("nan"), ci_high=float("nan"),
                   auc_constant=(float(np.mean(extra[row]["auc_constant"])) if extra[row]["auc_constant"]
                                 else float("nan")),
                   fit_gain=float(np.mean(extra[row]["fit_gain"])) if extra[row]["fit_gain"] else float("nan"),
                   seconds=round(extra[row]["seconds"], 2),
                   infeasible=(extra[row]["infeasible"] / seeds if strategy is not None else
                               float(np.mean([np.isnan(o.cost[:, 0]).sum() for o in runs[row]]))),
                   budgets=int(budgets.size))
        if boot is not None:
            out.update(diff=boot[row]["diff"], ci_low=boot[row]["low"], ci_high=boot[row]["high"])
        rows.append(out)
    return Cell(spec, label, names, rows, curves, test_ds)


def markdown(cells: list[Cell]) -> str:
    """The paper's table layout: one row per strategy, one column per (pool, noise) cell, AUC (x100); then
    the differences to cascade routing with their paired bootstrap 95% intervals.

    Args:
      cells: :class:`Cell` from :func:`reproduce` (every cell with the same rows).

    Returns:
      Markdown text ("" for no cells); the best AUC of each cell in bold.

    Example:
      >>> import cascjax, cascjax.protocol as cp
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]] * 4, [[1, 2]] * 16, models=["small", "big"])
      >>> cells = cp.reproduce(ds, pools=("all",), noises=("low",), strategies=("routing",), fit_fraction=0.5,
      ...                      per_segment=8, n_boot=0)
      >>> lines = cp.markdown(cells).splitlines()
      >>> for line in lines[:4]:
      ...     print(line)
      AUC (x100) on the test split:
      <BLANKLINE>
      | strategy | all, low |
      |---|---|
      >>> [line.split(" | ")[0] for line in lines[4:6]]   # then one row per strategy, AUC per cell
      ['| linear interpolation', '| routing']
    """
    if not cells:
        return ""
    heads = [f"{c.pool} models, {c.noise}" if c.pool.isdigit() else f"{c.pool}, {c.noise}" for c in cells]
    labels = [r["strategy"] for r in cells[0].rows]
    seeds = cells[0].rows[0]["seeds"]
    lines = [f"AUC (x100) on the test split{'' if seeds == 1 else f', mean over {seeds} noise seeds'}:", "",
             "| strategy | " + " | ".join(heads) + " |", "|---|" + "---|" * len(cells)]
    for i, label in enumerate(labels):
        vals = []
        for c in cells:
            best = max(r["auc"] for r in c.rows)
            v = c.rows[i]["auc"]
            vals.append(f"**{v:.2f}**" if v == best else f"{v:.2f}")
        lines.append(f"| {label} | " + " | ".join(vals) + " |")
    if any(np.isfinite(r["diff"]) for c in cells for r in c.rows):
        lines += ["", "Difference to cascade routing (AUC points), paired bootstrap 95% interval:", "",
                  "| strategy | " + " | ".join(heads) + " |", "|---|" + "---|" * len(cells)]
        for i, label in enumerate(labels):
            if label == REFERENCE:
                continue
            vals = [f"{c.rows[i]['diff']:+.2f} [{c.rows[i]['ci_low']:+.2f}, {c.rows[i]['ci_high']:+.2f}]"
                    for c in cells]
            lines.append(f"| {label} | " + " | ".join(vals) + " |")
    short = [(c, r) for c in cells for r in c.rows if r["infeasible"] > 0]
    if short:
        lines += ["", "Budgets infeasible on the fit split (left out of the curve, never exceeded): " + "; ".join(
            f"{c.pool}, {c.noise}, {r['strategy']}: {r['infeasible']:g} of {r['budgets']}" for c, r in short)]
    per_step = [(c, r) for c in cells for r in c.rows if np.isfinite(r["auc_constant"])]
    if per_step:
        lines += ["", "Per-step λ (θ) against one λ (θ) for every step: test AUC (fit-quality gain, points):", "",
                  "| cell | strategy | per-step | constant | fit gain |", "|---|---|---|---|---|"]
        for c, r in per_step:
            lines.append(f"| {c.pool}, {c.noise} | {r['strategy']} | {r['auc']:.2f} | {r['auc_constant']:.2f} | "
                         f"{r['fit_gain']:+.3f} |")
    return "\n".join(lines) + "\n"
