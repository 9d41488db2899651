"""Fitting strategies to budgets on a fit split and evaluating them on a test split (DESIGN section 5).

For a grid of budgets B (mean cost per query) at once, :func:`fit` chooses the strategy's parameters — one λ
for every step or a λ per step (θ for the threshold cascade) — and γ, maximising the fit split's quality with
fit cost ≤ B. Every method contributes *candidate* parameter vectors, each evaluated on the fit split in one
vmapped sweep:

* ``constant``: a dense data-driven grid (:func:`cascjax.lambda_grid`, :func:`cascjax.threshold_grid`), then
  for every budget the two grid points that bracket it are refined by bisection, all budgets in one sweep per
  iteration;
* ``search`` (per-step): thousands of random per-step vectors in one sweep — log-uniform over the grid's
  range, and perturbations of the constant grid;
* ``gradient`` (per-step): for every budget (vmapped), Adam (optax) on the smoothed objective of
  :mod:`cascjax._soft` — softmax over the candidates with a temperature annealed towards zero — and a
  Lagrange multiplier on the budget (dual ascent); the iterates become candidates.

Then, for every budget, the best γ-mixture of two candidates that bracket B in cost (one coin per query, so
cost and quality mix linearly — Theorem 1 of the paper): the upper concave hull of all candidates' (cost,
quality) points at B. A budget below every candidate's cost is infeasible and reported so (``feasible`` False,
NaN), never exceeded; a budget above the costliest useful candidate gets the best candidate (cost < B).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from ._checks import check_estimates
from ._data import Dataset
from ._errors import CascjaxError
from ._estimates import Estimates
from ._fit_gradient import _gradient, _hull_slope
from ._fit_search import _bisect, _search, _select, _stack
from ._lambda_grid import lambda_grid, threshold_grid
from ._sweep import STRATEGIES, sweep

METHODS = ("constant", "search", "gradient")
#: The fewest fit queries a fit accepts.
MIN_FIT_QUERIES = 2


class Fitted(NamedTuple):
    """Strategies fitted to budgets: for budget b, run parameters ``hi[b]`` with probability ``gamma[b]`` and
    ``lo[b]`` otherwise (one coin per query). Array fields are NumPy, [B] unless noted.

    Attributes:
      strategy: the strategy name (one of :data:`cascjax.STRATEGIES`).
      budget: [B] the budgets.
      lo: [B, D] λ per step (θ for the threshold cascade; D = 1 for routing) of the cheaper strategy.
      hi: [B, D] the costlier strategy (equal to ``lo`` where no mixing is needed).
      gamma: [B] probability of ``hi``.
      cost: [B] fit-split expected cost (= budget where two strategies are mixed; NaN where infeasible).
      quality: [B] fit-split expected quality (NaN where infeasible).
      feasible: [B] bool: some candidate costs at most B on the fit split.
      source: [B, 2] the method (``"constant"``, ``"search"``, ``"gradient"``) of ``lo`` and ``hi``.
      constant_quality: [B] the best fit quality with one λ (θ) for every step only: ``quality −
        constant_quality`` is what per-step parameters gained on the fit split.
      options: the strategy options used (``max_depth``, ``samples``, ...), reused by :func:`evaluate`.
      models: the fit split's model names; :func:`evaluate` requires the same.
      constant: the fit restricted to one λ (θ) for every step (a :class:`Fitted` with ``constant=None``), to
        compare per-step and constant parameters on a test split; None when it is this fit itself.
      chosen: which candidates the fit kept: ``"all"`` (every method's, the paper's), or with
        ``fit(..., choose="validation")`` ``"constant"`` or ``"per-step"``.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4, models=["small", "big"])
      >>> f = cascjax.fit(ds, cascjax.perfect_estimates(ds), [0.5, 1.25, 2.0], "routing")   # B = 3 budgets
      >>> f.lo.shape, f.hi.shape, f.gamma.shape, f.source.shape   # [B, D] (D = 1 for routing), [B], [B, 2]
      ((3, 1), (3, 1), (3,), (3, 2))
      >>> f.feasible.tolist(), f.gamma.tolist(), f.cost.tolist()   # 0.5 < the cheapest cost 1; 2.0 > the dearest
      ([False, True, True], [0.0, 0.5, 0.0], [nan, 1.25, 1.5])
    """

    strategy: str
    budget: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    gamma: np.ndarray
    cost: np.ndarray
    quality: np.ndarray
    feasible: np.ndarray
    source: np.ndarray
    constant_quality: np.ndarray
    options: dict
    models: tuple = ()
    constant: "Fitted | None" = None
    chosen: str = "all"


class Evaluation(NamedTuple):
    """Fitted strategies evaluated on a split: expected outcomes of the γ-mixtures. [B] unless noted.

    Attributes:
      budget: [B] the budgets fitted for.
      cost: [B] expected mean cost (NaN where the fit was infeasible).
      quality: [B] expected mean quality.
      feasible: [B] bool, as fitted.
      query_cost: [B, N] expected cost of each query (``per_query=True``), else None.
      query_quality: [B, N] expected quality of each query, else None.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4, models=["small", "big"])
      >>> est = cascjax.perfect_estimates(ds)
      >>> f = cascjax.fit(ds, est, [0.5, 1.25, 2.0], "routing")
      >>> ev = cascjax.evaluate(f, ds, est, per_query=True)
      >>> ev.cost.shape, ev.query_quality.shape   # [B], [B, N]
      ((3,), (3, 4))
      >>> ev.query_quality[1].tolist()   # γ = 1/2: queries 0 and 2 get the better model half of the time
      [0.5, 1.0, 0.5, 1.0]
    """

    budget: np.ndarray
    cost: np.ndarray
    quality: np.ndarray
    feasible: np.ndarray
    query_cost: np.ndarray | None = None
    query_quality: np.ndarray | None = None


def fit(ds: Dataset, est: Estimates, budgets, strategy: str = "cascade_routing", *,
        per_step=("search",), grid: int = 256, bisect: int = 8, candidates: int = 512, seed: int = 0,
        steps: int = 300, learning_rate: float = 0.05, max_depth: int | None = None, samples: int = 64,
        no_deviation: bool = False, force_order: bool = False, greedy: bool = False, prune: bool = True,
        tie_band: str = "score", chunk_size: int | None = None, memory: float | None = None,
        devices=None, confidence: float | None = None, holdout: int | None = None, choose: str = "all") -> Fitted:
    """Fits a strategy to every budget of a grid at once on ``ds`` (the fit split) and its estimates.

    Args:
      ds: the fit split, ``quality`` and ``cost`` [N, M].
      est: its estimates, fields [N, M].
      budgets: [B] budgets (mean cost per query, the dataset's cost unit).
      strategy: one of ``"routing"``, ``"cascade"``, ``"cascade_routing"``, ``"threshold_cascade"``.
      per_step: which per-step methods to add to the constant-λ fit: a subset of ``("search", "gradient")``
        (ignored for routing, which has one step, and for ``max_depth=1``). ``()``: constant λ only.
      grid: points of the constant grid (for λ: ``grid − 2`` data-driven values and two far beyond them, so
        the cheapest strategy is a candidate).
      bisect: bisection iterations refining the constant λ (θ) around each budget (8: neighbouring grid λ
        differ by ~3%, so the bracket shrinks to ~1e-4 relative).
      candidates: random per-step vectors of the ``search`` method (one sweep). Per-step vectors reach many
        more cascade-routing states than a constant grid, so they cost more per vector.
      seed: seeds the search's vectors.
      steps: Adam steps of the ``gradient`` method (τ annealed geometrically from 0.05 × the quality
        scale to 1e-4 of it; the budget's multiplier by dual ascent).
      learning_rate: Adam's step size on log λ (on θ in units of 1/20 of the threshold grid's range).
      max_depth, samples, no_deviation, force_order, greedy, prune: the strategy's options, as in
        :func:`cascjax.sweep`.
      tie_band: where the tie tolerance applies, as in :func:`cascjax.sweep`: ``"score"`` (default) or
        ``"lambda"`` (routing and the cascade: the exact paths' decisions); kept for :func:`evaluate`.
      chunk_size, memory, devices: how the sweeps process the query axis (chunks bounding memory, sharding
        over devices), as in :func:`cascjax.sweep`; kept in ``Fitted.options`` for :func:`evaluate`. (The
        ``gradient`` method's smoothed objective runs on the whole fit split at once.)
      confidence: None (each budget holds in expectation on the fit split), or a probability in [0.5, 1): the
        budgets hold on new data — the fitted mixture's upper confidence bound on the held-out mean cost
        (:mod:`cascjax._confidence`, from its per-query costs on the fit split) is ≤ B. Fitted by shrinking
        each budget by the bound's margin and fitting again until the bound holds (a few rounds); ``budget``
        reports the budgets asked, ``cost`` the fit-split cost (below them by the margin); ``constant`` is
        the constant-λ fit of the last round.
      holdout: with ``confidence``: how many new queries the mean cost is over (default None: the population).
      choose: ``"all"`` (default, the paper's): every method's candidates compete on the fit split.
        ``"validation"``: per-step parameters fitted on ~150 queries overfit (on held-out RouterBench rows
        cascade routing with one constant λ beat per-step λ, 85.31 vs 83.95 AUC), so the fit split is halved
        (by ``seed``), constant and per-step λ are fitted on one half and scored on the other (mean quality
        over the budgets both meet there), and the winner is refitted on the whole fit split; ``chosen``
        reports it.

    Returns:
      A :class:`Fitted`; :func:`evaluate` runs it on another split.

    Example:
      >>> import jax, cascjax
      >>> fit_ds, test_ds = cascjax.load_example().split(0.05, seed=42)
      >>> est = cascjax.perfect_estimates(fit_ds)
      >>> f = cascjax.fit(fit_ds, est, [1e-6, 1e-4, 3e-4], "routing")
      >>> f.feasible.tolist()                          # 1e-6 is below every strategy's cost: reported, not spent
      [False, True, True]
      >>> bool((f.cost[1:] <= f.budget[1:]).all())
      True
    """
    kw = dict(per_step=per_step, grid=grid, bisect=bisect, candidates=candidates, seed=seed, steps=steps,
              learning_rate=learning_rate, max_depth=max_depth, samples=samples, no_deviation=no_deviation,
              force_order=force_order, greedy=greedy, prune=prune, tie_band=tie_band, chunk_size=chunk_size,
              memory=memory, devices=devices)
    if choose not in ("all", "validation"):
        raise CascjaxError(f"unknown choose {choose!r}; choose 'all' or 'validation'")
    chosen = "all"
    if choose == "validation" and _check_methods(per_step) and strategy != "routing" and max_depth != 1:
        chosen = _validate(ds, est, budgets, strategy, kw)
        kw["per_step"] = per_step if chosen == "per-step" else ()
    if confidence is None:
        return _fit(ds, est, budgets, strategy, **kw)._replace(chosen=chosen)
    from ._confidence import bound, check_confidence

    check_confidence(confidence, holdout)
    b = _check_budgets(budgets)
    target = b.copy()
    for _ in range(CONFIDENCE_ROUNDS):
        fitted = _fit(ds, est, target, strategy, **kw)
        # Each budget's two strategies per query on the fit split: the moments of the mixture's cost.
        lo, hi = (np.asarray(e.query_cost, np.float64) for e in evaluate_many(
            [fitted._replace(gamma=np.full(b.size, g)) for g in (0.0, 1.0)], ds, est, per_query=True))
        ucb = bound(lo.mean(1), (lo ** 2).mean(1), hi.mean(1), (hi ** 2).mean(1), np.asarray(fitted.gamma),
                    ds.n_queries, float(confidence), holdout)
        over = np.asarray(fitted.feasible) & (ucb > b)
        if not over.any():
            break
        target = np.where(over, target - (ucb - b) * 1.01, target)  # the margin, and 1 % of it for its growth
    else:  # still over after the last round: not feasible at this confidence
        fitted = fitted._replace(feasible=np.asarray(fitted.feasible) & ~over)
    return fitted._replace(budget=b, chosen=chosen)


def _validate(ds, est, budgets, strategy, kw) -> str:
    """``"per-step"`` or ``"constant"``: fitted on one half of the fit split, the better on the other half
    (mean quality over the budgets both meet there; constant on a tie)."""
    rng = np.random.default_rng(kw["seed"])
    perm = rng.permutation(ds.n_queries)
    half = ds.n_queries // 2
    if half < MIN_FIT_QUERIES:
        raise CascjaxError(f"choose='validation' halves the fit split: it needs at least {2 * MIN_FIT_QUERIES} "
                           f"queries, got {ds.n_queries}")
    train, held = np.sort(perm[:half]), np.sort(perm[half:])
    fitted = _fit(ds.take(train), est.take(train), budgets, strategy, **kw)
    if fitted.constant is None:  # no per-step method applied (depth 1)
        return "constant"
    per_step, constant = evaluate_many([fitted, fitted.constant], ds.take(held), est.take(held))
    b = _check_budgets(budgets)
    both = (np.asarray(per_step.cost) <= b) & (np.asarray(constant.cost) <= b)
    if not both.any():
        return "constant"
    gain = np.mean(np.asarray(per_step.quality)[both] - np.asarray(constant.quality)[both])
    return "per-step" if gain > 0 else "constant"


#: Rounds of :func:`fit` with ``confidence`` (shrink each budget by its bound's margin, fit again).
CONFIDENCE_ROUNDS = 8


def _fit(ds, est, budgets, strategy, *, per_step, grid, bisect, candidates, seed, steps, learning_rate,
         max_depth, samples, no_deviation, force_order, greedy, prune, tie_band, chunk_size, memory,
         devices) -> Fitted:
    """:func:`fit` with budgets that hold in expectation on the fit split."""
    if strategy not in STRATEGIES:
        raise CascjaxError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    if ds.n_queries < MIN_FIT_QUERIES:
        raise CascjaxError(f"a fit split needs at least {MIN_FIT_QUERIES} queries, got {ds.n_queries}")
    check_estimates(ds, est)
    per_step = _check_methods(per_step)
    b = _check_budgets(budgets)
    threshold = strategy == "threshold_cascade"
    if strategy == "routing":
        if max_depth not in (None, 1):
            raise CascjaxError(f"routing runs one model per query: max_depth must be 1 or None, got {max_depth!r}")
        depth = 1
    else:
        from ._supermodels import check_depth

        depth = check_depth(ds.n_models, max_depth, candidates=strategy == "cascade_routing" and not greedy)
    # The sweep options each strategy takes.
    options = {"routing": {}, "threshold_cascade": dict(max_depth=max_depth),
               "cascade": dict(max_depth=max_depth, samples=samples, no_deviation=no_deviation),
               "cascade_routing": dict(max_depth=max_depth, samples=samples, no_deviation=no_deviation,
                                       force_order=force_order, greedy=greedy, prune=prune)}[strategy]
    if tie_band != "score":  # sweep checks it (and which strategies take "lambda")
        options["tie_band"] = tie_band
    options.update(chunk_size=chunk_size, memory=memory, devices=devices)
    run = _runner(ds, est, strategy, options)

    # Constant: grid, then bisection around every budget.
    if threshold:
        values = threshold_grid(est, max(grid, 3), max_depth=depth)
    else:  # beyond the data-driven range, λ large enough for the cheapest strategy (one model, cheapest ĉ)
        base = lambda_grid(est, max(grid - 2, 2))
        values = np.concatenate([base, base[-1] * np.array([1e3, 1e6])])
    params = np.repeat(values[:, None], depth, axis=1)
    cost, quality = run(params)
    pool = [(params, cost, quality, "constant")]
    pool.append(_bisect(run, values, cost, quality, b, bisect, depth, threshold))
    const = _select(*_stack(pool), b)

    if depth > 1:
        if "search" in per_step:
            params = _search(values if threshold else base, candidates, depth, threshold, seed)
            pool.append((params, *run(params), "search"))
        if "gradient" in per_step:
            stacked = _stack(pool)
            start = _select(*stacked, b)
            slope = _hull_slope(stacked[1], stacked[2], b)
            params = _gradient(ds, est, strategy, options, depth, values, b, start, slope, steps, learning_rate)
            pool.append((params, *run(params), "gradient"))
    constant = Fitted(strategy, b, *const, const[4], options, tuple(ds.models))
    if len(pool) == 2:
        return constant
    return Fitted(strategy, b, *_select(*_stack(pool), b), const[4], options, tuple(ds.models), constant)


def evaluate(fitted: Fitted, ds: Dataset, est: Estimates, *, per_query: bool = False) -> Evaluation:
    """Runs fitted strategies on ``ds`` (e.g. the test split) with its estimates; γ mixes in expectation.

    Args:
      fitted: from :func:`fit`.
      ds: the split to evaluate on, [N, M] (same models as the fit).
      est: its estimates, fields [N, M].
      per_query: also return each query's expected cost and quality [B, N] (for a paired bootstrap).

    Returns:
      An :class:`Evaluation`: ``cost``, ``quality``, ``feasible`` [B] (and ``query_cost``, ``query_quality``
      [B, N] with ``per_query``).

    Example:
      >>> import jax, cascjax
      >>> fit_ds, test_ds = cascjax.load_example().split(0.05, seed=42)
      >>> f = cascjax.fit(fit_ds, cascjax.perfect_estimates(fit_ds), [2e-4], "routing")
      >>> ev = cascjax.evaluate(f, test_ds, cascjax.perfect_estimates(test_ds))
      >>> bool(ev.cost[0] < 2.2e-4)
      True
    """
    return evaluate_many([fitted], ds, est, per_query=per_query)[0]


def evaluate_many(fits, ds: Dataset, est: Estimates, *, per_query: bool = False) -> list[Evaluation]:
    """:func:`evaluate` for several fits of one strategy with the same options (e.g. a fit and its
    ``constant``) in one sweep over their distinct parameter vectors (neighbouring budgets share them)."""
    for fitted in fits:
        if not isinstance(fitted, Fitted):
            raise CascjaxError(f"evaluate takes the result of cascjax.fit, got {type(fitted).__name__}")
        if tuple(ds.models) != tuple(fitted.models):
            raise CascjaxError(f"the strategy was fitted on models {list(fitted.models)} but the dataset has "
                               f"{list(ds.models)}; evaluate on the same pool as the fit")
        if (fitted.strategy, fitted.options) != (fits[0].strategy, fits[0].options):
            raise CascjaxError("evaluate_many needs fits of one strategy with the same options")
    check_estimates(ds, est)
    rows = []
    for fitted in fits:
        ok = fitted.feasible
        fill = fitted.lo[np.argmax(ok)] if ok.any() else np.zeros(fitted.lo.shape[1])
        rows += [np.where(ok[:, None], fitted.lo, fill), np.where(ok[:, None], fitted.hi, fill)]
    unique, index = np.unique(np.concatenate(rows), axis=0, return_inverse=True)
    index = index.reshape(-1)
    curve = _runner(ds, est, fits[0].strategy, fits[0].options, curve=True, per_query=per_query)(unique)
    c = np.asarray(curve.cost, np.float64)[index]
    q = np.asarray(curve.quality, np.float64)[index]
    if per_query:
        qc = np.asarray(curve.query_cost, np.float64)[index]
        qq = _answered(ds, curve.choice)[index]
    out, at = [], 0
    for fitted in fits:
        nb, ok, g = fitted.budget.shape[0], fitted.feasible, fitted.gamma
        lo, hi = slice(at, at + nb), slice(at + nb, at + 2 * nb)
        at += 2 * nb
        cost = np.where(ok, (1 - g) * c[lo] + g * c[hi], np.nan)
        quality = np.where(ok, (1 - g) * q[lo] + g * q[hi], np.nan)
        if not per_query:
            out.append(Evaluation(fitted.budget, cost, quality, ok))
            continue
        gq, okq = g[:, None], ok[:, None]
        out.append(Evaluation(fitted.budget, cost, quality, ok,
                              np.where(okq, (1 - gq) * qc[lo] + gq * qc[hi], np.nan),
                              np.where(okq, (1 - gq) * qq[lo] + gq * qq[hi], np.nan)))
    return out


def _answered(ds: Dataset, choice) -> np.ndarray:
    """[L, N] true quality of the answering model."""
    quality = np.asarray(ds.quality, np.float64)
    choice = np.asarray(choice)
    return quality[np.arange(quality.shape[0])[None, :], choice]


def _runner(ds, est, strategy, options, *, curve=False, per_query=False):
    """params [P, D] → fit (cost [P], quality [P]) (or the Curve), MIN ties, one sweep."""

    def run(params):
        # Pad to a power of two (repeating the last row) so that a few shapes are compiled, not one per call.
        p = params.shape[0]
        size = max(16, 1 << (p - 1).bit_length())
        padded = np.concatenate([params, np.repeat(params[-1:], size - p, axis=0)])
        lam = padded[:, 0] if strategy == "routing" else padded
        out = sweep(ds, est, lam, strategy, "min", return_choices=per_query, **options)
        out = jax.tree.map(lambda a: None if a is None else a[:p], out)
        if curve:
            return out
        return np.asarray(out.cost, np.float64), np.asarray(out.quality, np.float64)

    return run


def _check_methods(per_step) -> tuple:
    if isinstance(per_step, str):
        per_step = (per_step,)
    per_step = tuple(per_step or ())
    for m in per_step:
        if m not in METHODS[1:]:
            raise CascjaxError(f"unknown per-step method {m!r}; choose from {list(METHODS[1:])}")
    return per_step


def _check_budgets(budgets) -> np.ndarray:
    b = np.atleast_1d(np.asarray(budgets, dtype=np.float64))
    if b.ndim != 1 or b.size == 0:
        raise CascjaxError(f"budgets must be a non-empty 1-D array, got shape {b.shape}")
    if not np.isfinite(b).all():
        raise CascjaxError(f"budgets must be finite numbers (position {int(np.argmin(np.isfinite(b)))} is not)")
    return b
