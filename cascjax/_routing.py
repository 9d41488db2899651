"""Routing: one model per query, chosen ex ante (DESIGN section 4), on a λ grid and as an exact λ-path."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._curve import Curve
from ._data import Dataset
from ._decide import select
from ._estimates import Estimates


@partial(jax.jit, static_argnames=("rtol", "tie_max", "return_choices", "batch_size"))
def routing_sweep(quality, cost, mu, c_hat, lam, *, rtol, tie_max, return_choices, batch_size):
    """Routing at every λ of ``lam`` [L]: returns a Curve with [L] cost/quality and [L, M] answered."""
    n, m = quality.shape

    def at(lam_l):
        choice = jax.vmap(select, in_axes=(0, 0, None, None, None))(mu, c_hat, lam_l, rtol, tie_max)
        picked = jax.nn.one_hot(choice, m, dtype=quality.dtype)
        q = jnp.mean(jnp.sum(picked * quality, axis=1))
        c = jnp.mean(jnp.sum(picked * cost, axis=1))
        return q, c, jnp.mean(picked, axis=0), (choice if return_choices else None)

    q, c, answered, choice = jax.lax.map(at, lam, batch_size=batch_size)
    return Curve(lam, c, q, answered, jnp.ones_like(lam), choice)


def _walk_one(q, c):
    """The upper-left convex hull of one query's (ĉ_m, μ_m) points, walked as λ grows from 0.

    Returns (vertices [M] int32, breakpoints [M-1]): vertex 0 is the MAX choice at λ = 0 (highest μ, then
    most expensive, then lowest index); vertex k+1 is reached at λ = breakpoints[k], which is +inf once the
    cheapest point has been reached (the vertex then repeats).
    """
    m = q.shape[0]
    start = select(q, c, jnp.zeros((), q.dtype), 0.0, True)

    def step(a, _):
        cheaper = c < c[a]
        slope = (q[a] - q) / jnp.where(cheaper, c[a] - c, 1.0)
        slope = jnp.where(cheaper, jnp.maximum(slope, 0.0), jnp.inf)
        done = ~jnp.any(cheaper)
        # Smallest slope first; on equal slopes the cheapest point, the far end of a collinear edge.
        nxt = select(-slope, c, jnp.zeros((), q.dtype), 0.0, False, valid=cheaper)
        nxt = jnp.where(done, a, nxt)
        lam = jnp.where(done, jnp.inf, slope[nxt])
        return nxt, (nxt, lam)

    _, (verts, lams) = jax.lax.scan(step, start, None, length=m - 1)
    # Rounding may make a breakpoint a few ulps smaller than the previous one; keep them ordered.
    lams = jax.lax.cummax(lams)
    return jnp.concatenate([start[None], verts]), lams


@jax.jit
def _path_kernel(quality, cost, mu, c_hat):
    n = quality.shape[0]
    verts, lams = jax.vmap(_walk_one)(mu, c_hat)  # [N, M], [N, M-1]
    rq = jnp.take_along_axis(quality, verts, axis=1)
    rc = jnp.take_along_axis(cost, verts, axis=1)
    base_q, base_c = jnp.sum(rq[:, 0]), jnp.sum(rc[:, 0])
    dq = jnp.diff(rq, axis=1).ravel()
    dc = jnp.diff(rc, axis=1).ravel()
    lam = jnp.where(lams > 0, lams, 0.0).ravel()  # also maps -0.0 to +0.0 for the bit order below
    # For λ >= 0 the IEEE bit pattern as an unsigned integer sorts like the float; XLA sorts a lone
    # integer array several times faster than a float array with payloads, so sort the keys alone and
    # find each breakpoint's place by binary search.
    utype = jnp.uint32 if lam.dtype.itemsize == 4 else jnp.uint64
    keys = jax.lax.bitcast_convert_type(lam, utype)
    sorted_keys = jnp.sort(keys)
    slot = jnp.searchsorted(sorted_keys, keys, side="right") - 1  # last position of each equal-λ run
    cum_q = jnp.cumsum(jnp.zeros_like(dq).at[slot].add(dq))
    cum_c = jnp.cumsum(jnp.zeros_like(dc).at[slot].add(dc))
    lam_sorted = jax.lax.bitcast_convert_type(sorted_keys, lam.dtype)
    run_end = jnp.concatenate([sorted_keys[1:] != sorted_keys[:-1], jnp.ones((1,), bool)])
    keep = run_end & jnp.isfinite(lam_sorted)
    return (lam_sorted, (base_c + cum_c) / n, (base_q + cum_q) / n, keep,
            base_c / n, base_q / n)


def routing_path(ds: Dataset, est: Estimates) -> Curve:
    """The exact routing curve for every λ ≥ 0 (no grid), in O(NM log NM).

    For one query, argmax_m μ_m − λ ĉ_m moves along the upper-left convex hull of the points (ĉ_m, μ_m) as λ
    grows; the breakpoints are the hull's slopes. Sorting all queries' breakpoints and accumulating the
    changes of realised cost and quality gives the curve's vertices (arithmetic on the estimates is exact:
    no tie tolerance is applied, unlike :func:`cascjax.sweep`).

    Returns:
      A :class:`Curve` of K vertices: ``lam`` [K] ascending, starting at 0, and the realised mean ``cost`` and
      ``quality`` [K]. Vertex k is what routing with MIN ties realises for λ ∈ [lam[k], lam[k+1]) and with
      MAX ties for λ ∈ (lam[k], lam[k+1]]; vertex 0 is the MAX strategy at λ = 0. Mixing vertices k−1 and k
      (:func:`cascjax.at_budget`) is Theorem 1's γ·s_MAX(λ_k) + (1−γ)·s_MIN(λ_k).

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> path = cascjax.routing_path(ds, cascjax.perfect_estimates(ds))
      >>> float(path.lam[0])
      0.0
    """
    from ._sweep import check_estimates

    check_estimates(ds, est)
    lam, cost, quality, keep, c0, q0 = _path_kernel(ds.quality, ds.cost, est.quality_ante, est.cost_ante)
    keep = np.asarray(keep)
    zero = jnp.zeros((1,), lam.dtype)
    return Curve(jnp.concatenate([zero, lam[keep]]), jnp.concatenate([c0[None], cost[keep]]),
                 jnp.concatenate([q0[None], quality[keep]]))
