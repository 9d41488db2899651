"""Seeded batches of random instances, λ and worlds for one jit call (thousands of independent decision problems
per call), deterministic in their key or seed; the hypothesis strategies are in :mod:`._strategies`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._data import Dataset
from .._estimates import Estimates
from ._strategies import ESTIMATE_KINDS, Instance


def random_instance(key: jax.Array, n_queries: int, n_models: int, *, kind: str = "noisy", quality: str = "lattice",
                    deviation: bool = True, dtype=None) -> Instance:
    """``n_queries`` independent random decision problems as one dataset (strategies decide per query).

    Every query draws a difficulty, every model an ability; quality is ``quality`` (``binary``, ``lattice`` or
    ``continuous``) of their difference plus noise; cost a multiple of 1/8. Estimates as :func:`estimates`'
    ``kind`` (``perfect``, ``noisy``, ``arbitrary``), on quarter lattices so that ties occur. Deterministic
    in ``key``; ``dtype`` defaults to JAX's default float.

    Args:
      key: a ``jax.random`` key.
      n_queries: N (thousands are fine: one jit call decides them all).
      n_models: M.
      kind: ``"perfect"``, ``"noisy"`` or ``"arbitrary"`` estimates.
      quality: ``"binary"``, ``"lattice"`` or ``"continuous"``.
      deviation: ex-ante σ on a quarter lattice (else 0).
      dtype: the arrays' dtype.

    Returns:
      An :class:`Instance`: dataset and estimates, [N, M] each (models unsorted).

    Example:
      >>> import jax, cascjax.testing as ct
      >>> instance = ct.random_instance(jax.random.key(0), 4, 2)
      >>> instance.dataset.quality.shape, instance.estimates.sd_ante.shape
      ((4, 2), (4, 2))
      >>> bool((instance.dataset.cost * 8 % 1 == 0).all())   # costs on the 1/8 lattice: ties on purpose
      True
    """
    n, m = n_queries, n_models
    dtype = dtype or jnp.zeros(()).dtype
    ks = jax.random.split(key, 9)
    quarters = lambda k, lo, hi, denom=4: (  # noqa: E731
        jax.random.randint(k, (n, m), int(lo * denom), int(hi * denom) + 1) / denom).astype(dtype)
    latent = (jax.random.randint(ks[0], (1, m), 0, 5) - jax.random.randint(ks[1], (n, 1), 0, 5)) / 4 + quarters(
        ks[2], -0.25, 0.25)
    q = {"binary": (latent >= 0).astype(dtype), "lattice": jnp.clip(0.5 + latent, 0, 1).astype(dtype),
         "continuous": jax.nn.sigmoid(4 * latent).astype(dtype)}[quality]
    c = quarters(ks[3], 0, 1, 8)
    ds = Dataset.from_arrays(np.asarray(q), np.asarray(c), models=[f"m{i}" for i in range(m)], sort=False)
    zeros = jnp.zeros((n, m), dtype)
    if kind == "perfect":
        return Instance(ds, Estimates(ds.quality, ds.quality, zeros, zeros, ds.cost, ds.cost))
    if kind == "noisy":
        ante, post = ds.quality + quarters(ks[4], -0.5, 0.5), ds.quality + quarters(ks[5], -0.25, 0.25)
        c_ante = jnp.maximum(ds.cost + quarters(ks[6], -0.25, 0.25, 8), 0)
    elif kind == "arbitrary":
        ante, post, c_ante = quarters(ks[4], 0, 1), quarters(ks[5], 0, 1), quarters(ks[6], 0, 1, 8)
    else:
        raise ValueError(f"unknown kind {kind!r}; choose one of {ESTIMATE_KINDS}")
    sd = quarters(ks[7], 0, 1) if deviation else zeros
    return Instance(ds, Estimates(ante, post, sd, zeros, c_ante, ds.cost))


def random_lambdas(key: jax.Array, n: int, hi: float = 4.0, dtype=None) -> jax.Array:
    """[n] λ: half multiples of 1/8 (ties), half log-uniform over [hi/1000, hi], plus λ = 0 first.

    Args:
      key: a ``jax.random`` key.
      n: L.
      hi: the largest λ.
      dtype: the dtype (default: JAX's default float).

    Returns:
      [n] JAX array, unsorted, ``lam[0] = 0``.

    Example:
      >>> import jax, cascjax.testing as ct
      >>> lam = ct.random_lambdas(jax.random.key(1), 4)
      >>> lam.shape, float(lam[0]), bool(((lam >= 0) & (lam <= 4)).all())
      ((4,), 0.0, True)
    """
    k1, k2 = jax.random.split(key)
    grid = jax.random.randint(k1, (n,), 0, int(8 * hi) + 1) / 8
    logu = hi * 10 ** jax.random.uniform(k2, (n,), minval=-3, maxval=0)
    lam = jnp.where(jnp.arange(n) % 2 == 0, grid, logu).at[0].set(0)
    return lam.astype(dtype or jnp.zeros(()).dtype)




def random_worlds(seed: int, n_worlds: int, n_models: int):
    """[W, M] random worlds: μ, σ and cost uniform on [0, 1] (continuous: no ties), float64, from a seeded
    NumPy generator (the world solvers are NumPy).

    Args:
      seed: the NumPy generator's seed.
      n_worlds: W.
      n_models: M (1..4 for the world solvers).

    Returns:
      A :class:`cascjax.testing.World` with fields [W, M].

    Example:
      >>> import cascjax.testing as ct
      >>> worlds = ct.random_worlds(0, 5, 3)
      >>> worlds.mu.shape, worlds.cost.dtype
      ((5, 3), dtype('float64'))
    """
    from ._worlds import World

    rng = np.random.default_rng(seed)
    return World(*(rng.uniform(0.0, 1.0, (n_worlds, n_models)) for _ in range(3)))
