"""What a kernel sees of the estimates in an information state, for both forms the kernels take.

The dispatcher hands a kernel its estimates as a tuple ``e`` of arrays with the query axis first:
* separable, six arrays [N, M]: μ ante, μ post, σ ante, σ post, ĉ ante, ĉ post (:class:`cascjax.Estimates`);
* a state table, three arrays [N, S, M]: μ, σ, ĉ per state (:class:`cascjax.StateEstimates`), S = 2^M rows
  (row R = the bitmask of the models run) — or, for the cascades, only the D + 1 prefix states {0..j−1},
  j = 0..D (:func:`prefix_rows`);
* a state model's rows, for cascade routing's kernel (:class:`Lazy`: per-query :class:`Rows`, a shared
  :class:`Model`), expanded to the table of one chunk of queries at a time (:func:`expand`).

In a state R a strategy sees, for every model, the post-hoc value of a run model and the ex-ante value
otherwise; a table holds exactly that per row, so a table made by :meth:`cascjax.Estimates.to_states` gives
every kernel the same values, and the same bits.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def is_table(e) -> bool:
    """Whether ``e`` is a state table (three arrays) rather than the separable six."""
    return len(e) == 3


def visible(e, rows, states):
    """μ, σ, ĉ of queries ``rows`` [B] (indices into the query axis of ``e``) in ``states`` [B] (bitmasks):
    three [B, M] arrays. ``rows=None``: ``e`` holds one query ([M] or [S, M] fields) and ``states`` is a
    scalar; three [M] arrays."""
    if is_table(e):
        return tuple(a[states] if rows is None else a[rows, states] for a in e)
    m = e[0].shape[-1]
    bit = jnp.left_shift(jnp.int32(1), jnp.arange(m, dtype=jnp.int32))
    if rows is None:
        ran = (states & bit) != 0
        fields = e
    else:
        ran = (states[:, None] & bit[None]) != 0
        fields = tuple(a[rows] for a in e)
    ante_mu, post_mu, ante_sd, post_sd, ante_c, post_c = fields
    return jnp.where(ran, post_mu, ante_mu), jnp.where(ran, post_sd, ante_sd), jnp.where(ran, post_c, ante_c)


def answer_scores(e, final):
    """What the answer is chosen by in the final states ``final`` [n, P] (bitmasks): the estimates of the run
    models there — the post-hoc μ [n, 1, M] of the separable form (the same in every state), or μ(n, final)
    [n, P, M] of a table. (For a table of the cascades' prefix rows, ``final`` indexes those rows.)"""
    if is_table(e):
        return jnp.take_along_axis(e[0], final[..., None], axis=1)
    return e[1][:, None, :]


def prefix_view(e, depth: int):
    """μ, σ, ĉ [N, D + 1, M] in the cascades' states {0..j−1}, j = 0..D (a table is already cut to those rows
    by :func:`prefix_rows`)."""
    if is_table(e):
        return e
    m = e[0].shape[-1]
    ran = (jnp.arange(m)[None] < jnp.arange(depth + 1)[:, None])[None]  # [1, D + 1, M]
    ante_mu, post_mu, ante_sd, post_sd, ante_c, post_c = (a[:, None, :] for a in e)
    return jnp.where(ran, post_mu, ante_mu), jnp.where(ran, post_sd, ante_sd), jnp.where(ran, post_c, ante_c)


def prefix_rows(depth: int) -> np.ndarray:
    """The table rows of the states {0..j−1}, j = 0..D: [D + 1] bitmasks 2^j − 1."""
    return (1 << np.arange(depth + 1)) - 1


class Rows(NamedTuple):
    """A :class:`cascjax.StateModel`'s per-query arrays, chunked with the queries: design rows x [N, F], ĉ ante
    and post [N, M], the true quality [N, M] or None (post hoc perfect)."""

    x: jax.Array
    cost_ante: jax.Array
    cost_post: jax.Array
    truth: jax.Array | None


class Model(NamedTuple):
    """A :class:`cascjax.StateModel`'s shared arrays, seen whole by every chunk: weights [S, M, F], which [2^M],
    the training mean [M] or None, σ per state [2^M, M] or None."""

    weights: jax.Array
    which: jax.Array
    mean: jax.Array | None
    sd: jax.Array | None


class Lazy(NamedTuple):
    """A state model as cascade routing's kernel takes it: ``rows`` (chunked) and ``model`` (shared)."""

    rows: Rows
    model: Model


def expand(rows: Rows, model: Model):
    """The table of one chunk of queries: μ, σ, ĉ [n, 2^M, M], as :meth:`cascjax.StateModel.dense` (in the
    kernel's dtype, so equal to it up to rounding)."""
    m = rows.cost_ante.shape[1]
    logits = jnp.einsum("nf,smf->nsm", rows.x, model.weights)
    mu = jax.nn.sigmoid(logits)[:, model.which]
    ran = jnp.asarray((np.arange(1 << m)[:, None] >> np.arange(m)[None]) & 1 == 1)[None]
    if rows.truth is not None:
        mu = jnp.where(ran, rows.truth[:, None], mu)
    if model.mean is not None:
        mu = jnp.where(ran, mu, model.mean[None, None])
    cost = jnp.where(ran, rows.cost_post[:, None], rows.cost_ante[:, None])
    sd = jnp.zeros_like(mu) if model.sd is None else jnp.broadcast_to(model.sd[None], mu.shape)
    return mu, sd, cost
