"""Obviously-correct NumPy reference implementations (slow loops) that the JAX kernels are checked against.

Everything here works one query, one λ, one candidate at a time, in float64, following DESIGN section 4
literally. Nothing is vectorised on purpose: these are the specification in executable form. Public through
:mod:`cascjax.testing` (``enumerate_candidates``, ``reference_run``, ``reference_sweep``,
``reference_expected_max``; routing's references are in :mod:`cascjax.testing._reference_routing`).
"""

from __future__ import annotations

from typing import NamedTuple

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


def candidates(n_models, max_depth):
    """Every non-empty set of at most ``max_depth`` models, as sorted tuples in lexicographic order."""
    out = []
    for mask in range(1, 1 << n_models):
        members = tuple(m for m in range(n_models) if mask >> m & 1)
        if len(members) <= max_depth:
            out.append(members)
    return sorted(out)


def reference_expected_max(mu, scale, z, members):
    """E[max_{m in T} Y_m] for one supermodel T by the definition, one sample point at a time.

    ``scale`` is [M] standard deviations or an [M, M] factor L (Y_k = μ + L z_k). Exact cases as specified:
    μ_m for |T| = 1; max μ over T when no member deviates.

    Args:
      mu: [M] means.
      scale: [M] standard deviations, or an [M, M] factor L.
      z: [K, M] standard normal points.
      members: T, a tuple of model indices.

    Returns:
      The mean over the K points of max_{m ∈ T} Y_m (a float, or a NumPy float64).

    Example:
      >>> import cascjax.testing as ct
      >>> z = [[-1.0, 0.0], [1.0, 0.0]]   # K = 2 points, M = 2
      >>> float(ct.reference_expected_max([0.0, 0.5], [1.0, 0.0], z, (0, 1)))   # mean of max(∓1, 0.5)
      0.75
      >>> ct.reference_expected_max([0.0, 0.5], [1.0, 0.0], z, (0,))     # one member: its mean, exactly
      0.0
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

def estimates_row(est, n: int | None = None) -> dict:
    """A :class:`cascjax.Estimates` as the dict of arrays the reference loops take (``mu_ante, mu_post,
    sd_ante, sd_post, c_ante, c_post``), float64: every query ([N, M] each), or query ``n`` ([M] each).

    Args:
      est: :class:`cascjax.Estimates`, fields [N, M]; or :class:`cascjax.StateEstimates`, then the dict holds
        ``mu, sd, c`` [N, 2^M, M] (or [2^M, M]): row R is what is seen once the models of R have run.
      n: a query index, or None for every query.

    Returns:
      A dict of six float64 NumPy arrays, [N, M] or [M] (three [N, 2^M, M] or [2^M, M] for a table).

    Example:
      >>> import cascjax, cascjax.testing as ct
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> row = ct.estimates_row(cascjax.perfect_estimates(ds), 0)
      >>> list(row), row["mu_ante"].tolist(), row["c_ante"].tolist()
      (['mu_ante', 'mu_post', 'sd_ante', 'sd_post', 'c_ante', 'c_post'], [0.0, 1.0], [1.0, 2.0])
    """
    if hasattr(est, "quality"):  # a StateEstimates table: per query [2^M, M] rows, row R = the models run
        fields = dict(mu=est.quality, sd=np.zeros(np.shape(est.quality)) if est.sd is None else est.sd, c=est.cost)
    else:
        fields = dict(mu_ante=est.quality_ante, mu_post=est.quality_post, sd_ante=est.sd_ante,
                      sd_post=est.sd_post, c_ante=est.cost_ante, c_post=est.cost_post)
    return {k: np.asarray(v, np.float64) if n is None else np.asarray(v, np.float64)[n] for k, v in fields.items()}


class Enumeration(NamedTuple):
    """Every candidate supermodel at one state, scored: the decision rule by exhaustive enumeration.

    Attributes:
      sets: the S candidates of the table (every non-empty set of at most D models), sorted tuples in
        lexicographic order (the rule's final tie order).
      allowed: [S] bool, T ∈ Cand(R) for the strategy.
      quality: [S] Q(n, R, T), the expected maximum (NaN where not allowed: not computed).
      cost: [S] C(n, R, T), the summed cost estimates.
      score: [S] Q − λ·C where allowed, −inf elsewhere.
      best: index of T* in ``sets``.
      next: the model run next (the lowest-index model of T* \\ R), or −1 if T* = R (stop).

    Example:
      >>> import numpy as np, cascjax.testing as ct
      >>> est = dict(mu_ante=np.array([0.5, 0.75]), mu_post=np.array([1.0, 0.75]), sd_ante=np.zeros(2),
      ...            sd_post=np.zeros(2), c_ante=np.array([0.125, 0.5]), c_post=np.array([0.125, 0.5]))
      >>> e = ct.enumerate_candidates(est, [], 0.5, z=np.zeros((1, 2)))   # S = 3 candidates
      >>> e.sets, e.allowed.tolist(), e.score.tolist()
      ([(0,), (0, 1), (1,)], [True, True, True], [0.4375, 0.4375, 0.5])
      >>> e.best, e.next
      (2, 1)
    """

    sets: list
    allowed: np.ndarray
    quality: np.ndarray
    cost: np.ndarray
    score: np.ndarray
    best: int
    next: int


def enumerate_candidates(est, state, lam, kind="cascade_routing", *, z, tie="min", max_depth=None,
                         force_order=False, greedy=False, no_deviation=False, rtol=None, factor=None) -> Enumeration:
    """The decision at one state by brute force: every candidate supermodel, its Q, C and score, and T*.

    Args:
      est: dict of [M] arrays ``mu_ante, mu_post, sd_ante, sd_post, c_ante, c_post`` for one query.
      state: the models already run (any iterable of indices); the step is j = |R|.
      lam: λ_j, the trade-off of this step (scalar).
      kind: ``"routing"``, ``"cascade"`` or ``"cascade_routing"`` (Cand(R) of DESIGN section 4).
      z: [K, M] shared standard points for the expected maxima.
      tie, max_depth, force_order, greedy, no_deviation: as :func:`cascjax.sweep`.
      rtol: relative tie tolerance (default 32·eps of float64).
      factor: optional [2^M, M, M] table of L(R), L Lᵀ = Σ(R) per run-pattern (correlated deviations).

    Returns:
      An :class:`Enumeration` over the S candidates of at most D models (``allowed``, ``quality``, ``cost``,
      ``score`` [S]), with T* and the model to run next.

    Example:
      >>> import numpy as np
      >>> est = dict(mu_ante=np.array([0.5, 0.8]), mu_post=np.array([0.9, 0.8]), sd_ante=np.zeros(2),
      ...            sd_post=np.zeros(2), c_ante=np.array([0.1, 0.4]), c_post=np.array([0.1, 0.4]))
      >>> e = enumerate_candidates(est, [], 0.5, z=np.zeros((1, 2)))
      >>> e.sets[e.best], e.next    # {1}: 0.8 − 0.2 beats {0}: 0.45 and {0, 1}: 0.55
      ((1,), 1)
    """
    m = _n_models(est)
    depth = 1 if kind == "routing" else (max_depth or m)
    if rtol is None:
        rtol = TIE_ULPS * np.finfo(np.float64).eps
    run = set(int(i) for i in state)
    j = len(run)
    mu, sd, ch = seen(est, run)
    if no_deviation:
        sd = [0.0] * m
    if factor is not None and not no_deviation:
        sd = np.asarray(factor)[sum(1 << i for i in run)]  # L(R): correlated deviations
    sets = candidates(m, depth)  # |T| ≤ D: a cascade's prefixes too
    ok, qs, cs = [], [], []
    for t in sets:
        ts = set(t)
        if kind == "routing":
            good = len(t) == 1
        elif kind == "cascade":
            good = ts == set(range(len(t))) and len(t) - 1 >= max(j - 1, 0)
        elif kind == "cascade_routing":
            good = run <= ts and (not force_order or not run or all(i > max(run) for i in ts - run))
            good = good and (not greedy or len(ts - run) <= 1)
        else:
            raise ValueError(f"unknown kind {kind!r}")
        ok.append(good)
        qs.append(reference_expected_max(mu, sd, z, t) if good else np.nan)
        cs.append(sum(ch[i] for i in t))
    allowed_idx = [i for i, good in enumerate(ok) if good]
    pick = select([qs[i] for i in allowed_idx], [cs[i] for i in allowed_idx], float(lam), rtol, tie == "max")
    best = allowed_idx[pick]
    new = set(sets[best]) - run
    score = np.where(ok, np.array(qs) - float(lam) * np.array(cs), -np.inf)  # NaN never reaches an allowed row
    return Enumeration(sets, np.array(ok), np.array(qs), np.array(cs), score, best, min(new) if new else -1)


def reference_run(est, lam, kind, tie="min", max_depth=None, force_order=False, greedy=False, no_deviation=False,
                  z=None, rtol=None, factor=None):
    """One query under one strategy and one λ (scalar, or one value per step): the models run, in order, and
    the answering model.

    ``est``: dict of [M] arrays ``mu_ante, mu_post, sd_ante, sd_post, c_ante, c_post`` for this query.
    ``kind``: "routing", "cascade", "cascade_routing" or "threshold_cascade" (then λ are thresholds θ).
    ``z``: [K, M] shared normal points for expected maxima.
    ``factor``: optional [2^M, M, M] table of L(R) with L Lᵀ = Σ(R) per run-pattern R (bit m = model m run);
    when given, state R's deviations are L(R) z instead of the independent σ.

    Args:
      est: dict of [M] arrays for one query (:func:`estimates_row` with ``n``).
      lam: λ (θ), a scalar or [D] one per step.
      kind: the strategy.
      tie, max_depth, force_order, greedy, no_deviation: as :func:`cascjax.sweep`.
      z: [K, M] shared points (not needed for routing and the threshold cascade).
      rtol: relative tie tolerance (default 32·eps of float64).
      factor: optional [2^M, M, M] correlated deviations.

    Returns:
      (run, answer): the list of models run, in order, and the answering model's index.

    Example:
      >>> import cascjax, numpy as np, cascjax.testing as ct
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> row = ct.estimates_row(cascjax.perfect_estimates(ds), 0)   # query 0: only model 1 is right
      >>> ct.reference_run(row, 0.5, "cascade_routing", z=np.zeros((1, 2)))   # worth its extra cost at λ = 0.5
      ([1], 1)
      >>> ct.reference_run(row, 2.0, "cascade_routing", z=np.zeros((1, 2)))
      ([0], 0)
      >>> ct.reference_run(row, 0.5, "threshold_cascade")   # θ = 0.5: model 0's 0 is below, continue
      ([0, 1], 1)
    """
    m = _n_models(est)
    depth = 1 if kind == "routing" else (max_depth or m)
    lam_at = (lambda j: float(lam[j])) if np.ndim(lam) else (lambda j: float(lam))
    run: list[int] = []
    if kind == "threshold_cascade":
        for j in range(depth):
            run.append(j)
            if not _post(est, run, j) < lam_at(j):  # model j's post-hoc estimate once 0..j have run
                break
        return run, run[-1]
    while len(run) < depth:
        nxt = enumerate_candidates(est, run, lam_at(len(run)), kind, z=z, tie=tie, max_depth=depth,
                                   force_order=force_order, greedy=greedy, no_deviation=no_deviation, rtol=rtol,
                                   factor=factor).next
        if nxt < 0:
            break
        run.append(nxt)
    answer = max(run, key=lambda i: (_post(est, run, i), -i))  # highest post-hoc estimate, lower index on a tie
    return run, answer


def seen(est, run) -> tuple:
    """What a strategy sees of one query once the models ``run`` have run: μ, σ, ĉ as lists of M floats —
    post-hoc values for run models, ex-ante otherwise; of a table (:func:`estimates_row` of a StateEstimates),
    the row of that set.

    Example:
      >>> import numpy as np
      >>> est = dict(mu_ante=np.array([0.5, 0.8]), mu_post=np.array([0.9, 0.8]), sd_ante=np.ones(2),
      ...            sd_post=np.zeros(2), c_ante=np.array([0.1, 0.4]), c_post=np.array([0.1, 0.4]))
      >>> seen(est, [0])[:2]
      ([0.9, 0.8], [0.0, 1.0])
    """
    run = set(int(i) for i in run)
    if "mu" in est:
        row = sum(1 << i for i in run)
        return tuple([float(x) for x in est[k][row]] for k in ("mu", "sd", "c"))
    m = len(est["mu_post"])
    pick = lambda post, ante: [float(est[post][i] if i in run else est[ante][i]) for i in range(m)]  # noqa: E731
    return pick("mu_post", "mu_ante"), pick("sd_post", "sd_ante"), pick("c_post", "c_ante")


def _post(est, run, i) -> float:
    """The post-hoc estimate of run model ``i`` once the models ``run`` have run (a table's row of that set)."""
    return float(est["mu"][sum(1 << r for r in set(run))][i]) if "mu" in est else float(est["mu_post"][i])


def _n_models(est) -> int:
    return np.shape(est["mu"])[-1] if "mu" in est else len(est["mu_post"])


def reference_sweep(quality, cost, est, lambdas, kind, **options):
    """A strategy over a dataset at every λ (rows of ``lambdas``: scalars or per-step vectors).

    Args:
      quality, cost: [N, M] true quality and cost.
      est: dict of [N, M] arrays (:func:`estimates_row` without ``n``).
      lambdas: [L] λ (θ), or [L, D] one per step.
      kind: the strategy (as :func:`reference_run`).
      options: :func:`reference_run`'s options (``tie``, ``max_depth``, ``z``, ...).

    Returns:
      (cost [L], quality [L], ran [L], answered [L, M]): realised means over queries, mean number of models
      run, share of queries each model answered.

    Example:
      >>> import cascjax, numpy as np, cascjax.testing as ct
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> est = ct.estimates_row(cascjax.perfect_estimates(ds))
      >>> cost, quality, ran, answered = ct.reference_sweep(ds.quality, ds.cost, est, [0.0, 2.0], "cascade",
      ...                                                   z=np.zeros((1, 2)))
      >>> cost.tolist(), quality.tolist(), ran.tolist(), answered.shape
      ([2.0, 1.0], [1.0, 0.5], [1.5, 1.0], (2, 2))
    """
    quality, cost = np.asarray(quality, np.float64), np.asarray(cost, np.float64)
    est = {k: np.asarray(v, np.float64) for k, v in est.items()}
    n, m = quality.shape
    out_c, out_q, out_r, out_a = [], [], [], []
    for lam in np.asarray(lambdas, np.float64):
        tc = tq = tr = 0.0
        answered = np.zeros(m)
        for i in range(n):
            run, answer = reference_run({k: v[i] for k, v in est.items()}, lam, kind, **options)
            tc += sum(cost[i, r] for r in run)
            tq += quality[i, answer]
            tr += len(run)
            answered[answer] += 1
        out_c.append(tc / n)
        out_q.append(tq / n)
        out_r.append(tr / n)
        out_a.append(answered / n)
    return np.array(out_c), np.array(out_q), np.array(out_r), np.array(out_a)
