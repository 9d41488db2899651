"""The threshold cascade (baseline of DESIGN section 4): run models in order until one is confident enough.

After running model j, continue to model j + 1 iff its post-hoc quality estimate is below the threshold θ_j;
at most D = ``max_depth`` models; the last model run answers. Models run in the dataset's order (ascending
mean cost when the dataset is sorted, the paper's cascade order). No scores, so no ties.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ._curve import Curve


def _stop(post: jax.Array, theta: jax.Array) -> jax.Array:
    """Index of the answering model for one query: the first j with post_j ≥ θ_j, else the last (D − 1).

    Args:
      post: [D] post-hoc quality estimates of the first D models.
      theta: [D] thresholds (θ_{D−1} is never used: the last model always answers).
    """
    go_on = jnp.concatenate([post[:-1] < theta[:-1], jnp.zeros((1,), bool)])
    return jnp.argmin(go_on).astype(jnp.int32)  # first False


@partial(jax.jit, static_argnames=("return_choices", "batch_size"))
def threshold_sweep(quality, cost, post, theta, *, return_choices, batch_size):
    """The threshold cascade at every row of ``theta`` [L, D]; a Curve with ``lam`` = ``theta``."""
    n, m = quality.shape
    d = theta.shape[1]
    spent = jnp.cumsum(cost[:, :d], axis=1)  # [N, D] cost of running models 0..j
    post = post[:, :d]

    def at(theta_l):
        stop = jax.vmap(_stop, in_axes=(0, None))(post, theta_l)
        q = jnp.mean(jnp.take_along_axis(quality, stop[:, None], axis=1))
        paid = jnp.take_along_axis(spent, stop[:, None], axis=1)[:, 0]
        answered = jnp.zeros(m, quality.dtype).at[stop].add(1.0) / n
        ran = jnp.mean(stop + 1.0)
        return q, jnp.mean(paid), answered, ran.astype(quality.dtype), ((stop, paid) if return_choices else None)

    q, c, answered, ran, per_query = jax.lax.map(at, theta, batch_size=batch_size)
    return Curve(theta, c, q, answered, ran, *(per_query or (None, None)))
