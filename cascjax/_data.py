"""The dataset pytree: true quality and cost of every model on every query.

Glossary of shapes used throughout cascjax: N queries, M models, L λ values, D steps, S supermodels,
K samples, B budgets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import CascjaxError


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Measured quality and cost of M models on N queries (an immutable pytree).

    Attributes:
      quality: [N, M] true quality of model m's answer to query n (0/1 correctness or a score).
      cost: [N, M] true cost of running model m on query n (USD, tokens, ...; >= 0).
      group: [N] int32 group code per query, or None. ``group_names[group[n]]`` is the label.
      models: the M model names (static), in column order. Loaders sort columns by ascending mean cost,
        the paper's cascade order, so model 0 is the cheapest.
      group_names: the labels behind ``group`` (static), or None.

    Example:
      >>> import cascjax
      >>> ds = cascjax.Dataset.from_arrays([[1, 0], [0, 1]], [[2.0, 1.0], [2.0, 1.0]], models=["big", "small"])
      >>> ds.models  # sorted by mean cost: the cheap model comes first
      ('small', 'big')
    """

    quality: jax.Array
    cost: jax.Array
    group: jax.Array | None = None
    models: tuple[str, ...] = dataclasses.field(default=(), metadata=dict(static=True))
    group_names: tuple[str, ...] | None = dataclasses.field(default=None, metadata=dict(static=True))

    # -- construction ---------------------------------------------------------------------------------------

    @classmethod
    def from_arrays(cls, quality, cost, models: Sequence[str] | None = None, group=None,
                    group_names: Sequence[str] | None = None, *, sort: bool = True) -> "Dataset":
        """Builds a dataset from [N, M] arrays, validating them.

        Args:
          quality: [N, M] true quality.
          cost: [N, M] true cost, >= 0.
          models: M distinct names; default ``model0``, ``model1``, ...
          group: optional [N] labels (strings or integers).
          group_names: names for integer ``group`` codes (optional).
          sort: reorder models by ascending mean cost (the paper's cascade order; ties keep input order).

        Returns:
          A :class:`Dataset` with ``quality``, ``cost`` [N, M] (float inputs keep their dtype, others become
          float64 — float32 when JAX's x64 is off) and ``group`` [N] int32 codes into the sorted labels.

        Raises:
          CascjaxError: wrong shapes, fewer than two models, NaN/inf, negative costs, duplicate names.

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1]], [[1, 2], [1, 2]], models=["small", "big"],
          ...                                  group=["math", "law"])
          >>> ds
          Dataset(2 queries x 2 models ['small', 'big'], 2 groups)
          >>> ds.quality.shape, ds.group_names, ds.group.tolist()   # group [N]: codes into group_names
          ((2, 2), ('law', 'math'), [1, 0])
        """
        q = np.asarray(quality)
        c = np.asarray(cost)
        if q.ndim != 2:
            raise CascjaxError(f"quality must be a 2-D array [N queries, M models], got shape {q.shape}")
        if c.shape != q.shape:
            raise CascjaxError(f"cost has shape {c.shape} but quality has shape {q.shape}; they must match [N, M]")
        n, m = q.shape
        names = tuple(f"model{i}" for i in range(m)) if models is None else tuple(str(x) for x in models)
        if len(names) != m:
            raise CascjaxError(f"{len(names)} model names given for {m} model columns")
        _check_names(names)
        if n < 1:
            raise CascjaxError("the dataset has no queries")
        for label, arr in (("quality", q), ("cost", c)):
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
                raise CascjaxError(f"{label} must be numeric, got dtype {arr.dtype}")
        q = q.astype(np.float64) if not np.issubdtype(q.dtype, np.floating) else q
        c = c.astype(np.float64) if not np.issubdtype(c.dtype, np.floating) else c
        for label, arr in (("quality", q), ("cost", c)):
            bad = ~np.isfinite(arr)
            if bad.any():
                rows, cols = np.nonzero(bad)
                raise CascjaxError(f"{label} of model {names[cols[0]]!r} is {arr[rows[0], cols[0]]} at query "
                                   f"{rows[0]} ({bad.sum()} non-finite values in all)")
        if (c < 0).any():
            rows, cols = np.nonzero(c < 0)
            raise CascjaxError(f"cost of model {names[cols[0]]!r} is negative ({c[rows[0], cols[0]]}) at query "
                               f"{rows[0]} ({len(rows)} negative costs in all)")
        codes, gnames = _encode_groups(group, group_names, n)
        order = np.argsort(c.mean(axis=0), kind="stable") if sort else np.arange(m)
        q, c = (_fitting(a, label, names) for label, a in (("quality", q), ("cost", c)))
        if (order != np.arange(m)).any():  # else no copy: 100,000 x 1,000 models are 400 MB an array
            q, c = q[:, order], c[:, order]
        # jax.device_put, not jnp.asarray (which compiles a small program per shape in this JAX).
        return cls(quality=_put(q), cost=_put(c), group=None if codes is None else _put(codes),
                   models=tuple(names[i] for i in order), group_names=gnames)

    @classmethod
    def from_frame(cls, df, models: Sequence[str] | None = None, *, group: str | None = "auto",
                   sort: bool = True, dropna: bool = False, source: str = "data frame") -> "Dataset":
        """Builds a dataset from a wide pandas DataFrame (DESIGN section 1, RouterBench layout).

        Columns ``<model>`` (quality) and ``<model>|total_cost`` (cost) for every model; other columns are
        ignored. The arguments are those of :func:`cascjax.read`.

        Args:
          df: a DataFrame with one row per query (N rows).
          models: the models to load (default: every model with a ``|total_cost`` column).
          group: the column of per-query group labels; ``"auto"`` takes the first of ``eval_name``,
            ``category``, ``group`` that exists, ``None`` loads no groups.
          sort: order models by ascending mean cost (the paper's cascade order).
          dropna: drop queries with a missing or infinite quality/cost instead of raising.
          source: how error messages name the data.

        Returns:
          A :class:`Dataset` with ``quality``, ``cost`` [N, M].

        Example:
          >>> import cascjax, pandas as pd
          >>> df = pd.DataFrame({"big": [1, 1], "big|total_cost": [2.0, 2.0], "small": [0, 1],
          ...                    "small|total_cost": [1.0, 1.0], "prompt": ["2+2?", "3+3?"]})
          >>> cascjax.Dataset.from_frame(df)
          Dataset(2 queries x 2 models ['small', 'big'])
        """
        from .io._wide import frame_to_dataset  # the reader stands above the data type: imported on use

        return frame_to_dataset(df, models, group=group, sort=sort, dropna=dropna, source=source)[0]

    # -- shape and summaries --------------------------------------------------------------------------------

    @property
    def n_queries(self) -> int:
        """N, the number of queries (rows of ``quality`` [N, M]).

        Example:
          >>> import cascjax
          >>> cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1]], [[1, 2]] * 3).n_queries
          3
        """
        return self.quality.shape[0]

    @property
    def n_models(self) -> int:
        """M, the number of models (columns of ``quality`` [N, M]).

        Example:
          >>> import cascjax
          >>> cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1]], [[1, 2]] * 3).n_models
          2
        """
        return self.quality.shape[1]

    def model_costs(self) -> np.ndarray:
        """[M] mean cost per query of each model.

        Returns:
          [M] NumPy array (the dataset's dtype), in model order.

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
          >>> ds.model_costs().tolist()
          [1.0, 2.0]
        """
        return np.asarray(jnp.mean(self.cost, axis=0))

    def model_qualities(self) -> np.ndarray:
        """[M] mean quality of each model.

        Returns:
          [M] NumPy array (the dataset's dtype), in model order.

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
          >>> ds.model_qualities().tolist()
          [0.5, 0.75]
        """
        return np.asarray(jnp.mean(self.quality, axis=0))

    # -- selection ------------------------------------------------------------------------------------------

    def select(self, models: Sequence[str | int], *, sort: bool = True) -> "Dataset":
        """The sub-pool of the named (or indexed) models, sorted by mean cost unless ``sort=False``.

        Args:
          models: at least two distinct model names or column indices.
          sort: order the pool by ascending mean cost; ``False`` keeps the order given.

        Returns:
          A :class:`Dataset` with ``quality``, ``cost`` [N, len(models)] (groups kept).

        Raises:
          CascjaxError: an unknown name, an index out of range, a model named twice, fewer than two models.

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[0, 1, 1]], [[1, 4, 2]], models=["a", "c", "b"])
          >>> ds.models
          ('a', 'b', 'c')
          >>> ds.select(["c", "a"]).models, ds.select([2, 0], sort=False).models
          (('a', 'c'), ('c', 'a'))
          >>> ds.select(["a", "b"]).cost.tolist()   # [N, 2]
          [[1.0, 2.0]]
        """
        idx = [self._model_index(x) for x in models]
        if len(set(idx)) != len(idx):
            raise CascjaxError(f"a model is named twice in {list(models)}")
        if len(idx) < 2:
            raise CascjaxError(f"a pool needs at least two models, got {list(models)}")
        idx = np.asarray(idx)
        if sort:
            idx = idx[np.argsort(self.model_costs()[idx], kind="stable")]
        return dataclasses.replace(self, quality=self.quality[:, idx], cost=self.cost[:, idx],
                                   models=tuple(self.models[i] for i in idx))

    def take(self, rows) -> "Dataset":
        """The queries at ``rows`` (integer indices or a boolean mask [N]).

        Args:
          rows: [R] integer row indices (any order, repeats allowed) or an [N] boolean mask.

        Returns:
          A :class:`Dataset` with ``quality``, ``cost`` [R, M] and ``group`` [R] (same models).

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
          >>> ds.take([3, 0]).quality.tolist()
          [[1.0, 0.0], [0.0, 1.0]]
          >>> ds.take(ds.quality[:, 0] == 1).n_queries   # a boolean mask [N]: the queries model 0 gets right
          2
        """
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.nonzero(rows)[0]
        return dataclasses.replace(self, quality=self.quality[rows], cost=self.cost[rows],
                                   group=None if self.group is None else self.group[rows])

    def split(self, fit_fraction: float = 0.05, seed: int = 42) -> tuple["Dataset", "Dataset"]:
        """A seeded random fit/test split of the queries (the paper: 5% fit, seed 42).

        The same membership as the paper's ``sklearn.model_selection.train_test_split(..., test_size=1 −
        fit_fraction, random_state=seed)`` (test_size rounded to 12 decimals, as one writes 0.95): a ``numpy.random.RandomState(seed)`` permutation whose first
        ceil((1 − fit_fraction)·N) queries are the test split and the rest the fit split (so on RouterBench's
        36,497 rows this is the paper's split). Both parts keep the dataset's row order.

        Args:
          fit_fraction: share of the queries in the fit split, strictly between 0 and 1.
          seed: the ``RandomState`` seed of the permutation.

        Returns:
          (fit, test): two :class:`Dataset` of N_fit + N_test = N queries, [N_fit, M] and [N_test, M];
          :meth:`split_indices` gives the row indices (e.g. to split estimates alike).

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]] * 2, [[1, 2]] * 8)
          >>> fit, test = ds.split(0.25, seed=0)
          >>> fit.n_queries, test.n_queries   # ceil(0.75 · 8) = 6 test queries
          (2, 6)
        """
        fit, test = self.split_indices(fit_fraction, seed)
        return self.take(fit), self.take(test)

    def split_indices(self, fit_fraction: float = 0.05, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
        """The row indices (fit, test), ascending, of :meth:`split`.

        Args:
          fit_fraction: share of the queries in the fit split, strictly between 0 and 1.
          seed: the ``RandomState`` seed of the permutation.

        Returns:
          (fit [N_fit], test [N_test]) int NumPy arrays, ascending, together every row once.

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]] * 2, [[1, 2]] * 8)
          >>> fit, test = ds.split_indices(0.25, seed=0)
          >>> fit.tolist(), test.tolist()
          ([4, 5], [0, 1, 2, 3, 6, 7])
        """
        if not 0.0 < fit_fraction < 1.0:
            raise CascjaxError(f"fit_fraction must lie strictly between 0 and 1, got {fit_fraction}")
        n = self.n_queries
        # sklearn: n_test = ceil(test_size · N) in floats, with test_size as the paper writes it (0.95, not 1 − 0.05).
        n_test = int(np.ceil(round(1.0 - fit_fraction, 12) * n))
        if n_test >= n or n_test < 1:
            raise CascjaxError(f"cannot split {n} queries into a fit and a test part with fit_fraction "
                               f"{fit_fraction}")
        perm = np.random.RandomState(seed).permutation(n)
        return np.sort(perm[n_test:]), np.sort(perm[:n_test])

    def sorted_by_cost(self) -> "Dataset":
        """The same data with models in ascending order of mean cost.

        Returns:
          A :class:`Dataset` with the columns of ``quality``, ``cost`` [N, M] reordered (stable on ties).

        Example:
          >>> import cascjax
          >>> ds = cascjax.Dataset.from_arrays([[1, 0]], [[4, 1]], models=["big", "small"], sort=False)
          >>> ds.models, ds.sorted_by_cost().models
          (('big', 'small'), ('small', 'big'))
        """
        return self.select(range(self.n_models), sort=True)

    def _model_index(self, name: str | int) -> int:
        if isinstance(name, (int, np.integer)):
            if not 0 <= int(name) < self.n_models:
                raise CascjaxError(f"model index {name} is out of range for {self.n_models} models")
            return int(name)
        try:
            return self.models.index(name)
        except ValueError:
            raise CascjaxError(f"unknown model {name!r}; the dataset has {list(self.models)}") from None

    def __repr__(self) -> str:
        groups = "" if self.group_names is None else f", {len(self.group_names)} groups"
        return f"Dataset({self.n_queries} queries x {self.n_models} models {list(self.models)}{groups})"


def _check_names(names: tuple[str, ...]) -> None:
    if len(names) < 2:
        raise CascjaxError(f"at least two models are needed, got {len(names)}: {list(names)}")
    seen = set()
    for name in names:
        if name in seen:
            raise CascjaxError(f"duplicate model name {name!r}")
        seen.add(name)


def _encode_groups(group, group_names, n):
    if group is None:
        return None, None
    g = np.asarray(group)
    if g.shape != (n,):
        raise CascjaxError(f"group must have one label per query, shape ({n},), got {g.shape}")
    if group_names is not None:
        if not np.issubdtype(g.dtype, np.integer) or (g < 0).any() or (g >= len(group_names)).any():
            raise CascjaxError("group codes must be integers indexing group_names")
        return g.astype(np.int32), tuple(str(x) for x in group_names)
    names, codes = np.unique(g.astype(str), return_inverse=True)
    return codes.astype(np.int32), tuple(str(x) for x in names)


def _fitting(a: np.ndarray, label: str, names) -> np.ndarray:
    """``a`` in JAX's dtype for it (float64 → float32 without x64), refusing values that do not fit it (they
    would become inf)."""
    dtype = jax.dtypes.canonicalize_dtype(a.dtype)
    if np.issubdtype(dtype, np.floating):
        # Below the smallest normal number a value is subnormal, which XLA on CPU flushes to zero: 1e-42 would
        # silently become 0 in float32 (and a cost range empty), so refuse it as a number that does not fit.
        tiny = np.finfo(dtype).tiny
        small = (a > -tiny) & (a < tiny)  # boolean temporaries only (no float copy of a large array)
        small &= a != 0
        if small.any():
            rows, cols = np.nonzero(small)
            raise CascjaxError(f"{label} of model {names[cols[0]]!r} is {a[rows[0], cols[0]]} at query {rows[0]}, "
                               f"below {dtype}'s smallest normal number ({tiny:.3g}): it would be flushed to zero; "
                               f"rescale the {label} (e.g. cost per million queries), or enable float64 "
                               "(jax.config.update('jax_enable_x64', True))")
    if dtype == a.dtype:
        return a
    with np.errstate(over="ignore"):
        out = a.astype(dtype)
    bad = ~np.isfinite(out)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise CascjaxError(f"{label} of model {names[cols[0]]!r} is {a[rows[0], cols[0]]} at query {rows[0]}, "
                           + _does_not_fit(dtype))
    return out


def _does_not_fit(dtype) -> str:
    """The end of the error for a number too large for ``dtype`` (it would become inf)."""
    return (f"which does not fit {dtype} (largest {np.finfo(dtype).max:.3g}); rescale it, or enable float64 "
            "(jax.config.update('jax_enable_x64', True))")


def _put(a: np.ndarray) -> jax.Array:
    """A host array on the default device, in JAX's dtype for it (float64 → float32 without x64)."""
    return jax.device_put(np.asarray(a, jax.dtypes.canonicalize_dtype(a.dtype)))
