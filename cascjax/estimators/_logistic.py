"""Many L2-penalised logistic regressions at once, on one design matrix, by optax's L-BFGS.

Problem p fits weights w_p [F] to the targets of column ``target[p]`` of ``y`` [N, T] (values in [0, 1]), on the
rows of weight > 0 and the features of ``x`` [N, F] its mask keeps (the others stay 0), minimising

    L_p(w_p) = mean_n weight_n · CE(y_n, σ(x_n · w_p)) + (α_p / 2) · ‖w_p without column 0‖²

(column 0 is the intercept, not penalised). Each L_p is strictly convex (α_p > 0), so Σ_p L_p, a function of the
stacked weights W [P, F] whose Hessian is block-diagonal, has the problems' own optima as its unique minimum:
one L-BFGS run on the sum solves them all, each iteration one matrix product [P, F] × [F, N]. (Vmapping a
solver per problem instead was 27x slower on the example's 132 regressions of 4,808 rows,
``benchmarks/bench_learned.py``: every problem's line search runs as long as the slowest one's.) The run stops
when every problem's gradient norm is at most ``tolerance``, or after ``iterations``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

#: L-BFGS iterations at most, and the largest gradient norm of a problem's objective at which the run stops.
ITERATIONS = 2000
TOLERANCE = 1e-6


@partial(jax.jit, static_argnames=("iterations",))
def fit_logistic(x, y, target, weight, mask, alpha, *, iterations=ITERATIONS, tolerance=TOLERANCE):
    """Fits P regressions on one design matrix (see the module docstring).

    Args:
      x: [N, F] features (column 0 the intercept, 1).
      y: [N, T] targets in [0, 1].
      target: [P] int, the column of ``y`` each problem fits.
      weight: [N] non-negative row weights (0 leaves a row out, e.g. a held-out part), shared by the problems.
      mask: [P, F] 1 for the columns problem p uses, 0 for the others.
      alpha: [P] L2 strengths (> 0).
      iterations, tolerance: the stopping rule.

    Returns:
      (W [P, F] weights, 0 on masked columns; iterations run; per-problem gradient norms [P] at the end).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([[1.0, -1.0], [1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
      >>> y = jnp.array([[0.0], [0.0], [1.0], [1.0]])
      >>> w, k, g = fit_logistic(x, y, jnp.array([0, 0]), jnp.ones(4), jnp.array([[1.0, 1.0], [1.0, 0.0]]),
      ...                        jnp.array([0.1, 0.1]))
      >>> bool(w[0, 1] > 0), float(w[1, 1]), bool(g.max() <= 1e-6)   # the second problem sees no feature
      (True, 0.0, True)
    """
    targets = y[:, target].T  # [P, N]
    total = jnp.sum(weight)

    def objective(w):
        w = w * mask
        z = w @ x.T  # [P, N]
        ce = jnp.sum(weight[None] * (jax.nn.softplus(z) - targets * z), axis=1) / total  # CE, stable for large |z|
        return jnp.sum(ce + 0.5 * alpha * jnp.sum(jnp.square(w[:, 1:]), axis=1))

    opt = optax.lbfgs(memory_size=20)
    value_and_grad = optax.value_and_grad_from_state(objective)
    w0 = jnp.zeros(mask.shape, x.dtype)

    def go(carry):
        _, _, k, gnorm = carry
        return (k < iterations) & (jnp.max(gnorm) > tolerance)

    def step(carry):
        w, state, k, _ = carry
        value, grad = value_and_grad(w, state=state)
        updates, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=objective)
        return optax.apply_updates(w, updates), state, k + 1, jnp.linalg.norm(grad * mask, axis=1)

    start = (w0, opt.init(w0), jnp.int32(0), jnp.full(mask.shape[0], jnp.inf, x.dtype))
    w, _, k, _ = jax.lax.while_loop(go, step, start)
    return w * mask, k, jnp.linalg.norm(jax.grad(objective)(w) * mask, axis=1)


@jax.jit
def mean_log_loss(x, y, target, weight, w):
    """Per problem: the weighted mean cross-entropy of weights w [P, F] on x [N, F], targets ``y[:, target]``
    and row weights [N] (e.g. the held-out rows)."""
    z = w @ x.T
    ce = weight[None] * (jax.nn.softplus(z) - y[:, target].T * z)
    return jnp.sum(ce, axis=1) / jnp.maximum(jnp.sum(weight), 1e-30)
