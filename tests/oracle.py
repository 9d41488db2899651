"""Obviously-correct NumPy reference implementations (slow loops) that the JAX kernels are checked against.

Everything here works one query, one λ, one candidate at a time, in float64, following DESIGN section 4
literally. Nothing is vectorised on purpose: these are the specification in executable form.
"""

from __future__ import annotations

import numpy as np

TIE_ULPS = 32


def select(quality, cost, lam, rtol, tie_max):
    """The decision rule for one query at one λ: index of the winning candidate."""
    scores = [q - lam * c for q, c in zip(quality, cost)]
    best = max(scores)
    tol = rtol * (max(abs(q) for q in quality) + lam * max(abs(c) for c in cost))
    tied = [i for i, s in enumerate(scores) if s >= best - tol]
    ctol = rtol * max(abs(c) for c in cost)
    if tie_max:
        target = max(cost[i] for i in tied)
        return min(i for i in tied if cost[i] >= target - ctol)
    target = min(cost[i] for i in tied)
    return min(i for i in tied if cost[i] <= target + ctol)


def routing(quality, cost, mu, c_hat, lambdas, tie="min", rtol=None):
    """Routing by loops: for each λ and query, the chosen model; realised mean cost and quality.

    Returns:
      (cost [L], quality [L], choice [L, N]) as float64/int arrays.
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

    Returns:
      The optimal mean quality, or None if the budget is infeasible.
    """
    from scipy.optimize import linprog

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
    (then g decreases without bound).
    """
    quality, cost = np.asarray(quality, np.float64), np.asarray(cost, np.float64)
    n = quality.shape[0]
    # Mean costs summed in different orders differ by a few ulps: the same 32-ulp slack as the kernels.
    if budget < sum(min(row) for row in cost) / n - TIE_ULPS * np.finfo(np.float64).eps * cost.max():
        return None
    best = None
    for lam in [0.0, *breakpoints(quality, cost)]:
        g = sum(max(q - lam * c for q, c in zip(qs, cs)) for qs, cs in zip(quality, cost)) / n + lam * budget
        best = g if best is None else min(best, g)
    return best


# -- supermodels (DESIGN section 3) ---------------------------------------------------------------------------

def candidates(n_models, max_depth):
    """Every non-empty set of at most ``max_depth`` models, as sorted tuples in lexicographic order."""
    out = []
    for mask in range(1, 1 << n_models):
        members = tuple(m for m in range(n_models) if mask >> m & 1)
        if len(members) <= max_depth:
            out.append(members)
    return sorted(out)


def expected_max(mu, scale, z, members):
    """E[max_{m in T} Y_m] for one supermodel T by the definition, one sample point at a time.

    ``scale`` is [M] standard deviations or an [M, M] factor L (Y_k = μ + L z_k). Exact cases as specified:
    μ_m for |T| = 1; max μ over T when no member deviates.
    """
    mu, scale, z = np.asarray(mu, np.float64), np.asarray(scale, np.float64), np.asarray(z, np.float64)
    m = len(mu)
    factor = np.diag(scale) if scale.ndim == 1 else scale
    if len(members) == 1:
        return float(mu[members[0]])
    if all(not np.any(factor[i] != 0) for i in members):
        return float(max(mu[i] for i in members))
    total = 0.0
    for zk in z:
        y = [mu[i] + sum(factor[i, j] * zk[j] for j in range(m)) for i in range(m)]
        total += max(y[i] for i in members)
    return total / len(z)


def allowed(n_models, max_depth, state, kind, step, force_order=False, greedy=False):
    """Cand(R) of DESIGN section 4 by its table row, one candidate at a time: a list of bools."""
    run = {m for m in range(n_models) if state >> m & 1}
    out = []
    for t in candidates(n_models, max_depth):
        t = set(t)
        if kind == "routing":
            ok = len(t) == 1
        elif kind == "cascade":
            ok = t == set(range(len(t))) and len(t) - 1 >= max(step - 1, 0)
        else:
            ok = run <= t
            if force_order and run:
                ok = ok and all(m > max(run) for m in t - run)
            if greedy:
                ok = ok and len(t - run) <= 1
        out.append(ok)
    return out


# -- strategies (DESIGN section 4) -----------------------------------------------------------------------------

def run_query(est, lam, kind, tie="min", max_depth=None, force_order=False, greedy=False, no_deviation=False,
              z=None, rtol=None, factor=None):
    """One query under one strategy and one λ (scalar, or one value per step): the models run, in order, and
    the answering model.

    ``est``: dict of [M] arrays ``mu_ante, mu_post, sd_ante, sd_post, c_ante, c_post`` for this query.
    ``kind``: "routing", "cascade", "cascade_routing" or "threshold_cascade" (then λ are thresholds θ).
    ``z``: [K, M] shared normal points for expected maxima.
    ``factor``: optional [2^M, M, M] table of L(R) with L Lᵀ = Σ(R) per run-pattern R (bit m = model m run);
    when given, state R's deviations are L(R) z instead of the independent σ.
    """
    m = len(est["mu_post"])
    depth = 1 if kind == "routing" else (max_depth or m)
    if rtol is None:
        rtol = TIE_ULPS * np.finfo(np.float64).eps
    lam_at = (lambda j: float(lam[j])) if np.ndim(lam) else (lambda j: float(lam))
    run: list[int] = []
    if kind == "threshold_cascade":
        for j in range(depth):
            run.append(j)
            if not est["mu_post"][j] < lam_at(j):
                break
        return run, run[-1]
    table = candidates(m, depth)  # |T| ≤ D: a cascade's prefixes too
    while len(run) < depth:
        j = len(run)
        state = set(run)
        mu = [est["mu_post"][i] if i in state else est["mu_ante"][i] for i in range(m)]
        sd = [0.0 if no_deviation else (est["sd_post"][i] if i in state else est["sd_ante"][i]) for i in range(m)]
        if factor is not None and not no_deviation:
            sd = np.asarray(factor)[sum(1 << i for i in state)]  # L(R): correlated deviations
        ch = [est["c_post"][i] if i in state else est["c_ante"][i] for i in range(m)]
        cands, qs, cs = [], [], []
        for t in table:
            ts = set(t)
            if kind == "routing":
                ok = len(t) == 1
            elif kind == "cascade":
                ok = ts == set(range(len(t))) and len(t) - 1 >= max(j - 1, 0)
            else:
                ok = state <= ts and (not force_order or not state or all(i > max(state) for i in ts - state))
                ok = ok and (not greedy or len(ts - state) <= 1)
            if ok:
                cands.append(ts)
                qs.append(expected_max(mu, sd, z, t))
                cs.append(sum(ch[i] for i in t))
        best = cands[select(qs, cs, lam_at(j), rtol, tie == "max")]
        if best == state:
            break
        run.append(min(best - state))
    answer = max(run, key=lambda i: (est["mu_post"][i], -i))  # highest post-hoc estimate, lower index on a tie
    return run, answer


def strategy(quality, cost, est, lambdas, kind, **options):
    """A strategy over a dataset at every λ (rows of ``lambdas``: scalars or per-step vectors).

    Returns:
      (cost [L], quality [L], ran [L], answered [L, M]): realised means over queries, mean number of models
      run, share of queries each model answered.
    """
    quality, cost = np.asarray(quality, np.float64), np.asarray(cost, np.float64)
    est = {k: np.asarray(v, np.float64) for k, v in est.items()}
    n, m = quality.shape
    out_c, out_q, out_r, out_a = [], [], [], []
    for lam in np.asarray(lambdas, np.float64):
        tc = tq = tr = 0.0
        answered = np.zeros(m)
        for i in range(n):
            run, answer = run_query({k: v[i] for k, v in est.items()}, lam, kind, **options)
            tc += sum(cost[i, r] for r in run)
            tq += quality[i, answer]
            tr += len(run)
            answered[answer] += 1
        out_c.append(tc / n)
        out_q.append(tq / n)
        out_r.append(tr / n)
        out_a.append(answered / n)
    return np.array(out_c), np.array(out_q), np.array(out_r), np.array(out_a)
