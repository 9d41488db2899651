"""The checks and measurements in the Gaussian world: the dynamic programme's optimum equals Pandora's-box value
and bounds the paper's cascade-routing rule (checked); the rule's gap to the optimum and the smallest worlds
where it is strictly suboptimal (measured, into :data:`MEASURED`)."""

from __future__ import annotations

import numpy as np

from . import _rule_worlds, _worlds
from ._properties import MEASURED, RTOL, _count, _fail, _needs_x64, _scale


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
    rule = _rule_worlds.rule_values(worlds, float(lam), nodes=nodes, tie=tie)  # one λ row: one compilation per W
    scale = _scale(worlds.mu, worlds.sd, np.asarray(worlds.cost) * np.max(lam_w))
    for w in range(n_worlds):
        world = {f: np.asarray(getattr(worlds, f))[w].tolist() for f in ("mu", "sd", "cost")}
        if abs(dp[w] - pandora[w]) > RTOL * scale:
            _fail("optimal_policy", f"DP value {dp[w]} ≠ Pandora value {pandora[w]} for {world}, λ = {lam_w[w]}")
        if rule[w] > dp[w] + RTOL * scale:
            _fail("optimal_policy", f"the cascade-routing rule's value {rule[w]} exceeds the optimum {dp[w]} "
                                    f"for {world}, λ = {lam_w[w]}, tie={tie}")
    _count("optimal_policy", n_worlds)


# -- measurements: not guaranteed, reported (into MEASURED) --------------------------------------------------

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
        gap = opt - _rule_worlds.rule_values(worlds, float(lam), nodes=nodes, tie=tie)
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
        return _worlds.optimal_value(world, lam, nodes) - _rule_worlds.rule_value(world, lam, nodes, tie)

    try:
        world, lam = find(cases, lambda case: gap(case) > 1e-6,
                          settings=settings(max_examples=max_examples, database=None, derandomize=True,
                                            deadline=None, suppress_health_check=list(HealthCheck)))
    except NoSuchExample:
        return None
    found = dict(mu=np.asarray(world.mu).tolist(), sd=np.asarray(world.sd).tolist(),
                 cost=np.asarray(world.cost).tolist(), lam=float(lam), nodes=nodes, tie=tie,
                 rule=float(_rule_worlds.rule_value(world, lam, nodes, tie)),
                 optimum=float(_worlds.optimal_value(world, lam, nodes)))
    MEASURED["counterexamples"].append(found)
    return found
