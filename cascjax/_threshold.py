"""The threshold cascade (baseline of DESIGN section 4): run models in order until one is confident enough.

After running model j, continue to model j + 1 iff its post-hoc quality estimate is below the threshold θ_j;
at most D = ``max_depth`` models; the last model run answers. Models run in the dataset's order (ascending
mean cost when the dataset is sorted, the paper's cascade order). No scores, so no ties.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from . import _chunks
from ._compile import count, masked_sum, ordered_cumsum, real_sum
from ._curve import Curve


def _stop(post: jax.Array, theta: jax.Array) -> jax.Array:
    """Index of the answering model for one query: the first j with post_j ≥ θ_j, else the last (D − 1).

    Args:
      post: [D] post-hoc quality estimates of the first D models.
      theta: [D] thresholds (θ_{D−1} is never used: the last model always answers).
    """
    go_on = jnp.concatenate([post[:-1] < theta[:-1], jnp.zeros((1,), bool)])
    return jnp.argmin(go_on).astype(jnp.int32)  # first False


@partial(jax.jit, static_argnames=("return_choices", "batch_size", "plan"))
def threshold_sweep(quality, cost, post, theta, n, groups=None, *, return_choices, batch_size, plan):
    """The threshold cascade at every row of ``theta`` [L, D]; a Curve with ``lam`` = ``theta``. The first ``n``
    (traced) rows are real queries, the rest padding. Queries in chunks over devices (``plan``,
    :mod:`cascjax._chunks`); ``groups``: sums per group of queries (:func:`cascjax._chunks.over_queries`)."""
    m = quality.shape[1]
    d = theta.shape[1]

    def one(args, theta):
        q_, c_, post_, w = args
        spent = ordered_cumsum(c_[:, :d], axis=1)  # [chunk, D] cost of running models 0..j
        post_ = post_[:, :d]

        def at(theta_l):
            stop = jax.vmap(_stop, in_axes=(0, None))(post_, theta_l)
            got = jnp.take_along_axis(q_, stop[:, None], axis=1)[:, 0]
            paid = jnp.take_along_axis(spent, stop[:, None], axis=1)[:, 0]
            ran = real_sum(w, stop + 1)  # integers: exact in any order
            sums = (masked_sum(w, got), masked_sum(w, paid), count(w, stop, m, q_.dtype), ran)
            return sums, ((stop, paid) if return_choices else None)

        sums, per_query = jax.lax.map(at, theta, batch_size=batch_size)
        return sums, (None if per_query is None else tuple(a.T for a in per_query))

    (q, c, answered, ran), per_query = _chunks.over_queries(one, (quality, cost, post), n, plan, (theta,),
                                                             groups=groups)
    if per_query is not None:
        per_query = tuple(a.T for a in per_query)
    n = n.astype(q.dtype)
    return Curve(theta, c / n, q / n, answered / n, ran.astype(q.dtype) / n, *(per_query or (None, None)))
