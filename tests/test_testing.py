"""The harness itself: its strategies draw what they promise, its batches are seeded, its report renders."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from hypothesis import find, given, settings, strategies as st

import cascjax
import cascjax.testing as ct
from cascjax.testing import report


@given(ct.instances(quality=("binary", "lattice", "continuous")), st.data())
def test_instances_are_valid_and_budgets_bracket_the_range(instance, data):
    ds, est = instance
    assert 1 <= ds.n_queries <= 8 and 2 <= ds.n_models <= 4
    for name, arr in est._asdict().items():
        if arr is not None and name != "covariance":
            assert arr.shape == ds.quality.shape and np.isfinite(np.asarray(arr)).all(), name
    assert (np.asarray(est.sd_ante) >= 0).all() and (np.asarray(est.cost_ante) >= 0).all()
    b = data.draw(ct.budgets(ds, n=5))
    cost = np.asarray(ds.cost)
    assert b.min() >= cost.min(axis=1).mean() * 0.75 - 1e-12 and b.max() <= cost.mean(axis=0).max() * 1.25 + 1e-12


def test_strategies_reach_ties_zero_costs_and_correlated_covariances():
    """Ties on purpose: two models with the same ex-ante score at some λ, zero costs, singular covariances."""
    tied = find(ct.instances(kind=("arbitrary",)),
                lambda i: bool(np.any(np.asarray(i.estimates.quality_ante)[:, 0]
                                      == np.asarray(i.estimates.quality_ante)[:, 1])),
                settings=settings(database=None, derandomize=True))
    assert tied.dataset.n_queries == 1
    find(ct.datasets(), lambda ds: bool((np.asarray(ds.cost) == 0).any()), settings=settings(database=None))
    est = find(st.just(None).flatmap(lambda _: ct.instances(n_models=3, covariance=True)),
               lambda i: np.linalg.matrix_rank(np.asarray(i.estimates.covariance)[1]) < 3,
               settings=settings(database=None))
    cov = np.asarray(est.estimates.covariance)
    assert cov.shape == (8, 3, 3) and (np.linalg.eigvalsh(cov) >= -1e-12).all()


def test_random_batches_are_deterministic_in_their_key():
    a = ct.random_instance(jax.random.key(3), 64, 4, kind="arbitrary")
    b = ct.random_instance(jax.random.key(3), 64, 4, kind="arbitrary")
    c = ct.random_instance(jax.random.key(4), 64, 4, kind="arbitrary")
    assert all(np.array_equal(x, y) for x, y in zip(a.estimates[:6], b.estimates[:6]))
    assert not np.array_equal(a.estimates.quality_ante, c.estimates.quality_ante)
    lam = ct.random_lambdas(jax.random.key(0), 8)
    assert lam[0] == 0 and (np.asarray(lam) >= 0).all()
    w = ct.random_worlds(1, 5, 3)
    assert w.mu.shape == (5, 3) and np.array_equal(w.cost, ct.random_worlds(1, 5, 3).cost)


def test_enumeration_scores_every_allowed_candidate():
    row = dict(mu_ante=np.array([0.5, 0.8, 0.2]), mu_post=np.array([0.9, 0.8, 0.2]), sd_ante=np.zeros(3),
               sd_post=np.zeros(3), c_ante=np.array([0.1, 0.4, 0.0]), c_post=np.array([0.1, 0.4, 0.0]))
    e = ct.enumerate_candidates(row, [0], 0.5, z=np.zeros((1, 3)))
    # R = {0}: candidates ⊇ {0}: {0}, {0,1}, {0,1,2}, {0,2}; {0} and {0,2} tie at 0.85 (model 2 costs nothing):
    # equal cost as well, so the lexicographically first wins: (0,), i.e. stop.
    assert [e.sets[i] for i in np.flatnonzero(e.allowed)] == [(0,), (0, 1), (0, 1, 2), (0, 2)]
    np.testing.assert_allclose(e.score[e.allowed], [0.85, 0.65, 0.65, 0.85])
    assert e.sets[e.best] == (0,) and e.next == -1
    assert ct.enumerate_candidates(row, [0], 0.5, z=np.zeros((1, 3)), tie="max").next == -1


def _sample_run():
    ct.CHECKED.clear()
    ct.CHECKED.update({"theorem1": 3, "theorem1:items": 12})
    ct.MEASURED["dp_gap"].clear()
    ct.MEASURED["dp_gap"][3] = dict(worlds=10, gap_sum=0.5, suboptimal=4, worst=0.2, optimum_sum=5.0, nodes=4,
                                    worst_world=dict(mu=[0.1, 0.2, 0.3], sd=[1, 1, 1], cost=[0.1, 0.2, 0.3],
                                                     lam=1.0, rule=0.1, optimum=0.3))
    return report.collect(profile="ci", seconds=1.0, failed=["tests/test_theorems.py::test_pruning"], examples=30)


def test_the_report_lists_every_property_and_the_gap(tmp_path):
    saved = dict(ct.CHECKED), {k: dict(v) if isinstance(v, dict) else list(v) for k, v in ct.MEASURED.items()}
    try:
        data = _sample_run()
        text = report.render(data)
        for p in ct.PROPERTIES:
            assert f"`{p.name}`" in text
        assert "| `theorem1` |" in text and "| 3 | 12 |" in text
        assert "test_pruning" in text and "| 3 | 10 | 4 | 0.05000 | 0.20000 | 40.0% |" in text
        path = report.write(tmp_path / "v.md", profile="ci", seconds=1.0, failed=[], examples=30)
        assert json.loads(path.with_suffix(".json").read_text())["checked"]["theorem1"] == 3
        out = subprocess.run([sys.executable, "-m", "cascjax.testing.report", str(path.with_suffix(".json"))],
                             capture_output=True, text=True, check=True).stdout
        assert out == path.read_text()
    finally:
        ct.CHECKED.clear()
        ct.CHECKED.update(saved[0])
        ct.MEASURED.clear()
        ct.MEASURED.update(saved[1])


def test_bad_reference_options_are_refused():
    inst = ct.random_instance(jax.random.key(0), 4, 3)
    try:
        ct.check_pruning(inst, [0.5], reference="nope")
    except ValueError as e:
        assert "unknown reference 'nope'" in str(e)
    else:
        raise AssertionError("no error")
    assert isinstance(inst.dataset, cascjax.Dataset)


def test_reports_of_sessions_side_by_side_merge():
    a = dict(profile="thorough", max_examples=10_000, seconds=10.0, failed=[], jax="x", python="3", machine="m",
             devices=["cpu"], checked={"pruning": 2, "pruning:items": 10}, counterexamples=[],
             dp_gap={"3": dict(worlds=4, gap_sum=0.4, suboptimal=1, worst=0.3, optimum_sum=2.0, nodes=4,
                               worst_world=None)})
    b = dict(a, seconds=20.0, failed=["t::x"], checked={"pruning": 1, "theorem1": 5},
             dp_gap={"3": dict(worlds=6, gap_sum=0.6, suboptimal=2, worst=0.5, optimum_sum=3.0, nodes=4,
                               worst_world=dict(mu=[1.0], sd=[0.5], cost=[0.1], lam=1.0, rule=0.2, optimum=0.7))})
    m = report.merge([a, b])
    assert m["checked"] == {"pruning": 3, "pruning:items": 10, "theorem1": 5}
    assert m["dp_gap"]["3"]["worlds"] == 10 and m["dp_gap"]["3"]["worst"] == 0.5
    assert m["dp_gap"]["3"]["worst_world"]["optimum"] == 0.7 and m["failed"] == ["t::x"]
    assert m["seconds"] == 20.0 and m["sessions"] == [10.0, 20.0]
    assert "2 pytest sessions side by side" in report.render(m)


def test_checks_refuse_to_run_in_float32():
    """Without x64 the float64 comparisons would fail on rounding alone: the checks say so instead."""
    jax.config.update("jax_enable_x64", False)
    try:
        for check in (ct.check_theorem1, ct.check_depth_one, ct.check_pruning, ct.check_optimal_policy):
            with pytest.raises(cascjax.CascjaxError, match=r"enable x64 first, jax.config.update"):
                check(None, [0.1])
    finally:
        jax.config.update("jax_enable_x64", True)
