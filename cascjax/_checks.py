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
from ._estimates import (MAX_STATE_MODELS, Estimates, StateEstimates, StateModel, check_covariance,
                         covariance_factors)
from ._supermodels import check_depth, normal_points
from ._views import Lazy, Model, Rows, prefix_rows


def check_estimates(ds: Dataset, est: Estimates) -> None:
    """Raises unless ``est`` has one [N, M] array per field matching ``ds`` — or, a :class:`StateEstimates`, one
    finite [N, 2^M, M] table per field (σ ≥ 0) — and a valid covariance table.

    Example:
      >>> import cascjax
      >>> from cascjax._checks import check_estimates
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1]], [[1, 2]] * 2)
      >>> check_estimates(ds, cascjax.perfect_estimates(ds))   # fine: returns None
      >>> check_estimates(ds, ds)
      Traceback (most recent call last):
      ...
      cascjax._errors.CascjaxError: estimates must be a cascjax.Estimates or cascjax.StateEstimates, got Dataset
    """
    if isinstance(est, StateEstimates):
        return _check_states(ds, est)
    if isinstance(est, StateModel):
        return _check_model(ds, est)
    if not isinstance(est, Estimates):
        raise CascjaxError(f"estimates must be a cascjax.Estimates or cascjax.StateEstimates, got "
                           f"{type(est).__name__}")
    for name, arr in est._asdict().items():
        if name == "covariance":
            if arr is not None:
                check_covariance(arr, ds.models)
            continue
        if getattr(arr, "shape", None) != ds.quality.shape:
            raise CascjaxError(f"estimates field {name} has shape {getattr(arr, 'shape', None)} but the dataset "
                               f"is {ds.quality.shape} [N queries, M models]")


def _check_states(ds: Dataset, est: StateEstimates) -> None:
    """:func:`check_estimates` for a table over information states: [N, 2^M, M] fields, finite (σ ≥ 0)."""
    n, m = ds.quality.shape
    if m > MAX_STATE_MODELS:
        raise CascjaxError(f"StateEstimates: a table over information states has 2^M rows per query; at most "
                           f"{MAX_STATE_MODELS} models are supported, got {m}")
    want = (n, 1 << m, m)
    for name in ("quality", "cost", "sd"):
        arr = getattr(est, name)
        if arr is None and name == "sd":
            continue
        if getattr(arr, "shape", None) != want:
            raise CascjaxError(f"StateEstimates.{name} must have shape [N, 2^M, M] = {want} (row R: the models "
                               f"run, bit m = model m), got {getattr(arr, 'shape', None)}")
        values = np.asarray(arr)
        bad = ~np.isfinite(values) if name != "sd" else ~(values >= 0) | ~np.isfinite(values)
        if bad.any():
            q, r, i = (int(x) for x in np.argwhere(bad)[0])
            what = "a finite number >= 0" if name == "sd" else "finite"
            raise CascjaxError(f"StateEstimates.{name} must be {what}: query {q}, state {r}, model "
                               f"{ds.models[i]!r} holds {values[q, r, i]}")
    if est.covariance is not None:
        check_covariance(est.covariance, ds.models)


def _check_model(ds: Dataset, est: StateModel) -> None:
    """:func:`check_estimates` for a state model: shapes that fit together, finite values."""
    n, m = ds.quality.shape
    if m > MAX_STATE_MODELS:
        raise CascjaxError(f"StateModel: at most {MAX_STATE_MODELS} models are supported, got {m}")
    f = np.shape(est.features)[-1] if np.ndim(est.features) == 2 else None
    want = dict(features=(n, f), weights=(np.shape(est.weights)[0], m, f), which=(1 << m,), cost_ante=(n, m),
                cost_post=(n, m), truth=(n, m), mean=(m,), sd=(1 << m, m))
    for name, shape in want.items():
        arr = getattr(est, name)
        if arr is None and name in ("truth", "mean", "sd"):
            continue
        if f is None or np.shape(arr) != shape or not np.isfinite(np.asarray(arr, np.float64)).all():
            raise CascjaxError(f"StateModel.{name} must be a finite array of shape {shape} (N queries, M models, "
                               f"F features), got shape {np.shape(arr)}")
    which = np.asarray(est.which)
    if which.min() < 0 or which.max() >= np.shape(est.weights)[0]:
        raise CascjaxError(f"StateModel.which must index the {np.shape(est.weights)[0]} fitted patterns")
    if est.covariance is not None:
        check_covariance(est.covariance, ds.models)


def routing_inputs(est) -> tuple:
    """What routing decides on: the ex-ante μ and ĉ [N, M] (row ∅ of a state table)."""
    if isinstance(est, StateModel):
        return np.asarray(est.dense(states=[0]).quality)[:, 0], est.cost_ante
    if isinstance(est, StateEstimates):
        return est.quality[:, 0], est.cost[:, 0]
    return est.quality_ante, est.cost_ante


def threshold_inputs(est):
    """What the threshold cascade compares with θ_j: model j's post-hoc estimate [N, M] once models 0..j have
    run (a state table's row {0..j}, entry j)."""
    if isinstance(est, (StateEstimates, StateModel)):
        m = np.shape(est.cost)[2] if isinstance(est, StateEstimates) else np.shape(est.cost_ante)[1]
        rows = (1 << np.arange(1, m + 1)) - 1
        table = est.dense(states=rows).quality if isinstance(est, StateModel) else np.asarray(est.quality)[:, rows]
        return np.asarray(table)[:, np.arange(m), np.arange(m)]
    return est.quality_post


def _strategy_inputs(ds: Dataset, est, max_depth, samples, no_deviation, checked=False, candidates=True,
                     prefix=False, lazy=False):
    """What the cascade kernels take: the estimates as a tuple in the dataset's dtype (σ = 0 for
    ``no_deviation``; see :mod:`cascjax._views` for its two forms), the shared points z [K, M], the covariance
    factors [2^M, M, M] or None, the depth. ``samples`` is K (the seeded :func:`normal_points`) or a [K, M]
    array of points given by the caller. ``candidates``: the strategy enumerates supermodels (cascade
    routing), so the table size is checked. ``prefix``: the cascades' kernels, which visit only the states
    {0..j−1}: a state table is cut to those D + 1 rows. A :class:`StateModel` gives those rows, or with
    ``lazy`` (cascade routing's sweep) a :class:`cascjax._views.Lazy` the kernel expands chunk by chunk, or else
    its dense table (refused above ``DENSE_BYTES``)."""
    if not checked:
        check_estimates(ds, est)
    depth = check_depth(ds.n_models, max_depth, candidates)
    dtype = ds.quality.dtype
    if isinstance(samples, (int, np.integer)) and not isinstance(samples, bool):
        z = normal_points(samples, ds.n_models, dtype=dtype)
    else:
        z = _check_points(samples, ds.n_models, dtype)
    # Cast in NumPy: an eager jnp cast would compile a program per shape.
    if isinstance(est, StateModel) and lazy and not prefix:
        put = lambda a: None if a is None else np.asarray(a, dtype)  # noqa: E731
        rows = Rows(put(est.features), put(est.cost_ante), put(est.cost_post), put(est.truth))
        model = Model(put(est.weights), np.asarray(est.which, np.int32), put(est.mean),
                      None if no_deviation else put(est.sd))
        factor = None if no_deviation or est.covariance is None else covariance_factors(
            np.asarray(est.covariance, dtype))
        return Lazy(rows, model), z, factor, depth
    if isinstance(est, StateModel):
        n, m = ds.quality.shape
        if not prefix and 3 * n * (1 << m) * m * dtype.itemsize > DENSE_BYTES:
            raise CascjaxError(f"this strategy needs the state model's table, {n:,} x {1 << m:,} x {m} (more than "
                               f"{DENSE_BYTES / 2**30:.0f} GiB); cascade routing's sweep evaluates the model chunk "
                               "by chunk, or use fewer queries")
        est = est.dense(states=prefix_rows(depth) if prefix else None)
        prefix = False  # the rows are already the prefixes'
    if isinstance(est, StateEstimates):
        rows = prefix_rows(depth) if prefix else slice(None)
        mu, c_hat = (np.asarray(a, dtype)[:, rows] for a in (est.quality, est.cost))
        sd = np.zeros_like(mu) if no_deviation or est.sd is None else np.asarray(est.sd, dtype)[:, rows]
        e = (mu, sd, c_hat)
    else:
        e = tuple(np.asarray(a, dtype) for a in (est.quality_ante, est.quality_post, est.sd_ante, est.sd_post,
                                                 est.cost_ante, est.cost_post))
        if no_deviation:
            e = e[:2] + (np.zeros_like(e[2]), np.zeros_like(e[3])) + e[4:]
    # Correlated uncertainty: a square root of each run-pattern's Σ(R), computed once per call.
    factor = None if no_deviation or est.covariance is None else covariance_factors(
        np.asarray(est.covariance, dtype))
    return e, z, factor, depth


#: The largest dense table (three fields) a strategy other than cascade routing's sweep makes of a state model.
DENSE_BYTES = 1 << 31


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
