"""The public sweep: one strategy at many λ values at once."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._curve import Curve, check_lambdas
from ._data import Dataset
from ._decide import check_tie, tie_rtol as _tie_rtol
from ._errors import CascjaxError
from ._estimates import Estimates
from ._routing import routing_sweep

STRATEGIES = ("routing",)
#: Elements (queries x models x λ) one batch of a sweep may hold; bounds peak memory. On CPU smaller
#: batches stay in cache and run faster (measured: 30k x 11 x 1,000 λ, 1.4x faster at 2^20 than at 2^24).
BATCH_ELEMENTS = 1 << 24
CPU_BATCH_ELEMENTS = 1 << 20


def check_estimates(ds: Dataset, est: Estimates) -> None:
    """Raises unless ``est`` has one [N, M] array per field matching ``ds``."""
    if not isinstance(est, Estimates):
        raise CascjaxError(f"estimates must be a cascjax.Estimates, got {type(est).__name__}")
    for name, arr in est._asdict().items():
        if getattr(arr, "shape", None) != ds.quality.shape:
            raise CascjaxError(f"estimates field {name} has shape {getattr(arr, 'shape', None)} but the dataset "
                               f"is {ds.quality.shape} [N queries, M models]")


def sweep(ds: Dataset, est: Estimates, lambdas, strategy: str = "routing", tie: str = "min", *,
          return_choices: bool = False, tie_rtol: float | None = None, batch_size: int | None = None) -> Curve:
    """Evaluates a strategy at every λ of a grid (vmapped and jitted; no Python loop over queries or λ).

    Args:
      ds: the dataset (true quality and cost: only used to score the decisions).
      est: the estimates the strategy decides on.
      lambdas: [L] trade-off values λ ≥ 0.
      strategy: ``"routing"``: one model per query, argmax_m μ_m − λ ĉ_m on the ex-ante estimates.
      tie: ``"min"`` (of tied choices the cheapest) or ``"max"`` (the most expensive); equal cost: lowest index.
      return_choices: also return the answering model per query and λ (``Curve.choice`` [L, N]).
      tie_rtol: relative tie tolerance; default 32·eps of the dtype (see ``cascjax.TIE_ULPS``).
      batch_size: λ values per batch; default keeps a batch under 2^20 queries·models·λ elements
        on CPU, 2^24 on accelerators.

    Returns:
      A :class:`Curve` with ``lam``, ``cost``, ``quality`` [L], ``answered`` [L, M], ``ran`` [L].

    Example:
      >>> import cascjax
      >>> ds = cascjax.load_example()
      >>> curve = cascjax.sweep(ds, cascjax.perfect_estimates(ds), [0.0, 1e3, 1e9])
      >>> [round(float(x), 3) for x in curve.quality]
      [0.859, 0.839, 0.442]
    """
    if strategy not in STRATEGIES:
        raise CascjaxError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    tie_max = check_tie(tie)
    check_estimates(ds, est)
    dtype = ds.quality.dtype
    lam = check_lambdas(lambdas, dtype)
    if lam.ndim != 1:
        raise CascjaxError(f"routing takes one λ per point, shape [L]; got shape {lam.shape}")
    if batch_size is None:
        budget = CPU_BATCH_ELEMENTS if jax.default_backend() == "cpu" else BATCH_ELEMENTS
        batch_size = max(1, budget // (ds.n_queries * ds.n_models))
    elif not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise CascjaxError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(min(batch_size, lam.shape[0]))
    return routing_sweep(ds.quality, ds.cost, est.quality_ante.astype(dtype), est.cost_ante.astype(dtype), lam,
                         rtol=_tie_rtol(dtype, tie_rtol), tie_max=tie_max, return_choices=return_choices,
                         batch_size=batch_size)


def lambda_grid(est: Estimates, n: int = 256, *, max_queries: int = 100_000) -> np.ndarray:
    """A data-driven λ grid: 0 and ``n − 1`` log-spaced values over the pairwise breakpoints' range.

    The natural range of λ comes from the pairwise breakpoints (μ_i − μ_j)/(ĉ_i − ĉ_j) of the ex-ante
    estimates (where model i is both better and more expensive than j): the grid spans their 0.5% to 99.5%
    quantiles (over at most ``max_queries`` evenly spaced queries), widened by a factor 2 at both ends.

    Returns:
      [n] float64 array, ascending, starting at 0.
    """
    if not (isinstance(n, (int, np.integer)) and n >= 2):
        raise CascjaxError(f"a λ grid needs at least 2 points, got {n!r}")
    mu = np.asarray(est.quality_ante, dtype=np.float64)
    c = np.asarray(est.cost_ante, dtype=np.float64)
    step = max(1, mu.shape[0] // max_queries)
    mu, c = mu[::step], c[::step]
    dq = mu[:, :, None] - mu[:, None, :]
    dc = c[:, :, None] - c[:, None, :]
    ok = (dq > 0) & (dc > 0)
    slopes = dq[ok] / dc[ok]
    slopes = slopes[np.isfinite(slopes) & (slopes > 0)]
    if slopes.size == 0:  # no trade-off anywhere: any λ gives the same decisions
        lo, hi = 1.0, 10.0
    else:
        lo, hi = np.quantile(slopes, [0.005, 0.995])
        lo, hi = lo / 2.0, max(hi * 2.0, lo * 4.0)
    return np.concatenate([[0.0], np.geomspace(lo, hi, n - 1)])
