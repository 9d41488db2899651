"""Seeded synthetic datasets for tests and benchmarks (correlated latent errors, log-spaced costs)."""

from __future__ import annotations

import numpy as np

from ._data import Dataset
from ._errors import CascjaxError


def synthetic(seed: int = 0, n_queries: int = 10_000, n_models: int = 11, *, correlation: float = 0.6,
              cost_spread: float = 2.0, accuracy: tuple[float, float] = (0.3, 0.85), binary: bool = True,
              cost_jitter: float = 0.3) -> Dataset:
    """A seeded synthetic dataset for tests and benchmarks.

    Each query n has a latent difficulty z_n ~ N(0, 1); model m answers correctly when
    sqrt(ρ) z_n + sqrt(1 − ρ) e_{nm} < Φ⁻¹(a_m) with independent e_{nm} ~ N(0, 1), so ``correlation`` ρ
    is the correlation between models' latent errors and a_m, the accuracy of model m, rises linearly over
    ``accuracy`` from the cheapest to the most expensive model. ``binary=False`` gives a continuous quality
    in [0, 1] instead (a logistic of the same latent). Mean costs are log-spaced over ``cost_spread`` orders
    of magnitude starting at 1e-4, with a per-query log-normal length factor (sd ``cost_jitter``) shared by
    all models, as prompt length is.

    Args:
      seed: seeds the NumPy generator (the same seed gives the same data).
      n_queries: N.
      n_models: M ≥ 2.
      correlation: ρ in [0, 1), the correlation of the models' latent errors.
      cost_spread: orders of magnitude between the cheapest and the most expensive model's mean cost.
      accuracy: (a_0, a_{M−1}), the accuracies of the cheapest and the most expensive model.
      binary: 0/1 correctness; ``False``: a continuous quality in [0, 1].
      cost_jitter: sd of the per-query log-normal length factor of the costs.

    Returns:
      A :class:`Dataset` with ``quality``, ``cost`` [N, M] and models ``m00``, ``m01``, ... in ascending order
      of mean cost.

    Example:
      >>> import cascjax
      >>> ds = cascjax.synthetic(0, n_queries=100, n_models=3)
      >>> ds
      Dataset(100 queries x 3 models ['m00', 'm01', 'm02'])
      >>> [round(float(q), 2) for q in ds.model_qualities()]   # accuracy rises with cost
      [0.31, 0.58, 0.88]
    """
    if n_queries < 1 or n_models < 2:
        raise CascjaxError(f"synthetic data needs n_queries >= 1 and n_models >= 2, got {n_queries}, {n_models}")
    if not 0.0 <= correlation < 1.0:
        raise CascjaxError(f"correlation must lie in [0, 1), got {correlation}")
    from statistics import NormalDist

    rng = np.random.default_rng(seed)
    acc = np.linspace(accuracy[0], accuracy[1], n_models)
    threshold = np.array([NormalDist().inv_cdf(a) for a in acc])
    z = rng.standard_normal((n_queries, 1))
    e = rng.standard_normal((n_queries, n_models))
    latent = np.sqrt(correlation) * z + np.sqrt(1.0 - correlation) * e
    margin = threshold[None, :] - latent
    quality = (margin > 0).astype(np.float64) if binary else 1.0 / (1.0 + np.exp(-2.0 * margin))
    base = 1e-4 * np.logspace(0.0, cost_spread, n_models)
    length = np.exp(cost_jitter * rng.standard_normal((n_queries, 1)) - 0.5 * cost_jitter**2)
    cost = base[None, :] * length * np.exp(0.05 * rng.standard_normal((n_queries, n_models)))
    return Dataset.from_arrays(quality, cost, models=[f"m{i:02d}" for i in range(n_models)])
