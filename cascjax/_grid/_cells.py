"""What a grid cell is made of: its pool, depth, splits, estimates, sweep options, candidate parameters, prices and
latency weight — read from the cell's settings, shared by the cells of a group — and the check that a cell can
run on its data (:func:`check_cell`, before anything is written)."""

from __future__ import annotations

import hashlib

import jax
import numpy as np

from .._data import Dataset
from .._errors import CascjaxError
from .._estimates import Estimates, StateEstimates, perfect_estimates
from .._fit_search import _search
from .._lambda_grid import lambda_grid, threshold_grid
from .._latency import Latency
from .._noise import noisy_estimates
from .._prices import price_scenarios
from .._surface import combined
from ._spec import LEARNED_KEYS


def data_hash(ds: Dataset) -> str:
    """A hash of a dataset's content: its model names, quality and cost arrays (as read)."""
    h = hashlib.sha256()
    h.update("\x1f".join(ds.models).encode())
    for a in (ds.quality, ds.cost):
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def pool(ds: Dataset, cell: dict) -> Dataset:
    return ds if cell["models"] == "all" else ds.select(list(cell["models"]))


def depth_of(ds: Dataset, cell: dict) -> int:
    if cell["strategy"] == "routing":
        return 1
    from .._supermodels import check_depth

    return check_depth(ds.n_models, cell["max_depth"], candidates=cell["strategy"] == "cascade_routing")


def splits_of(ds: Dataset, cell: dict) -> tuple:
    """(fit rows, test rows, training rows of learned estimators or None): the paper's fit/test split, or for
    learned estimates a train / fit / test split (:func:`cascjax.protocol.split_three`, the fit split in the
    validation's place)."""
    if cell["estimates"] != "learned":
        return _split(ds, cell["fit_fraction"], cell["split_seed"]) + (None,)
    from .._protocol_learned import split_three

    test = 1.0 - cell["train_fraction"] - cell["fit_fraction"]
    if not test > 0:
        raise CascjaxError(f"train_fraction {cell['train_fraction']} and fit_fraction {cell['fit_fraction']} leave "
                           "no test queries; their sum must be below 1")
    train, fit_rows, test_rows = split_three(ds.n_queries, test, cell["fit_fraction"], cell["split_seed"])
    return fit_rows, test_rows, train


def _split(ds: Dataset, fit_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``ds.split_indices`` (a function of N alone), read-only and kept: the cells of a grid share a few."""
    key = (ds.n_queries, fit_fraction, seed)
    if key not in _SPLITS:
        if len(_SPLITS) >= 256:
            _SPLITS.pop(next(iter(_SPLITS)))
        rows = ds.split_indices(fit_fraction, seed)
        for a in rows:
            a.setflags(write=False)
        _SPLITS[key] = rows
    return _SPLITS[key]


_SPLITS: dict = {}

#: Estimates kept between the groups of one grid run (the strategies of one pool share them), in bytes.
MEMO_BYTES = 1 << 28


def _memo_get(memo: dict | None, key, make):
    """``make()``, kept in ``memo`` under ``key`` (the oldest dropped beyond :data:`MEMO_BYTES`)."""
    if memo is None:
        return make()
    if key not in memo:
        est = make()
        size = sum(a.nbytes for a in est[:6] if a is not None)
        while memo and sum(v[1] for v in memo.values()) + size > MEMO_BYTES:
            memo.pop(next(iter(memo)))
        memo[key] = (est, size)
    return memo[key][0]


def _estimates(ds: Dataset, cell: dict, columns: Estimates | None, features=None, train=None):
    kind = cell["estimates"]
    if kind == "perfect":
        return perfect_estimates(ds)
    if kind == "columns":
        return columns
    if kind == "learned":
        from ..estimators import fit_learned, state_estimates

        fitted = fit_learned(ds, features, train, max_depth=depth_of(ds, cell), post_hoc=cell["post_hoc"],
                             seed=cell["seed"])
        return state_estimates(fitted, ds, features)
    return noisy_estimates(ds, jax.random.key(cell["seed"]), kind)


def _options(cell: dict, depth: int) -> dict:
    s = cell["strategy"]
    if s == "routing":
        return {}
    if s == "threshold_cascade":
        return dict(max_depth=depth)
    opts = dict(max_depth=depth, samples=cell["samples"], no_deviation=bool(cell["no_deviation"]))
    if s == "cascade_routing":
        opts.update(force_order=cell["force_order"], greedy=cell["greedy"], prune=cell["prune"])
    return opts


#: The constant λ grid (θ grid) of a group is drawn from about this many (evenly spaced) of its stacked fit rows.
GRID_QUERIES = 1 << 14


def candidates(cell: dict, est: Estimates, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The group's candidates [P, D] and their method (``"constant"`` or ``"search"``): as :func:`cascjax.fit`
    builds its constant grid and search vectors, from ``est`` (the stacked fit splits of every cell, at most
    about :data:`GRID_QUERIES` of their rows: :func:`_fit_stack`)."""
    threshold = cell["strategy"] == "threshold_cascade"
    if threshold:
        values = threshold_grid(est, cell["grid"], max_depth=depth)
        base = values
    else:
        base = lambda_grid(est, max(cell["grid"] - 2, 2), max_queries=GRID_QUERIES)
        values = np.concatenate([base, base[-1] * np.array([1e3, 1e6])])
    params = np.repeat(values[:, None], depth, axis=1)
    source = np.full(params.shape[0], "constant", dtype=object)
    if cell["lambda"] == "per-step" and depth > 1:
        extra = _search(base, cell["candidates"], depth, threshold, 0)
        params = np.concatenate([params, extra])
        source = np.concatenate([source, np.full(extra.shape[0], "search", dtype=object)])
    return params, source


def _estimates_key(cell: dict) -> tuple:
    """Cells with equal keys have equal estimates: the truth and the data's columns do not depend on the seed."""
    kind = cell["estimates"]
    if kind == "learned":  # fitted on the cell's own training split
        return (kind, cell["seed"], cell["split_seed"], cell["fit_fraction"]) + tuple(cell[k] for k in LEARNED_KEYS)
    return (kind,) if kind in ("perfect", "columns") else (kind, cell["seed"])


def _price_key(cell: dict) -> tuple:
    """The cell's price scenario: () for the data's own prices, else (model, multiplier)."""
    return (cell["price_model"], cell["price_scale"]) if cell["price_model"] else ()


def _weight_key(cell: dict) -> tuple:
    """The cell's latency weight: () without a second cost."""
    return () if cell["latency_weight"] is None else (("latency", cell["latency_weight"]),)


def _weighted(est: Estimates, latency: Latency, weight: float) -> Estimates:
    """The estimates whose cost estimates are ĉ + weight·ℓ̂ (ℓ̂ alone for an infinite weight), as
    :func:`cascjax.surface`'s."""
    ante, post = combined(est, latency, np.array([weight]), np.float64)
    return Estimates(*(np.asarray(a) for a in est[:4]), ante[0], post[0])


def multiplier(ds: Dataset, cell: dict) -> np.ndarray:
    """[M] the cell's price multiplier per model of the pool ``ds`` (``[prices] model`` times ``scale``)."""
    out = np.ones(ds.n_models)
    if cell["price_model"]:
        out[list(ds.models).index(cell["price_model"])] = cell["price_scale"]
    return out


def _priced(ds: Dataset, est: Estimates, factor: np.ndarray) -> tuple[np.ndarray, Estimates]:
    """The costs [N, M] and estimates under a price scenario (multipliers [M]), as :func:`cascjax.sweep`'s
    ``prices`` (:func:`cascjax._prices.price_scenarios`)."""
    cost, ante, post = price_scenarios(ds, est, factor[None], np.float64)
    return cost[0], est._replace(cost_ante=ante[0], cost_post=post[0])


def _take(est, rows):
    """The estimates of ``rows`` as NumPy arrays, without the covariance (the λ grid reads the means)."""
    if isinstance(est, StateEstimates):
        return StateEstimates(*(None if a is None else np.asarray(a)[rows] for a in est[:3]))
    return Estimates(*(np.asarray(a)[rows] for a in est[:6]))


def _concat(parts):
    if isinstance(parts[0], StateEstimates):
        return StateEstimates(*(None if a[0] is None else np.concatenate(a) for a in zip(*(p[:3] for p in parts))))
    return Estimates(*(np.concatenate(a) for a in zip(*(p[:6] for p in parts))))


def _fit_stack(host, which, splits):
    """The cells' fit rows stacked (cell after cell), every ``step``-th of them: at most about
    :data:`GRID_QUERIES` evenly spaced rows (as :func:`cascjax.lambda_grid` takes them for its ``max_queries``),
    and only those rows are copied."""
    total = sum(splits[i][0].size for i in range(len(which)))
    step = max(1, total // GRID_QUERIES)
    parts, start = [], 0
    for i, e in enumerate(which):
        rows = splits[i][0]
        parts.append(_take(host[e], rows[(-start) % step::step]))
        start += rows.size
    return _concat(parts)


def check_cell(ds: Dataset, cell: dict, where: str) -> None:
    """Raises (naming the setting) if the cell cannot run on ``ds``: unknown models, a depth the pool does not
    allow, a split too small to fit on."""
    if cell["models"] != "all":
        missing = [name for name in cell["models"] if name not in ds.models]
        if missing:
            raise CascjaxError(f"{where}: [data] models: {missing[0]!r} is not in the data (it has "
                               f"{', '.join(ds.models)})")
    sub = pool(ds, cell)
    if cell["price_model"]:
        if cell["price_model"] not in sub.models:
            raise CascjaxError(f"{where}: [prices] model: {cell['price_model']!r} is not in the pool (it has "
                               f"{', '.join(sub.models)})")
        if cell["estimates"] == "learned":
            raise CascjaxError(f"{where}: [prices] model: price scenarios take per-query estimates, not learned "
                               "state tables")
    if cell["latency_weight"] is not None and cell["estimates"] == "learned":
        raise CascjaxError(f"{where}: [latency] weight: a second cost takes per-query estimates, not learned state "
                           "tables")
    try:
        depth_of(sub, cell)
    except CascjaxError as e:
        raise CascjaxError(f"{where}: [strategies] {cell['strategy']}: {e}") from None
    from .._fit import MIN_FIT_QUERIES

    try:
        fit_rows, _, _ = splits_of(sub, cell)
    except CascjaxError as e:
        raise CascjaxError(f"{where}: [estimates] train_fraction / [fit] fit_fraction: {e}") from None
    if fit_rows.size < MIN_FIT_QUERIES:
        raise CascjaxError(f"{where}: [fit] fit_fraction {cell['fit_fraction']} leaves {fit_rows.size} fit queries; "
                           f"at least {MIN_FIT_QUERIES} are needed")
