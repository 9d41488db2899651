"""The candidate steps of :func:`cascjax.fit` that need no sweep of their own: bisection of the constant parameter
around every budget (given a sweep to call), random per-step vectors, and the best γ-mixture of two candidates
per budget — the upper concave hull of the candidates' (cost, quality) points (Theorem 1 of the paper)."""

from __future__ import annotations

import numpy as np

from ._metrics import model_hull


def _bisect(run, values, cost, quality, budgets, iterations, depth, threshold):
    """Refines the constant parameter around every budget: the grid neighbours whose costs bracket B are
    bisected (geometric midpoint for positive λ), all budgets in one sweep per iteration."""
    # For each budget the bracketing pair of grid neighbours with the best interpolated quality at B.
    c0, c1, q0, q1 = cost[:-1], cost[1:], quality[:-1], quality[1:]
    lo_c, hi_c = np.minimum(c0, c1), np.maximum(c0, c1)
    bracket = (lo_c[None] <= budgets[:, None]) & (budgets[:, None] < hi_c[None])
    t = np.where(bracket, (budgets[:, None] - c0[None]) / np.where(hi_c > lo_c, c1 - c0, 1.0)[None], 0.0)
    score = np.where(bracket, q0[None] + t * (q1 - q0)[None], -np.inf)
    seg = np.argmax(score, axis=1)
    active = np.isfinite(score[np.arange(budgets.size), seg])
    a_first = c0[seg] <= c1[seg]  # the cheap end is the segment's first point
    cheap = np.where(a_first, values[seg], values[seg + 1])
    dear = np.where(a_first, values[seg + 1], values[seg])
    finite = np.isfinite(cheap) & np.isfinite(dear)
    active &= finite
    out_p, out_c, out_q = [], [], []
    cheap_c = np.where(a_first, c0[seg], c1[seg])
    cheap_q = np.where(a_first, q0[seg], q1[seg])
    dear_c = np.where(a_first, c1[seg], c0[seg])
    dear_q = np.where(a_first, q1[seg], q0[seg])
    if active.any() and iterations > 0:
        for _ in range(iterations):
            geometric = (cheap > 0) & (dear > 0) & ~threshold
            with np.errstate(invalid="ignore"):  # inf thresholds (inactive rows): the other branch is taken
                mid = np.where(geometric, np.sqrt(np.abs(cheap * dear)), (cheap + dear) / 2)
            mid = np.where(active, mid, cheap)
            mc, mq = run(np.repeat(mid[:, None], depth, axis=1))
            ok = mc <= budgets
            cheap, cheap_c, cheap_q = (np.where(active & ok, mid, cheap), np.where(active & ok, mc, cheap_c),
                                       np.where(active & ok, mq, cheap_q))
            dear, dear_c, dear_q = (np.where(active & ~ok, mid, dear), np.where(active & ~ok, mc, dear_c),
                                    np.where(active & ~ok, mq, dear_q))
        out_p = np.concatenate([cheap[active], dear[active]])
        out_c = np.concatenate([cheap_c[active], dear_c[active]])
        out_q = np.concatenate([cheap_q[active], dear_q[active]])
    params = np.repeat(np.asarray(out_p, np.float64).reshape(-1, 1), depth, axis=1)
    return params, np.asarray(out_c, np.float64), np.asarray(out_q, np.float64), "constant"


def _search(values, n, depth, threshold, seed):
    """[n, D] random per-step vectors: half independent per step over the grid's range (log-uniform for λ,
    grid values for θ), half the constant grid perturbed per step."""
    rng = np.random.default_rng(seed)
    half = n // 2
    if threshold:
        finite = values[np.isfinite(values)]
        free = rng.choice(values, size=(half, depth))
        base = rng.integers(0, values.size, size=(n - half, 1))
        shift = rng.integers(-values.size // 8 - 1, values.size // 8 + 2, size=(n - half, depth))
        near = values[np.clip(base + shift, 0, values.size - 1)]
        out = np.concatenate([free, near])
        return np.where(np.isnan(out), finite.mean() if finite.size else 0.0, out)
    pos = values[values > 0]
    lo, hi = np.log(pos.min()), np.log(pos.max())
    free = np.exp(rng.uniform(lo, hi, size=(half, depth)))
    free = np.where(rng.random((half, depth)) < 0.05, 0.0, free)
    base = rng.choice(values, size=(n - half, 1))
    near = base * np.exp(rng.normal(0.0, 1.0, size=(n - half, depth)))
    return np.concatenate([free, near])


def _stack(pool):
    params = np.concatenate([p for p, *_ in pool])
    cost = np.concatenate([c for _, c, _, _ in pool])
    quality = np.concatenate([q for _, _, q, _ in pool])
    source = np.concatenate([np.full(len(c), s, dtype=object) for _, c, _, s in pool])
    return params, cost, quality, source


def _select(params, cost, quality, source, budgets):
    """For every budget the best γ-mixture of two candidates with expected cost ≤ B: the upper concave hull
    of the candidates' (cost, quality) points at B (the best single candidate beyond the hull's end)."""
    ok = np.isfinite(cost) & np.isfinite(quality)
    idx = np.flatnonzero(ok)
    hull = idx[model_hull((cost[idx], quality[idx]))]
    hc, hq = cost[hull], quality[hull]
    k = np.searchsorted(hc, budgets, side="right") - 1  # last hull point with cost ≤ B
    feasible = k >= 0
    kk = np.clip(k, 0, hull.size - 1)
    inner = feasible & (kk < hull.size - 1)
    nxt = np.minimum(kk + 1, hull.size - 1)
    span = hc[nxt] - hc[kk]
    gamma = np.where(inner, (budgets - hc[kk]) / np.where(span > 0, span, 1.0), 0.0)
    gamma = np.clip(gamma, 0.0, 1.0)
    lo, hi = hull[kk], np.where(inner & (gamma > 0), hull[nxt], hull[kk])
    c = np.where(inner, budgets, hc[kk])  # the mixture spends B exactly (γ solves it; no rounding up)
    q = np.where(inner, (1 - gamma) * hq[kk] + gamma * hq[nxt], hq[kk])
    nan = np.full(budgets.shape, np.nan)
    return (params[lo], params[hi], np.where(feasible, gamma, 0.0), np.where(feasible, c, nan),
            np.where(feasible, q, nan), feasible, np.stack([source[lo], source[hi]], axis=1).astype(str))
