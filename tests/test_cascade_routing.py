"""Cascade routing against the section-4 loop oracle (same shared normal points), chunks and rooms, the exact
path. Its identities (pruning, depth one = routing, prefixes = the cascade, perfect estimates = routing) are
properties of the theorem suite, tests/test_theorems.py."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax._cascade_routing import _chunk, _Room, cascade_routing_sweep, one_body
from cascjax._decide import tie_rtol
from cascjax._supermodels import normal_points

from . import oracle
from .test_estimates import random_covariances

#: The thorough profile (HYPOTHESIS_PROFILE=thorough) also runs the cases the default run leaves to other tests.
THOROUGH = settings.default.max_examples >= 1000

# Fixed shapes (N, L, M = 4) keep the number of compilations small: each (depth, options, tie) compiles once.
N_QUERIES, N_LAMBDAS, N_MODELS = 5, 4, 4
#: Examples per property: a tenth of the profile's, at least 3 (every example of a new option set compiles the
#: kernel; the theorem suite checks the same kernel on fixed option sets with many more examples).
fewer = settings(max_examples=max(3, settings.default.max_examples // 10))


@pytest.fixture(autouse=True)
def _fresh_compilation_cache():
    """Compiled kernels of earlier tests are dropped: many variants exceed the OS's memory-map limit."""
    jax.clear_caches()


@st.composite
def cases(draw, deviation=None):
    n, m = N_QUERIES, N_MODELS

    def arr(lo, hi, denom):
        ints = st.integers(int(lo * denom), int(hi * denom))
        return np.array(draw(st.lists(ints, min_size=n * m, max_size=n * m)), float).reshape(n, m) / denom

    quality, cost = arr(0, 1, 4), arr(0, 1, 8)
    deviation = draw(st.booleans()) if deviation is None else deviation
    sd = arr(0, 1, 4) if deviation else np.zeros((n, m))
    est = cascjax.Estimates(*(jnp.asarray(a) for a in (arr(0, 1, 4), arr(0, 1, 4), sd, np.zeros((n, m)),
                                                       arr(0, 1, 8), cost)))
    depth = draw(st.integers(1, m))
    dyadic = st.integers(0, 16).map(lambda v: v / 8)
    if draw(st.booleans()):
        lam = np.array(draw(st.lists(dyadic, min_size=N_LAMBDAS, max_size=N_LAMBDAS)))
    else:
        lam = np.array(draw(st.lists(dyadic, min_size=N_LAMBDAS * depth, max_size=N_LAMBDAS * depth)))
        lam = lam.reshape(N_LAMBDAS, depth)
    options = dict(force_order=draw(st.booleans()), greedy=draw(st.booleans()), prune=draw(st.booleans()))
    return cascjax.Dataset.from_arrays(quality, cost, sort=False), est, depth, draw(st.integers(1, 3)), lam, options


def _oracle(ds, est, lam, depth, k, tie, kind="cascade_routing", **options):
    options.pop("prune", None)  # pruning never changes a decision: the oracle has none
    loop_est = dict(mu_ante=est.quality_ante, mu_post=est.quality_post, sd_ante=est.sd_ante,
                    sd_post=est.sd_post, c_ante=est.cost_ante, c_post=est.cost_post)
    z = np.asarray(normal_points(k, ds.n_models))
    factor = None if est.covariance is None else np.asarray(cascjax.covariance_factors(est.covariance))
    return oracle.reference_sweep(ds.quality, ds.cost, loop_est, lam, kind, tie=tie, max_depth=depth, z=z, factor=factor,
                           **options)


def _assert_matches(curve, expected):
    c, q, ran, answered = expected
    np.testing.assert_allclose(curve.cost, c, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.quality, q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(curve.ran, ran, rtol=1e-12)
    np.testing.assert_allclose(curve.answered, answered, atol=1e-12)


@pytest.mark.parametrize("tie", ["min", "max"])
@given(cases(), st.integers(0, 2**31), st.booleans())
@fewer
def test_matches_the_loop_oracle(tie, case, seed, correlated):
    """Every option, σ = 0 and σ > 0 (same shared points), scalar and per-step λ, MIN and MAX; or a covariance
    per run-pattern (random PSD, some singular), where state R draws L(R) z, L Lᵀ = Σ(R)."""
    ds, est, depth, k, lam, options = case
    if correlated:
        est = est._replace(covariance=jnp.asarray(random_covariances(seed, ds.n_models)))
    curve = cascjax.sweep(ds, est, lam, "cascade_routing", tie=tie, max_depth=depth, samples=k, **options)
    _assert_matches(curve, _oracle(ds, est, lam, depth, k, tie, **options))


@pytest.mark.parametrize("tie", ["min", "max"])
@given(cases(), st.data())
@fewer
def test_one_lambda_row_decides_as_the_shortlist_does(tie, case, data):
    """A sweep of one λ row decides every state at that λ on all its candidates, without a shortlist: every
    query's choice and cost are those of that row in a sweep of several rows (ties on purpose); the means
    agree up to the rounding of sums over differently shaped arrays."""
    ds, est, depth, k, lam, options = case
    row = data.draw(st.integers(0, lam.shape[0] - 1))
    many = cascjax.sweep(ds, est, lam, "cascade_routing", tie=tie, max_depth=depth, samples=k, return_choices=True,
                         **options)
    one = cascjax.sweep(ds, est, lam[row:row + 1], "cascade_routing", tie=tie, max_depth=depth, samples=k,
                        return_choices=True, **options)
    for field in ("choice", "query_cost"):
        np.testing.assert_array_equal(np.asarray(getattr(one, field))[0], np.asarray(getattr(many, field))[row],
                                      err_msg=field)
    for field in ("cost", "quality", "ran", "answered"):
        np.testing.assert_allclose(np.asarray(getattr(one, field))[0], np.asarray(getattr(many, field))[row],
                                   rtol=1e-12, atol=1e-15, err_msg=field)


@given(cases())
@fewer
def test_no_deviation_is_zero_sigma(case):
    ds, est, depth, k, lam, options = case
    a = cascjax.sweep(ds, est, lam, "cascade_routing", max_depth=depth, samples=k, no_deviation=True, **options)
    _assert_matches(a, _oracle(ds, est, lam, depth, k, "min", no_deviation=True, **options))


@functools.lru_cache(maxsize=None)
def _chunk_program(one, depth, force_order=False, greedy=False, prune=True):
    room = _Room(N_LAMBDAS, N_QUERIES * N_LAMBDAS, 2 ** N_MODELS + 1)  # never overflows
    return jax.jit(functools.partial(_chunk, depth=depth, rtol=tie_rtol(jnp.float64), force_order=force_order,
                                     greedy=greedy, prune=prune, room=room, prefix=False, one=one))


@pytest.mark.parametrize("depth, n_lam, options", [(4, N_LAMBDAS, ()), (3, 1, (("force_order", True),)),
                                                   (4, N_LAMBDAS, (("greedy", True),)), (2, 1, (("prune", False),))])
@given(cases(), st.data(), st.booleans())
@fewer
def test_one_step_body_decides_as_a_body_per_table(depth, n_lam, options, case, data, tie_max):
    """Small tables run every step in one body on step 0's table (``one_body``), larger ones a body per table
    size: the same final states, to the bit, at one λ row and at several (λ = 0 and ties on purpose)."""
    ds, est, _, _, _, _ = case
    assert one_body(N_MODELS, depth, dict(options).get("greedy", False), N_QUERIES)
    lam = jnp.asarray(data.draw(st.lists(st.integers(0, 16).map(lambda v: v / 8), min_size=n_lam * depth,
                                         max_size=n_lam * depth)), jnp.float64).reshape(n_lam, depth)
    args = (ds.quality, ds.cost, tuple(est)[:6], lam, normal_points(3, N_MODELS), None)
    one, flags = _chunk_program(True, depth, **dict(options))(*args, tie_max=tie_max)
    per_table, flags_per_table = _chunk_program(False, depth, **dict(options))(*args, tie_max=tie_max)
    assert not np.any(flags) and not np.any(flags_per_table)
    np.testing.assert_array_equal(one, per_table)


def test_room_and_chunks_do_not_change_results():
    """Overflowing rooms (rerun with more) and chunk sizes that do and do not divide N give the same curve."""
    rng = np.random.default_rng(7)
    n, m, depth = 7, 4, 3
    quality, cost = rng.integers(0, 5, (n, m)) / 4, rng.integers(1, 9, (n, m)) / 8
    est = tuple(jnp.asarray(a) for a in (rng.random((n, m)), rng.random((n, m)), rng.random((n, m)) / 4,
                                         np.zeros((n, m)), cost, cost))
    lam = jnp.asarray(rng.choice([0.0, 0.05, 0.2, 0.6, 2.0], (6, depth)))
    z = normal_points(4, m)
    kw = dict(depth=depth, rtol=tie_rtol(jnp.float64), tie_max=False, return_choices=True, force_order=False,
              greedy=False, prune=True)
    base = cascade_routing_sweep(jnp.asarray(quality), jnp.asarray(cost), est, lam, z, plan=n, **kw)
    # (other chunk sizes without overflow: tests/test_scale.py; here also in the thorough profile)
    for chunk, room in [(2, _Room(1, 1, 1))] + ([(3, None)] if THOROUGH else []):
        other = cascade_routing_sweep(jnp.asarray(quality), jnp.asarray(cost), est, lam, z, plan=chunk, room=room,
                                      **kw)
        np.testing.assert_array_equal(other.choice, base.choice)
        np.testing.assert_allclose(other.cost, base.cost, rtol=1e-12)


def test_the_example():
    """Per-step constants equal the scalar; chunking by memory; the curve's bookkeeping; beats routing."""
    ds = cascjax.load_example().take(np.arange(600))
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    lam = cascjax.lambda_grid(est, 16)
    curve = cascjax.sweep(ds, est, lam, "cascade_routing", max_depth=3, return_choices=True)
    per_step = cascjax.sweep(ds, est, np.repeat(lam[:, None], 3, axis=1), "cascade_routing", max_depth=3,
                             chunk_size=250, return_choices=True)  # 250 does not divide 600
    small = cascjax.sweep(ds, est, lam, "cascade_routing", max_depth=3, memory=1 << 22, return_choices=True)
    for other in (per_step, small):  # same decisions; sums over other chunks may round differently
        np.testing.assert_array_equal(curve.choice, other.choice)
        np.testing.assert_allclose(curve.cost, other.cost, rtol=1e-12)
        np.testing.assert_allclose(curve.quality, other.quality, rtol=1e-12)
    np.testing.assert_allclose(np.sum(np.asarray(curve.answered), axis=1), 1.0)
    assert np.all((np.asarray(curve.ran) >= 1) & (np.asarray(curve.ran) <= 3))
    assert cascjax.auc(curve, ds) > cascjax.auc(cascjax.sweep(ds, est, lam), ds)


def test_bad_input():
    ds = cascjax.synthetic(seed=1, n_queries=10, n_models=4)
    est = cascjax.perfect_estimates(ds)
    with pytest.raises(cascjax.CascjaxError, match="max_depth"):
        cascjax.sweep(ds, est, [0.1], "cascade_routing", max_depth=5)
    with pytest.raises(cascjax.CascjaxError, match=r"λ must be \[L\] or \[L, D\]"):
        cascjax.sweep(ds, est, np.zeros((2, 3)), "cascade_routing", max_depth=2)
    with pytest.raises(cascjax.CascjaxError, match="samples"):
        cascjax.sweep(ds, est, [0.1], "cascade_routing", samples=0)
    with pytest.raises(cascjax.CascjaxError, match="chunk_size"):
        cascjax.sweep(ds, est, [0.1], "cascade_routing", chunk_size=0)
    with pytest.raises(cascjax.CascjaxError, match="memory"):
        cascjax.sweep(ds, est, [0.1], "cascade_routing", memory=-1)
    big = cascjax.synthetic(seed=1, n_queries=4, n_models=31)
    with pytest.raises(cascjax.CascjaxError, match="at most 30 models"):
        cascjax.sweep(big, cascjax.perfect_estimates(big), [0.1], "cascade_routing", max_depth=2)


@pytest.mark.parametrize("m", [2, 5])  # M = 3: the theorem suite's shapes
def test_other_pool_sizes_match_the_oracle(m):
    """Seeded instances for pool sizes other than the hypothesis tests' 4, every depth, σ > 0."""
    rng = np.random.default_rng(m)
    n = 6
    quality, cost = rng.integers(0, 5, (n, m)) / 4, rng.integers(1, 9, (n, m)) / 8
    est = cascjax.Estimates(*(jnp.asarray(a) for a in (rng.integers(0, 5, (n, m)) / 4, rng.integers(0, 5, (n, m)) / 4,
                                                       rng.integers(0, 3, (n, m)) / 4, np.zeros((n, m)),
                                                       rng.integers(1, 9, (n, m)) / 8, cost)))
    ds = cascjax.Dataset.from_arrays(quality, cost, sort=False)
    lam = np.array([0.0, 0.125, 0.5, 2.0])
    # depth 1 is routing: the theorem suite's depth_one property (here too in the thorough profile)
    for depth in sorted({2, m} | ({1} if THOROUGH else set())):
        for tie in ("min", "max"):
            curve = cascjax.sweep(ds, est, lam, "cascade_routing", tie=tie, max_depth=depth, samples=3)
            _assert_matches(curve, _oracle(ds, est, lam, depth, 3, tie))


# -- the exact λ-path ------------------------------------------------------------------------------------------

@given(cases(), st.integers(0, 2**31), st.booleans(), st.booleans())
@fewer
def test_exact_path_matches_the_oracle_between_and_the_sweep_at_its_vertices(case, seed, correlated, negative):
    """Between vertices the path is cascade routing (loop oracle); at a vertex λ_k MIN realises vertex k and
    MAX vertex k − 1, as the tolerant sweep does there. Every option; negative cost estimates; a covariance."""
    ds, est, depth, k, _, options = case
    options.pop("prune")
    if negative:
        est = est._replace(cost_ante=est.cost_ante - 0.25)
    if correlated:
        est = est._replace(covariance=jnp.asarray(random_covariances(seed, ds.n_models)))
    path = cascjax.cascade_routing_path(ds, est, max_depth=depth, samples=k, chunk_size=2, **options)
    lam = np.asarray(path.lam)
    assert lam[0] == 0 and np.all(np.diff(lam[1:]) > 0)
    between = np.concatenate([(lam[:-1] + lam[1:]) / 2, [2 * lam[-1] + 1]])
    between = between[between > 0]
    c, q, ran, _ = _oracle(ds, est, between, depth, k, "min", **options)
    at = cascjax.path_at(path, between, "min")
    np.testing.assert_allclose(at.cost, c, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(at.quality, q, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(at.ran, ran, rtol=1e-12)
    for tie in ("min", "max"):
        grid = cascjax.sweep(ds, est, lam, "cascade_routing", tie=tie, max_depth=depth, samples=k, **options)
        at = cascjax.path_at(path, lam, tie)
        np.testing.assert_allclose(at.cost, grid.cost, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(at.quality, grid.quality, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(at.ran, grid.ran, rtol=1e-12)


def test_exact_path_depth_one_is_the_routing_path_and_room_does_not_matter(monkeypatch):
    ds = cascjax.load_example().take(np.arange(150))
    est = cascjax.noisy_estimates(ds, jax.random.key(3), "medium")
    a = cascjax.cascade_routing_path(ds, est, max_depth=1)
    b = cascjax.routing_path(ds, est)
    lam = np.unique(np.concatenate([np.asarray(a.lam), np.asarray(b.lam)]))
    lam = np.concatenate([lam, (lam[:-1] + lam[1:]) / 2])
    for tie in ("min", "max"):
        pa, pb = cascjax.path_at(a, lam, tie), cascjax.path_at(b, lam, tie)
        np.testing.assert_allclose(pa.cost, pb.cost, rtol=1e-12)
        np.testing.assert_allclose(pa.quality, pb.quality, rtol=1e-12)
    full = cascjax.cascade_routing_path(ds, est, max_depth=2)
    monkeypatch.setattr(cascjax._cascade_routing_path, "ROOM", 1)  # every query overflows: walked again
    small = cascjax.cascade_routing_path(ds, est, max_depth=2, chunk_size=7)
    np.testing.assert_array_equal(small.lam, full.lam)
    np.testing.assert_allclose(small.cost, full.cost, rtol=1e-12)
    np.testing.assert_allclose(small.quality, full.quality, rtol=1e-12)


def test_exact_path_on_the_example():
    """On 400 example questions (noisy estimates; in the thorough profile also with a fitted covariance, which
    the hypothesis test above draws in the default run) the path at a 64-point grid is the grid sweep, for both
    tie rules."""
    ds = cascjax.load_example().take(np.arange(400))
    base = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    for est in (base,) + ((cascjax.fit_covariances(base),) if THOROUGH else ()):
        path = cascjax.cascade_routing_path(ds, est, max_depth=3)
        lam = cascjax.lambda_grid(est, 64)
        for tie in ("min", "max"):
            grid = cascjax.sweep(ds, est, lam, "cascade_routing", tie=tie, max_depth=3)
            at = cascjax.path_at(path, lam, tie)
            np.testing.assert_allclose(at.cost, grid.cost, rtol=1e-12)
            np.testing.assert_allclose(at.quality, grid.quality, rtol=1e-12)
            np.testing.assert_allclose(at.ran, grid.ran, rtol=1e-12)


def test_exact_path_bad_input():
    ds = cascjax.synthetic(seed=1, n_queries=10, n_models=4)
    est = cascjax.perfect_estimates(ds)
    for kwargs, message in [(dict(max_depth=5), "max_depth must be an integer in 1..4"),
                            (dict(samples=0), "samples"), (dict(chunk_size=0), "chunk_size")]:
        with pytest.raises(cascjax.CascjaxError, match=message):
            cascjax.cascade_routing_path(ds, est, **kwargs)


def _greedy_loop(est, z, lam, tie, rtol):
    """Greedy cascade routing for one query at one constant λ, straight from DESIGN section 4: at state R the
    candidates are R and R ∪ {m}, in lexicographic order of their sorted model indices; the rule of
    ``oracle.select``; the lowest new model runs. Returns (the answering model, the realised cost's models)."""
    m = len(est["mu_ante"])
    run = []
    for _ in range(m):
        state = set(run)
        mu = [est["mu_post"][i] if i in state else est["mu_ante"][i] for i in range(m)]
        sd = [est["sd_post"][i] if i in state else est["sd_ante"][i] for i in range(m)]
        ch = [est["c_post"][i] if i in state else est["c_ante"][i] for i in range(m)]
        cands = sorted(([tuple(sorted(state))] if state else []) +
                       [tuple(sorted(state | {i})) for i in range(m) if i not in state])
        qs = [oracle.reference_expected_max(mu, sd, z, t) for t in cands]
        cs = [sum(ch[i] for i in t) for t in cands]
        new = set(cands[oracle.select(qs, cs, lam, rtol, tie == "max")]) - state
        if not new:
            break
        run.append(min(new))
    post = [est["mu_post"][i] for i in run]
    return run[int(np.argmax(post))], run


@pytest.mark.parametrize("tie", ["min", "max"])
def test_greedy_runs_on_a_pool_of_24_models(tie):
    """Greedy cascade routing needs no global candidate table (its tie order is computed per state), so it takes
    a 24-model pool at full depth (16,777,215 supermodels), and matches a loop over the definition. Without
    greedy the table limit is named in the error, with greedy as the way out."""
    ds = cascjax.synthetic(seed=3, n_queries=6, n_models=24, binary=False)
    est = cascjax.noisy_estimates(ds, jax.random.key(3), "low")
    lam = np.array([0.0, 30.0, 300.0, 3000.0])
    curve = cascjax.sweep(ds, est, lam, "cascade_routing", tie, greedy=True, samples=8, return_choices=True)
    z = np.asarray(normal_points(8, 24, dtype=ds.quality.dtype), np.float64)
    e = {k: np.asarray(v, np.float64) for k, v in dict(mu_ante=est.quality_ante, mu_post=est.quality_post,
                                                         sd_ante=est.sd_ante, sd_post=est.sd_post,
                                                         c_ante=est.cost_ante, c_post=est.cost_post).items()}
    cost = np.asarray(ds.cost, np.float64)
    for n in range(ds.n_queries):
        for i, l in enumerate(lam):
            answer, run = _greedy_loop({k: v[n] for k, v in e.items()}, z, l, tie, tie_rtol(ds.quality.dtype))
            assert int(curve.choice[i, n]) == answer, (n, l)
            np.testing.assert_allclose(float(curve.query_cost[i, n]), cost[n, run].sum(), rtol=1e-12)
    assert float(curve.ran[0]) > 1 and float(curve.ran[-1]) < float(curve.ran[0])
    with pytest.raises(cascjax.CascjaxError, match="greedy=True"):
        cascjax.sweep(ds, est, lam, "cascade_routing", tie)
