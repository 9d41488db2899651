"""The ``gradient`` per-step method of :func:`cascjax.fit`: for every budget (vmapped), Adam (optax) on the
smoothed objective of :mod:`cascjax._soft` from the best constant-λ mixture, with the budget's Lagrange
multiplier by dual ascent; its iterates become candidates of the fit (see :mod:`cascjax._fit`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import _strategy_inputs, threshold_inputs
from ._metrics import model_hull


def _hull_slope(cost, quality, budgets):
    """[B] the slope dq/dc of the candidates' upper concave hull at each budget (0 beyond its ends): the
    Lagrange multiplier of the budget constraint for the best mixture."""
    ok = np.isfinite(cost) & np.isfinite(quality)
    hull = model_hull((cost[ok], quality[ok]))
    hc, hq = cost[ok][hull], quality[ok][hull]
    if hc.size < 2:
        return np.zeros_like(budgets)
    k = np.clip(np.searchsorted(hc, budgets, side="right") - 1, 0, hc.size - 2)
    slope = (hq[k + 1] - hq[k]) / (hc[k + 1] - hc[k])
    return np.where((budgets >= hc[0]) & (budgets < hc[-1]), slope, 0.0)


def _gradient(ds, est, strategy, options, depth, values, budgets, start, slope, steps, learning_rate):
    """Per-step parameters by Adam on the smoothed objective, one run per budget (vmapped): maximise
    quality − ν (cost − B) with τ annealed geometrically towards zero and ν by dual ascent, starting from the
    hull's slope at B (the multiplier of the best constant-λ mixture). Returns 8 iterates of the second half
    of the run, [8B, D]."""
    import optax

    from . import _soft

    dtype = ds.quality.dtype
    if strategy == "threshold_cascade":
        f = _soft.threshold_soft(ds.quality, ds.cost, jnp.asarray(threshold_inputs(est), dtype), depth)
    else:
        e, z, factor, _ = _strategy_inputs(ds, est, depth, options["samples"], options["no_deviation"],
                                           candidates=strategy == "cascade_routing" and not options["greedy"],
                                           prefix=strategy == "cascade")
        if strategy == "cascade":
            f = _soft.cascade_soft(ds.quality, ds.cost, e, z, factor, depth)
        else:
            f = _soft.cascade_routing_soft(ds.quality, ds.cost, e, z, factor, depth,
                                           force_order=options["force_order"], greedy=options["greedy"])
    lo0, hi0 = start[0], start[1]
    g0 = start[2][:, None]
    q_scale = float(np.ptp(np.asarray(ds.model_qualities()))) or 1.0
    c_scale = float(np.mean(np.asarray(ds.cost))) or 1.0
    if strategy == "threshold_cascade":
        finite = values[np.isfinite(values)]
        spread = float(np.ptp(finite)) or 1.0
        clip = lambda v: np.clip(v, finite.min() - 0.1 * spread, finite.max() + 0.1 * spread)  # noqa: E731
        unit = spread / 20  # Adam moves x by ~learning_rate per step: θ by ~learning_rate/20 of its range
        x0 = ((1 - g0) * clip(lo0) + g0 * clip(hi0)) / unit  # between the two strategies mixed at B
        to_param = lambda x: x * unit  # noqa: E731
    else:
        pos = values[values > 0]
        floor = pos.min() / 10
        x0 = (1 - g0) * np.log(np.maximum(lo0, floor)) + g0 * np.log(np.maximum(hi0, floor))
        to_param = jnp.exp
    # Thresholds start further from the post-hoc values than λ from its breakpoints: a smoother start.
    tau = q_scale * np.geomspace(0.25 if strategy == "threshold_cascade" else 0.05, 1e-4, steps)
    opt = optax.adam(learning_rate)

    keep = jnp.asarray(np.unique(np.linspace(steps // 2, steps - 1, 8).astype(int)))

    def one(x, budget, nu0):
        # Units: quality / q_scale, cost / c_scale; ν0 = the hull's slope at B in those units.
        def loss(x, nu, t):
            c, q = f(to_param(x), t)
            return -q / q_scale + nu * (c - budget) / c_scale, c

        def step(carry, t):
            x, nu, state = carry
            (_, c), g = jax.value_and_grad(loss, has_aux=True)(x, nu, t)
            upd, state = opt.update(g, state, x)
            x = optax.apply_updates(x, upd)
            nu = jnp.maximum(0.0, nu * (1 + 0.1 * (c - budget) / budget))  # multiplicative dual ascent
            return (x, nu, state), x

        init = (x, nu0, opt.init(x))
        _, xs = jax.lax.scan(step, init, jnp.asarray(tau, dtype))
        return xs[keep]

    nu0 = np.maximum(slope, 0.0) * c_scale / q_scale
    safe = np.where(budgets > 0, budgets, c_scale)
    xs = jax.jit(jax.vmap(one))(jnp.asarray(x0, dtype), jnp.asarray(safe, dtype), jnp.asarray(nu0, dtype))
    return np.asarray(to_param(xs), np.float64).reshape(-1, depth)
