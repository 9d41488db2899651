"""Plain-NumPy vectorised versions of cascjax's kernels: the fair baseline for its speed-ups.

The loop oracle (``tests/oracle.py``) is the specification, one query, λ and candidate at a time; these are the
best NumPy versions of the same computations written for speed, so that a ratio against them says what JAX
(jit, vmap, XLA fusion) adds over a careful array program, not over Python loops. Each one computes exactly
what the kernel computes — the same decision rule with the same tie band (ties within ``32·eps(dtype)`` of the
scores' magnitude go to the cheapest candidate, then the lowest index), the same shared normal points
(``cascjax._supermodels.normal_points``) for the expected maxima, in the input's dtype — and every benchmark
checks it against the JAX result in the same run.

What is vectorised (and what is a Python loop):

* ``routing_grid``: everything over queries and models, in batches of λ (a loop over λ batches).
* ``routing_path``: the hull walk over all queries at once (a loop over the ≤ M − 1 hull steps, compacting the
  queries still walking), then one sort of all breakpoints and a cumulative sum.
* ``threshold_cascade``: over queries, steps and a batch of θ at once.
* ``cascade``: the Q tables of every (query, step, prefix) at once (a loop over the D steps), then the
  selection over queries x λ batch x steps x prefixes.
* ``cascade_routing``: per step (a loop over the D steps), the distinct (query, state) pairs reached by any λ
  are found with ``np.unique``; Q and C are computed once per pair, grouped by state (a loop over the distinct
  states R of the step, ≤ C(M, j)), over the candidates T = R ∪ U with U ⊆ the models not run (level by level,
  as the kernel); then the decision of every live (query, λ) is taken at once per state group, in batches. So
  it shares the Q tables across λ as the kernel does, but has no shortlists or pruning (it scores every
  candidate, which gives the same decisions).
* ``fit``: :func:`cascjax.fit`'s own orchestration (the constant grid, bisection, random per-step search,
  hull selection; these are NumPy already) with the sweeps above in place of ``cascjax.sweep``; no
  ``gradient`` method (it needs JAX's autodiff).
* ``noise_grid``: the paper's calibrated noise model for every ablation cell at once (closed-form per-model
  least squares over [cells, N, M]).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

TIE_ULPS = 32
#: Elements per batch of the broadcast [λ batch, ...] arrays (keeps temporaries in cache-friendly sizes).
BATCH_ELEMENTS = 1 << 22


def tie_rtol(dtype) -> float:
    return TIE_ULPS * float(np.finfo(dtype).eps)


def select(q, c, lam, rtol, valid=None, qmag=None, cmag=None):
    """The decision rule (MIN ties) over the last axis: index of the chosen candidate.

    ``q``, ``c`` [..., S] candidates' quality and cost; ``lam`` [...] one λ per row; ``valid`` [..., S]
    optional mask; ``qmag``, ``cmag`` [...] max |Q| and max |C| over the valid candidates (computed if None).
    """
    dtype = q.dtype
    lam = np.asarray(lam, dtype)
    if qmag is None:
        qmag = np.max(np.abs(q) if valid is None else np.where(valid, np.abs(q), 0), axis=-1)
        cmag = np.max(np.abs(c) if valid is None else np.where(valid, np.abs(c), 0), axis=-1)
    score = q - lam[..., None] * c
    if valid is not None:
        score = np.where(valid, score, -np.inf)
    best = score.max(axis=-1)
    tied = score >= (best - rtol * (qmag + lam * cmag))[..., None]
    target = np.where(tied, c, np.inf).min(axis=-1)
    pick = tied & (c <= (target + rtol * cmag)[..., None])
    return pick.argmax(axis=-1)


# -- routing -------------------------------------------------------------------------------------------------

def routing_grid(quality, cost, mu, c_hat, lambdas, rtol=None):
    """Routing at every λ: mean realised cost and quality [L] (MIN ties, as ``cascjax.sweep``). ``rtol``: the tie
    band (default 32·eps of the estimates' dtype)."""
    dtype = mu.dtype
    rtol = tie_rtol(dtype) if rtol is None else rtol
    n, m = mu.shape
    lam = np.asarray(lambdas, dtype)
    qmag, cmag = np.abs(mu).max(axis=1), np.abs(c_hat).max(axis=1)
    rows = np.arange(n)
    batch = max(1, BATCH_ELEMENTS // (n * m))
    out_c, out_q = np.empty(lam.size), np.empty(lam.size)
    for s in range(0, lam.size, batch):
        lb = lam[s:s + batch]
        choice = select(mu[None], c_hat[None], np.broadcast_to(lb[:, None], (lb.size, n)), rtol,
                        qmag=qmag[None], cmag=cmag[None])
        out_c[s:s + batch] = cost[rows[None], choice].sum(axis=1, dtype=np.float64) / n
        out_q[s:s + batch] = quality[rows[None], choice].sum(axis=1, dtype=np.float64) / n
    return out_c, out_q


def routing_path(quality, cost, mu, c_hat):
    """The exact routing curve (every λ ≥ 0) as ``cascjax.routing_path`` computes it: (λ, cost, quality) of
    its vertices. Each query walks the upper-left hull of its (ĉ, μ) points from the λ = 0 choice (MAX ties,
    exact), taking at each step the smallest slope to a cheaper point (equal slopes: the cheapest, then the
    lowest index); all queries walk together, and the breakpoints of all queries are sorted once."""
    n, m = mu.shape
    rows = np.arange(n)
    best = mu.max(axis=1)
    tied = mu >= best[:, None]
    target = np.where(tied, c_hat, -np.inf).max(axis=1)
    a = np.argmax(tied & (c_hat >= target[:, None]), axis=1)
    base_c, base_q = cost[rows, a].sum(dtype=np.float64), quality[rows, a].sum(dtype=np.float64)
    lams, dcs, dqs = [], [], []
    idx, prev = rows, np.zeros(n, mu.dtype)
    for _ in range(m - 1):
        mu_i, c_i = mu[idx], c_hat[idx]
        qa, ca = mu_i[np.arange(idx.size), a], c_i[np.arange(idx.size), a]
        cheaper = c_i < ca[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (qa[:, None] - mu_i) / np.where(cheaper, ca[:, None] - c_i, 1)
        slope = np.where(cheaper, np.maximum(slope, 0), np.inf)
        step = slope.min(axis=1)
        go = np.isfinite(step)
        if not go.any():
            break
        tied = cheaper & (slope == step[:, None])
        target = np.where(tied, c_i, np.inf).min(axis=1)
        nxt = np.argmax(tied & (c_i == target[:, None]), axis=1)
        lam = np.maximum(step, prev)
        q_rows, a_go, n_go = idx[go], a[go], nxt[go]
        lams.append(np.where(lam[go] > 0, lam[go], 0))
        dcs.append(cost[q_rows, n_go] - cost[q_rows, a_go])
        dqs.append(quality[q_rows, n_go] - quality[q_rows, a_go])
        idx, a, prev = q_rows, n_go, lam[go]
    if not lams:
        return np.zeros(1), np.array([base_c / n]), np.array([base_q / n])
    lam = np.concatenate(lams)
    order = np.argsort(lam, kind="stable")
    lam = lam[order]
    cum_c = base_c + np.cumsum(np.concatenate(dcs)[order], dtype=np.float64)  # float64 running sums
    cum_q = base_q + np.cumsum(np.concatenate(dqs)[order], dtype=np.float64)
    last = np.append(lam[1:] != lam[:-1], True)  # the last event of each group of equal λ
    return (np.concatenate([[0], lam[last]]), np.concatenate([[base_c], cum_c[last]]) / n,
            np.concatenate([[base_q], cum_q[last]]) / n)


def path_at(path_lam, values, lam, rtol):
    """An exact path's values at λ (MIN ties, a λ within ``rtol`` of a breakpoint counts as it)."""
    idx = np.clip(np.searchsorted(path_lam, np.asarray(lam) * (1 + rtol), side="right") - 1, 0, len(path_lam) - 1)
    return [v[idx] for v in values]


# -- threshold cascade ---------------------------------------------------------------------------------------

def threshold_cascade(quality, cost, post, thetas):
    """The threshold cascade at every row of ``thetas`` [L, D]: (cost, quality, ran) [L]."""
    n, _ = quality.shape
    theta = np.asarray(thetas, post.dtype)
    d = theta.shape[1]
    spent = np.cumsum(cost[:, :d], axis=1)
    post = post[:, :d - 1]
    rows = np.arange(n)
    batch = max(1, BATCH_ELEMENTS // (n * d))
    out = np.empty((3, theta.shape[0]))
    for s in range(0, theta.shape[0], batch):
        tb = theta[s:s + batch, :d - 1]
        go_on = post[None] < tb[:, None, :]  # [B, N, D − 1]
        stop = np.where(go_on.all(axis=2), d - 1, np.argmin(go_on, axis=2))
        out[0, s:s + batch] = spent[rows[None], stop].sum(axis=1, dtype=np.float64) / n
        out[1, s:s + batch] = quality[rows[None], stop].sum(axis=1, dtype=np.float64) / n
        out[2, s:s + batch] = (stop + 1).sum(axis=1) / n
    return out[0], out[1], out[2]


# -- the optimal cascade -------------------------------------------------------------------------------------

def cascade_tables(est, z, depth, factor=None, no_deviation=False, chunk=4096):
    """Q, C [N, D, M] of every prefix {0..i} at every step j (state {0..j−1}), by the shared points ``z``."""
    ante, post = est["mu_ante"], est["mu_post"]
    n, m = ante.shape
    dtype = ante.dtype
    q_tab, c_tab = np.empty((n, depth, m), dtype), np.empty((n, depth, m), dtype)
    single = np.arange(m) == 0
    for j in range(depth):
        ran = np.arange(m) < j
        mu = np.where(ran, post, ante)
        c_tab[:, j] = np.cumsum(np.where(ran, est["c_post"], est["c_ante"]), axis=1)
        exact = np.maximum.accumulate(mu, axis=1)
        if factor is not None and not no_deviation:
            f = factor[(1 << j) - 1]
            dev = (z @ f.T).astype(dtype)  # [K, M], the same for every query
            deviates = np.broadcast_to(np.any(f != 0, axis=1), mu.shape)
        else:
            sd = np.zeros_like(mu) if no_deviation else np.where(ran, est["sd_post"], est["sd_ante"])
            deviates = sd != 0
        for s in range(0, n, chunk):
            sl = slice(s, s + chunk)
            if factor is not None and not no_deviation:
                y = mu[sl, None, :] + dev[None]
            else:
                y = mu[sl, None, :] + z[None] * sd[sl, None, :]
            mc = np.maximum.accumulate(y, axis=2).mean(axis=1)
            det = np.cumsum(deviates[sl], axis=1) == 0
            q_tab[sl, j] = np.where(single | det, exact[sl], mc)
    return q_tab, c_tab


def cascade(quality, cost, est, lambdas, z, depth, factor=None, no_deviation=False, tables=None, rtol=None):
    """The optimal cascade at every row of ``lambdas`` [L, D] (MIN ties): (cost, quality, ran) [L]."""
    n, m = quality.shape
    dtype = est["mu_ante"].dtype
    rtol = tie_rtol(dtype) if rtol is None else rtol
    q_tab, c_tab = tables if tables is not None else cascade_tables(est, z, depth, factor, no_deviation)
    steps, i = np.arange(depth), np.arange(m)
    valid = (i[None] >= np.maximum(steps - 1, 0)[:, None]) & (i[None] < depth)  # [D, M]
    qmag = np.where(valid[None], np.abs(q_tab), 0).max(axis=2)  # [N, D]
    cmag = np.where(valid[None], np.abs(c_tab), 0).max(axis=2)
    spent = np.cumsum(cost, axis=1)[:, :depth]
    post = est["mu_post"]
    upto = np.arange(m)[None, :] < np.arange(1, depth + 1)[:, None]  # [D, M]
    answer_of = np.argmax(np.where(upto[None], post[:, None, :], -np.inf), axis=2)  # [N, D]
    got_of = quality[np.arange(n)[:, None], answer_of]  # [N, D]: realised quality after r models
    lam = np.asarray(lambdas, dtype)
    batch = max(1, BATCH_ELEMENTS // (n * depth * m))
    out = np.empty((3, lam.shape[0]))
    rows = np.arange(n)
    for s in range(0, lam.shape[0], batch):
        lb = lam[s:s + batch]  # [B, D]
        choice = select(q_tab[None], c_tab[None], np.broadcast_to(lb[:, None, :], (lb.shape[0], n, depth)), rtol,
                        valid[None, None], qmag[None], cmag[None])  # [B, N, D]
        stops = (steps >= 1) & (choice == steps - 1)
        runs = np.where(stops.any(axis=2), stops.argmax(axis=2), depth)  # [B, N]
        out[0, s:s + batch] = spent[rows[None], runs - 1].sum(axis=1, dtype=np.float64) / n
        out[1, s:s + batch] = got_of[rows[None], runs - 1].sum(axis=1, dtype=np.float64) / n
        out[2, s:s + batch] = runs.sum(axis=1) / n
    return out[0], out[1], out[2]


# -- cascade routing -----------------------------------------------------------------------------------------

def _popcount(x):
    x = np.asarray(x, np.int64)
    out = np.zeros_like(x)
    while np.any(x):
        out += x & 1
        x = x >> 1
    return out


@functools.lru_cache(maxsize=None)
def _global_rank(m: int, depth: int) -> dict:
    """Bitmask → position in the lexicographic table of all supermodels of ≤ D of M models (the tie order)."""
    sets = sorted(c for d in range(1, depth + 1) for c in itertools.combinations(range(m), d))
    return {sum(1 << i for i in s): r for r, s in enumerate(sets)}


@functools.lru_cache(maxsize=None)
def _state_table(state: int, m: int, depth: int, force_order: bool, greedy: bool):
    """The candidates T = R ∪ U at state R, U over the allowed new models, for the level-by-level maxima.

    Returns (free [F] the new models allowed, plan: per level (parent positions, added free position),
    members [S, F] bool, masks [S] of T, order [S] (positions in the concatenated level outputs of the
    candidates sorted by tie order), the tie-ordered masks)."""
    run = [i for i in range(m) if state >> i & 1]
    top = max(run) if run else -1
    free = [i for i in range(m) if not state >> i & 1 and (not force_order or i > top)]
    extra = min(depth - len(run), 1 if greedy else depth)
    levels = [[()]]
    for d in range(1, extra + 1):
        levels.append(list(itertools.combinations(range(len(free)), d)))
    pos, plan, offset = {(): 0}, [], 1
    for d in range(1, extra + 1):
        prev = offset - len(levels[d - 1])
        plan.append((np.array([pos[u[:-1]] - prev for u in levels[d]], np.int64),
                     np.array([u[-1] for u in levels[d]], np.int64)))
        for i, u in enumerate(levels[d]):
            pos[u] = offset + i
        offset += len(levels[d])
    flat = [u for level in levels for u in level]
    if not run:
        flat = flat[1:]  # T = ∅ is no candidate
    masks = np.array([state | sum(1 << free[p] for p in u) for u in flat], np.int64)
    rank = _global_rank(m, depth)
    by_rank = np.argsort([rank[int(t)] for t in masks], kind="stable")
    members = np.zeros((len(flat), len(free)), bool)
    for s, u in enumerate(flat):
        members[s, list(u)] = True
    order = np.array([pos[u] for u in flat], np.int64)[by_rank]
    return (np.array(free, np.int64), tuple(plan), members[by_rank], masks[by_rank], order)


def _state_values(state, mu, sd, ch, z, depth, force_order, greedy, dev=None, deviates=None):
    """Q, C [P, S] of every candidate at one state R for P queries (``mu``, ``sd``, ``ch`` [P, M] the visible
    estimates), the tie-ordered masks [S]. ``dev`` [K, M], ``deviates`` [M]: correlated deviations L(R) z."""
    m = mu.shape[1]
    free, plan, members, masks, order = _state_table(int(state), m, depth, force_order, greedy)
    ran = (state >> np.arange(m)) & 1 == 1
    dtype = mu.dtype
    if dev is None:
        y = mu[:, None, :] + z[None] * sd[:, None, :]  # [P, K, M]
        deviates = sd != 0  # [P, M]
    else:
        y = mu[:, None, :] + dev[None]
        deviates = np.broadcast_to(deviates, mu.shape)
    neg = np.asarray(-np.inf, dtype)
    base = np.where(ran, y, neg).max(axis=2) if ran.any() else np.full(y.shape[:2], neg)  # [P, K]
    vals = y[:, :, free]  # [P, K, F]
    level = base[:, :, None]
    means = [level.mean(axis=1)]
    ex_base = np.where(ran, mu, neg).max(axis=1) if ran.any() else np.full(mu.shape[0], neg)
    exact_level, spread_level = ex_base[:, None], (ran & deviates).any(axis=1)[:, None]
    exacts, spreads = [exact_level], [spread_level]
    mu_f, dev_f = mu[:, free], deviates[:, free]
    for parents, added in plan:
        level = np.maximum(level[:, :, parents], vals[:, :, added])
        means.append(level.mean(axis=1))
        exact_level = np.maximum(exact_level[:, parents], mu_f[:, added])
        spread_level = spread_level[:, parents] | dev_f[:, added]
        exacts.append(exact_level)
        spreads.append(spread_level)
    mc = np.concatenate(means, axis=1)  # position 0 is U = ∅ (T = R; not a candidate when R = ∅)
    exact = np.concatenate(exacts, axis=1)
    spread = np.concatenate(spreads, axis=1)
    mc, exact, spread = mc[:, order], exact[:, order], spread[:, order]
    single = _popcount(masks) == 1
    q = np.where(single[None] | ~spread, exact, mc)
    c_run = np.where(ran, ch, 0).sum(axis=1)
    c = c_run[:, None] + (np.where(members[None], ch[:, free][:, None, :], 0)).sum(axis=2)
    return q.astype(dtype), c.astype(dtype), masks


def cascade_routing(quality, cost, est, lambdas, z, depth, *, force_order=False, greedy=False,
                    no_deviation=False, factor=None, rtol=None):
    """Cascade routing at every row of ``lambdas`` [L, D] (MIN ties): (cost, quality, ran) [L]."""
    n, m = quality.shape
    dtype = est["mu_ante"].dtype
    rtol = tie_rtol(dtype) if rtol is None else rtol
    lam = np.asarray(lambdas, dtype)
    n_lam = lam.shape[0]
    state = np.zeros((n, n_lam), np.int64)
    done = np.zeros((n, n_lam), bool)
    use_factor = factor is not None and not no_deviation
    for j in range(depth):
        live_n, live_l = np.nonzero(~done)
        if live_n.size == 0:
            break
        r_live = state[live_n, live_l]
        for r in np.unique(r_live):
            at = r_live == r
            e_n, e_l = live_n[at], live_l[at]
            queries, inverse = np.unique(e_n, return_inverse=True)
            ran = (r >> np.arange(m)) & 1 == 1
            mu = np.where(ran, est["mu_post"][queries], est["mu_ante"][queries])
            ch = np.where(ran, est["c_post"][queries], est["c_ante"][queries])
            if use_factor:
                f = factor[r]
                dev, deviates, sd = (z @ f.T).astype(dtype), np.any(f != 0, axis=1), None
            else:
                dev = deviates = None
                sd = (np.zeros_like(mu) if no_deviation else
                      np.where(ran, est["sd_post"][queries], est["sd_ante"][queries]))
            q_s, c_s = [], []
            chunk = max(1, (1 << 24) // (z.shape[0] * max(len(_state_table(int(r), m, depth, force_order,
                                                                              greedy)[3]), 1)))
            for s in range(0, queries.size, chunk):
                sl = slice(s, s + chunk)
                qq, cc, masks = _state_values(r, mu[sl], None if sd is None else sd[sl], ch[sl], z, depth,
                                              force_order, greedy, dev, deviates)
                q_s.append(qq)
                c_s.append(cc)
            q_r, c_r = np.concatenate(q_s), np.concatenate(c_s)  # [P, S]
            qmag, cmag = np.abs(q_r).max(axis=1), np.abs(c_r).max(axis=1)
            width = q_r.shape[1]
            batch = max(1, BATCH_ELEMENTS // width)
            for s in range(0, e_n.size, batch):
                p = inverse[s:s + batch]
                pick = select(q_r[p], c_r[p], lam[e_l[s:s + batch], j], rtol, qmag=qmag[p], cmag=cmag[p])
                chosen = masks[pick]
                new = chosen & ~r
                stop = new == 0
                bn, bl = e_n[s:s + batch], e_l[s:s + batch]
                done[bn[stop], bl[stop]] = True
                go = ~stop
                state[bn[go], bl[go]] = r | (new[go] & -new[go])  # the lowest-index new model runs
    bits = (state[..., None] >> np.arange(m)) & 1 == 1  # [N, L, M]
    spent = np.where(bits, cost[:, None, :], 0).sum(axis=2)
    answer = np.argmax(np.where(bits, est["mu_post"][:, None, :], -np.inf), axis=2)
    got = quality[np.arange(n)[:, None], answer]
    return (spent.mean(axis=0, dtype=np.float64), got.mean(axis=0, dtype=np.float64),
            bits.sum(axis=2).mean(axis=0))


# -- fitting -------------------------------------------------------------------------------------------------

def fit(run, est_for_grid, budgets, strategy, depth, *, per_step=("search",), grid=256, bisect=8, candidates=512,
        seed=0):
    """:func:`cascjax.fit` with the sweeps of ``run`` (params [P, D] → float64 cost, quality [P]; e.g. the
    sweeps above): the same candidates (constant grid, bisection, random per-step search) and the same hull
    selection (cascjax's own NumPy helpers), no gradient method. ``est_for_grid`` is the
    :class:`cascjax.Estimates` the grids are derived from.

    Returns (lo [B, D], hi [B, D], gamma, cost, quality, feasible) as ``cascjax.Fitted`` has them."""
    import cascjax
    from cascjax import _fit_search as _fit

    b = np.asarray(budgets, np.float64)
    threshold = strategy == "threshold_cascade"
    if threshold:
        values = cascjax.threshold_grid(est_for_grid, max(grid, 3), max_depth=depth)
    else:
        base = cascjax.lambda_grid(est_for_grid, max(grid - 2, 2))
        values = np.concatenate([base, base[-1] * np.array([1e3, 1e6])])
    params = np.repeat(values[:, None], depth, axis=1)
    cost, quality = run(params)
    pool = [(params, cost, quality, "constant")]
    pool.append(_fit._bisect(run, values, cost, quality, b, bisect, depth, threshold))
    if depth > 1 and "search" in per_step:
        params = _fit._search(values if threshold else base, candidates, depth, threshold, seed)
        pool.append((params, *run(params), "search"))
    return _fit._select(*_fit._stack(pool), b)[:6]


# -- the ablation's noise grid -------------------------------------------------------------------------------

def calibrate(x, y):
    """Per [..., column]: the least-squares prediction of y from x over axis −2 (a·x + b; mean(y) where x is
    constant), as the paper's per-model ``np.polyfit(x, y, 1)``."""
    xc = x - x.mean(axis=-2, keepdims=True)
    yc = y - y.mean(axis=-2, keepdims=True)
    var = (xc * xc).sum(axis=-2, keepdims=True)
    slope = np.where(var > 0, (xc * yc).sum(axis=-2, keepdims=True) / np.where(var > 0, var, 1), 0)
    return y.mean(axis=-2, keepdims=True) + slope * xc


def noise_grid(quality, cost, eps_q, eps_c, q_noise, c_noise):
    """The paper's noise model for G cells at once: ``eps_q``, ``eps_c`` [G, 2, N, M] standard normal draws,
    ``q_noise``, ``c_noise`` [G, 2] (ante, post) noise levels. Returns (q_ante, q_post, sd_ante, c_ante,
    c_post), each [G, N, M] (sd_ante [G, 1, M])."""
    q_draw = quality[None, None] + q_noise[:, :, None, None] * eps_q
    c_draw = cost[None, None] + c_noise[:, :, None, None] * eps_c
    q_cal = calibrate(q_draw, quality[None, None])
    c_cal = calibrate(c_draw, cost[None, None])
    sd = (q_cal[:, 0] - q_cal[:, 1]).std(axis=1, keepdims=True)
    return q_cal[:, 0], q_cal[:, 1], sd, c_cal[:, 0], c_cal[:, 1]
