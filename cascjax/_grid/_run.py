"""Running a grid's cells by compiled program: the cells of a group (equal in every static setting: pool,
strategy and options, λ mode) differ only in traced values (estimates, seeds, splits, budgets) and run as one
stack of queries through one sweep per stack, not one fit per cell.

A cell is the paper's protocol on one split: λ (per step, with ``lambda = "per-step"``) and γ are fitted per
budget on the fit split and evaluated on the test split. Every cell of a group chooses among the same candidates
— a constant λ grid (θ for the threshold cascade) drawn from the estimates of the whole group, plus random
per-step vectors — by the selection of :func:`cascjax.fit` (the best γ-mixture of two candidates on the fit
split's upper hull at each budget; without ``fit``'s bisection, which would give each cell λ of its own). The
candidates are swept once per distinct set of estimates (cells that differ only in split or budgets share it;
small datasets stack several sets' copies of the queries in one sweep), the kernel summing each cell's fit and
test rows as groups of queries (:func:`cascjax._sweep.group_sweep`); cells with a bootstrap take per-query
outcomes instead.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import _compile
from .._data import Dataset
from .._estimates import Estimates, StateEstimates
from .._fit_search import _select
from .._metrics import aiq, auc
from .._protocol import hull_budgets
from .._latency import Latency
from .._sweep import group_sweep, sweep
from ._cells import (_estimates, _estimates_key, _fit_stack, _memo_get, _options, _price_key, _priced, _take,
                     _weight_key, _weighted, candidates, depth_of, multiplier, splits_of)

#: Small datasets: several estimates' copies of the queries in one sweep, up to this many rows ...
STACK_ROWS = 1 << 14
#: ... and this many groups of queries (two per cell: its fit and test split).
STACK_GROUPS = 64


def run_group(ds: Dataset, cells: list[dict], columns: Estimates | None = None, features=None,
              memo: dict | None = None, latency: Latency | None = None) -> list[list[dict]]:
    """Runs the cells of one group on ``ds`` (the pool): per cell, one row per budget (see
    :func:`cascjax.grid` for the columns). ``columns``: the data's own estimates, for ``estimates =
    "columns"``; ``features``: the pool's :class:`cascjax.estimators.Features`, for ``"learned"``; ``memo``:
    a dict that keeps noise-model and perfect estimates of this data for its next groups; ``latency``: the pool's
    second cost, for cells with a ``[latency] weight`` (their decisions see the cost estimates ĉ + weight·ℓ̂, as
    :func:`cascjax.surface`; the realised costs are the data's, and a second sweep of the same decisions
    measures the mean latency: ``fit_latency``, ``test_latency``)."""
    cell0 = cells[0]
    depth = depth_of(ds, cell0)
    options = _options(cell0, depth)
    n = ds.n_queries
    quality = np.asarray(ds.quality, np.float64)
    cost = np.asarray(ds.cost, np.float64)
    splits = [splits_of(ds, c) for c in cells]
    # Cells with the same estimates (equal kind and, for the noise model, seed) share their per-query outcomes:
    # they differ only in which rows are fit and test, and in the budgets. Each distinct estimate is swept once.
    # A price scenario ([prices]) is part of what a sweep sees: its costs and cost estimates.
    kinds = [_estimates_key(c) + _price_key(c) + _weight_key(c) for c in cells]
    distinct = list(dict.fromkeys(kinds))
    which = np.array([distinct.index(k) for k in kinds])
    first = [kinds.index(k) for k in distinct]

    def make(i):
        return lambda: _estimates(ds, cells[i], columns, features, splits[i][2])

    # Noise-model and perfect estimates depend on the pool and their key alone: kept for the next groups.
    ests = [_memo_get(memo if k[0] not in ("columns", "learned") else None,
                      (tuple(ds.models),) + _estimates_key(cells[i]), make(i)) for k, i in zip(distinct, first)]
    priced = {(): cost}  # the costs per price scenario: the data's, or the scenario's
    for e, i in enumerate(first):
        if cells[i]["price_model"]:
            scenario_cost, ests[e] = _priced(ds, ests[e], multiplier(ds, cells[i]))
            priced.setdefault(_price_key(cells[i]), scenario_cost)
        if cells[i]["latency_weight"] is not None:
            ests[e] = _weighted(ests[e], latency, cells[i]["latency_weight"])
    costs = [priced[_price_key(cells[i])] for i in first]  # each sweep's
    host = [_take(e, slice(None)) for e in ests]  # on the host once, not once per cell
    params, source = candidates(cell0, _fit_stack(host, which, splits), depth)
    p = params.shape[0]
    lam = params[:, 0] if depth == 1 or cell0["strategy"] == "routing" else params
    # A learned table carries its own Σ(R), shared by its queries: one table per sweep, not stacked. Small
    # datasets stack several estimates' copies of the queries in one sweep (per-call overhead), large ones not
    # (measured on the example, 12,020 queries: one estimate per sweep ran the grid 3x faster than 42 stacked).
    tables = isinstance(ests[0], StateEstimates)
    users = [np.flatnonzero(which == e) for e in range(len(distinct))]
    per_stack = 1 if tables else max(1, min(STACK_ROWS // max(n, 1), STACK_GROUPS // (2 * max(map(len, users)))))
    programs0 = _compile.programs()
    t0 = time.perf_counter()
    fit_points, test_points, test_query = [None] * len(cells), [None] * len(cells), [None] * len(cells)
    waits = [None] * len(cells)  # (fit, test) mean latency per candidate, for cells with a latency weight

    def indicators(part):
        """[stacked rows, 2 · cells] 0/1: each cell's fit and test rows in the stack, and each cell's column."""
        member = np.zeros((len(part) * n, 2 * sum(users[e].size for e in part)), np.int8)
        slot = {}
        for j, e in enumerate(part):
            for i in users[e]:
                slot[i] = col = 2 * len(slot)
                member[j * n + splits[i][0], col] = member[j * n + splits[i][1], col + 1] = 1
        return member, slot

    def run(start):
        """Sweeps the estimates from ``start`` (one stack) and stores their cells' points."""
        part = range(start, min(len(distinct), start + per_stack))
        if tables or (len(part) == 1 and costs[part[0]] is cost):  # the data as it is, the estimates as made
            data, est = ds, ests[part[0]]
        else:
            rows = np.tile(np.arange(n), len(part))
            data = Dataset.from_arrays(quality[rows], np.concatenate([costs[e] for e in part]),
                                       models=list(ds.models), sort=False)
            est = Estimates(*(np.concatenate([host[e][k] for e in part]) for k in range(6)))
        if any(cells[i]["latency_weight"] is not None for e in part for i in users[e]):
            # The same decisions paying the latencies: each cell's mean latency per candidate.
            member, slot = indicators(part)
            paying = Dataset.from_arrays(np.tile(quality, (len(part), 1)), np.tile(latency.latency, (len(part), 1)),
                                         models=list(ds.models), sort=False)
            waited, _ = group_sweep(paying, est, lam, member, cell0["strategy"], **options)
            for i, col in slot.items():
                waits[i] = (waited[:, col], waited[:, col + 1])
        if not any(cells[i]["bootstrap"] for e in part for i in users[e]):
            # Every cell's fit and test means straight from the kernel: one group of queries per split.
            member, slot = indicators(part)
            mean_cost, mean_quality = group_sweep(data, est, lam, member, cell0["strategy"], **options)
            for i, col in slot.items():
                fit_points[i] = (mean_cost[:, col], mean_quality[:, col])
                test_points[i] = (mean_cost[:, col + 1], mean_quality[:, col + 1])
            return
        # A bootstrap resamples the test queries: per-query outcomes.
        curve = sweep(data, est, lam, cell0["strategy"], return_choices=True, **options)
        choice = np.asarray(curve.choice).reshape(p, len(part), n)
        spent = np.asarray(curve.query_cost, np.float64).reshape(p, len(part), n)
        for j, e in enumerate(part):
            got = quality[np.arange(n)[None, :], choice[:, j]]  # [P, N] the answering model's quality
            # The means over each cell's fit and test rows as one matrix product with their indicators.
            member = np.zeros((n, 2 * users[e].size))
            for u, i in enumerate(users[e]):
                member[splits[i][0], 2 * u] = 1.0 / splits[i][0].size
                member[splits[i][1], 2 * u + 1] = 1.0 / splits[i][1].size
            mean_cost, mean_quality = spent[:, j] @ member, got @ member  # [P, 2 · cells]
            for u, i in enumerate(users[e]):
                fit_points[i] = (mean_cost[:, 2 * u], mean_quality[:, 2 * u])
                test_points[i] = (mean_cost[:, 2 * u + 1], mean_quality[:, 2 * u + 1])
                if cells[i]["bootstrap"]:
                    test_query[i] = (spent[:, j, splits[i][1]], got[:, splits[i][1]])

    # The first stack alone (it compiles the group's program, once), the others two at a time on a multi-core CPU
    # (a sweep keeps about one core busy), one at a time elsewhere. Each writes only its own cells' entries.
    starts = range(0, len(distinct), per_stack)
    run(starts[0])
    with ThreadPoolExecutor(_compile.threads()) as pool:
        list(pool.map(run, starts[1:]))
    seconds = time.perf_counter() - t0
    compiled = _compile.programs()["seconds"] - programs0["seconds"]
    running = max(seconds - compiled, 0.0)  # compilation overlaps the first call; the rest is running
    decisions = p * n * len(distinct)
    out = []
    labels = [_fmt(v) for v in params]  # λ of each candidate as text
    pools: dict = {}  # the models' mean cost and quality per test split (cells share a few splits)
    for i, cell in enumerate(cells):
        fit_rows, test_rows, _ = splits[i]
        cell_cost = costs[which[i]]  # the cell's costs under its prices
        at = (id(test_rows),) + _price_key(cell)
        if at not in pools:
            pools[at] = cell_cost[test_rows].mean(0), quality[test_rows].mean(0)
        mc, mq = pools[at]
        if isinstance(cell["budgets"], int):
            if at + (cell["budgets"],) not in pools:  # (the hull of the models' test points, per split)
                pools[at + (cell["budgets"],)] = hull_budgets(mc, mq, cell["budgets"])
            budgets = pools[at + (cell["budgets"],)]
        else:
            budgets = np.asarray(cell["budgets"], np.float64)
        index = np.arange(p)
        lo, hi, gamma, fc, fq, ok, src = _select(index, *fit_points[i], source, budgets)
        tc_all, tq_all = test_points[i]
        g = gamma
        tc = np.where(ok, (1 - g) * tc_all[lo] + g * tc_all[hi], np.nan)
        tq = np.where(ok, (1 - g) * tq_all[lo] + g * tq_all[hi], np.nan)
        bounds = dict(cost_range=(float(mc.min()), float(mc.max())), q_floor=float(mq.min()))
        area = _auc(tc, tq, bounds, auc)
        hull = _auc(tc, tq, bounds, aiq)
        low = high = float("nan")
        if cell["bootstrap"]:
            low, high = _interval(test_query[i], lo, hi, gamma, ok, cell_cost[test_rows], quality[test_rows],
                                  cell["bootstrap"], cell["split_seed"])
        rows = []
        for b in range(budgets.size):
            rows.append(dict(
                budget=float(budgets[b]), feasible=bool(ok[b]),
                lambda_lo=labels[lo[b]] if ok[b] else "", lambda_hi=labels[hi[b]] if ok[b] else "",
                gamma=float(gamma[b]), source=f"{src[b, 0]}/{src[b, 1]}" if ok[b] else "",
                fit_cost=float(fc[b]), fit_quality=float(fq[b]), test_cost=float(tc[b]), test_quality=float(tq[b]),
                auc=area, aiq=hull, auc_low=low, auc_high=high,
                fit_queries=int(fit_rows.size), test_queries=int(test_rows.size), candidates=p,
                us_per_decision=1e6 * running / decisions, compile_s=compiled / len(cells),
                run_s=running / len(cells)))
            if waits[i] is not None:
                fl, tl = waits[i]
                rows[-1].update(fit_latency=float((1 - g[b]) * fl[lo[b]] + g[b] * fl[hi[b]]) if ok[b] else np.nan,
                                test_latency=float((1 - g[b]) * tl[lo[b]] + g[b] * tl[hi[b]]) if ok[b] else np.nan)
        out.append(rows)
    return out


def _auc(tc, tq, bounds, metric) -> float:
    ok = np.isfinite(tc) & np.isfinite(tq)
    if not ok.any() or not bounds["cost_range"][1] > bounds["cost_range"][0]:
        return float("nan")
    return float(metric((tc[ok], tq[ok]), **bounds))


def _interval(per_query, lo, hi, gamma, ok, cost, quality, n_boot, seed, level=0.95):
    """Percentile interval of the cell's test AUC over ``n_boot`` resamples of the test queries (the pool's
    cost range and floor recomputed on each resample)."""
    spent, got = per_query  # [P, N_test]
    g = gamma[:, None]
    qc = (1 - g) * spent[lo] + g * spent[hi]  # [B, N_test]
    qq = (1 - g) * got[lo] + g * got[hi]
    qc, qq = qc[ok], qq[ok]
    if not ok.any():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    nt = cost.shape[0]
    draws = []
    for _ in range(n_boot):
        w = rng.multinomial(nt, np.full(nt, 1.0 / nt)) / nt
        mc, mq = w @ cost, w @ quality
        if not mc.max() > mc.min():
            continue
        draws.append(auc((qc @ w, qq @ w), cost_range=(mc.min(), mc.max()), q_floor=mq.min()))
    if not draws:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    low, high = np.quantile(draws, [a, 1 - a])
    return float(low), float(high)


def _fmt(v: np.ndarray) -> str:
    """λ per step as text: one number, or numbers joined by ';' (one per step)."""
    v = np.atleast_1d(v)
    if np.all(v == v[0]):
        return repr(float(v[0]))
    return ";".join(repr(float(x)) for x in v)
