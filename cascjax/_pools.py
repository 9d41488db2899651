"""Pools and orders: every model subset (routing, cascade routing) or every ordered subset (the cascade and the
threshold cascade; FrugalGPT's search, Chen et al. 2023) of a small pool swept at once; the best pool or order
per budget, the frontier over all of them, and how far the fixed cheapest-first order is from the best.

The pools of one size share a compiled program: their copies of the queries are stacked along the query axis
(the pool's columns gathered in its order), and the kernels sum each pool's queries as one group
(:func:`cascjax._sweep.group_sweep`) — one call per block of pools (at most :data:`STACK_POOLS` pools and
:data:`STACK_ROWS` stacked rows, and for the cascade at most :data:`STACK_POINTS` Monte-Carlo points), no
per-query outputs. A pool of one model is its mean cost and quality.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
import numpy as np

from . import _compile
from ._data import Dataset
from ._errors import CascjaxError
from ._estimates import Estimates
from ._pool_points import PoolSearch
from ._lambda_grid import lambda_grid, threshold_grid
from ._sweep import STRATEGIES, group_sweep

#: The largest pool searched (M = 8: 255 subsets, 109,600 orders).
MAX_MODELS = 8
#: Stacked rows (pools × queries) of one sweep call ...
STACK_ROWS = 1 << 18
#: ... and pools: the kernels' sums per pool are a product with the pools' indicators, whose work grows with the
#: pools per call (each query is in one).
STACK_POOLS = 4
#: ... and the cascade's Monte-Carlo points (queries x steps x samples x prefixes): above about this many one
#: call's temporaries outgrow the cache and the allocator's reuse (measured on the example, 6 models, 16 samples:
#: 4 orders a call 96 ms against 14 ms each one at a time, and 8.8 s of system time against 0.8 s for 720 orders).
STACK_POINTS = 1 << 22
#: Strategies whose search is over ordered subsets (the order the models run in); the others take subsets.
ORDERED = ("cascade", "threshold_cascade")


def _pools(m: int, ordered: bool, sizes) -> list[tuple[int, ...]]:
    make = itertools.permutations if ordered else itertools.combinations
    return [p for k in sizes for p in make(range(m), k)]


def search_pools(ds: Dataset, est: Estimates, lambdas=32, strategy: str = "cascade", *, min_size: int = 1,
                 max_size: int | None = None, **options) -> PoolSearch:
    """Sweeps ``strategy`` on every pool of ``min_size``..``max_size`` models of ``ds``: every subset for routing
    and cascade routing, every ordered subset for the cascade and the threshold cascade (which run their models
    in the pool's order; M = 6: 63 subsets, 1,956 orders).

    Each pool's curve is :func:`cascjax.sweep` on ``ds.select(pool, sort=False)`` and its estimates (the same
    decisions; the sums per pool in another order, equal to a few ulps; tested), with ``max_depth`` cut to the
    pool's size.

    Args:
      ds: the data (at most :data:`MAX_MODELS` models).
      est: its estimates (:class:`cascjax.Estimates` without a covariance table).
      lambdas: [L] λ (θ for the threshold cascade), or an int: that many from :func:`cascjax.lambda_grid`
        (:func:`cascjax.threshold_grid`) on ``est``, shared by every pool.
      strategy: ``"routing"``, ``"cascade"``, ``"cascade_routing"`` or ``"threshold_cascade"``.
      min_size, max_size: the pool sizes searched (default 1..M).
      options: :func:`cascjax.sweep`'s (``max_depth``, ``samples``, ``tie`` ...).

    Returns:
      A :class:`PoolSearch`.

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> found = cascjax.search_pools(ds, cascjax.perfect_estimates(ds), 16, "routing", min_size=2, max_size=2)
      >>> len(found.members), found.cost.shape                     # the 15 pairs of 6 models
      (15, (15, 16))
    """
    if strategy not in STRATEGIES:
        raise CascjaxError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    m = ds.n_models
    if m > MAX_MODELS:
        raise CascjaxError(f"pool search is for at most {MAX_MODELS} models (every subset or order), got {m}; select "
                           "fewer models (Dataset.select, or --models on the command line)")
    if not isinstance(est, Estimates) or est.covariance is not None:
        raise CascjaxError("pool search takes Estimates with independent deviations (no covariance table, no "
                           "state table): a pool's estimates are its columns")
    max_size = m if max_size is None else max_size
    if not 1 <= min_size <= max_size <= m:
        raise CascjaxError(f"pool sizes must satisfy 1 <= min_size <= max_size <= {m}, got {min_size}..{max_size}")
    depth = options.pop("max_depth", None)
    if depth is not None and not (isinstance(depth, (int, np.integer)) and 1 <= depth <= m):
        raise CascjaxError(f"max_depth must be in 1..{m}, got {depth!r}")
    threshold = strategy == "threshold_cascade"
    if isinstance(lambdas, (int, np.integer)) and not isinstance(lambdas, bool):
        lambdas = threshold_grid(est, max(int(lambdas), 3)) if threshold else lambda_grid(est, int(lambdas))
    lam = np.asarray(lambdas, np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise CascjaxError(f"pool search takes one λ (θ) per point, shape [L]; got shape {lam.shape}")
    members = _pools(m, strategy in ORDERED, range(min_size, max_size + 1))
    quality = np.asarray(ds.quality)
    cost_all = np.asarray(ds.cost)
    fields = [np.asarray(a) for a in est[:6]]
    # The models' means in NumPy (``Dataset.model_costs`` is a jnp mean: a program per data shape).
    mean_cost, mean_quality = (np.asarray(a, np.float64).mean(0) for a in (ds.cost, ds.quality))
    out_cost = np.zeros((len(members), lam.size))
    out_quality = np.zeros((len(members), lam.size))
    n = ds.n_queries
    for k in range(min_size, max_size + 1):
        index = [p for p, pool in enumerate(members) if len(pool) == k]
        if k == 1:  # one model: it answers every query
            for p in index:
                out_cost[p], out_quality[p] = mean_cost[members[p][0]], mean_quality[members[p][0]]
            continue
        opts = dict(options) if strategy == "routing" else dict(options, max_depth=min(depth or k, k))
        block = min(len(index), STACK_POOLS, STACK_ROWS // max(n, 1))
        if strategy == "cascade":  # its Monte-Carlo points per query: steps x samples x prefixes
            block = min(block, STACK_POINTS // max(n * k * k * int(options.get("samples", 64)), 1))
        block = max(1, block)

        def run(part, k=k, opts=opts):
            columns = np.array([members[p] for p in part])  # [B, k]

            def stack(a):  # [N, M] -> [B·N, k]: pool b's copy of the queries, its columns in its order
                return np.moveaxis(a[:, columns], 1, 0).reshape(len(part) * n, k)

            data = Dataset.from_arrays(stack(quality), stack(cost_all), models=[f"m{j}" for j in range(k)],
                                       sort=False)
            groups = np.kron(np.eye(len(part), dtype=np.int8), np.ones((n, 1), np.int8))
            c, q = group_sweep(data, Estimates(*(stack(a) for a in fields)), lam, groups, strategy, **opts)
            out_cost[part], out_quality[part] = c.T, q.T

        # The first block alone (it compiles the size's program), the others two at a time on a multi-core CPU.
        parts = [index[i:i + block] for i in range(0, len(index), block)]
        run(parts[0])
        with ThreadPoolExecutor(_compile.threads()) as pool:
            list(pool.map(run, parts[1:]))
    names = tuple(("+" if strategy not in ORDERED else ">").join(ds.models[i] for i in pool) for pool in members)
    bounds = dict(cost_range=(float(mean_cost.min()), float(mean_cost.max())), q_floor=float(mean_quality.min()))
    return PoolSearch(strategy, tuple(members), names, lam, out_cost, out_quality, bounds)
