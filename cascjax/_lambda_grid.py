"""Data-driven grids: λ values over the pairwise breakpoints of the ex-ante estimates (:func:`lambda_grid`, and one
grid over several cost scenarios, :func:`scenario_lambda_grid`) and thresholds over the post-hoc estimates
(:func:`threshold_grid`)."""

from __future__ import annotations

import jax
import numpy as np

from . import _compile
from ._checks import routing_inputs, threshold_inputs
from ._errors import CascjaxError
from ._estimates import Estimates
from ._routing import _FILTER_ABOVE, _candidates, _grown, _hull_room
from ._supermodels import check_depth


def lambda_grid(est: Estimates, n: int = 256, *, max_queries: int = 100_000) -> np.ndarray:
    """A data-driven λ grid: 0 and ``n − 1`` log-spaced values over the pairwise breakpoints' range.

    The natural range of λ comes from the pairwise breakpoints (μ_i − μ_j)/(ĉ_i − ĉ_j) of the ex-ante
    estimates (where model i is both better and more expensive than j): the grid spans their 0.5% to 99.5%
    quantiles (over at most ``max_queries`` evenly spaced queries, and at most 2^24 pairs in all), widened by
    a factor 2 at both ends (the top to at least 4 times the lower quantile, so the grid spans a factor ≥ 8).
    Pools of more than 64 models take, per query, the pairs among its Pareto models (each better than every
    model at most as expensive; every hull vertex but λ = 0's ties is one), on at most 4,096 queries and 2^24
    pairs, so 1,000 or 10,000 models need no [N, M, M] arrays, and neither does a pool where many models tie
    (perfect 0/1 estimates).

    Args:
      est: the estimates; ``quality_ante`` and ``cost_ante`` [N, M] are used (of :class:`StateEstimates`, row ∅).
      n: L, the number of grid points (≥ 2).
      max_queries: at most this many queries (evenly spaced) are used for the quantiles.

    Returns:
      [n] float64 array, ascending, starting at 0.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> cascjax.lambda_grid(cascjax.perfect_estimates(ds), 3).tolist()   # every breakpoint is 1: [1/2, 4]
      [0.0, 0.5, 4.0]
    """
    if not (isinstance(n, (int, np.integer)) and n >= 2):
        raise CascjaxError(f"a λ grid needs at least 2 points, got {n!r}")
    mu_ante, c_ante = routing_inputs(est)
    queries, m = np.shape(mu_ante)
    if m > _FILTER_ABOVE:  # large pools: pairs among the models routing can reach, on fewer queries
        mu, c = _staircase(*_reachable((mu_ante, c_ante), max(1, min(max_queries, PAIRS // (64 * 64)))))
        step = max(1, -(-mu.size * mu.shape[1] // PAIRS))
        mu, c = mu[::step], c[::step]
    else:
        # Queries evenly spaced, at most ``max_queries`` and at most PAIRS pairs in all (bounded memory).
        step = max(1, queries // max_queries, -(-queries * m * m // PAIRS))
        mu = np.asarray(mu_ante, dtype=np.float64)[::step]
        c = np.asarray(c_ante, dtype=np.float64)[::step]
    dq = mu[:, :, None] - mu[:, None, :]
    dc = c[:, :, None] - c[:, None, :]
    ok = (dq > 0) & (dc > 0)  # NaN (padding of ``_reachable``) never passes
    slopes = dq[ok] / dc[ok]
    slopes = slopes[np.isfinite(slopes) & (slopes > 0)]
    if slopes.size == 0:  # no trade-off anywhere: any λ gives the same decisions
        lo, hi = 1.0, 10.0
    else:
        lo, hi = np.quantile(slopes, [0.005, 0.995])
        lo, hi = lo / 2.0, max(hi * 2.0, lo * 4.0)
    return np.concatenate([[0.0], np.geomspace(lo, hi, n - 1)])


#: The most (query, model, model) pairs :func:`lambda_grid` forms (~1 GiB of float64 temporaries).
PAIRS = 1 << 24


def _reachable(ante: tuple, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """μ and ĉ [r, W] (float64, NaN-padded) of ``rows`` evenly spaced queries (of the ex-ante ``ante`` = (μ, ĉ)
    [N, M]), restricted to the models no strictly cheaper model beats (:func:`cascjax._routing._candidates`:
    every hull vertex is among them)."""
    n, m = np.shape(ante[0])
    pick = np.unique(np.linspace(0, n - 1, min(n, rows)).round().astype(np.int64))
    picked = tuple(np.asarray(a)[pick] for a in ante)
    # Padded to a shape bucket: one program per bucket, not per number of queries (padding rows are cut below).
    mu, c = _compile.pad_put(picked, _compile.bucket(pick.size))
    hull = _hull_room(m)
    while True:
        idx, count = _candidate_table(mu, c, hull.width, hull.bins)
        found = int(np.max(np.asarray(count)[:pick.size]))
        if found <= hull.width:
            break
        hull = _grown(m, found)
    idx = np.asarray(idx)[:pick.size]
    at = np.maximum(idx, 0)
    take = lambda a: np.where(idx >= 0, np.take_along_axis(np.asarray(a, np.float64), at, axis=1), np.nan)  # noqa: E731
    return take(picked[0]), take(picked[1])


_candidate_table = jax.jit(_candidates, static_argnums=(2, 3))


def _staircase(mu: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of [r, W] candidates (NaN-padded), per query only the models better than every model at most as
    expensive (in cost order, μ above the running maximum): every hull vertex but λ = 0's ties is one, and a
    pool where many models tie (perfect 0/1 estimates: every correct model is a candidate) keeps few. Packed
    to the left, NaN-padded, [r, W'] with W' the largest count kept."""
    order = np.lexsort((-np.nan_to_num(mu, nan=-np.inf), np.nan_to_num(c, nan=np.inf)), axis=1)
    mu, c = np.take_along_axis(mu, order, axis=1), np.take_along_axis(c, order, axis=1)
    before = np.maximum.accumulate(np.nan_to_num(mu, nan=-np.inf), axis=1)
    before = np.concatenate([np.full((mu.shape[0], 1), -np.inf), before[:, :-1]], axis=1)
    keep = mu > before  # NaN padding never
    width = max(1, int(keep.sum(axis=1).max()))
    # Kept models first (a stable sort of the drop flags keeps their cost order), then cut to ``width``.
    pack = np.argsort(~keep, axis=1, kind="stable")[:, :width]
    kept = np.take_along_axis(keep, pack, axis=1)
    return (np.where(kept, np.take_along_axis(mu, pack, axis=1), np.nan),
            np.where(kept, np.take_along_axis(c, pack, axis=1), np.nan))


def scenario_lambda_grid(est: Estimates, cost_ante, n: int) -> np.ndarray:
    """One λ grid for S cost scenarios of the same queries (what-if prices, latency weights): :func:`lambda_grid`
    on the scenarios' ex-ante cost estimates ``cost_ante`` [S, N, M] stacked, each beside ``est``'s quality
    estimates, every ``step``-th query so that at most about 100,000 rows are stacked (a scenario moves the
    breakpoints, so the grid spans all of them)."""
    cost_ante = np.asarray(cost_ante, np.float64)
    scenarios, queries, m = cost_ante.shape
    step = max(1, queries * scenarios // 100_000)
    costs = cost_ante[:, ::step].reshape(-1, m)
    tiled = (np.tile(np.asarray(a, np.float64)[::step], (scenarios, 1)) for a in est[:4])
    return lambda_grid(Estimates(*tiled, costs, costs), n)


def threshold_grid(est: Estimates, n: int = 256, *, max_depth: int | None = None) -> np.ndarray:
    """A data-driven threshold grid for the threshold cascade: −inf, quantiles of the post-hoc estimates, +inf.

    Only the first D − 1 models' post-hoc estimates are ever compared with a threshold (the last model run
    always answers); the grid holds −inf (the first model always answers), at most ``n − 2`` distinct
    quantiles of those estimates (0% to 100%, so every observed estimate value of a 0/1-valued estimator is
    one of them), and +inf (all D models run).

    Args:
      est: the estimates; ``quality_post`` [N, M] is used (of :class:`StateEstimates`, model j's entry in the
        row {0..j}).
      n: at most this many grid points (≥ 3).
      max_depth: D, the models the cascade may run (default M).

    Returns:
      [≤ n] float64 array, ascending.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> cascjax.threshold_grid(cascjax.perfect_estimates(ds), 5).tolist()
      [-inf, 0.0, 0.5, 1.0, inf]
    """
    if not (isinstance(n, (int, np.integer)) and n >= 3):
        raise CascjaxError(f"a threshold grid needs at least 3 points, got {n!r}")
    post = np.asarray(threshold_inputs(est), dtype=np.float64)
    depth = check_depth(post.shape[1], max_depth, candidates=False)
    vals = post[:, :max(depth - 1, 1)].ravel()
    inner = np.unique(np.quantile(vals, np.linspace(0.0, 1.0, n - 2)))
    return np.concatenate([[-np.inf], inner, [np.inf]])
