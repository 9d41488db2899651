"""Metrics: single-model hull, the paper's AUC, AIQ and quality at a budget, against hand-computed values."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cascjax
from cascjax import CascjaxError

BOUNDS = dict(cost_range=(0.0, 1.0), q_floor=0.0)


@pytest.mark.parametrize("cost, quality, expected", [
    ([1.0], [0.8], 40.0),                     # prefixed with (0, floor): a triangle
    ([-1.0, 2.0], [0.6, 0.6], 60.0),          # cut at both ends
    ([0.5], [1.0], 75.0),                     # prefix, then flat to c_max
    ([0.0, 0.5, 1.0], [0.2, 0.6, 0.6], 50.0),
    ([0.5, 0.0, 1.0, 0.5], [0.6, 0.2, 0.6, 0.6], 50.0),  # unsorted, with a duplicate point
    ([0.0, 2.0], [0.0, 1.0], 25.0),            # cut at c_max by interpolation
])
def test_auc_by_hand(cost, quality, expected):
    assert cascjax.auc((np.array(cost), np.array(quality)), **BOUNDS) == pytest.approx(expected)


def test_auc_uses_the_pool():
    ds = cascjax.Dataset.from_arrays([[0.0, 1.0], [1.0, 1.0]], [[1.0, 3.0], [1.0, 3.0]], models=["a", "b"])
    # pool: c_min = 1, c_max = 3, floor = min mean quality = 0.5
    assert cascjax.auc((np.array([3.0]), np.array([1.0])), ds) == pytest.approx(75.0)
    hull = cascjax.model_hull(ds)
    mc, mq = cascjax.model_points(ds)
    assert cascjax.auc((mc[hull], mq[hull]), ds) == pytest.approx(75.0)
    assert cascjax.auc(cascjax.Curve(np.zeros(1), np.array([3.0]), np.array([1.0])), ds) == pytest.approx(75.0)


def _dense_auc(x, y, c_min, c_max, floor):
    """Oracle: sample the extended curve densely and average (the curve is made monotone in x first)."""
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    if x[0] > c_min:
        x, y = np.r_[c_min, x], np.r_[floor, y]
    grid = np.linspace(c_min, c_max, 200_001)
    # np.interp takes the right-most y at duplicate x on the left side; vertical jumps have no area
    vals = np.interp(grid, x, y, right=y[-1])
    return 100.0 * np.trapezoid(vals, grid) / (c_max - c_min)


@given(st.lists(st.tuples(st.floats(-0.5, 1.5), st.floats(0, 1)), min_size=1, max_size=12, unique_by=lambda t: t[0]))
def test_auc_matches_dense_integration(points):
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    got = cascjax.auc((x, y), cost_range=(0.0, 1.0), q_floor=0.1)
    assert got == pytest.approx(_dense_auc(x, y, 0.0, 1.0, 0.1), abs=1e-3)


def _hull_oracle(c, q):
    on = []
    for i in range(len(c)):
        if any(c[j] < c[i] and q[j] >= q[i] for j in range(len(c))):
            continue
        below = False
        for j in range(len(c)):
            for k in range(len(c)):
                if c[j] < c[i] < c[k]:
                    t = (c[i] - c[j]) / (c[k] - c[j])
                    if q[j] + t * (q[k] - q[j]) >= q[i]:
                        below = True
        if not below:
            on.append(i)
    return sorted(on, key=lambda i: c[i])


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=2, max_size=10,
                unique_by=(lambda t: t[0], lambda t: t[1])))
def test_model_hull_matches_brute_force(points):
    c = np.array([p[0] for p in points], float)
    q = np.array([p[1] for p in points], float)
    assert list(cascjax.model_hull((c, q))) == _hull_oracle(c, q)


def test_model_hull_on_the_example():
    ds = cascjax.load_example()
    # mistral-7b is dominated by llama-3.1-8b, qwen1.5-72b by llama-3.1-70b (see the data README)
    names = [ds.models[i] for i in cascjax.model_hull(ds)]
    assert names == ["llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "gemini-1.5-pro-002"]


def test_aiq_is_the_auc_of_the_hull():
    x = np.array([0.0, 0.4, 0.5, 1.0])
    y = np.array([0.0, 0.8, 0.5, 0.9])
    auc = cascjax.auc((x, y), **BOUNDS)
    aiq = cascjax.aiq((x, y), **BOUNDS)
    assert aiq > auc
    h = np.array([0, 1, 3])
    assert aiq == pytest.approx(cascjax.auc((x[h], y[h]), **BOUNDS))


def test_quality_at():
    x = np.array([1.0, 2.0, 2.0, 4.0])
    y = np.array([0.2, 0.4, 0.6, 0.8])
    got = cascjax.quality_at((x, y), [0.5, 1.0, 1.5, 2.0, 3.0, 9.0])
    np.testing.assert_allclose(got, [np.nan, 0.2, 0.4, 0.6, 0.7, 0.8])


@pytest.mark.parametrize("call, message", [
    (lambda: cascjax.auc((np.array([1.0]), np.array([1.0]))), "give a dataset"),
    (lambda: cascjax.auc((np.array([1.0]), np.array([1.0])), cost_range=(1, 1), q_floor=0), "cost range"),
    (lambda: cascjax.auc((np.array([1.0, 2.0]), np.array([1.0])), **BOUNDS), "matching"),
    (lambda: cascjax.auc((np.array([np.nan]), np.array([1.0])), **BOUNDS), "no finite points"),
])
def test_metric_errors(call, message):
    with pytest.raises(CascjaxError, match=message):
        call()
