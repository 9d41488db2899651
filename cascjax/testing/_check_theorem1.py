"""The checks of Theorem 1 (the γ-mixture of two λ-routers is the routing LP's optimum) and of fitting to budgets
(a fitted strategy never exceeds its budget on the split it was fitted on)."""

from __future__ import annotations

import numpy as np

from .. import _checks, _curve, _estimates, _fit, _routing, _sweep
from .._data import Dataset
from . import _reference_routing
from ._properties import RTOL, _count, _fail, _needs_x64, _scale
from ._strategies import Instance


# -- Theorem 1 ---------------------------------------------------------------------------------------------

@_needs_x64
def check_theorem1(instance: Instance, budgets) -> None:
    """Theorem 1 on the router's own objective: quality ``est.quality_ante`` and cost ``est.cost_ante`` (the
    LP is over what the router sees; with perfect estimates that is the truth).

    At every budget the γ-mixture of :func:`cascjax.at_budget` on the exact routing path must spend at most B
    and reach the LP optimum (:func:`routing_lp` and :func:`routing_dual`); infeasible budgets must be
    flagged; and the sweep's MAX and MIN routers at the mixture's λ must be the path's.

    Args:
      instance: an :class:`Instance`; its estimates' ``quality_ante``, ``cost_ante`` [N, M] are used.
      budgets: [B] budgets (mean cost per query).

    Raises:
      PropertyFailed: naming the budget, the mixture and the LP optimum.

    Example:
      >>> import cascjax, cascjax.testing as ct
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> ct.check_theorem1(ct.Instance(ds, cascjax.perfect_estimates(ds)), [0.5, 1.25, 2.0])   # holds: no output
    """
    mu, c_hat = (np.asarray(a, np.float64) for a in _checks.routing_inputs(instance.estimates))  # row ∅ of a table
    world = Dataset.from_arrays(mu, c_hat, models=instance.dataset.models, sort=False)
    path = _routing.routing_path(world, _estimates.perfect_estimates(world))
    budgets = np.atleast_1d(np.asarray(budgets, np.float64))
    mix = _curve.at_budget(path, budgets)
    lam, lo, hi, gamma = (np.asarray(a) for a in (mix.lam, mix.lo, mix.hi, mix.gamma))
    pc, pq = np.asarray(path.cost, np.float64), np.asarray(path.quality, np.float64)
    tol = RTOL * _scale(mu, c_hat)
    dual = _reference_routing.routing_dual(mu, c_hat, budgets)
    # HiGHS works to absolute tolerances (1e-10): where costs differ by less than a millionth of the largest
    # cost its answer is not exact enough to compare with; the dual (exact, no solver) always is.
    gaps = np.diff(np.unique(np.concatenate([[0.0], c_hat.ravel()])))
    use_lp = gaps.size == 0 or gaps.min() >= 1e-6 * c_hat.max()
    for b, budget in enumerate(budgets):
        lp = _reference_routing.routing_lp(mu, c_hat, budget) if use_lp else None
        if np.isnan(dual[b]):
            if bool(mix.feasible[b]):
                _fail("theorem1", f"budget {budget!r} is below every strategy's cost but the mixture is feasible; "
                                  f"μ={mu.tolist()}, ĉ={c_hat.tolist()}")
            continue
        opt = float(dual[b])
        if lp is not None and abs(lp - opt) > 1e-7 * _scale(mu):
            _fail("theorem1", f"the LP solver ({lp}) and the dual ({opt}) disagree at budget {budget!r}: "
                              f"μ={mu.tolist()}, ĉ={c_hat.tolist()}")
        if not bool(mix.feasible[b]):
            _fail("theorem1", f"budget {budget!r} is feasible (LP optimum {opt}) but no mixture was found; "
                              f"μ={mu.tolist()}, ĉ={c_hat.tolist()}")
        g = float(gamma[b])
        cost = g * pc[hi[b]] + (1 - g) * pc[lo[b]]
        quality = g * pq[hi[b]] + (1 - g) * pq[lo[b]]
        if cost > budget + tol or abs(quality - opt) > tol:
            _fail("theorem1", f"at budget {budget!r}: the γ = {g} mixture of path points {int(hi[b])} and "
                              f"{int(lo[b])} costs {cost} with quality {quality}, the LP optimum is {opt}; "
                              f"μ={mu.tolist()}, ĉ={c_hat.tolist()}")
    # The mixture's λ: the sweep kernel's MAX and MIN routers are the path's (path_at), and the two mixed points
    # lie between them — they are s_MAX(λ) and s_MIN(λ) themselves unless several hull vertices share λ
    # (collinear points: every vertex between is optimal at λ too, mixing any two adjacent ones is Theorem 1's).
    ok = np.asarray(mix.feasible)  # an infeasible budget has no λ (NaN) and no mixture
    lam, lo, hi = lam[ok], lo[ok], hi[ok]
    if not ok.any():
        _count("theorem1", len(budgets))
        return
    perfect = _estimates.perfect_estimates(world)
    tie_cost = {t: (np.asarray(_sweep.sweep(world, perfect, lam, "routing", tie=t).cost, np.float64),
                    np.asarray(_curve.path_at(path, lam, t).cost, np.float64)) for t in ("max", "min")}
    for t, (kernel, on_path) in tie_cost.items():
        bad = np.abs(kernel - on_path) > tol
        if bad.any():
            b = int(np.argmax(bad))
            _fail("theorem1", f"at λ = {float(lam[b])!r} the sweep's {t.upper()} router costs {kernel[b]}, the "
                              f"path's {on_path[b]}; μ={mu.tolist()}, ĉ={c_hat.tolist()}")
    c_max, c_min = tie_cost["max"][0], tie_cost["min"][0]
    bad = (hi != lo) & ((pc[hi] > c_max + tol) | (pc[lo] < c_min - tol))
    if bad.any():
        b = int(np.argmax(bad))
        _fail("theorem1", f"at λ = {float(lam[b])!r} the mixed path points cost {pc[hi[b]]}, {pc[lo[b]]}, outside "
                          f"[s_MIN, s_MAX] = [{c_min[b]}, {c_max[b]}]; μ={mu.tolist()}, ĉ={c_hat.tolist()}")
    _count("theorem1", len(budgets))


# -- fitting ------------------------------------------------------------------------------------------------

@_needs_x64
def check_fit_budget(instance: Instance, budgets, strategy: str = "routing", **options) -> None:
    """A strategy fitted to budgets never exceeds them on the split it was fitted on: fitted and evaluated
    cost ≤ B at every feasible budget, NaN where a budget is flagged infeasible.

    Fits with :func:`cascjax.fit` on a small grid (16 points, 4 bisections, 16 search candidates).

    Args:
      instance: an :class:`Instance`, the fit split and its estimates [N, M].
      budgets: [B] budgets.
      strategy: one of ``cascjax.STRATEGIES``.
      options: ``per_step`` (default ``()``) and the strategy's options, passed to :func:`cascjax.fit`.

    Raises:
      PropertyFailed: naming the strategy, the budget and the cost found.

    Example:
      >>> import jax, cascjax.testing as ct
      >>> instance = ct.random_instance(jax.random.key(0), 4, 2)
      >>> ct.check_fit_budget(instance, [0.0, 0.25, 0.5])   # B = 3 (0.0 may be infeasible): holds
    """
    ds, est = instance
    budgets = np.atleast_1d(np.asarray(budgets, np.float64))
    fitted = _fit.fit(ds, est, budgets, strategy, per_step=options.pop("per_step", ()), grid=16, bisect=4,
                      candidates=16, **options)
    ev = _fit.evaluate(fitted, ds, est)
    tol = RTOL * _scale(ds.cost)
    for b, budget in enumerate(budgets):
        if fitted.feasible[b]:
            for what, value in (("fitted", fitted.cost[b]), ("evaluated", ev.cost[b])):
                if not value <= budget + tol:
                    _fail("fit_budget", f"{strategy} fitted to budget {budget!r} has {what} cost {value}; quality="
                                        f"{np.asarray(ds.quality).tolist()}, cost={np.asarray(ds.cost).tolist()}")
        elif not (np.isnan(ev.cost[b]) and np.isnan(fitted.cost[b])):
            _fail("fit_budget", f"{strategy}: budget {budget!r} is flagged infeasible but has cost {ev.cost[b]}")
    _count("fit_budget", len(budgets))
