"""Supermodel tables and expected maxima against the loop oracle and closed forms (DESIGN section 3)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from cascjax import CascjaxError
from cascjax._supermodels import (MAX_CANDIDATES, allowed, candidate_cost, candidate_table, check_depth, expected_max,
                                  n_candidates, normal_points, _relative, _sample_means)

from . import oracle


@pytest.mark.parametrize("m", range(1, 8))
def test_tables_list_every_supermodel_in_lexicographic_order(m):
    for depth in range(1, m + 1):
        table = candidate_table(m, depth)
        rows = [tuple(np.flatnonzero(r)) for r in table.members]
        assert rows == oracle.candidates(m, depth)
        assert table.n_candidates == n_candidates(m, depth) == len(rows)
        np.testing.assert_array_equal(table.size, [len(r) for r in rows])
        np.testing.assert_array_equal(table.mask, [sum(1 << i for i in r) for r in rows])
    assert candidate_table(m) is candidate_table(m, m)  # default depth M, cached
    with pytest.raises(ValueError):
        candidate_table(m).members[0, 0] = True  # static structure is read-only


@pytest.mark.parametrize("depth", [0, -1, 9, 2.0, "3"])
def test_bad_depth(depth):
    with pytest.raises(CascjaxError, match="max_depth must be an integer in 1..8"):
        check_depth(8, depth)


def test_too_many_candidates_names_the_depth_that_fits():
    assert n_candidates(20, 20) > MAX_CANDIDATES
    with pytest.raises(CascjaxError, match=r"20 models with max_depth=20 give 1,048,575 candidate supermodels.*"
                                           r"set max_depth \(at most 6 for 20 models: 60,459 candidates\)"):
        candidate_table(20)
    assert candidate_table(20, 6).n_candidates == 60_459


@pytest.mark.parametrize("k", [0, -3, 2.5])
def test_bad_sample_count(k):
    with pytest.raises(CascjaxError, match="samples"):
        normal_points(k, 3)


@pytest.mark.parametrize("k", [1, 2, 7, 64])
def test_shared_points_are_seeded_and_centred(k):
    z = normal_points(k, 5)
    assert z.shape == (k, 5)
    np.testing.assert_array_equal(z, normal_points(k, 5))
    np.testing.assert_allclose(jnp.sum(z, axis=0), 0.0, atol=1e-12)
    assert not np.array_equal(normal_points(8, 5, seed=1), normal_points(8, 5))


@st.composite
def problems(draw, covariance=None):
    m = draw(st.integers(1, 5))
    depth = draw(st.integers(1, m))
    k = draw(st.integers(1, 9))
    vals = st.integers(-8, 8).map(lambda v: v / 4)
    mu = np.array(draw(st.lists(vals, min_size=m, max_size=m)))
    if covariance is None:
        covariance = draw(st.booleans())
    if covariance:
        raw = np.array(draw(st.lists(vals, min_size=m * m, max_size=m * m))).reshape(m, m)
        scale = np.tril(raw)
    else:
        scale = np.abs(np.array(draw(st.lists(vals, min_size=m, max_size=m))))
    seed = draw(st.integers(0, 3))
    return mu, scale, depth, np.asarray(normal_points(k, m, seed))


@given(problems())
def test_expected_max_matches_the_definition(problem):
    mu, scale, depth, z = problem
    q = np.asarray(expected_max(jnp.asarray(mu), jnp.asarray(scale), jnp.asarray(z), depth))
    ref = [oracle.reference_expected_max(mu, scale, z, t) for t in oracle.candidates(len(mu), depth)]
    np.testing.assert_allclose(q, ref, rtol=1e-12, atol=1e-12)


@given(problems())
def test_exact_cases(problem):
    mu, scale, depth, z = problem
    table = candidate_table(len(mu), depth)
    q = np.asarray(expected_max(jnp.asarray(mu), jnp.asarray(scale), jnp.asarray(z), depth))
    singles = table.size == 1
    np.testing.assert_array_equal(q[singles], mu[np.argmax(table.members[singles], axis=1)])
    # No deviation: Q = max μ exactly, also with one set of points for everything.
    q0 = np.asarray(expected_max(jnp.asarray(mu), jnp.zeros_like(jnp.asarray(scale)), jnp.asarray(z), depth))
    np.testing.assert_array_equal(q0, np.where(table.members, mu[None], -np.inf).max(axis=1))


def test_diagonal_factor_equals_independent_deviations():
    mu = jnp.array([0.2, 0.5, 0.4, 0.1])
    sd = jnp.array([0.3, 0.0, 0.2, 0.5])
    z = normal_points(16, 4)
    np.testing.assert_allclose(expected_max(mu, sd, z), expected_max(mu, jnp.diag(sd), z), rtol=1e-14)


@pytest.mark.parametrize("rho", [0.0, 0.6, -0.4])
def test_monte_carlo_converges_to_the_closed_form(rho):
    """Two Gaussians: E[max] = μ1 Φ(α) + μ2 Φ(−α) + θ φ(α), θ² = σ1² + σ2² − 2ρσ1σ2, α = (μ1 − μ2)/θ."""
    mu, sd = np.array([0.3, 0.5]), np.array([0.4, 0.25])
    cov = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    k = 200_000
    q = expected_max(jnp.asarray(mu), jnp.asarray(np.linalg.cholesky(cov)), normal_points(k, 2), 2)
    theta = math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    alpha = (mu[0] - mu[1]) / theta
    phi = math.exp(-alpha ** 2 / 2) / math.sqrt(2 * math.pi)
    big_phi = 0.5 * (1 + math.erf(alpha / math.sqrt(2)))
    exact = mu[0] * big_phi + mu[1] * (1 - big_phi) + theta * phi
    # Rows: (0,), (0, 1), (1,). A max has sd below that of its largest member: 5 standard errors.
    assert abs(float(q[1]) - exact) < 5 * sd.max() / math.sqrt(k)
    np.testing.assert_array_equal(np.asarray(q)[[0, 2]], mu)


def test_jit_and_vmap_over_queries_equal_one_at_a_time():
    key = jax.random.key(3)
    mu = jax.random.uniform(key, (6, 4))
    sd = jax.random.uniform(jax.random.fold_in(key, 1), (6, 4)) * (jnp.arange(6) % 2)[:, None]
    z = normal_points(8, 4)
    batched = jax.jit(jax.vmap(lambda a, b: expected_max(a, b, z, 3)))(mu, sd)
    for n in range(6):
        np.testing.assert_allclose(batched[n], expected_max(mu[n], sd[n], z, 3), rtol=1e-14)


@given(st.integers(1, 6).flatmap(lambda m: st.tuples(st.integers(1, m), st.lists(
    st.integers(0, 64).map(lambda v: v / 8), min_size=m, max_size=m))))
def test_candidate_cost_is_the_sum_over_members(args):
    depth, c = args
    ref = [sum(c[i] for i in t) for t in oracle.candidates(len(c), depth)]
    np.testing.assert_allclose(candidate_cost(jnp.asarray(c), depth), ref, rtol=1e-15)


@pytest.mark.parametrize("m,depth", [(1, 1), (3, 3), (4, 2), (5, 5), (6, 3)])
@pytest.mark.parametrize("kind,force_order,greedy", [("routing", False, False), ("cascade", False, False),
                                                     ("cascade_routing", False, False),
                                                     ("cascade_routing", True, False),
                                                     ("cascade_routing", False, True),
                                                     ("cascade_routing", True, True)])
def test_candidate_sets_per_state(m, depth, kind, force_order, greedy):
    """Every state R of at most max_depth models (cascades: the prefixes), traced under jit and vmap."""
    table = candidate_table(m, depth)
    if kind == "cascade":
        states = [(1 << j) - 1 for j in range(depth + 1)]
    else:
        states = [r for r in range(1 << m) if bin(r).count("1") <= depth]
    steps = [bin(r).count("1") for r in states]
    masks = jax.jit(jax.vmap(lambda r, j: allowed(table, r, kind, j, force_order=force_order, greedy=greedy)))(
        jnp.asarray(states), jnp.asarray(steps))
    for r, j, got in zip(states, steps, np.asarray(masks)):
        np.testing.assert_array_equal(np.broadcast_to(got, (table.n_candidates,)),
                                      oracle.allowed(m, depth, r, kind, j, force_order, greedy), err_msg=f"R={r:b}")


def test_unknown_candidate_kind():
    with pytest.raises(CascjaxError, match="unknown candidate kind 'cascades'"):
        allowed(candidate_table(3), 0, "cascades", 0)


@pytest.mark.parametrize("free,extra", [(1, 1), (4, 0), (4, 2), (5, 5), (6, 3), (9, 3)])
def test_relative_tables_are_in_level_order_with_their_lexicographic_rank(free, extra):
    """Rows by size, then lexicographic (the order the level-by-level maxima come out in); ``lex`` the row's rank
    among the sorted tuples; ``plan`` builds each level from the previous level's rows; ``drop`` removes one
    member."""
    rel = _relative(free, extra)
    rows = [tuple(np.flatnonzero(r)) for r in rel.members]
    assert rows == sorted(rows, key=lambda r: (len(r), r))
    assert len(rows) == sum(math.comb(free, d) for d in range(extra + 1))
    assert [rows[i] for i in np.argsort(rel.lex)] == sorted(rows)
    start = 1
    for d, (parents, added) in enumerate(rel.plan, start=1):
        previous = [r for r in rows if len(r) == d - 1]
        level = rows[start:start + len(parents)]
        assert level == [previous[p] + (a,) for p, a in zip(parents, added)]
        start += len(parents)
    for r, drops in zip(rows, rel.drop):
        assert sorted(rows[j] for j in drops if j >= 0) == sorted(r[:i] + r[i + 1:] for i in range(len(r)))


@given(st.integers(0, 2**31 - 1), st.integers(2, 6), st.integers(1, 4), st.integers(1, 5), st.integers(1, 6))
@settings(max_examples=max(3, settings.default.max_examples // 5), deadline=None)  # a compilation per shape
def test_sample_means_match_a_numpy_loop(seed, m, n_run, k, b):
    """mean_k max over R ∪ U for every row U of a state's relative table, [S, B], against a loop; with a traced
    ``levels``, the rows deeper than it come back as zeros."""
    rng = np.random.default_rng(seed)
    n_run = min(n_run, m - 1)
    ran = np.zeros((b, m), bool)
    for row in ran:
        row[rng.choice(m, n_run, replace=False)] = True
    comp = np.argsort(ran, axis=1, kind="stable")[:, :m - n_run]
    y = rng.normal(size=(b, k, m))
    extra = m - n_run
    rel = _relative(m - n_run, extra)
    levels = int(rng.integers(0, extra + 1))
    got = np.asarray(_sample_means(rel, jnp.asarray(ran), jnp.asarray(y), jnp.asarray(comp)))
    cut = np.asarray(jax.jit(lambda n: _sample_means(rel, jnp.asarray(ran), jnp.asarray(y), jnp.asarray(comp),
                                                     n))(levels))
    assert got.shape == (rel.members.shape[0], b)
    for s, members in enumerate(rel.members):
        for j in range(b):
            models = list(np.flatnonzero(ran[j])) + list(comp[j][members])
            want = np.mean([max(y[j, i, mm] for mm in models) for i in range(k)])
            np.testing.assert_allclose(got[s, j], want, rtol=1e-12)
            np.testing.assert_allclose(cut[s, j], want if rel.size[s] <= levels else 0.0, rtol=1e-12)
