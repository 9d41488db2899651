"""The theorem suite's registry: the properties (:data:`PROPERTIES`), their failure (:class:`PropertyFailed`),
what a run checked and measured (:data:`CHECKED`, :data:`MEASURED`) and the helpers every check shares.

The checks live by theorem family in ``_check_theorem1`` (Theorem 1, fit budgets), ``_check_pruning`` (cascade
routing against enumeration, routing and the cascade; perfect information; submodularity), ``_check_transforms``
(jit, vmap, sharding) and ``_check_dp`` (the Gaussian world's optimum, measurements). Each is a function that
raises :class:`PropertyFailed`; every check runs cascjax's own kernels (through their module attributes, so a
test can swap in a broken kernel and watch the property fail) on an instance and compares them with a reference
solver or with another kernel. Each call counts the examples and decisions it checked in :data:`CHECKED`.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import NamedTuple

import jax
import numpy as np

from .. import _supermodels
from .._errors import CascjaxError

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


def _scale(*arrays) -> float:
    return max(1.0, *(float(np.max(np.abs(np.asarray(a, np.float64)))) for a in arrays))


#: What the measurements of this process found (``MEASURED["dp_gap"][M]``, ``MEASURED["counterexamples"]``).
MEASURED: dict = {"dp_gap": {}, "counterexamples": []}


@jax.jit
def _expected_maxima(mu, scale, z):
    # Looks up _supermodels.expected_max when traced, so a swapped-in mutant is the one checked. The one jitted
    # entry of the suite: tests/test_theorems.py clears its compiled cache (by this name) around a mutant.
    return jax.vmap(lambda a, s: _supermodels.expected_max(a, s, z))(mu, scale)
