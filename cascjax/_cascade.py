"""The paper's optimal cascade (DESIGN section 4): models in order, each step choosing among prefixes.

At step j the information state is R = {0..j−1} (models run in the dataset's order, ascending mean cost when
sorted) and the candidates are the prefixes {0..i}, i ≥ max(j − 1, 0), |{0..i}| ≤ D. The decision rule picks
T* = argmax Q(T) − λ_j C(T); T* = R stops, anything else runs model j. The answer is the run model with the
highest post-hoc estimate (lower index on a tie).

The state reached at step j does not depend on λ — only whether the cascade is still running does — so Q and
C of every (step, prefix) are computed once per query, and each λ costs only D decisions over ≤ M candidates.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ._curve import Curve
from ._decide import _magnitudes, select


def _prefix_values(mu, sd, c_hat, z):
    """Q and C of the prefixes {0..i}, i = 0..M−1, for one query in one state: [M] each.

    Q by the shared points z [K, M] (running maxima over the models), exact for a single model and where no
    member deviates, as :func:`cascjax._supermodels.expected_max`.
    """
    y = mu[None] + z * sd[None]  # [K, M]
    mc = jnp.mean(jax.lax.cummax(y, axis=1), axis=0)
    exact = jax.lax.cummax(mu)
    deterministic = jnp.cumsum(sd != 0) == 0
    single = jnp.arange(mu.shape[0]) == 0
    return jnp.where(single | deterministic, exact, mc), jnp.cumsum(c_hat)


def _query_tables(ante, post, sd_ante, sd_post, c_ante, c_post, z, depth):
    """Q, C [D, M] of every prefix at every step j = 0..D−1 (state {0..j−1}) for one query."""
    m = ante.shape[0]

    def at_step(j):
        ran = jnp.arange(m) < j
        return _prefix_values(jnp.where(ran, post, ante), jnp.where(ran, sd_post, sd_ante),
                              jnp.where(ran, c_post, c_ante), z)

    return jax.vmap(at_step)(jnp.arange(depth))


def _valid(m, depth):
    """[D, M] Cand(R) at step j: prefixes {0..i} with max(j − 1, 0) ≤ i < D."""
    steps, i = jnp.arange(depth), jnp.arange(m)
    return (i[None] >= jnp.maximum(steps - 1, 0)[:, None]) & (i[None] < depth)


def _run_length(q, c, mags, lam, rtol, tie_max, depth):
    """Models run by one query at one λ vector [D]: the first step j ≥ 1 whose choice is R = {0..j−1}, else D."""
    steps = jnp.arange(depth)
    valid = _valid(q.shape[1], depth)
    choice = jax.vmap(select, in_axes=(0, 0, 0, None, None, 0, 0))(q, c, lam, rtol, tie_max, valid, mags)
    stops = (steps >= 1) & (choice == steps - 1)
    return jnp.where(jnp.any(stops), jnp.argmax(stops), depth).astype(jnp.int32)


@partial(jax.jit, static_argnames=("depth", "rtol", "tie_max", "return_choices", "batch_size"))
def cascade_sweep(quality, cost, est, lam, z, *, depth, rtol, tie_max, return_choices, batch_size):
    """The optimal cascade at every row of ``lam`` [L, D]; a Curve with ``lam`` as given."""
    n, m = quality.shape
    ante, post, sd_ante, sd_post, c_ante, c_post = est
    q_tab, c_tab = jax.vmap(_query_tables, in_axes=(0, 0, 0, 0, 0, 0, None, None))(
        ante, post, sd_ante, sd_post, c_ante, c_post, z, depth)  # [N, D, M] each: λ-independent, once
    # select's tolerance scales with the magnitudes over each step's valid candidates: λ-independent, once.
    mags = jax.vmap(jax.vmap(_magnitudes), in_axes=(0, 0, None))(q_tab, c_tab, _valid(m, depth))
    spent = jnp.cumsum(cost, axis=1)  # [N, M]
    # Answer after running r models: the highest post-hoc estimate among models 0..r−1, lower index on a tie.
    upto = jnp.arange(m)[None, :] < jnp.arange(1, depth + 1)[:, None]  # [D, M]
    answer_of = jnp.argmax(jnp.where(upto[None], post[:, None, :], -jnp.inf), axis=2).astype(jnp.int32)  # [N, D]

    def at(lam_l):
        runs = jax.vmap(_run_length, in_axes=(0, 0, 0, None, None, None, None))(
            q_tab, c_tab, mags, lam_l, rtol, tie_max, depth)
        answer = jnp.take_along_axis(answer_of, (runs - 1)[:, None], axis=1)[:, 0]
        q = jnp.mean(jnp.take_along_axis(quality, answer[:, None], axis=1))
        c = jnp.mean(jnp.take_along_axis(spent, (runs - 1)[:, None], axis=1))
        answered = jnp.zeros(m, quality.dtype).at[answer].add(1.0) / n
        return q, c, answered, jnp.mean(runs.astype(quality.dtype)), (answer if return_choices else None)

    q, c, answered, ran, choice = jax.lax.map(at, lam, batch_size=batch_size)
    return Curve(lam, c, q, answered, ran, choice)
