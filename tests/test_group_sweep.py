"""Sums per group of queries inside the kernels (``cascjax._sweep.group_sweep``, the engine of ``cascjax.grid``):
each group's means against the section-4 loop oracle on that group's queries alone, for every strategy and
route (routing's direct grid and event route, the cascade's direct grid and stop intervals), chunk sizes that
split the groups, and queries in several groups or in none."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax._errors import CascjaxError
from cascjax._supermodels import normal_points
from cascjax._sweep import group_sweep

from . import oracle
from ._instances import STRATEGIES, instance, lambdas, options as sweep_options

fewer = settings(max_examples=max(6, settings.default.max_examples // 3))


@st.composite
def cases(draw):
    ds, est = instance(draw, 9)
    n, m = ds.n_queries, ds.n_models
    strategy = draw(st.sampled_from(STRATEGIES))
    depth = 1 if strategy == "routing" else draw(st.integers(1, m))
    # Few λ (the direct grids) or many (routing's event route from 32, the cascade's stop intervals from 4).
    lam = lambdas(draw, strategy)
    g = draw(st.integers(1, 5))
    groups = np.array(draw(st.lists(st.booleans(), min_size=n * g, max_size=n * g)), np.int8).reshape(n, g)
    groups[draw(st.integers(0, n - 1)), :] = 1  # no group is empty
    return ds, est, strategy, depth, draw(st.integers(1, 3)), lam, groups, draw(st.sampled_from([None, 1, 2, 4]))


@given(cases(), st.sampled_from(["min", "max"]))
@fewer
def test_each_group_equals_the_loop_oracle_on_its_queries(case, tie):
    ds, est, strategy, depth, k, lam, groups, chunk = case
    options = sweep_options(strategy, depth, k)
    cost, quality = group_sweep(ds, est, lam, groups, strategy, tie, chunk_size=chunk, **options)
    assert cost.shape == quality.shape == (lam.shape[0], groups.shape[1])
    loop_est = dict(mu_ante=est.quality_ante, mu_post=est.quality_post, sd_ante=est.sd_ante, sd_post=est.sd_post,
                    c_ante=est.cost_ante, c_post=est.cost_post)
    z = np.asarray(normal_points(k, ds.n_models))
    for g in range(groups.shape[1]):
        rows = np.flatnonzero(groups[:, g])
        part = {key: np.asarray(v)[rows] for key, v in loop_est.items()}
        want_c, want_q, _, _ = oracle.reference_sweep(np.asarray(ds.quality)[rows], np.asarray(ds.cost)[rows], part,
                                                      lam, strategy, tie=tie, z=z, **options_of(options))
        np.testing.assert_allclose(cost[:, g], want_c, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(quality[:, g], want_q, rtol=1e-12, atol=1e-15)


def options_of(options: dict) -> dict:
    """The oracle takes max_depth but not samples (its points are ``z``)."""
    return {k: v for k, v in options.items() if k != "samples"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_on_the_example_each_group_equals_a_sweep_of_its_queries(strategy):
    """float32, a query bucket with padding, groups that overlap (two splits' fit and test rows)."""
    ds = cascjax.load_example().take(np.arange(1500))
    est = cascjax.noisy_estimates(ds, __import__("jax").random.key(3), "medium")
    options = {} if strategy == "routing" else dict(max_depth=2)
    lam = cascjax.threshold_grid(est, 12, max_depth=2) if strategy == "threshold_cascade" else \
        cascjax.lambda_grid(est, 40)
    groups = np.zeros((ds.n_queries, 4), np.int8)
    for s in range(2):
        fit, test = ds.split_indices(0.2, 42 + s)
        groups[fit, 2 * s], groups[test, 2 * s + 1] = 1, 1
    cost, quality = group_sweep(ds, est, lam, groups, strategy, **options)
    for g in range(4):
        rows = np.flatnonzero(groups[:, g])
        curve = cascjax.sweep(ds.take(rows), est.take(rows), lam, strategy, **options)
        np.testing.assert_allclose(cost[:, g], curve.cost, rtol=2e-6)
        np.testing.assert_allclose(quality[:, g], curve.quality, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("groups,message", [
    (np.ones((3, 2)), r"\[N = 4, G\]"),
    (np.full((4, 2), 2), "0/1"),
    (np.array([[1, 0]] * 4), "group 1 holds no query"),
])
def test_bad_groups(groups, message):
    ds = cascjax.Dataset.from_arrays([[0, 1], [1, 1], [0, 1], [1, 0]], [[1, 2]] * 4)
    with pytest.raises(CascjaxError, match=message):
        group_sweep(ds, cascjax.perfect_estimates(ds), [0.0, 1.0], groups)


def test_group_counts_of_a_bucket_share_their_programs():
    """The group axis is padded to a shape bucket (empty groups, cut off): 3 groups after 4 compile nothing."""
    from cascjax._compile import programs

    ds = cascjax.synthetic(6, n_queries=90, n_models=3)
    est = cascjax.perfect_estimates(ds)
    groups = (np.arange(90)[:, None] % 4 == np.arange(4)).astype(np.int8)
    four = group_sweep(ds, est, [0.0, 0.5, 2.0], groups, "cascade", max_depth=2, samples=4)
    before = programs()["total"]
    three = group_sweep(ds, est, [0.0, 0.5, 2.0], groups[:, :3], "cascade", max_depth=2, samples=4)
    assert programs()["total"] == before
    np.testing.assert_allclose(three[0], four[0][:, :3], rtol=1e-12)
