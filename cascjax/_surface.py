"""A second cost (latency, or any other): the objective quality − λ·cost − μ·latency over a 2-D grid, the
three-way Pareto surface (quality up, cost and latency down), and choosing to two budgets at once.

Latency adds up like cost: a cascade's run set takes the sum of its models' latencies, routing the chosen
model's (the paper's cost model, with a second column). Every strategy's decision reads a model's cost only
through λ·ĉ, so quality − λ·ĉ − μ·ℓ̂ is the strategy run on the combined cost estimate ĉ + w·ℓ̂ at λ, with
w = μ / λ: the *weight*, cost units per unit of latency ("a second is worth w dollars"). The grid is therefore
(w, λ): for each weight w_k the λ sweep runs on the combined estimates, and every (w_k, λ_l) is the point
(λ, μ) = (λ_l, w_k·λ_l); w = inf is latency alone (λ = 0, μ = λ_l). Every objective with λ > 0 and μ ≥ 0 is some
(w, λ), and each weight's sweep keeps the kernels' λ vectorisation (a rectangular (λ, μ) grid would need a
separate combined estimate, so a separate scenario, per pair).

All weights run in one vmapped call (the what-if prices' scenario axis, :func:`cascjax.sweep`'s ``prices``):
a scenario per weight with the realised costs, and one per weight with the realised latencies — the decisions
read only the estimates, so the two are the same decisions (tested) and give each point's mean cost and mean
latency. A weight of 0 is the one-cost sweep, to the bit (tested).
"""

from __future__ import annotations

import numpy as np

from ._data import Dataset
from ._errors import CascjaxError
from ._estimates import Estimates
from ._latency import Latency, Surface, check_latency
from ._lambda_grid import scenario_lambda_grid
from ._sweep import STRATEGIES, _evaluate

def default_weights(est: Estimates, latency: Latency, n: int = 8) -> np.ndarray:
    """0, ``n − 2`` log-spaced weights around the exchange rate at which mean latency costs as much as mean cost
    (from 1/100 to 100 times it), and inf (latency alone)."""
    if n < 2:
        raise CascjaxError(f"a weight grid needs at least 2 points (0 and inf), got {n}")
    lat = float(np.mean(latency.latency_ante))
    rate = float(np.mean(np.asarray(est.cost_ante))) / lat if lat > 0 else 1.0
    rate = rate if rate > 0 else 1.0
    return np.concatenate([[0.0], np.geomspace(rate / 100, rate * 100, n - 2), [np.inf]])


def combined(est: Estimates, latency: Latency, weights: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The combined cost estimates ĉ + w·ℓ̂ (ℓ̂ alone for w = inf), ex ante and post hoc: [K, N, M] each."""
    w = weights[:, None, None]
    finite = np.isfinite(w)
    out = []
    for c, lat in ((est.cost_ante, latency.latency_ante), (est.cost_post, latency.latency_post)):
        c = np.asarray(c, np.float64)[None]
        with np.errstate(invalid="ignore", over="ignore"):
            out.append(np.where(finite, c + np.where(finite, w, 0.0) * lat[None], lat[None]))
    top = max(float(a.max(initial=0.0)) for a in out)
    if not top <= float(np.finfo(dtype).max):
        raise CascjaxError(f"weights: cost + weight x latency overflows {np.dtype(dtype).name} (largest {top:.3g}); "
                           "use smaller weights, rescale the latencies, or float64 (jax_enable_x64)")
    return out[0], out[1]


def surface(ds: Dataset, est: Estimates, latency, lambdas=64, weights=8, strategy: str = "routing",
            tie: str = "min", **options) -> Surface:
    """A strategy's points over a (weight, λ) grid of quality − λ·cost − μ·latency, μ = weight·λ, in one
    vmapped call (see the module docstring for why the grid is (weight, λ)).

    Args:
      ds: the dataset (realised quality and cost).
      est: the estimates (:class:`cascjax.Estimates`; per-query fields).
      latency: the second cost, a :class:`Latency` or an [N, M] array (then its estimates are the truth).
      lambdas: [L] λ ≥ 0 (one for every step), or an int: that many λ from :func:`cascjax.lambda_grid` on the
        combined estimates of every weight (:func:`cascjax._lambda_grid.scenario_lambda_grid`).
      weights: [K] weights ≥ 0 (``inf``: latency alone), or an int: :func:`default_weights`.
      strategy: ``"routing"``, ``"cascade"`` or ``"cascade_routing"`` (the threshold cascade decides by
        thresholds on quality, never by cost: its points are :func:`cascjax.sweep`'s, with the latency summed
        the same way).
      tie: of tied choices the cheapest (``"min"``) or the most expensive (``"max"``), as :func:`cascjax.sweep`.
      options: as :func:`cascjax.sweep`'s (``max_depth``, ``samples``, ...).

    Returns:
      A :class:`Surface`: [K, L] points.

    Example:
      >>> import numpy as np, cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1]], [[1.0, 4.0]] * 3, models=["small", "big"])
      >>> latency = [[0.2, 1.0]] * 3                      # the big model is slow too
      >>> s = cascjax.surface(ds, cascjax.perfect_estimates(ds), latency, [0.0, 1.0], [0.0, np.inf])
      >>> s.quality.tolist()                               # rows: weight 0 (cost only), inf (latency only)
      [[1.0, 0.3333333333333333], [1.0, 1.0]]
      >>> np.round(s.latency, 3).tolist()   # at μ = 1 the big model still answers what the small one fails
      [[0.733, 0.2], [0.733, 0.733]]
    """
    if strategy not in STRATEGIES:
        raise CascjaxError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    if strategy == "threshold_cascade":
        raise CascjaxError("the threshold cascade decides by thresholds on quality, never by cost: a second cost "
                           "does not change its points; sweep it and sum the latency of the models it runs")
    if not isinstance(est, Estimates):
        raise CascjaxError("surface takes Estimates (per-query fields), not a state table or a state model")
    latency = check_latency(ds, latency)
    dtype = ds.quality.dtype
    if isinstance(weights, (int, np.integer)) and not isinstance(weights, bool):
        weights = default_weights(est, latency, int(weights))
    weights = np.asarray(weights, np.float64).ravel()
    if weights.size == 0 or np.isnan(weights).any() or (weights < 0).any():
        raise CascjaxError(f"weights must be numbers >= 0 (inf: latency alone), got {weights.tolist()}")
    ante, post = combined(est, latency, weights, dtype)
    if isinstance(lambdas, (int, np.integer)) and not isinstance(lambdas, bool):
        lambdas = scenario_lambda_grid(est, ante, int(lambdas))
    lam = np.asarray(lambdas, np.float64)
    if lam.ndim != 1:
        raise CascjaxError(f"surface takes one λ per point, shape [L]; got shape {lam.shape}")
    k = weights.size
    # Scenarios 0..K-1 pay the realised costs, K..2K-1 the realised latencies; both see the combined estimates.
    realised = np.concatenate([np.broadcast_to(np.asarray(ds.cost, np.float64), (k,) + ante.shape[1:]),
                               np.broadcast_to(latency.latency, (k,) + ante.shape[1:])])
    scenarios = tuple(np.asarray(a, dtype) for a in (realised, np.concatenate([ante, ante]),
                                                     np.concatenate([post, post])))
    curve, n_lam, _ = _evaluate(ds, est, lam, strategy, tie, scenarios=scenarios, **options)
    cost, quality = (np.asarray(a, np.float64)[:2 * k, :n_lam] for a in (curve.cost, curve.quality))
    finite = np.isfinite(weights)[:, None]
    w = np.where(finite, weights[:, None], 0.0)
    return Surface(weights, np.where(finite, lam[None], 0.0), np.where(finite, w * lam[None], lam[None]), cost[:k],
                   cost[k:], quality[:k])
