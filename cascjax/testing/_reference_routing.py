"""Routing's obviously-correct references (slow loops, float64): the decision rule per query and λ, the
breakpoints of the exact path, and the optimal routing at a budget as a linear program (scipy) and by its dual.
Public through :mod:`cascjax.testing` (``reference_routing``, ``routing_lp``, ``routing_dual``).
"""

from __future__ import annotations

import numpy as np

from ._reference import TIE_ULPS, select


def reference_routing(quality, cost, mu, c_hat, lambdas, tie="min", rtol=None):
    """Routing by loops: for each λ and query, the chosen model; realised mean cost and quality.

    Args:
      quality, cost: [N, M] true quality and cost (score the decisions).
      mu, c_hat: [N, M] ex-ante quality and cost estimates (make them).
      lambdas: [L] λ values (or a scalar).
      tie: ``"min"`` or ``"max"``.
      rtol: relative tie tolerance (default 32·eps of float64).

    Returns:
      (cost [L], quality [L], choice [L, N]) as float64/int arrays.

    Example:
      >>> import numpy as np, cascjax.testing as ct
      >>> q, c = np.array([[0, 1], [1, 1], [0, 1], [1, 0]]), np.array([[1, 2]] * 4)
      >>> cost, quality, choice = ct.reference_routing(q, c, q, c, [0.0, 2.0])   # perfect estimates
      >>> cost.tolist(), quality.tolist(), choice.tolist()
      ([1.5, 1.0], [1.0, 0.5], [[1, 0, 1, 0], [0, 0, 0, 0]])
    """
    quality, cost = np.asarray(quality, np.float64), np.asarray(cost, np.float64)
    mu, c_hat = np.asarray(mu, np.float64), np.asarray(c_hat, np.float64)
    if rtol is None:
        rtol = TIE_ULPS * np.finfo(np.float64).eps
    n = quality.shape[0]
    out_c, out_q, choices = [], [], []
    for lam in np.atleast_1d(np.asarray(lambdas, np.float64)):
        row = []
        tot_c = tot_q = 0.0
        for i in range(n):
            m = select(list(mu[i]), list(c_hat[i]), float(lam), rtol, tie == "max")
            row.append(m)
            tot_c += cost[i, m]
            tot_q += quality[i, m]
        out_c.append(tot_c / n)
        out_q.append(tot_q / n)
        choices.append(row)
    return np.array(out_c), np.array(out_q), np.array(choices)


def breakpoints(mu, c_hat):
    """Every λ > 0 at which some query's routing choice can change: all pairwise slopes, sorted, unique."""
    mu, c_hat = np.asarray(mu, np.float64), np.asarray(c_hat, np.float64)
    out = set()
    for i in range(mu.shape[0]):
        for a in range(mu.shape[1]):
            for b in range(mu.shape[1]):
                if c_hat[i, a] > c_hat[i, b] and mu[i, a] > mu[i, b]:
                    out.add((mu[i, a] - mu[i, b]) / (c_hat[i, a] - c_hat[i, b]))
    return np.array(sorted(out))


def routing_lp(quality, cost, budget):
    """The routing linear program (perfect estimates), solved with scipy's HiGHS.

    max (1/N) Σ_n Σ_m x_nm q_nm   s.t.  Σ_m x_nm = 1 for every n,  (1/N) Σ x_nm c_nm ≤ budget,  x ≥ 0.

    Args:
      quality, cost: [N, M] quality and cost.
      budget: a scalar budget (mean cost per query).

    Returns:
      The optimal mean quality, or None if the budget is infeasible.

    Example:
      >>> import numpy as np, cascjax.testing as ct
      >>> q, c = np.array([[0, 1], [1, 1], [0, 1], [1, 0]]), np.array([[1, 2]] * 4)
      >>> round(ct.routing_lp(q, c, 1.25), 6), ct.routing_lp(q, c, 0.5)   # 0.5 is below every routing's cost
      (0.75, None)
    """
    try:
        from scipy.optimize import linprog
    except ImportError as error:
        raise ImportError("routing_lp needs scipy: pip install 'cascjax[testing]' (or use routing_dual)") from error

    quality, cost = np.asarray(quality, np.float64), np.asarray(cost, np.float64)
    n, m = quality.shape
    a_eq = np.zeros((n, n * m))
    for i in range(n):
        a_eq[i, i * m:(i + 1) * m] = 1.0
    scale = max(float(cost.max()), 1e-300)  # HiGHS tolerances are absolute: put the budget row in units of 1
    res = linprog(-quality.ravel() / n, A_ub=cost.ravel()[None] / (n * scale), b_ub=[budget / scale], A_eq=a_eq,
                  b_eq=np.ones(n), bounds=(0, None), method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    if res.status == 2:
        return None
    assert res.status == 0, res.message
    return -res.fun


def routing_dual(quality, cost, budget):
    """The same optimum from the LP's Lagrangian dual, by brute force over its kinks.

    g(λ) = (1/N) Σ_n max_m (q_nm − λ c_nm) + λ·B is convex and piecewise linear in λ ≥ 0 with kinks only at
    the pairwise breakpoints, so its minimum (= the LP optimum, by strong duality) is g at 0 or at a kink.
    No solver tolerances: exact up to float64 rounding. Returns None if B is below the cheapest mean cost
    (then g decreases without bound). ``budget`` may be an array: then an array with NaN where infeasible.

    Args:
      quality, cost: [N, M] quality and cost.
      budget: a scalar, or [B] budgets.

    Returns:
      A float or None (scalar budget); a [B] float64 array with NaN where infeasible (array budget).

    Example:
      >>> import numpy as np, cascjax.testing as ct
      >>> q, c = np.array([[0, 1], [1, 1], [0, 1], [1, 0]]), np.array([[1, 2]] * 4)
      >>> ct.routing_dual(q, c, 1.25), ct.routing_dual(q, c, [0.5, 1.25, 2.0]).tolist()
      (0.75, [nan, 0.75, 1.0])
    """
    quality, cost = np.asarray(quality, np.float64), np.asarray(cost, np.float64)
    n = quality.shape[0]
    budgets = np.atleast_1d(np.asarray(budget, np.float64))
    kinks = [0.0, *breakpoints(quality, cost)]
    # The first term of g does not depend on B: once per kink, by loops.
    first = [sum(max(q - lam * c for q, c in zip(qs, cs)) for qs, cs in zip(quality, cost)) / n for lam in kinks]
    # Mean costs summed in different orders differ by a few ulps: the same 32-ulp slack as the kernels.
    floor = sum(min(row) for row in cost) / n - TIE_ULPS * np.finfo(np.float64).eps * cost.max()
    out = np.array([min(f + lam * b for f, lam in zip(first, kinks)) if b >= floor else np.nan for b in budgets])
    if np.ndim(budget) == 0:
        return None if np.isnan(out[0]) else float(out[0])
    return out


# -- supermodels (DESIGN section 3) ---------------------------------------------------------------------------
