"""The checks of cascade routing against enumeration (pruning), routing (depth one, perfect information) and the
optimal cascade (prefix candidates), and of the supermodel values' monotonicity and submodularity."""

from __future__ import annotations

import functools
import itertools

import jax.numpy as jnp
import numpy as np

from .. import _checks, _curve, _decide, _estimates, _fit, _supermodels, _sweep
from .._data import Dataset
from . import _reference
from ._properties import CHECKED, RTOL, _count, _expected_maxima, _fail, _needs_x64, _scale
from ._strategies import Instance


def _outcomes(ds: Dataset, curve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query and λ: the answering model, realised quality and realised cost, [L, N] each."""
    return np.asarray(curve.choice), _fit._answered(ds, curve.choice), np.asarray(curve.query_cost, np.float64)


# -- cascade routing against enumeration, routing and the cascade ---------------------------------------------

@_needs_x64
def check_pruning(instance: Instance, lambdas, *, tie: str = "min", max_depth: int | None = None,
                  samples: int = 4, force_order: bool = False, greedy: bool = False,
                  reference: str = "enumeration") -> None:
    """The pruned kernel against :func:`cascjax.testing.reference_run` (``reference="enumeration"``: every
    candidate at every state, no pruning, NumPy loops) or against the kernel without pruning
    (``"unpruned"``: fast, for large batches).

    Args:
      instance: an :class:`Instance`, dataset and estimates [N, M].
      lambdas: [L] λ ≥ 0, or [L, D] one per step.
      tie: ``"min"`` or ``"max"``.
      max_depth: D (default M).
      samples: K shared normal points (:func:`cascjax.sweep`'s ``samples``).
      force_order, greedy: cascade routing's options.
      reference: ``"enumeration"`` or ``"unpruned"``.

    Raises:
      PropertyFailed: naming the query, λ, both decisions and the estimates.

    Example:
      >>> import jax, numpy as np, cascjax.testing as ct
      >>> instance = ct.random_instance(jax.random.key(0), 4, 2)   # N = 4 queries, M = 2 models
      >>> ct.check_pruning(instance, [0.5])   # L = 1: holds, no output
    """
    if reference not in ("enumeration", "unpruned"):
        raise ValueError(f"unknown reference {reference!r}; choose 'enumeration' or 'unpruned'")
    ds, est = instance
    lam = np.asarray(lambdas, np.float64)
    options = dict(tie=tie, max_depth=max_depth, samples=samples, force_order=force_order, greedy=greedy,
                   return_choices=True)
    curve = _sweep.sweep(ds, est, lam, "cascade_routing", prune=True, **options)
    if reference == "unpruned":
        plain = _sweep.sweep(ds, est, lam, "cascade_routing", prune=False, **options)
        return _same("pruning", ds, est, lam, curve, plain, "the pruned kernel", "the unpruned kernel", tie)
    choice, _, paid = _outcomes(ds, curve)
    z = np.asarray(_supermodels.normal_points(samples, ds.n_models))
    factor = None if est.covariance is None else np.asarray(_estimates.covariance_factors(est.covariance))
    loop = _reference.estimates_row(est)
    cost = np.asarray(ds.cost, np.float64)
    for i in range(ds.n_queries):
        row = {k: v[i] for k, v in loop.items()}
        for k, lam_l in enumerate(lam):
            run, answer = _reference.reference_run(row, lam_l, "cascade_routing", tie=tie, max_depth=max_depth,
                                                   force_order=force_order, greedy=greedy, z=z, factor=factor)
            spent = sum(cost[i, r] for r in run)
            if choice[k, i] != answer or abs(paid[k, i] - spent) > RTOL * _scale(cost):
                _fail("pruning", f"query {i}, λ = {lam_l.tolist()}: the pruned kernel answers with model "
                                 f"{int(choice[k, i])} at cost {paid[k, i]}, enumeration runs {run} and answers "
                                 f"with {answer} at cost {spent}; estimates {_row(row)}, tie={tie}, "
                                 f"max_depth={max_depth}, force_order={force_order}, greedy={greedy}")
    _count("pruning", ds.n_queries * len(lam))


def _row(row: dict) -> str:
    return "{" + ", ".join(f"{k}={np.asarray(v).tolist()}" for k, v in row.items()) + "}"


@_needs_x64
def check_depth_one(instance: Instance, lambdas, *, tie: str = "min") -> None:
    """Cascade routing with ``max_depth=1`` is routing: the same answering model, realised quality and cost
    for every query and λ.

    Args:
      instance: an :class:`Instance`, dataset and estimates [N, M].
      lambdas: [L] λ ≥ 0.
      tie: ``"min"`` or ``"max"``.

    Raises:
      PropertyFailed: naming the query, λ, both outcomes and the estimates.

    Example:
      >>> from hypothesis import given, settings
      >>> import cascjax.testing as ct
      >>> @settings(max_examples=3, database=None, deadline=None, derandomize=True)
      ... @given(ct.instances(n_queries=3, n_models=3), ct.lambdas(n=4))   # N = 3, M = 3; L = 4
      ... def test_depth_one(instance, lam):
      ...     ct.check_depth_one(instance, lam)
      >>> test_depth_one()   # holds: no output
    """
    ds, est = instance
    a = _sweep.sweep(ds, est, lambdas, "cascade_routing", tie=tie, max_depth=1, return_choices=True)
    b = _sweep.sweep(ds, est, lambdas, "routing", tie=tie, return_choices=True)
    _same("depth_one", ds, est, lambdas, a, b, "cascade routing (max_depth=1)", "routing", tie)


@_needs_x64
def check_prefix(instance: Instance, lambdas, *, tie: str = "min", max_depth: int | None = None,
                 samples: int = 4) -> None:
    """Cascade routing restricted to prefix candidates {0..i} is the optimal cascade: the same answering
    model, realised quality and cost for every query and λ.

    Args:
      instance: an :class:`Instance`, dataset and estimates [N, M].
      lambdas: [L] λ ≥ 0, or [L, D] one per step.
      tie: ``"min"`` or ``"max"``.
      max_depth: D (default M).
      samples: K shared normal points.

    Raises:
      PropertyFailed: naming the query, λ, both outcomes and the estimates.

    Example:
      >>> import jax, cascjax.testing as ct
      >>> instance = ct.random_instance(jax.random.key(0), 4, 2)
      >>> ct.check_prefix(instance, [0.5])   # doctest: +SKIP

    (Holds: no output. Skipped in the doctest run, which its one-off compilation would slow down by ~4 s;
    ``tests/test_docs.py`` runs it.)
    """
    from .._cascade_routing import cascade_routing_sweep
    from .._decide import tie_rtol

    ds, est = instance
    lam = _checks._per_step(_curve.check_lambdas(lambdas, ds.quality.dtype),
                            _supermodels.check_depth(ds.n_models, max_depth), "λ")
    e, z, factor, depth = _checks._strategy_inputs(ds, est, max_depth, samples, False)
    a = cascade_routing_sweep(ds.quality, ds.cost, e, lam, z, factor, depth=depth,
                              rtol=tie_rtol(ds.quality.dtype), tie_max=tie == "max", force_order=False,
                              greedy=False, prune=True, return_choices=True, plan=ds.n_queries, prefix=True)
    b = _sweep.sweep(ds, est, lam, "cascade", tie=tie, max_depth=max_depth, samples=samples, return_choices=True)
    _same("prefix", ds, est, lambdas, a, b, "cascade routing on prefixes", "the optimal cascade", tie)


def _same(name, ds, est, lambdas, a, b, what_a, what_b, tie, quality_only=False, rows=None):
    """Per-query outcomes of two curves agree (answering model unless ``quality_only``, realised quality and
    cost) on the λ ``rows`` (default all)."""
    ca, qa, pa = _outcomes(ds, a)
    cb, qb, pb = _outcomes(ds, b)
    tol = RTOL * _scale(ds.cost)
    bad = (np.abs(pa - pb) > tol) | (np.abs(qa - qb) > RTOL) | ((ca != cb) if not quality_only else False)
    if rows is not None:
        bad &= np.asarray(rows)[:, None]
    if bad.any():
        k, i = (int(x) for x in np.argwhere(bad)[0])
        row = _reference.estimates_row(est, i)
        _fail(name, f"query {i}, λ = {np.asarray(lambdas)[k].tolist()}, tie={tie}: {what_a} answers with model "
                    f"{int(ca[k, i])} (quality {qa[k, i]}, cost {pa[k, i]}), {what_b} with {int(cb[k, i])} "
                    f"(quality {qb[k, i]}, cost {pb[k, i]}); estimates {_row(row)}, truth "
                    f"q={np.asarray(ds.quality)[i].tolist()} c={np.asarray(ds.cost)[i].tolist()}")
    _count(name, ca.size)


@_needs_x64
def check_perfect(ds: Dataset, lambdas, *, tie: str = "min", samples: int = 4) -> None:
    """With perfect estimates cascade routing realises routing's outcome on every query, and at λ = 0 every
    strategy reaches the routing oracle (see ``PROPERTIES``, ``perfect``).

    Evaluated at 0 followed by ``lambdas`` ([L + 1] for every strategy: one compilation per shape).

    Args:
      ds: the dataset, [N, M] (its perfect estimates are used).
      lambdas: [L] λ ≥ 0, checked after λ = 0 (may be empty).
      tie: ``"min"`` or ``"max"``.
      samples: K shared normal points.

    Raises:
      PropertyFailed: naming the query, λ and both outcomes, or the strategy that misses the oracle.

    Example:
      >>> import jax, cascjax.testing as ct
      >>> ds = ct.random_instance(jax.random.key(0), 4, 2).dataset
      >>> ct.check_perfect(ds, [])   # λ = 0 only: holds, no output
    """
    est = _estimates.perfect_estimates(ds)
    lam = np.concatenate([[0.0], np.asarray(lambdas, np.float64)])
    run = lambda s, values=lam: _sweep.sweep(ds, est, values, s, tie=tie, return_choices=True,  # noqa: E731
                                             **({"samples": samples} if s in ("cascade", "cascade_routing") else {}))
    curves = {s: run(s) for s in ("routing", "cascade", "cascade_routing")}
    # MAX at λ = 0 may run models that cannot help (same quality, higher cost): compared only where λ tells the
    # cheapest positive cost from 0 beyond the rule's tie band (a λ inside it is λ = 0 to the rule).
    c = np.asarray(ds.cost, np.float64)
    cheapest = c[c > 0].min() if (c > 0).any() else np.inf
    band = 2 * _decide.tie_rtol(ds.quality.dtype) * (np.abs(np.asarray(ds.quality)).max() + lam * c.max())
    use = np.ones(lam.shape, bool) if tie == "min" else lam * cheapest > band
    _same("perfect", ds, est, lam, curves["cascade_routing"], curves["routing"], "cascade routing (perfect)",
          "routing (perfect)", tie, quality_only=True, rows=use)
    q = np.asarray(ds.quality, np.float64)
    oracle = q.max(axis=1).mean()
    reached = {s: float(c.quality[0]) for s, c in curves.items()}
    if np.isin(q, (0.0, 1.0)).all():  # θ = 1: continue while the answer is wrong
        reached["threshold_cascade"] = float(run("threshold_cascade", np.ones_like(lam)).quality[0])
    for s, value in reached.items():
        if abs(value - oracle) > RTOL:
            _fail("perfect", f"with perfect estimates at λ = 0 (θ = 1), {s} reaches quality {value}, the routing "
                             f"oracle {oracle}; tie={tie}, quality={q.tolist()}, cost={np.asarray(ds.cost).tolist()}")
    CHECKED["perfect:items"] += len(reached)


# -- supermodel values --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def _pairs(m: int, depth: int):
    """Static index arrays over the candidate table: (T, T ∪ {m}) pairs and (T, T', m) submodularity triples."""
    table = _supermodels.candidate_table(m, depth)
    row = {int(k): i for i, k in enumerate(table.mask)}
    pairs, triples = [], []
    for t, mask in row.items():
        for a in range(m):
            if not t >> a & 1 and (t | 1 << a) in row:
                pairs.append((mask, row[t | 1 << a]))
                rest = [b for b in range(m) if not (t | 1 << a) >> b & 1]
                for k in range(1, len(rest) + 1):
                    for extra in itertools.combinations(rest, k):
                        big = t | sum(1 << b for b in extra)
                        if (big | 1 << a) in row:
                            triples.append((mask, row[t | 1 << a], row[big], row[big | 1 << a]))
    return np.array(pairs, np.int32).reshape(-1, 2), np.array(triples, np.int32).reshape(-1, 4)


@_needs_x64
def check_submodular(mu, scale, z) -> None:
    """Monotone and submodular, for a batch: ``mu`` [B, M], ``scale`` [B, M] (σ) or [B, M, M] (factors L),
    ``z`` [K, M] shared points; one vmapped call of :func:`cascjax._supermodels.expected_max`.

    Args:
      mu: [B, M] means of B independent problems.
      scale: [B, M] standard deviations, or [B, M, M] factors L (Y = μ + L z).
      z: [K, M] shared standard points.

    Raises:
      PropertyFailed: naming the sets whose values break monotonicity or submodularity.

    Example:
      >>> import numpy as np, cascjax.testing as ct
      >>> mu, sd = np.array([[0.0, 0.5, 0.25]]), np.array([[1.0, 0.0, 0.5]])   # B = 1, M = 3
      >>> ct.check_submodular(mu, sd, np.array([[-1.0, 1.0, 0.0], [1.0, -1.0, 0.0]]))   # K = 2: holds
    """
    mu, scale, z = (jnp.asarray(a, jnp.float64) for a in (mu, scale, z))
    m = mu.shape[1]
    q = np.asarray(_expected_maxima(mu, scale, z))  # [B, S]
    pairs, triples = _pairs(m, m)
    tol = 32 * np.finfo(np.float64).eps * (np.abs(np.asarray(mu)).max() + np.abs(np.asarray(scale)).max()
                                            * np.abs(np.asarray(z)).max() + 1) * 4
    gain = q[:, pairs[:, 1]] - q[:, pairs[:, 0]]
    if (gain < -tol).any():
        b, p = (int(x) for x in np.argwhere(gain < -tol)[0])
        table = _supermodels.candidate_table(m, m)
        _fail("submodular", f"not monotone: Q({_set(table, pairs[p, 1])}) = {q[b, pairs[p, 1]]} < "
                            f"Q({_set(table, pairs[p, 0])}) = {q[b, pairs[p, 0]]}; μ={np.asarray(mu[b]).tolist()}, "
                            f"scale={np.asarray(scale[b]).tolist()}")
    if len(triples):
        small = q[:, triples[:, 1]] - q[:, triples[:, 0]]
        large = q[:, triples[:, 3]] - q[:, triples[:, 2]]
        bad = small < large - tol
        if bad.any():
            b, t = (int(x) for x in np.argwhere(bad)[0])
            table = _supermodels.candidate_table(m, m)
            sets = [_set(table, i) for i in triples[t]]
            _fail("submodular", f"not submodular: Q({sets[1]}) − Q({sets[0]}) = {small[b, t]} < Q({sets[3]}) − "
                                f"Q({sets[2]}) = {large[b, t]}; μ={np.asarray(mu[b]).tolist()}, "
                                f"scale={np.asarray(scale[b]).tolist()}")
    _count("submodular", q.shape[0] * (len(pairs) + len(triples)))


def _set(table, row) -> tuple:
    return tuple(int(i) for i in np.flatnonzero(table.members[row]))
