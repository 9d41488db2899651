"""PerfGain, CostSave, ParetoDist and the oracle gap against plain loops, their fixed points, and their columns in
``cascjax frontier``'s summary.csv."""

import numpy as np
import pandas as pd
from hypothesis import given, strategies as st

import cascjax


@st.composite
def pools(draw):
    n, m = draw(st.integers(1, 8)), draw(st.integers(2, 4))
    cells = st.lists(st.integers(0, 4), min_size=n * m, max_size=n * m)
    quality = np.array(draw(cells), float).reshape(n, m) / 4
    cost = np.array(draw(st.lists(st.integers(1, 8), min_size=n * m, max_size=n * m)), float).reshape(n, m)
    return cascjax.Dataset.from_arrays(quality, cost, sort=False)


@given(pools())
def test_the_oracle_is_a_loop_over_queries(ds):
    q, c = np.asarray(ds.quality, np.float64), np.asarray(ds.cost, np.float64)
    spent = got = 0.0
    for i in range(q.shape[0]):
        best = max(q[i])
        spent += min(c[i, m] for m in range(q.shape[1]) if q[i, m] == best)
        got += best
    cost, quality = cascjax.oracle(ds)
    assert np.isclose(cost, spent / q.shape[0]) and np.isclose(quality, got / q.shape[0])
    mc, mq = cascjax.model_points(ds)
    assert quality >= mq.max() - 1e-12  # no single model beats the oracle
    assert cascjax.oracle_gap((mc, mq), ds) >= -1e-9


@given(pools())
def test_the_models_own_hull_gains_nothing_saves_nothing_and_is_its_own_frontier(ds):
    mc, mq = cascjax.model_points(ds)
    hull = cascjax.model_hull(ds)
    points = (mc[hull], mq[hull])
    assert cascjax.perf_gain(points, ds) == 0.0
    assert abs(cascjax.cost_save(points, ds)) < 1e-12
    assert cascjax.pareto_dist(points, points) == 0.0
    assert cascjax.pareto_dist((mc, mq), points) >= 0.0


def test_cost_save_and_pareto_dist_by_hand():
    ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 4]] * 4)   # models (1, .5), (4, .75)
    assert np.isclose(cascjax.cost_save(([1.0, 2.0, 3.0], [0.5, 0.7, 0.8]), ds), 1 - 2.5 / 4)   # 0.75 at 2.5
    assert np.isnan(cascjax.cost_save(([1.0, 2.0], [0.5, 0.7]), ds))                  # never reached
    # A point above the frontier counts 0, a point below it its gap; beyond the frontier's ends it is flat.
    got = cascjax.pareto_dist(([0.5, 1.5, 9.0], [0.9, 0.55, 0.6]), ([1.0, 2.0], [0.5, 0.7]))
    assert np.isclose(got, 100 * (0.0 + 0.05 + 0.1) / 3)


def test_frontier_writes_the_benchmark_metrics(tmp_path):
    from cascjax.cli import main

    assert main(["frontier", "--strategy", "routing,threshold-cascade", "--lambdas", "16", "--quiet",
                 "--out", str(tmp_path)]) == 0
    summary = pd.read_csv(tmp_path / "summary.csv")
    rows = summary[summary.kind != "model"]
    for column in ("perf_gain", "cost_save", "pareto_dist", "oracle_gap"):
        assert rows[column].notna().all() or column == "cost_save", column
    baseline = rows[rows.kind == "baseline"].iloc[0]
    assert baseline.perf_gain == 0.0 and abs(baseline.cost_save) < 1e-9
    assert (rows.pareto_dist >= 0).all() and (rows.oracle_gap > 0).all()
