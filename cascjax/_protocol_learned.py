"""The paper's real-benchmark protocol: learned estimators on a training split, λ (and γ) fitted per budget on a
validation split, every strategy evaluated on the test split (DESIGN section 5; the paper's Table 2)."""

from __future__ import annotations

import time
from typing import Callable, NamedTuple, Sequence

import numpy as np

from ._data import Dataset
from ._errors import CascjaxError
from ._protocol import ROWS, paper_budgets, run_cell
from .estimators import Features, estimator_quality, fit_learned, separable, state_estimates

#: What the strategies may decide on: the learned table, the separable estimates of the same regressions, and
#: the paper's baseline (models not run at their training mean).
ESTIMATES = ("learned", "separable", "baseline")
#: The fewest queries a split may hold.
MIN_SPLIT = 10


class Reproduction(NamedTuple):
    """:func:`reproduce_learned`'s result.

    Attributes:
      cells: one :class:`cascjax.protocol.Cell` per estimates kind (its ``noise`` field names it).
      quality: the estimator-quality table on the test split (:func:`cascjax.estimators.estimator_quality`).
      fit_seconds: the time the regressions took (all of them, every kind).
      split: the (train, validation, test) query indices.

    Example:
      >>> import cascjax.protocol as cp
      >>> cp.Reproduction._fields
      ('cells', 'quality', 'fit_seconds', 'split')
    """

    cells: list
    quality: object
    fit_seconds: float
    split: tuple


def split_three(n: int, test_fraction: float, validation_fraction: float, seed: int):
    """Train, validation and test query indices: a seeded permutation cut by the two fractions (of all N).

    Example:
      >>> [len(s) for s in split_three(100, 0.5, 0.1, seed=42)]   # train, validation, test
      [40, 10, 50]
    """
    if not (0 < test_fraction < 1 and 0 < validation_fraction < 1 and test_fraction + validation_fraction < 1):
        raise CascjaxError(f"test and validation fractions must be positive and sum to less than 1, got "
                           f"{test_fraction} and {validation_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(test_fraction * n)), int(round(validation_fraction * n))
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    for name, rows in (("train", train), ("validation", val), ("test", test)):
        if rows.size < MIN_SPLIT:
            raise CascjaxError(f"the {name} split has {rows.size} queries ({n} in all); it needs at least "
                               f"{MIN_SPLIT}")
    return np.sort(train), np.sort(val), np.sort(test)


def reproduce_learned(ds: Dataset, features: Features, *, estimates: Sequence[str] = ("learned", "separable"),
                      test_fraction: float = 0.5, validation_fraction: float = 0.1, split_seed: int = 42,
                      post_hoc: str = "learned", estimator_depth: int | None = None, per_segment: int = 10,
                      budgets: str = "paper",
                      max_depth: int = 5, samples: int = 100, per_step=("search",), candidates: int = 512,
                      grid: int = 256, n_boot: int = 1000, boot_seed: int = 0,
                      strategies: Sequence[str] | None = None,
                      progress: Callable[[str], None] | None = None) -> Reproduction:
    """The real-benchmark protocol on ``ds`` with learned estimators.

    Splits the queries into train / validation / test (:func:`split_three`); fits the estimators on train
    (:func:`cascjax.estimators.fit_learned`, every run pattern up to ``estimator_depth``, default
    ``max_depth``, and the cascades' prefixes); for each kind of ``estimates`` fits every strategy of the
    paper's table per budget on validation (:func:`cascjax.fit`, budgets :func:`paper_budgets` of the test
    split) and evaluates it on test — the same rows and columns as :func:`reproduce` (AUC, paired bootstrap
    interval against cascade routing, ...), the estimates kind in the ``noise`` column.

    Args:
      ds: the data; ``features``: its :class:`cascjax.estimators.Features`.
      estimates: any of ``"learned"`` (the state table), ``"separable"`` (the same regressions, separable:
        ex ante μ(∅), post hoc μ({m})) and ``"baseline"`` (models not run at their training mean).
      test_fraction, validation_fraction, split_seed: the split.
      post_hoc: ``"learned"`` or ``"perfect"`` (a run model's quality becomes known: SWE-bench).
      estimator_depth: the largest run pattern fitted (default ``max_depth``).
      budgets: ``"paper"`` (:func:`paper_budgets` of the test split, ``per_segment`` per hull segment) or
        ``"sum"`` (the paper's SWE-bench range: ``per_segment`` × M evenly spaced budgets from the cheapest
        model's mean cost to the sum of all models' mean costs, on the test split).
      per_segment, max_depth, samples, per_step, candidates, grid, n_boot, boot_seed, strategies, progress:
        as :func:`reproduce`.

    Returns:
      :class:`Reproduction`.

    Example:
      >>> import numpy as np, cascjax, cascjax.protocol as cp
      >>> from cascjax import estimators
      >>> rows = np.arange(0, 12020, 40)   # 301 queries of the example, to keep it quick
      >>> ds, f = cascjax.load_example().take(rows), estimators.example_features().take(rows)
      >>> run = cp.reproduce_learned(ds, f, strategies=("routing",), max_depth=1, per_segment=3, n_boot=0,
      ...                            validation_fraction=0.2)
      >>> [(c.noise, [r["strategy"] for r in c.rows]) for c in run.cells]
      [('learned', ['linear interpolation', 'routing']), ('separable', ['linear interpolation', 'routing'])]
      >>> sorted(set(run.quality.estimator))
      ['learned', 'separable']
    """
    for kind in estimates:
        if kind not in ESTIMATES:
            raise CascjaxError(f"unknown estimates {kind!r}; choose from {', '.join(ESTIMATES)}")
    if not estimates:
        raise CascjaxError("estimates must name at least one kind")
    train, val, test = split_three(ds.n_queries, test_fraction, validation_fraction, split_seed)
    depth = min(max_depth if estimator_depth is None else estimator_depth, ds.n_models)
    val_ds, test_ds = ds.take(val), ds.take(test)
    if budgets not in ("paper", "sum"):
        raise CascjaxError(f"unknown budgets {budgets!r}; choose 'paper' or 'sum'")
    if budgets == "paper":
        budgets = paper_budgets(test_ds, per_segment)
    else:
        mean = np.asarray(test_ds.cost, np.float64).mean(axis=0)
        budgets = np.linspace(mean.min(), mean.sum(), per_segment * ds.n_models)
    wanted = [r for r in ROWS if strategies is None or r[1] is None or r[1] in strategies]
    options = dict(max_depth=max_depth, samples=samples, per_step=per_step, candidates=candidates, grid=grid)
    t0 = time.perf_counter()
    if progress:
        progress("fitting the estimators")
    learned = fit_learned(ds, features, train, max_depth=depth, post_hoc=post_hoc)
    baseline = fit_learned(ds, features, train, max_depth=depth, post_hoc=post_hoc, ante="mean") if (
        "baseline" in estimates) else None
    fit_seconds = time.perf_counter() - t0

    def make(kind, rows):
        part, feats = ds.take(rows), features.take(rows)
        if kind == "separable":
            return separable(learned, part, feats)
        return state_estimates(learned if kind == "learned" else baseline, part, feats)

    cells, scored = [], {}
    for kind in estimates:
        pair = (make(kind, val), make(kind, test))
        scored[kind] = pair[1]
        cells.append(run_cell("all", kind, ds.models, val_ds, test_ds, budgets, lambda seed, pair=pair: pair, 1,
                              wanted, options, n_boot, boot_seed, progress))
    quality = estimator_quality(test_ds, scored, max_depth=depth)
    return Reproduction(cells, quality, fit_seconds, (train, val, test))
