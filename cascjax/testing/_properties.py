"""The theorem suite: properties that hold exactly, each a function that raises :class:`PropertyFailed`.

Every check runs cascjax's own kernels (through their module attributes, so a test can swap in a broken
kernel and watch the property fail) on an instance and compares them with a reference solver or with
another kernel. Each call counts the examples and decisions it checked in :data:`CHECKED`.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _curve, _decide, _estimates, _fit, _routing, _supermodels, _sweep
from .._data import Dataset
from .._errors import CascjaxError
from . import _reference, _worlds
from ._strategies import Instance

#: Relative tolerance of exact comparisons in float64 (rounding of sums and means over queries).
RTOL = 1e-9


class Property(NamedTuple):
    """A property of the suite, as listed in the report (``docs/verification.md``).

    Attributes:
      name: the short name (``"theorem1"``, ``"pruning"``, ...), also the key of its counts in :data:`CHECKED`.
      statement: what must hold, in words.
      source: where it comes from (the paper, DESIGN).

    Example:
      >>> import cascjax.testing as ct
      >>> len(ct.PROPERTIES), [p.name for p in ct.PROPERTIES[:3]]
      (9, ['theorem1', 'pruning', 'depth_one'])
      >>> print(ct.PROPERTIES[2].source)
      the paper's §4 (cascade routing generalises routing)
    """

    name: str
    statement: str
    source: str


PROPERTIES = (
    Property("theorem1", "At every budget B the routing LP can meet, the γ-mixture of s_MAX(λ) and s_MIN(λ) at "
             "the λ where their costs bracket B spends at most B and attains the LP optimum (HiGHS, and exactly "
             "by the dual); the sweep kernel's MAX and MIN routers at that λ are the exact path's, and the two "
             "mixed strategies lie between them (they are them unless collinear hull points share λ); below "
             "the cheapest strategy the mixture is flagged infeasible.",
             "Theorem 1 of the paper (optimal routing is a γ-mixture of two λ-routers); DESIGN §4"),
    Property("pruning", "Cascade routing with the pruning lemma decides, for every query and λ (scalar or per "
             "step), exactly as the exhaustive enumeration of every candidate supermodel at every state.",
             "Lemma 1 of the paper (pruning); DESIGN §3"),
    Property("depth_one", "Cascade routing with max_depth = 1 is routing: the same answering model and cost for "
             "every query and λ, with either tie rule.", "the paper's §4 (cascade routing generalises routing)"),
    Property("prefix", "Cascade routing restricted to prefix candidates {0..i} is the optimal cascade: the same "
             "answering model and cost for every query and λ.",
             "the paper's §4 (cascade routing generalises cascading); DESIGN §4"),
    Property("perfect", "With perfect estimates, cascade routing realises routing's cost and quality on every "
             "query (MIN tie: every λ; MAX: every λ at which λ·(cheapest positive cost) exceeds the tie band — "
             "below it λ is 0 to the rule, which then may run models that cannot help), and at λ = 0 routing, "
             "the optimal cascade and cascade routing all reach the routing oracle's quality mean_n max_m q_nm; "
             "with 0/1 quality the threshold "
             "cascade at θ = 1 reaches it too.", "the paper's §5 (perfect information); DESIGN §4"),
    Property("submodular", "Q(T) = E[max_{m∈T} Y_m] with shared points is monotone and submodular in T "
             "(independent σ or correlated Σ), hence the pruning lemma's premise: Q(T∪{m}) − Q(T) ≥ 0 and "
             "≥ Q(T'∪{m}) − Q(T') for T ⊆ T'.", "DESIGN §3; the paper's Lemma 1 proof"),
    Property("fit_budget", "A strategy fitted to budgets never exceeds them on the split it was fitted on: "
             "expected cost ≤ B at every feasible budget, NaN and flagged where no strategy is cheap enough.",
             "DESIGN §5 (fit subject to fit cost ≤ B)"),
    Property("transforms", "jit, vmap and sharding do not change results: a sweep over L λ equals L sweeps of "
             "one λ, a jitted sweep equals the eager one (jax.disable_jit), and a sweep with its query axis "
             "sharded over several devices equals the one-device sweep to the bit.", "STYLE principle 9(c); "
             "issue 6 (multi-device)"),
    Property("optimal_policy", "In the Gaussian world (ex-ante quality N(μ, σ²), running a model reveals it, "
             "cost λ-penalised), the dynamic programme's value equals Weitzman's Pandora's-box value and is at "
             "least the value of the paper's cascade-routing rule (computed by the kernel).",
             "Weitzman (1979); Kleinberg, Waggoner & Weyl (2016); the issue's DP world"),
)

#: Examples checked per property in this process (``CHECKED[name]``) and the decisions, budgets or sets
#: they covered (``CHECKED[name + ":items"]``).
CHECKED: Counter = Counter()


class PropertyFailed(AssertionError):
    """A property does not hold on an instance; the message names the property and the counterexample.

    A subclass of :class:`AssertionError`, so pytest reports it as a failed assertion.

    Example:
      >>> import cascjax.testing as ct
      >>> try:
      ...     raise ct.PropertyFailed("[depth_one] query 0, λ = 0.5: ...")
      ... except AssertionError as error:
      ...     print(type(error).__name__, error)
      PropertyFailed [depth_one] query 0, λ = 0.5: ...
    """


def _fail(name: str, message: str):
    raise PropertyFailed(f"[{name}] {message}")


def _needs_x64(check):
    """The checks compare the kernels with float64 reference solvers to ~1e-9: in float32, rounding alone
    would make them fail, so they refuse to run without x64 rather than report false counterexamples."""
    @functools.wraps(check)
    def guarded(*args, **kwargs):
        if not jax.config.jax_enable_x64:
            raise CascjaxError(f"cascjax.testing.{check.__name__} compares the kernels with float64 reference "
                               "solvers (to 1e-9 relative): enable x64 first, jax.config.update('jax_enable_x64', "
                               "True), or float32 rounding alone makes it fail")
        return check(*args, **kwargs)
    return guarded


def _count(name: str, items: int) -> None:
    CHECKED[name] += 1
    CHECKED[name + ":items"] += int(items)


def _outcomes(ds: Dataset, curve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query and λ: the answering model, realised quality and realised cost, [L, N] each."""
    return np.asarray(curve.choice), _fit._answered(ds, curve.choice), np.asarray(curve.query_cost, np.float64)


def _scale(*arrays) -> float:
    return max(1.0, *(float(np.max(np.abs(np.asarray(a, np.float64)))) for a in arrays))


# -- Theorem 1 ---------------------------------------------------------------------------------------------

@_needs_x64
def check_theorem1(instance: Instance, budgets) -> None:
    """Theorem 1 on the router's own objective: quality ``est.quality_ante`` and cost ``est.cost_ante`` (the
    LP is over what the router sees; with perfect estimates that is the truth).

    At every budget the γ-mixture of :func:`cascjax.at_budget` on the exact routing path must spend at most B
    and reach the LP optimum (:func:`routing_lp` and :func:`routing_dual`); infeasible budgets must be
    flagged; and the sweep's MAX and MIN routers at the mixture's λ must be the path's.

    Args:
      instance: an :class:`Instance`; its estimates' ``quality_ante``, ``cost_ante`` [N, M] are used.
      budgets: [B] budgets (mean cost per query).

    Raises:
      PropertyFailed: naming the budget, the mixture and the LP optimum.

    Example:
      >>> import cascjax, cascjax.testing as ct
      >>> ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
      >>> ct.check_theorem1(ct.Instance(ds, cascjax.perfect_estimates(ds)), [0.5, 1.25, 2.0])   # holds: no output
    """
    mu, c_hat = (np.asarray(a, np.float64) for a in (instance.estimates.quality_ante, instance.estimates.cost_ante))
    world = Dataset.from_arrays(mu, c_hat, models=instance.dataset.models, sort=False)
    path = _routing.routing_path(world, _estimates.perfect_estimates(world))
    budgets = np.atleast_1d(np.asarray(budgets, np.float64))
    mix = _curve.at_budget(path, budgets)
    lam, lo, hi, gamma = (np.asarray(a) for a in (mix.lam, mix.lo, mix.hi, mix.gamma))
    pc, pq = np.asarray(path.cost, np.float64), np.asarray(path.quality, np.float64)
    tol = RTOL * _scale(mu, c_hat)
    dual = _reference.routing_dual(mu, c_hat, budgets)
    # HiGHS works to absolute tolerances (1e-10): where costs differ by less than a millionth of the largest
    # cost its answer is not exact enough to compare with; the dual (exact, no solver) always is.
    gaps = np.diff(np.unique(np.concatenate([[0.0], c_hat.ravel()])))
    use_lp = gaps.size == 0 or gaps.min() >= 1e-6 * c_hat.max()
    for b, budget in enumerate(budgets):
        lp = _reference.routing_lp(mu, c_hat, budget) if use_lp else None
        if np.isnan(dual[b]):
            if bool(mix.feasible[b]):
                _fail("theorem1", f"budget {budget!r} is below every strategy's cost but the mixture is feasible; "
                                  f"μ={mu.tolist()}, ĉ={c_hat.tolist()}")
            continue
        opt = float(dual[b])
        if lp is not None and abs(lp - opt) > 1e-7 * _scale(mu):
            _fail("theorem1", f"the LP solver ({lp}) and the dual ({opt}) disagree at budget {budget!r}: "
                              f"μ={mu.tolist()}, ĉ={c_hat.tolist()}")
        if not bool(mix.feasible[b]):
            _fail("theorem1", f"budget {budget!r} is feasible (LP optimum {opt}) but no mixture was found; "
                              f"μ={mu.tolist()}, ĉ={c_hat.tolist()}")
        g = float(gamma[b])
        cost = g * pc[hi[b]] + (1 - g) * pc[lo[b]]
        quality = g * pq[hi[b]] + (1 - g) * pq[lo[b]]
        if cost > budget + tol or abs(quality - opt) > tol:
            _fail("theorem1", f"at budget {budget!r}: the γ = {g} mixture of path points {int(hi[b])} and "
                              f"{int(lo[b])} costs {cost} with quality {quality}, the LP optimum is {opt}; "
                              f"μ={mu.tolist()}, ĉ={c_hat.tolist()}")
    # The mixture's λ: the sweep kernel's MAX and MIN routers are the path's (path_at), and the two mixed points
    # lie between them — they are s_MAX(λ) and s_MIN(λ) themselves unless several hull vertices share λ
    # (collinear points: every vertex between is optimal at λ too, mixing any two adjacent ones is Theorem 1's).
    ok = np.asarray(mix.feasible)  # an infeasible budget has no λ (NaN) and no mixture
    lam, lo, hi = lam[ok], lo[ok], hi[ok]
    if not ok.any():
        _count("theorem1", len(budgets))
        return
    perfect = _estimates.perfect_estimates(world)
    tie_cost = {t: (np.asarray(_sweep.sweep(world, perfect, lam, "routing", tie=t).cost, np.float64),
                    np.asarray(_curve.path_at(path, lam, t).cost, np.float64)) for t in ("max", "min")}
    for t, (kernel, on_path) in tie_cost.items():
        bad = np.abs(kernel - on_path) > tol
        if bad.any():
            b = int(np.argmax(bad))
            _fail("theorem1", f"at λ = {float(lam[b])!r} the sweep's {t.upper()} router costs {kernel[b]}, the "
                              f"path's {on_path[b]}; μ={mu.tolist()}, ĉ={c_hat.tolist()}")
    c_max, c_min = tie_cost["max"][0], tie_cost["min"][0]
    bad = (hi != lo) & ((pc[hi] > c_max + tol) | (pc[lo] < c_min - tol))
    if bad.any():
        b = int(np.argmax(bad))
        _fail("theorem1", f"at λ = {float(lam[b])!r} the mixed path points cost {pc[hi[b]]}, {pc[lo[b]]}, outside "
                          f"[s_MIN, s_MAX] = [{c_min[b]}, {c_max[b]}]; μ={mu.tolist()}, ĉ={c_hat.tolist()}")
    _count("theorem1", len(budgets))


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
    lam = _sweep._per_step(_curve.check_lambdas(lambdas, ds.quality.dtype),
                           _supermodels.check_depth(ds.n_models, max_depth), "λ")
    e, z, factor, depth = _sweep._strategy_inputs(ds, est, max_depth, samples, False)
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


@jax.jit
def _expected_maxima(mu, scale, z):
    # Looks up _supermodels.expected_max when traced, so a swapped-in mutant is the one checked.
    return jax.vmap(lambda a, s: _supermodels.expected_max(a, s, z))(mu, scale)


def _set(table, row) -> tuple:
    return tuple(int(i) for i in np.flatnonzero(table.members[row]))


# -- fitting ------------------------------------------------------------------------------------------------

@_needs_x64
def check_fit_budget(instance: Instance, budgets, strategy: str = "routing", **options) -> None:
    """A strategy fitted to budgets never exceeds them on the split it was fitted on: fitted and evaluated
    cost ≤ B at every feasible budget, NaN where a budget is flagged infeasible.

    Fits with :func:`cascjax.fit` on a small grid (16 points, 4 bisections, 16 search candidates).

    Args:
      instance: an :class:`Instance`, the fit split and its estimates [N, M].
      budgets: [B] budgets.
      strategy: one of ``cascjax.STRATEGIES``.
      options: ``per_step`` (default ``()``) and the strategy's options, passed to :func:`cascjax.fit`.

    Raises:
      PropertyFailed: naming the strategy, the budget and the cost found.

    Example:
      >>> import jax, cascjax.testing as ct
      >>> instance = ct.random_instance(jax.random.key(0), 4, 2)
      >>> ct.check_fit_budget(instance, [0.0, 0.25, 0.5])   # B = 3 (0.0 may be infeasible): holds
    """
    ds, est = instance
    budgets = np.atleast_1d(np.asarray(budgets, np.float64))
    fitted = _fit.fit(ds, est, budgets, strategy, per_step=options.pop("per_step", ()), grid=16, bisect=4,
                      candidates=16, **options)
    ev = _fit.evaluate(fitted, ds, est)
    tol = RTOL * _scale(ds.cost)
    for b, budget in enumerate(budgets):
        if fitted.feasible[b]:
            for what, value in (("fitted", fitted.cost[b]), ("evaluated", ev.cost[b])):
                if not value <= budget + tol:
                    _fail("fit_budget", f"{strategy} fitted to budget {budget!r} has {what} cost {value}; quality="
                                        f"{np.asarray(ds.quality).tolist()}, cost={np.asarray(ds.cost).tolist()}")
        elif not (np.isnan(ev.cost[b]) and np.isnan(fitted.cost[b])):
            _fail("fit_budget", f"{strategy}: budget {budget!r} is flagged infeasible but has cost {ev.cost[b]}")
    _count("fit_budget", len(budgets))


# -- transformations ----------------------------------------------------------------------------------------

@_needs_x64
def check_transforms(instance: Instance, lambdas, strategy: str = "routing", *, eager: bool = True, **options) -> None:
    """vmap = loop over λ, and (``eager``) jit = eager, on the per-query outcomes and the means.

    Args:
      instance: an :class:`Instance`, dataset and estimates [N, M].
      lambdas: [L] λ (θ for the threshold cascade), or [L, D].
      strategy: one of ``cascjax.STRATEGIES``.
      eager: also compare with a run under ``jax.disable_jit()`` (seconds even for small instances).
      options: further :func:`cascjax.sweep` options.

    Raises:
      PropertyFailed: naming the field, the position and both values.

    Example:
      >>> import jax, numpy as np, cascjax.testing as ct
      >>> instance = ct.random_instance(jax.random.key(0), 4, 2)
      >>> ct.check_transforms(instance, np.array([0.0, 0.125, 0.5, 2.0]), eager=False)   # routing: holds
    """
    ds, est = instance
    lam = np.asarray(lambdas, np.float64)
    run = lambda values: _sweep.sweep(ds, est, values, strategy, return_choices=True, **options)  # noqa: E731
    batched = run(lam)
    singles = [run(lam[k:k + 1]) for k in range(lam.shape[0])]
    ways = [("one λ at a time", _stack(singles))]
    if eager:
        with jax.disable_jit():
            ways.append(("eager (jax.disable_jit)", run(lam)))
    for how, other in ways:
        _compare("transforms", ds, lam, batched, other, f"{strategy}: vmapped over λ", how)
    _count("transforms", lam.shape[0] * ds.n_queries * len(ways))


def check_sharded(instance: Instance, lambdas, strategy: str = "routing", **options) -> None:
    """Sharding the query axis over every device (``sweep``'s default with several devices) gives exactly
    the one-device results, whether the inputs arrive on one device or already sharded along the queries
    (when N is a multiple of the device count). Meaningful with several devices (e.g.
    ``XLA_FLAGS=--xla_force_host_platform_device_count=4``).

    Args:
      instance: an :class:`Instance`, dataset and estimates [N, M].
      lambdas: [L] λ (θ for the threshold cascade), or [L, D].
      strategy: one of ``cascjax.STRATEGIES``.
      options: further :func:`cascjax.sweep` options; ``chunk_size`` defaults to two chunks per device.

    Raises:
      PropertyFailed: naming the field, the position and both values (compared bit for bit).

    Example:
      >>> import jax, numpy as np, cascjax.testing as ct
      >>> instance = ct.random_instance(jax.random.key(0), 4, 2)
      >>> ct.check_sharded(instance, np.array([0.0, 0.125, 0.5, 2.0]))   # on every visible device: holds
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    ds, est = instance
    devices = np.array(jax.devices())
    lam = np.asarray(lambdas, np.float64)
    chunk = options.pop("chunk_size", max(1, -(-ds.n_queries // (2 * len(devices)))))  # ≥ 2 chunks per device
    plain = _sweep.sweep(ds, est, lam, strategy, return_choices=True, devices=1, chunk_size=chunk, **options)
    ways = [("sharded over all devices", (ds, est))]
    if ds.n_queries % len(devices) == 0:
        rows = NamedSharding(Mesh(devices, ("q",)), PartitionSpec("q"))
        put = lambda a: None if a is None else jax.device_put(a, rows)  # noqa: E731
        ways.append(("inputs sharded", (Dataset(put(ds.quality), put(ds.cost), models=ds.models),
                                        est._replace(**{k: put(v) for k, v in est._asdict().items()
                                                        if k != "covariance"}))))
    for how, (d, e) in ways:
        other = _sweep.sweep(d, e, lam, strategy, return_choices=True, chunk_size=chunk, **options)
        _compare("transforms", ds, lam, plain, other, f"{strategy}: one device", f"{how} ({len(devices)})",
                 exact=True)
    _count("transforms", lam.shape[0] * ds.n_queries * len(ways))


def _stack(curves):
    return type(curves[0])(*(None if f[0] is None else jnp.concatenate(f) for f in zip(*curves)))


def _compare(name, ds, lam, a, b, what_a, what_b, exact=False):
    for field in ("cost", "quality", "choice", "query_cost"):
        x, y = np.asarray(getattr(a, field), np.float64), np.asarray(getattr(b, field), np.float64)
        bad = (x != y) if exact else np.abs(x - y) > RTOL * _scale(x, y)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            _fail(name, f"{what_a} and {what_b} differ in {field} at {at} (λ = {lam[at[0]].tolist()}): "
                        f"{x[at]} vs {y[at]}; quality={np.asarray(ds.quality).tolist()}")


# -- the Gaussian world ---------------------------------------------------------------------------------------

@_needs_x64
def check_optimal_policy(worlds, lam, *, nodes: int = 4, tie: str = "min") -> None:
    """DP = Pandora ≥ the rule (evaluated by the kernel), for a batch of worlds ([W, M] fields) at one λ.

    Args:
      worlds: a :class:`World` with fields [W, M], 2 ≤ M ≤ 4.
      lam: one λ ≥ 0 for every world.
      nodes: k nodes per model.
      tie: the rule's tie rule, ``"min"`` or ``"max"``.

    Raises:
      PropertyFailed: naming the world where DP and Pandora differ or the rule beats the optimum.

    Example:
      >>> import cascjax.testing as ct
      >>> worlds = ct.World(mu=[[0.25, 1.0]], sd=[[1.0, 0.5]], cost=[[0.5, 1.0]])   # W = 1, M = 2
      >>> ct.check_optimal_policy(worlds, 1.0, nodes=2)   # holds (the rule is 0.125 short): no output
    """
    n_worlds = np.shape(worlds.mu)[0]
    lam_w = np.broadcast_to(np.asarray(lam, np.float64), (n_worlds,))
    dp = _worlds.optimal_value(worlds, lam_w, nodes=nodes)
    pandora = _worlds.pandora_value(worlds, lam_w, nodes=nodes)
    rule = _worlds.rule_values(worlds, float(lam), nodes=nodes, tie=tie)  # one λ row: one compilation per W
    scale = _scale(worlds.mu, worlds.sd, np.asarray(worlds.cost) * np.max(lam_w))
    for w in range(n_worlds):
        world = {f: np.asarray(getattr(worlds, f))[w].tolist() for f in ("mu", "sd", "cost")}
        if abs(dp[w] - pandora[w]) > RTOL * scale:
            _fail("optimal_policy", f"DP value {dp[w]} ≠ Pandora value {pandora[w]} for {world}, λ = {lam_w[w]}")
        if rule[w] > dp[w] + RTOL * scale:
            _fail("optimal_policy", f"the cascade-routing rule's value {rule[w]} exceeds the optimum {dp[w]} "
                                    f"for {world}, λ = {lam_w[w]}, tie={tie}")
    _count("optimal_policy", n_worlds)


# -- measurements: not guaranteed, reported -------------------------------------------------------------------

#: What the measurements of this process found (``MEASURED["dp_gap"][M]``, ``MEASURED["counterexamples"]``).
MEASURED: dict = {"dp_gap": {}, "counterexamples": []}

#: A gap above this (in quality units) makes the rule strictly suboptimal on a world.
GAP_TOL = 1e-9


def by_cost(worlds):
    """The worlds with each one's models in ascending order of cost (stable): the paper's cascade order."""
    order = np.argsort(np.asarray(worlds.cost), axis=-1, kind="stable")
    return type(worlds)(*(np.take_along_axis(np.asarray(f, np.float64), order, axis=-1) for f in worlds))


@_needs_x64
def measure_dp_gap(worlds, lams, *, nodes: int = 4, tie: str = "min") -> dict:
    """The paper's cascade-routing rule against the DP optimum on a batch of worlds ([W, M] fields, models
    put in ascending cost order first) at each λ of ``lams``: gaps optimum − rule through the kernel.

    Accumulates into ``MEASURED["dp_gap"][M]`` (worlds, mean and worst gap, worlds where the rule is strictly
    suboptimal, the worst world) and returns that entry.

    Args:
      worlds: a :class:`World` with fields [W, M], 2 ≤ M ≤ 4.
      lams: [L] λ values ≥ 0 (each applied to every world).
      nodes: k nodes per model.
      tie: the rule's tie rule.

    Returns:
      The cumulative dict of this process for M: ``worlds`` (W·L so far), ``gap_sum``, ``suboptimal``,
      ``worst``, ``worst_world``, ``optimum_sum``, ``nodes``.

    Raises:
      PropertyFailed: if the rule beats the optimum somewhere.

    Example:
      >>> import cascjax.testing as ct
      >>> worlds = ct.World(mu=[[0.25, 1.0]], sd=[[1.0, 0.5]], cost=[[0.5, 1.0]])   # W = 1, M = 2
      >>> before = dict(ct.MEASURED["dp_gap"].get(2, dict(worlds=0, suboptimal=0)))
      >>> entry = ct.measure_dp_gap(worlds, [1.0], nodes=2)   # L = 1
      >>> entry["worlds"] - before["worlds"], entry["suboptimal"] - before["suboptimal"]   # counts accumulate
      (1, 1)
      >>> entry["worst"] >= 0.125   # this world's gap: optimum 0.125, the rule 0.0
      True
    """
    worlds = by_cost(worlds)
    n_worlds, m = np.shape(worlds.mu)
    entry = MEASURED["dp_gap"].setdefault(m, dict(worlds=0, gap_sum=0.0, suboptimal=0, worst=-np.inf,
                                                  worst_world=None, optimum_sum=0.0, nodes=nodes))
    for lam in np.atleast_1d(np.asarray(lams, np.float64)):
        lam_w = np.full(n_worlds, lam)
        opt = _worlds.optimal_value(worlds, lam_w, nodes=nodes)
        gap = opt - _worlds.rule_values(worlds, float(lam), nodes=nodes, tie=tie)
        if (gap < -RTOL * _scale(worlds.mu, worlds.sd, worlds.cost)).any():
            w = int(np.argmin(gap))
            _fail("optimal_policy", f"the rule beats the optimum by {-gap[w]} on world "
                                    f"{[np.asarray(f)[w].tolist() for f in worlds]}, λ = {lam}")
        entry["worlds"] += n_worlds
        entry["gap_sum"] += float(gap.sum())
        entry["optimum_sum"] += float(np.abs(opt).sum())
        entry["suboptimal"] += int((gap > GAP_TOL).sum())
        w = int(np.argmax(gap))
        if gap[w] > entry["worst"]:
            entry["worst"] = float(gap[w])
            entry["worst_world"] = dict(mu=np.asarray(worlds.mu)[w].tolist(), sd=np.asarray(worlds.sd)[w].tolist(),
                                        cost=np.asarray(worlds.cost)[w].tolist(), lam=float(lam),
                                        rule=float(opt[w] - gap[w]), optimum=float(opt[w]))
    _count("optimal_policy", n_worlds * np.size(lams))
    return entry


def minimal_counterexample(n_models: int, *, nodes: int = 2, max_examples: int = 500, tie: str = "min"):
    """The smallest world (hypothesis's shrinking: lattice values towards 0) with ``n_models`` models in
    ascending cost order where the rule is strictly suboptimal (gap > 1e-6), by the NumPy loops; or None.

    Args:
      n_models: M, 1..4.
      nodes: k nodes per model (2: ±1).
      max_examples: how many worlds hypothesis may try.
      tie: the rule's tie rule.

    Returns:
      dict(mu, sd, cost, lam, rule, optimum, nodes, tie) (``mu``, ``sd``, ``cost``: lists of M floats), also
      appended to ``MEASURED["counterexamples"]``; or None.

    Example:
      >>> import cascjax.testing as ct
      >>> found = ct.minimal_counterexample(2)
      >>> len(found["mu"]), found["optimum"] > found["rule"]
      (2, True)
    """
    from hypothesis import HealthCheck, find, settings, strategies as st
    from hypothesis.errors import NoSuchExample

    from ._strategies import worlds as world_strategy

    cases = st.tuples(world_strategy(n_models=n_models).map(by_cost), st.integers(0, 16).map(lambda v: v / 8))

    def gap(case):
        world, lam = case
        return _worlds.optimal_value(world, lam, nodes) - _worlds.rule_value(world, lam, nodes, tie)

    try:
        world, lam = find(cases, lambda case: gap(case) > 1e-6,
                          settings=settings(max_examples=max_examples, database=None, derandomize=True,
                                            deadline=None, suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        return None
    found = dict(mu=np.asarray(world.mu).tolist(), sd=np.asarray(world.sd).tolist(),
                 cost=np.asarray(world.cost).tolist(), lam=float(lam), nodes=nodes, tie=tie,
                 rule=float(_worlds.rule_value(world, lam, nodes, tie)),
                 optimum=float(_worlds.optimal_value(world, lam, nodes)))
    MEASURED["counterexamples"].append(found)
    return found
