"""Random instances: hypothesis strategies (small, shrinkable) and seeded batches (many, for one jit call).

Values come from small lattices on purpose (quarters, eighths): rounded estimates make scores tie exactly,
which is where decision rules and their tie rules break. Shrinking moves every value towards 0 and every
size towards its minimum, so a counterexample comes out small.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from .._data import Dataset
from .._estimates import Estimates

QUALITY_KINDS = ("binary", "lattice", "continuous")
ESTIMATE_KINDS = ("perfect", "noisy", "arbitrary")


class Instance(NamedTuple):
    """A dataset and the estimates a strategy decides on (each query is an independent decision problem).

    Attributes:
      dataset: a :class:`cascjax.Dataset`, ``quality`` and ``cost`` [N, M].
      estimates: :class:`cascjax.Estimates` for it, fields [N, M].

    Example:
      >>> import cascjax, cascjax.testing as ct
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> instance = ct.Instance(ds, cascjax.perfect_estimates(ds))
      >>> ds, est = instance   # a NamedTuple: unpacks
      >>> est.quality_ante.shape
      (4, 2)
    """

    dataset: Dataset
    estimates: Estimates


def _size(draw, value):
    return draw(value) if isinstance(value, st.SearchStrategy) else int(value)


def _grid(draw, shape, lo, hi, denom):
    """An array of multiples of 1/denom in [lo, hi] (ties on purpose)."""
    ints = st.integers(int(round(lo * denom)), int(round(hi * denom)))
    flat = draw(st.lists(ints, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array(flat, np.float64).reshape(shape) / denom


def _continuous(draw, shape, lo, hi):
    elems = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32)
    flat = draw(st.lists(elems, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array(flat, np.float64).reshape(shape)


@st.composite
def datasets(draw, n_queries=st.integers(1, 8), n_models=st.integers(2, 4), quality=QUALITY_KINDS,
             correlated: bool | None = None, ties: bool = True, dtype=np.float64, sort: bool = False) -> Dataset:
    """Small datasets: [N, M] true quality and cost.

    Args:
      n_queries, n_models: an int or a strategy of ints (M ≥ 2).
      quality: the quality kinds to draw from: ``"binary"`` (0/1 correctness), ``"lattice"`` (multiples of
        1/4 in [0, 1]) and ``"continuous"`` (floats in [0, 1]).
      correlated: a correlated pool (a per-query difficulty shared by every model, plus per-model ability and
        small independent deviations), as real pools are; ``None`` draws it.
      ties: costs are multiples of 1/8 in [0, 1] (zero and equal costs happen); else positive floats.
      dtype: the arrays' dtype (float32 or float64).
      sort: sort the models by mean cost (the loaders' default); unsorted by default, so that every order of
        cheap and expensive models is exercised.

    Returns:
      A hypothesis strategy of :class:`cascjax.Dataset` with ``quality``, ``cost`` [N, M].

    Example:
      >>> from hypothesis import given, settings
      >>> import cascjax.testing as ct
      >>> @settings(max_examples=2, database=None, deadline=None, derandomize=True)
      ... @given(ct.datasets(n_queries=3, n_models=2, quality=("binary",)))
      ... def test_shapes(ds):
      ...     assert ds.quality.shape == ds.cost.shape == (3, 2)
      ...     assert set(ds.quality.ravel().tolist()) <= {0.0, 1.0} and bool((ds.cost >= 0).all())
      >>> test_shapes()   # passes: no output
    """
    n, m = _size(draw, n_queries), _size(draw, n_models)
    kind = draw(st.sampled_from(tuple(quality)))
    corr = draw(st.booleans()) if correlated is None else correlated
    if corr:
        difficulty = _grid(draw, (n, 1), 0, 1, 4)
        ability = _grid(draw, (1, m), 0, 1, 4)
        latent = ability - difficulty + _grid(draw, (n, m), -0.25, 0.25, 4)
        q = {"binary": (latent >= 0).astype(np.float64), "lattice": np.clip(0.5 + latent, 0, 1),
             "continuous": 1 / (1 + np.exp(-4 * latent))}[kind]
    else:
        q = {"binary": lambda: _grid(draw, (n, m), 0, 1, 1), "lattice": lambda: _grid(draw, (n, m), 0, 1, 4),
             "continuous": lambda: _continuous(draw, (n, m), 0, 1)}[kind]()
    c = _grid(draw, (n, m), 0, 1, 8) if ties else _continuous(draw, (n, m), 1e-3, 1)
    return Dataset.from_arrays(q.astype(dtype), c.astype(dtype), models=[f"m{i}" for i in range(m)], sort=sort)


@st.composite
def estimates(draw, ds: Dataset, kind=ESTIMATE_KINDS, *, deviation: bool | None = None, post_deviation: bool = False,
              covariance: bool = False) -> Estimates:
    """Estimates for ``ds`` (a strategy: ``draw(estimates(ds))``).

    Args:
      ds: the dataset the estimates are for.
      kind: the kinds to draw from: ``"perfect"`` (the truth, σ = 0), ``"noisy"`` (the truth plus lattice
        noise, larger before a model runs than after; cost estimates ≥ 0 near the truth) and ``"arbitrary"``
        (lattice values unrelated to the truth: any decision problem).
      deviation: ex-ante σ > 0 somewhere (``None``: drawn); perfect estimates have none.
      post_deviation: also a post-hoc σ (the paper's run models have none).
      covariance: attach a random positive semi-definite Σ(R) per run-pattern (``[2^M, M, M]``, some
        singular), which cascades and cascade routing then use instead of σ.

    Returns:
      A hypothesis strategy of :class:`cascjax.Estimates`, fields [N, M] in the dataset's dtype.

    Example:
      >>> import cascjax
      >>> from hypothesis import given, settings
      >>> import cascjax.testing as ct
      >>> @settings(max_examples=2, database=None, deadline=None, derandomize=True)
      ... @given(ct.estimates(cascjax.Dataset.from_arrays([[0, 1], [1, 0]], [[1, 2]] * 2), ("noisy",),
      ...                     deviation=True, covariance=True))
      ... def test_shapes(est):
      ...     assert est.quality_ante.shape == est.sd_ante.shape == (2, 2)   # [N, M]
      ...     assert est.covariance.shape == (4, 2, 2)                         # [2^M, M, M]
      >>> test_shapes()
    """
    n, m = ds.quality.shape
    dtype = ds.quality.dtype
    q, c = np.asarray(ds.quality, np.float64), np.asarray(ds.cost, np.float64)
    which = draw(st.sampled_from(tuple(kind)))
    zeros = np.zeros((n, m))
    if which == "perfect":
        est = (q, q, zeros, zeros, c, c)
    else:
        if which == "noisy":
            ante, post = q + _grid(draw, (n, m), -0.5, 0.5, 4), q + _grid(draw, (n, m), -0.25, 0.25, 4)
            c_ante = np.maximum(c + _grid(draw, (n, m), -0.25, 0.25, 8), 0)
        else:
            ante, post = _grid(draw, (n, m), 0, 1, 4), _grid(draw, (n, m), 0, 1, 4)
            c_ante = _grid(draw, (n, m), 0, 1, 8)
        dev = draw(st.booleans()) if deviation is None else deviation
        sd_ante = _grid(draw, (n, m), 0, 1, 4) if dev else zeros
        sd_post = _grid(draw, (n, m), 0, 0.5, 4) if post_deviation else zeros
        est = (ante, post, sd_ante, sd_post, c_ante, c)
    cov = jnp.asarray(_covariances(draw, m), dtype) if covariance else None
    return Estimates(*(jnp.asarray(a, dtype) for a in est), covariance=cov)


def _covariances(draw, m):
    """[2^M, M, M] PSD matrices L Lᵀ from lattice factors (rank-deficient when L has zero rows or columns)."""
    factors = _grid(draw, (1 << m, m, m), -1, 1, 2)
    return factors @ np.swapaxes(factors, 1, 2)


@st.composite
def instances(draw, n_queries=st.integers(1, 8), n_models=st.integers(2, 4), quality=QUALITY_KINDS,
              kind=ESTIMATE_KINDS, *, deviation: bool | None = None, covariance: bool = False,
              dtype=np.float64) -> Instance:
    """A dataset and estimates for it (:func:`datasets` then :func:`estimates`).

    Args:
      n_queries, n_models, quality: as :func:`datasets`.
      kind, deviation, covariance: as :func:`estimates`.
      dtype: the arrays' dtype.

    Returns:
      A hypothesis strategy of :class:`Instance` (dataset and estimates [N, M]).

    Example:
      >>> from hypothesis import given, settings
      >>> import cascjax.testing as ct
      >>> @settings(max_examples=2, database=None, deadline=None, derandomize=True)
      ... @given(ct.instances(n_queries=2, n_models=3, kind=("perfect",)))
      ... def test_perfect(instance):
      ...     ds, est = instance
      ...     assert est.quality_ante.shape == (2, 3) and bool((est.quality_ante == ds.quality).all())
      >>> test_perfect()
    """
    ds = draw(datasets(n_queries, n_models, quality, dtype=dtype))
    return Instance(ds, draw(estimates(ds, kind, deviation=deviation, covariance=covariance)))


@st.composite
def lambdas(draw, n=8, hi: float = 4.0) -> np.ndarray:
    """[n] trade-offs λ ≥ 0: multiples of 1/8 up to ``hi`` (0 and ties with breakpoints on purpose) or floats.

    Args:
      n: L, the number of λ values.
      hi: the largest λ.

    Returns:
      A hypothesis strategy of [n] float64 NumPy arrays in [0, hi].

    Example:
      >>> from hypothesis import given, settings
      >>> import cascjax.testing as ct
      >>> @settings(max_examples=2, database=None, deadline=None, derandomize=True)
      ... @given(ct.lambdas(n=4))
      ... def test_range(lam):
      ...     assert lam.shape == (4,) and ((lam >= 0) & (lam <= 4)).all()
      >>> test_range()
    """
    if draw(st.booleans()):
        return _grid(draw, (n,), 0, hi, 8)
    return _continuous(draw, (n,), 0, hi)


@st.composite
def lambda_vectors(draw, depth: int, n=8, hi: float = 4.0) -> np.ndarray:
    """[n, D] per-step trade-offs (λ_j for step j), multiples of 1/8 up to ``hi``.

    Args:
      depth: D, the number of steps.
      n: L, the number of vectors.
      hi: the largest λ.

    Returns:
      A hypothesis strategy of [n, D] float64 NumPy arrays.

    Example:
      >>> from hypothesis import given, settings
      >>> import cascjax.testing as ct
      >>> @settings(max_examples=2, database=None, deadline=None, derandomize=True)
      ... @given(ct.lambda_vectors(3, n=2))
      ... def test_lattice(lam):
      ...     assert lam.shape == (2, 3) and (lam * 8 % 1 == 0).all()
      >>> test_lattice()
    """
    return _grid(draw, (n, depth), 0, hi, 8)


@st.composite
def budgets(draw, ds: Dataset, n=4, margin: float = 0.25) -> np.ndarray:
    """[n] budgets (mean cost per query) around the reachable range of ``ds``.

    Drawn between ``1 − margin`` times the cheapest achievable mean cost (mean over queries of the cheapest
    model: below it is infeasible) and ``1 + margin`` times the most expensive model's mean cost; some are
    exactly a single model's mean cost, a vertex of the routing curve.

    Args:
      ds: the dataset, ``cost`` [N, M].
      n: B, the number of budgets.
      margin: how far beyond the reachable range budgets go (relative).

    Returns:
      A hypothesis strategy of [n] float64 NumPy arrays.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 0]], [[1, 2]] * 2)   # mean costs 1 and 2
      >>> from hypothesis import given, settings
      >>> import cascjax.testing as ct
      >>> @settings(max_examples=2, database=None, deadline=None, derandomize=True)
      ... @given(ct.budgets(ds, n=3))
      ... def test_range(b):
      ...     assert b.shape == (3,) and ((b >= 0.75) & (b <= 2.5)).all()
      >>> test_range()
    """
    c = np.asarray(ds.cost, np.float64)
    lo, hi = c.min(axis=1).mean() * (1 - margin), c.mean(axis=0).max() * (1 + margin)
    free = st.floats(lo, max(hi, lo), allow_nan=False, allow_infinity=False)
    vertex = st.sampled_from(list(c.mean(axis=0)))
    return np.array(draw(st.lists(st.one_of(free, vertex), min_size=n, max_size=n)), np.float64)


# -- Gaussian worlds ---------------------------------------------------------------------------------------------

@st.composite
def worlds(draw, n_models=st.integers(1, 4), n_worlds: int | None = None):
    """:class:`cascjax.testing.World`: ex-ante quality N(μ, σ²) per model and a cost, on quarter lattices
    (μ in [0, 1], σ in [0, 1], cost in [0, 1] by eighths); ``n_worlds`` stacks that many ([W, M] fields).

    Args:
      n_models: M (an int or a strategy of ints, 1..4).
      n_worlds: W, or None for one world ([M] fields).

    Returns:
      A hypothesis strategy of :class:`cascjax.testing.World`.

    Example:
      >>> from hypothesis import given, settings
      >>> import cascjax.testing as ct
      >>> @settings(max_examples=2, database=None, deadline=None, derandomize=True)
      ... @given(ct.worlds(n_models=2, n_worlds=3))
      ... def test_shapes(world):
      ...     assert world.mu.shape == world.sd.shape == world.cost.shape == (3, 2)   # [W, M]
      >>> test_shapes()
    """
    from ._worlds import World

    m = _size(draw, n_models)
    shape = (m,) if n_worlds is None else (n_worlds, m)
    return World(_grid(draw, shape, 0, 1, 4), _grid(draw, shape, 0, 1, 4), _grid(draw, shape, 0, 1, 8))
