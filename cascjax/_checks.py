"""Input checks shared by the dispatcher and the kernels: estimates, strategy inputs, points, thresholds, λ per step.

They run eagerly, in NumPy, before anything is traced, and raise :class:`cascjax.CascjaxError` with messages that
name the field, the model or the shape. :func:`cascjax.sweep` and the kernels' public entry points
(:func:`cascjax.routing_path`, :func:`cascjax.cascade_path`, :func:`cascjax.cascade_routing_path`) and
:func:`cascjax.fit` call them, so a bad input gets the same message wherever it enters.
"""

from __future__ import annotations

import numpy as np

from ._data import Dataset
from ._errors import CascjaxError
from ._estimates import Estimates, check_covariance, covariance_factors
from ._supermodels import check_depth, normal_points


def check_estimates(ds: Dataset, est: Estimates) -> None:
    """Raises unless ``est`` has one [N, M] array per field matching ``ds`` (and a valid covariance table).

    Example:
      >>> import cascjax
      >>> from cascjax._checks import check_estimates
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1]], [[1, 2]] * 2)
      >>> check_estimates(ds, cascjax.perfect_estimates(ds))   # fine: returns None
      >>> check_estimates(ds, ds)
      Traceback (most recent call last):
      ...
      cascjax._errors.CascjaxError: estimates must be a cascjax.Estimates, got Dataset
    """
    if not isinstance(est, Estimates):
        raise CascjaxError(f"estimates must be a cascjax.Estimates, got {type(est).__name__}")
    for name, arr in est._asdict().items():
        if name == "covariance":
            if arr is not None:
                check_covariance(arr, ds.models)
            continue
        if getattr(arr, "shape", None) != ds.quality.shape:
            raise CascjaxError(f"estimates field {name} has shape {getattr(arr, 'shape', None)} but the dataset "
                               f"is {ds.quality.shape} [N queries, M models]")


def _strategy_inputs(ds: Dataset, est: Estimates, max_depth, samples, no_deviation, checked=False, candidates=True):
    """What the cascade kernels take: the estimates as a tuple in the dataset's dtype (σ = 0 for
    ``no_deviation``), the shared points z [K, M], the covariance factors [2^M, M, M] or None, the depth.
    ``samples`` is K (the seeded :func:`normal_points`) or a [K, M] array of points given by the caller.
    ``candidates``: the strategy enumerates supermodels (cascade routing), so the table size is checked."""
    if not checked:
        check_estimates(ds, est)
    depth = check_depth(ds.n_models, max_depth, candidates)
    dtype = ds.quality.dtype
    if isinstance(samples, (int, np.integer)) and not isinstance(samples, bool):
        z = normal_points(samples, ds.n_models, dtype=dtype)
    else:
        z = _check_points(samples, ds.n_models, dtype)
    # Cast in NumPy: an eager jnp cast would compile a program per shape.
    e = tuple(np.asarray(a, dtype) for a in (est.quality_ante, est.quality_post, est.sd_ante, est.sd_post,
                                             est.cost_ante, est.cost_post))
    if no_deviation:
        e = e[:2] + (np.zeros_like(e[2]), np.zeros_like(e[3])) + e[4:]
    # Correlated uncertainty: a square root of each run-pattern's Σ(R), computed once per call.
    factor = None if no_deviation or est.covariance is None else covariance_factors(
        np.asarray(est.covariance, dtype))
    return e, z, factor, depth


def _check_points(points, n_models: int, dtype) -> np.ndarray:
    """Validates caller-given standard points: a finite [K, M] array, K ≥ 1."""
    z = np.asarray(points, dtype=np.float64)  # a bool or a scalar is 0-d: refused below
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] != n_models:
        raise CascjaxError(f"samples must be an integer K >= 1 or a [K, M] array of points with M = {n_models}; "
                           f"got {points if np.ndim(points) == 0 else f'shape {z.shape}'}")
    if not np.isfinite(z).all():
        raise CascjaxError("the points given as samples must be finite")
    return np.asarray(z, dtype=dtype)


def _check_thresholds(thresholds, dtype) -> np.ndarray:
    """Validates thresholds θ eagerly: any real or ±inf, not NaN, not empty."""
    theta = np.asarray(thresholds, dtype=np.float64)
    if theta.ndim == 0:
        theta = theta[None]
    if theta.size == 0:
        raise CascjaxError("the threshold list is empty")
    if np.isnan(theta).any():
        where = tuple(int(i) for i in np.argwhere(np.isnan(theta))[0])
        raise CascjaxError(f"thresholds must not be NaN (position {where})")
    return np.asarray(theta, dtype=dtype)


def _per_step(values: np.ndarray, depth: int, name: str) -> np.ndarray:
    """[L] (one value for every step) or [L, D] as [L, D]; any other shape is refused."""
    values = np.asarray(values)
    if values.ndim == 1:
        return np.repeat(values[:, None], depth, axis=1)
    if values.ndim != 2 or values.shape[1] != depth:
        raise CascjaxError(f"{name} must be [L] or [L, D] with D = max_depth = {depth}; got shape {values.shape}")
    return values
