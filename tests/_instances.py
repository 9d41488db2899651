"""Small random instances shared by the hypothesis tests of the batched sweeps (groups of queries, price
scenarios, a second cost, pools): dyadic qualities, costs and estimates (exact in binary, so ties are real ties),
standard deviations or none, and λ grids that take the direct grids (1, 3 λ) or the event routes (40 λ)."""

import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

import cascjax

STRATEGIES = ["routing", "cascade", "cascade_routing", "threshold_cascade"]


def dyadic(draw, n, m, denom):
    """[n, m] of multiples of 1/denom in [0, 1]."""
    ints = st.integers(0, denom)
    return np.array(draw(st.lists(ints, min_size=n * m, max_size=n * m)), float).reshape(n, m) / denom


def instance(draw, max_n, max_m=4):
    """(Dataset in the given model order, Estimates): N in 1..max_n, M in 2..max_m."""
    n, m = draw(st.integers(1, max_n)), draw(st.integers(2, max_m))
    quality, cost = dyadic(draw, n, m, 4), dyadic(draw, n, m, 8)
    sd = dyadic(draw, n, m, 4) if draw(st.booleans()) else np.zeros((n, m))
    fields = (dyadic(draw, n, m, 4), dyadic(draw, n, m, 4), sd, np.zeros((n, m)), dyadic(draw, n, m, 8), cost)
    est = cascjax.Estimates(*(jnp.asarray(a) for a in fields))
    return cascjax.Dataset.from_arrays(quality, cost, sort=False), est


def lambdas(draw, strategy):
    """1, 3 or 40 dyadic λ in [0, 2] (θ in [−0.5, 1.5] for the threshold cascade)."""
    count = draw(st.sampled_from([1, 3, 40]))
    lam = np.array(draw(st.lists(st.integers(0, 16).map(lambda v: v / 8), min_size=count, max_size=count)))
    return lam - 0.5 if strategy == "threshold_cascade" else lam


def options(strategy, depth, k):
    """:func:`cascjax.sweep`'s options for a drawn depth and number of samples: none for routing, ``max_depth``
    for the others, ``samples`` for the two that take expected maxima."""
    out = {} if strategy == "routing" else dict(max_depth=depth)
    if strategy in ("cascade", "cascade_routing"):
        out["samples"] = k
    return out
