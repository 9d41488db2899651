"""Routing on a λ grid and as an exact λ-path, against the NumPy loop oracle and the routing LP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, note, settings, strategies as st

import cascjax
from cascjax._compile import programs
from cascjax._routing import _FIRST_STEPS

from . import oracle


def _estimates(mu, c_hat):
    mu, c_hat = jnp.asarray(mu), jnp.asarray(c_hat)
    z = jnp.zeros_like(mu)
    return cascjax.Estimates(mu, mu, z, z, c_hat, c_hat)


@st.composite
def instances(draw, dyadic=None, max_n=8, max_m=5, min_m=2):
    """A dataset (unsorted models) with arbitrary estimates; dyadic values make exact ties common."""
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(min_m, max_m))
    if dyadic is None:
        dyadic = draw(st.booleans())

    def arr(lo, hi, denom):
        if dyadic:
            ints = st.integers(int(lo * denom), int(hi * denom))
            return np.array(draw(st.lists(ints, min_size=n * m, max_size=n * m)), float).reshape(n, m) / denom
        # Effectively continuous: 30 random bits per value (XLA flushes subnormals to zero, so values
        # that far below the scale of the data are not meaningful inputs).
        ints = st.integers(0, 1 << 30)
        raw = np.array(draw(st.lists(ints, min_size=n * m, max_size=n * m)), float).reshape(n, m)
        return lo + (hi - lo) * raw / (1 << 30)

    # Costs in a unit drawn from USD-per-query scales (1e-6) to tokens (1e3).
    unit = 10.0 ** draw(st.integers(-6, 3))
    quality, cost = arr(0, 1, 4), arr(0, 2, 8) * unit
    if draw(st.booleans()):  # perfect estimates
        mu, c_hat = quality, cost
    else:
        mu, c_hat = arr(-1, 2, 8), arr(0, 2, 16) * unit
    ds = cascjax.Dataset.from_arrays(quality, cost, sort=False)
    return ds, _estimates(mu, c_hat)


def _grid(draw, est, extra=8):
    """0, every breakpoint, the midpoints between them, a few random values and one beyond all of them."""
    bps = oracle.breakpoints(est.quality_ante, est.cost_ante)
    top = (bps.max() if bps.size else 1.0) * 2 + 1
    mids = (bps[1:] + bps[:-1]) / 2 if bps.size > 1 else np.zeros(0)
    # Random λ on a 2^-30 lattice of [0, top]: arbitrary floats would include subnormal λ, whose products
    # with costs XLA flushes to zero (see ``instances``).
    ints = draw(st.lists(st.integers(0, 1 << 30), max_size=extra))
    rnd = [float(top) * k / (1 << 30) for k in ints]
    grid = [x for x in np.unique(np.concatenate([bps, mids, rnd])) if _clear_of_ties(est, x)]
    grid = np.unique(np.concatenate([[0.0, top], grid]))
    # Pad to a power of two (repeating the last value) so that few shapes are compiled.
    size = 1 << int(np.ceil(np.log2(grid.size)))
    return np.concatenate([grid, np.full(size - grid.size, grid[-1])])


def _clear_of_ties(est, lam, margin=1e3):
    """False if λ is within ``margin`` times the sweep's tie tolerance of some query's pairwise tie.

    There the sweep (tolerant) and the exact path may legitimately differ: the sweep calls two scores that
    differ by less than its tolerance a tie, the path resolves them exactly. Exactly at a pair's breakpoint
    both call it a tie, so a breakpoint stays in the grid unless it falls in another pair's tie band (e.g.
    scores near -1 that differ by 1e-8: the band is then ~1e-7 of λ wide).
    """
    mu, c = np.asarray(est.quality_ante), np.asarray(est.cost_ante)
    rtol = oracle.TIE_ULPS * np.finfo(np.float64).eps
    tol = rtol * (np.abs(mu).max(axis=1) + lam * np.abs(c).max(axis=1))
    dmu, dc = mu[:, :, None] - mu[:, None, :], c[:, :, None] - c[:, None, :]
    gap = np.abs(dmu - lam * dc)
    distinct = dc != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        at_breakpoint = np.abs(dmu / np.where(distinct, dc, 1.0) - lam) <= 4 * np.finfo(np.float64).eps * lam
    return not np.any(distinct & (gap <= margin * tol[:, None, None]) & ~at_breakpoint)


def _close(actual, desired, scale):
    np.testing.assert_allclose(actual, desired, rtol=1e-9, atol=1e-12 * scale)


@pytest.mark.parametrize("tie", ["min", "max"])
@given(data=st.data())
def test_sweep_matches_the_loop_oracle(tie, data):
    ds, est = data.draw(instances())
    lam = _grid(data.draw, est)
    curve = cascjax.sweep(ds, est, lam, tie=tie, return_choices=True)
    ref_c, ref_q, ref_choice = oracle.reference_routing(ds.quality, ds.cost, est.quality_ante, est.cost_ante, lam, tie)
    np.testing.assert_array_equal(np.asarray(curve.choice), ref_choice)
    _close(curve.cost, ref_c, float(np.max(ds.cost)))
    _close(curve.quality, ref_q, 1.0)
    counts = np.stack([np.bincount(row, minlength=ds.n_models) for row in ref_choice]) / ds.n_queries
    np.testing.assert_allclose(curve.answered, counts, atol=1e-12)
    np.testing.assert_array_equal(curve.ran, 1.0)


@pytest.mark.parametrize("tie", ["min", "max"])
@given(data=st.data())
def test_exact_path_equals_the_sweep_at_every_grid_lambda(tie, data):
    ds, est = data.draw(instances())
    lam = _grid(data.draw, est)
    path = cascjax.routing_path(ds, est)
    at = cascjax.path_at(path, lam, tie)
    ref_c, ref_q, _ = oracle.reference_routing(ds.quality, ds.cost, est.quality_ante, est.cost_ante, lam, tie)
    scale = float(np.max(ds.cost))
    _close(at.cost, ref_c, scale)
    _close(at.quality, ref_q, 1.0)
    grid = cascjax.sweep(ds, est, lam, tie=tie)
    _close(at.cost, grid.cost, scale)
    _close(at.quality, grid.quality, 1.0)


@given(data=st.data())
def test_exact_path_with_long_hulls(data):
    """Queries whose hulls have more breakpoints than the walk's first pass takes continue in a second pass."""
    ds, est = data.draw(instances(max_n=6, max_m=9, min_m=_FIRST_STEPS + 2))
    m = ds.n_models
    # Make some queries' estimates concave in cost, so that every model is a hull vertex.
    rows = np.asarray(data.draw(st.lists(st.booleans(), min_size=ds.n_queries, max_size=ds.n_queries)))
    perm = np.asarray(data.draw(st.permutations(range(m))))
    c_hat = np.where(rows[:, None], (1.0 + perm)[None] * float(np.max(ds.cost) + 1), est.cost_ante)
    mu = np.where(rows[:, None], np.sqrt(1.0 + perm)[None], est.quality_ante)
    est = _estimates(mu, c_hat)
    lam = _grid(data.draw, est)
    note(f"quality={np.asarray(ds.quality).tolist()}\ncost={np.asarray(ds.cost).tolist()}\n"
         f"mu={mu.tolist()}\nc_hat={c_hat.tolist()}\nlam={lam.tolist()}")
    path = cascjax.routing_path(ds, est)
    scale = float(np.max(ds.cost))
    for tie in ("min", "max"):
        at = cascjax.path_at(path, lam, tie)
        ref_c, ref_q, _ = oracle.reference_routing(ds.quality, ds.cost, mu, c_hat, lam, tie)
        _close(at.cost, ref_c, scale)
        _close(at.quality, ref_q, 1.0)


@given(data=st.data())
def test_the_candidate_filter_of_large_pools_changes_nothing(data):
    """Large pools walk only the models no strictly cheaper model beats (found with cost bins): forced onto
    small pools (ties, zero and negative costs, a room that overflows and grows), the path is the unfiltered
    one to the bit."""
    from cascjax import _routing

    ds, est = data.draw(instances(max_n=6, max_m=12, min_m=3))
    c_hat = np.asarray(est.cost_ante)
    if data.draw(st.booleans()):  # cost estimates around zero: the first bin takes every cost ≤ 0
        c_hat = c_hat - float(np.median(c_hat))
    est = _estimates(est.quality_ante, c_hat)
    plain = cascjax.routing_path(ds, est)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_routing, "_FILTER_ABOVE", 1)
        mp.setattr(_routing, "_FIRST_WIDTH", data.draw(st.sampled_from([2, 3, 4])))
        mp.setattr(_routing, "_WIDTHS", {})
        filtered = cascjax.routing_path(ds, est)
        assert _routing._WIDTHS[ds.n_models] <= ds.n_models
    for a, b in ((plain.lam, filtered.lam), (plain.cost, filtered.cost), (plain.quality, filtered.quality)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_the_event_route_makes_the_direct_grids_choices(dtype, data):
    """Routing sweeps of many λ go through the hull breakpoints (cascjax._routing_events): on random instances
    with ties (dyadic values, equal costs, duplicate models), λ in any order and repeated, both tie rules and
    a relative tolerance from 0 to large, every choice, realised cost and answer count is the direct grid's,
    bit for bit — also with the candidate filter of large pools forced on; the sums, accumulated from events
    with compensation, are within a few ulps of the exact sums of those choices."""
    from cascjax import _routing, _sweep

    ds, est = data.draw(instances(max_n=8, max_m=7))
    mu, c_hat = np.array(est.quality_ante), np.array(est.cost_ante)
    if data.draw(st.booleans()):  # duplicate models
        mu[:, -1], c_hat[:, -1] = mu[:, 0], c_hat[:, 0]
    ds = cascjax.Dataset.from_arrays(np.asarray(ds.quality, dtype), np.asarray(ds.cost, dtype), sort=False)
    est = _estimates(mu.astype(dtype), c_hat.astype(dtype))
    lam = _grid(data.draw, est)
    lam = np.concatenate([lam, data.draw(st.permutations(list(lam)))])  # unsorted, repeated
    tie = data.draw(st.sampled_from(["min", "max"]))
    rtol = data.draw(st.sampled_from([None, 0.0, 1e-3]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_sweep, "EVENT_LAMBDAS", ((None, 10**9),))
        direct = cascjax.sweep(ds, est, lam, tie=tie, tie_rtol=rtol, return_choices=True)
        mp.setattr(_sweep, "EVENT_LAMBDAS", ((None, 1),))
        if data.draw(st.booleans()):
            mp.setattr(_routing, "_FILTER_ABOVE", 1)
            mp.setattr(_routing, "_FIRST_WIDTH", 2)
            mp.setattr(_routing, "_WIDTHS", {})
        events = cascjax.sweep(ds, est, lam, tie=tie, tie_rtol=rtol, return_choices=True)
    for field in ("lam", "answered", "ran", "choice", "query_cost"):
        np.testing.assert_array_equal(np.asarray(getattr(events, field)), np.asarray(getattr(direct, field)), field)
    choice = np.asarray(events.choice)
    eps = np.finfo(dtype).eps
    for values, field in ((ds.cost, "cost"), (ds.quality, "quality")):
        values = np.asarray(values, np.float64)
        exact = np.take_along_axis(values.T, choice, axis=0).mean(axis=1)
        atol = 16 * eps * eps * np.abs(values).max()
        np.testing.assert_allclose(np.asarray(getattr(events, field), np.float64), exact, rtol=16 * eps, atol=atol,
                                   err_msg=field)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_the_lambda_band_sweep_makes_path_ats_decisions(dtype, data):
    """``tie_band="lambda"``: the sweep decides by the exact path's rule, so it equals ``path_at(routing_path)``
    at every λ — at the breakpoints, at the edges of their tie band (λ·(1 ± rtol) = b, and one ulp either
    side), between them — for both tie rules and any tolerance, with ties on purpose (dyadic values, duplicate
    models), in float32 and float64; up to how the two sum (the path adds rounded changes, the sweep
    compensates), far below what one query's different choice would change."""
    ds, est = data.draw(instances(max_n=8, max_m=6))
    mu, c_hat = np.array(est.quality_ante), np.array(est.cost_ante)
    if data.draw(st.booleans()):
        mu[:, -1], c_hat[:, -1] = mu[:, 0], c_hat[:, 0]
    ds = cascjax.Dataset.from_arrays(np.asarray(ds.quality, dtype), np.asarray(ds.cost, dtype), sort=False)
    est = _estimates(mu.astype(dtype), c_hat.astype(dtype))
    tie = data.draw(st.sampled_from(["min", "max"]))
    rtol = data.draw(st.sampled_from([None, 0.0, 1e-3]))
    path = cascjax.routing_path(ds, est)
    breaks = np.unique(np.asarray(path.lam))
    lam = oracle.band_grid(breaks, dtype, rtol)
    note(f"quality={np.asarray(ds.quality).tolist()}\ncost={np.asarray(ds.cost).tolist()}\nmu={mu.tolist()}\n"
         f"c_hat={c_hat.tolist()}\nlam={lam.tolist()}\nbreaks={breaks.tolist()}")
    at = cascjax.path_at(path, lam, tie, tie_rtol=rtol)
    grid = cascjax.sweep(ds, est, lam, tie=tie, tie_rtol=rtol, tie_band="lambda")
    close = 1e-12 if dtype == np.float64 else 1e-5
    scale = float(np.max(np.abs(ds.cost))) + 1e-300
    np.testing.assert_allclose(np.asarray(grid.quality), np.asarray(at.quality), rtol=close, atol=close)
    np.testing.assert_allclose(np.asarray(grid.cost), np.asarray(at.cost), rtol=close, atol=close * scale)


def test_tie_band_is_checked():
    ds = cascjax.synthetic(seed=0, n_queries=20, n_models=3)
    est = cascjax.perfect_estimates(ds)
    with pytest.raises(cascjax.CascjaxError, match="tie_band"):
        cascjax.sweep(ds, est, [0.1], tie_band="lambdas")
    with pytest.raises(cascjax.CascjaxError, match="tie_band"):
        cascjax.sweep(ds, est, [0.1], "cascade_routing", tie_band="lambda")


def test_the_event_sums_do_not_depend_on_how_the_events_are_sorted(monkeypatch):
    """Events sorted by one int32 key (bin·E + position) or, when that would overflow, by two keys: the same
    order, so the same bits."""
    from cascjax import _routing_events, _sweep

    monkeypatch.setattr(_sweep, "EVENT_LAMBDAS", ((None, 1),))
    ds = cascjax.synthetic(seed=5, n_queries=300, n_models=6)
    est = cascjax.noisy_estimates(ds, jax.random.key(1), "medium")
    lam = cascjax.lambda_grid(est, 64)
    one_key = cascjax.sweep(ds, est, lam, return_choices=True)
    monkeypatch.setattr(_routing_events, "KEY_LIMIT", 1)
    two_keys = cascjax.sweep(ds, est, lam, return_choices=True)
    for field in ("cost", "quality", "answered", "choice", "query_cost"):
        np.testing.assert_array_equal(np.asarray(getattr(one_key, field)), np.asarray(getattr(two_keys, field)))



@settings(max_examples=12)
@given(values=st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=300),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_the_event_running_sum_is_within_rounding_of_the_exact_running_sum(values, dtype):
    """The event route's compensated running sum (two sequential passes over blocks, cascjax._routing_events)
    against exact rational arithmetic: each partial sum within an ulp of the exact one, plus what the summed
    rounding errors can lose (n·eps² of the magnitudes), where a plain running sum loses up to n·eps of them."""
    from fractions import Fraction

    from cascjax._routing_events import _running_sum

    values = values + [1e8, 1.0, -1e8]  # in float32 a plain running sum ends 1 off: 1e8 + 1 rounds to 1e8
    x = np.asarray(values, dtype)
    error = (x * np.asarray(2.0 ** -30, dtype)).astype(dtype)  # what rounding left out, as the events carry it
    got = np.asarray(jax.jit(_running_sum)(jnp.asarray(x), jnp.asarray(error)))
    exact = np.cumsum([Fraction(float(a)) + Fraction(float(b)) for a, b in zip(x, error)])
    eps = float(np.finfo(dtype).eps)
    scale = np.cumsum(np.abs(x.astype(np.float64)))
    for g, e, s in zip(got, exact, scale):
        assert abs(Fraction(float(g)) - e) <= eps * abs(e) + len(x) * eps**2 * s

def _numpy_routing(quality, cost, mu, c_hat, lam, tie):
    """The decision rule by a NumPy loop over λ and queries, vectorised over the models (float64)."""
    rtol = oracle.TIE_ULPS * np.finfo(np.float64).eps
    out_c, out_q, clear = [], [], []
    for x in lam:
        tot_c = tot_q = 0.0
        ok = True
        for i in range(mu.shape[0]):
            score = mu[i] - x * c_hat[i]
            best = score.max()
            tol = rtol * (np.abs(mu[i]).max() + x * np.abs(c_hat[i]).max())
            tied = score >= best - tol
            ctol = rtol * np.abs(c_hat[i]).max()
            if tie == "min":
                pick = tied & (c_hat[i] <= c_hat[i][tied].min() + ctol)
            else:
                pick = tied & (c_hat[i] >= c_hat[i][tied].max() - ctol)
            k = int(np.argmax(pick))
            tot_c, tot_q = tot_c + cost[i, k], tot_q + quality[i, k]
            # Clear of near-ties (where the tolerant rule and the exact path may differ): every other score
            # is far below the best, or is the best's own point (a duplicate model).
            top = (mu[i] == mu[i, k]) & (c_hat[i] == c_hat[i, k])
            ok &= bool(np.all(top | (score < best - 1e3 * tol)))
        out_c.append(tot_c / mu.shape[0])
        out_q.append(tot_q / mu.shape[0])
        clear.append(ok)
    return np.array(out_c), np.array(out_q), np.array(clear)


@pytest.mark.parametrize("m", [300, 2000])
def test_large_pools_equal_the_numpy_loop_in_float64(m):
    """Pools of hundreds to thousands of models (the candidate filter on): the path between its vertices and
    beyond them equals a NumPy loop over λ and queries, for both tie rules, with ties on purpose."""
    from cascjax import _routing

    rng = np.random.default_rng(m)
    n = 5
    quality = rng.integers(0, 2, (n, m)).astype(float)
    cost = rng.uniform(1e-5, 1e-2, (n, m))
    mu = np.clip(quality + rng.normal(0, 0.6, (n, m)), -1, 2)
    c_hat = cost * np.exp(rng.normal(0, 0.3, (n, m)))
    mu[0], c_hat[0] = np.round(mu[0], 1), np.round(c_hat[0], 3)  # ties: rounded estimates, equal costs
    mu[1, 1::2], c_hat[1, 1::2] = mu[1, ::2], c_hat[1, ::2]  # duplicate models
    ds = cascjax.Dataset.from_arrays(quality, cost, sort=False)
    est = _estimates(mu, c_hat)
    path = cascjax.routing_path(ds, est)
    assert _routing._WIDTHS[m] < m  # the filter ran
    vertices = np.unique(np.asarray(path.lam))
    lam = np.concatenate([[0.0], (vertices[1:] + vertices[:-1]) / 2, [vertices[-1] * 2 + 1]])
    for tie in ("min", "max"):
        ref_c, ref_q, clear = _numpy_routing(quality, cost, mu, c_hat, lam, tie)
        assert clear.sum() >= len(lam) - 2
        at = cascjax.path_at(path, lam[clear], tie)
        _close(at.cost, ref_c[clear], float(np.max(cost)))
        _close(at.quality, ref_q[clear], 1.0)
        # The sweep (the event route: ≥ 16 λ on pools this large) decides by the same tolerant rule as the loop,
        # near-ties included; with tie_band="lambda" it is path_at, at every λ.
        grid = cascjax.sweep(ds, est, np.repeat(lam, 16), tie=tie)
        _close(grid.cost[::16], ref_c, float(np.max(cost)))
        _close(grid.quality[::16], ref_q, 1.0)
        banded = cascjax.sweep(ds, est, lam, tie=tie, tie_band="lambda")
        every = cascjax.path_at(path, lam, tie)
        _close(banded.cost, every.cost, float(np.max(cost)))
        _close(banded.quality, every.quality, 1.0)


def test_lambda_grid_on_a_pool_of_thousands_of_models():
    """No [N, M, M] arrays (5 GB here before): pairs among the models routing can reach; the grid spans the
    path's breakpoints; a small pool's grid is unchanged by the pair bound."""
    rng = np.random.default_rng(1)
    n, m = 64, 3000
    quality = rng.integers(0, 2, (n, m)).astype(float)
    cost = rng.uniform(1e-5, 1e-2, (n, m))
    ds = cascjax.Dataset.from_arrays(quality, cost, sort=False)
    est = _estimates(np.clip(quality + rng.normal(0, 0.6, (n, m)), -1, 2), cost)
    grid = cascjax.lambda_grid(est, 16)
    assert grid.shape == (16,) and grid[0] == 0 and np.all(np.diff(grid) > 0)
    breaks = np.asarray(cascjax.routing_path(ds, est).lam)[1:]
    lo, hi = np.quantile(breaks[breaks > 0], [0.05, 0.5])
    assert grid[1] <= lo and hi <= grid[-1]
    small = _estimates(est.quality_ante[:, :11], est.cost_ante[:, :11])
    mu, c = np.asarray(small.quality_ante), np.asarray(small.cost_ante)
    dq, dc = mu[:, :, None] - mu[:, None, :], c[:, :, None] - c[:, None, :]
    slopes = (dq / np.where(dc > 0, dc, 1))[(dq > 0) & (dc > 0)]
    q_lo, q_hi = np.quantile(slopes, [0.005, 0.995])
    np.testing.assert_allclose(cascjax.lambda_grid(small, 16)[[1, -1]], [q_lo / 2, max(2 * q_hi, 4 * q_lo)])


def test_lambda_grid_on_a_pool_where_many_models_tie(monkeypatch):
    """Perfect 0/1 estimates on 3,000 models: every correct model ties at μ = 1, so all of them were candidates
    (a [4096, W, W] pair table of 30 GB on 1,000 models crashed ``cascjax frontier --estimates perfect``); only
    the Pareto models pair, and the grid spans the exact path's breakpoints. The hull walk's candidates drop
    the tied models too: its room stays small (it grew towards the whole pool)."""
    from cascjax import _routing

    monkeypatch.setattr(_routing, "_WIDTHS", {})
    rng = np.random.default_rng(2)
    n, m = 256, 3000
    quality = rng.integers(0, 2, (n, m)).astype(float)
    cost = np.sort(rng.uniform(1e-5, 1e-2, (n, m)), axis=1)
    ds = cascjax.Dataset.from_arrays(quality, cost, sort=False)
    est = cascjax.perfect_estimates(ds)
    grid = cascjax.lambda_grid(est, 16)
    breaks = np.asarray(cascjax.routing_path(ds, est).lam)[1:]
    lo, hi = np.quantile(breaks[breaks > 0], [0.05, 0.95])
    assert grid[1] <= lo and hi <= grid[-1]
    assert _routing._WIDTHS[m] <= 128


@settings(max_examples=30)
@given(seed=st.integers(0, 2**16), ties=st.booleans())
def test_staircase_keeps_the_pareto_models(seed, ties):
    """``_staircase`` (lambda_grid's pairs on large pools) against a loop: model j stays iff every model at
    most as expensive is worse (equal cost: the first of the best), NaN padding never."""
    from cascjax._lambda_grid import _staircase

    rng = np.random.default_rng(seed)
    r, w = 5, 9
    mu = rng.integers(0, 3, (r, w)).astype(float) if ties else rng.random((r, w))
    c = rng.integers(1, 4, (r, w)).astype(float) if ties else rng.random((r, w))
    mu[rng.random((r, w)) < 0.2] = np.nan
    c[np.isnan(mu)] = np.nan
    got_mu, got_c = _staircase(mu, c)
    for i in range(r):
        real = [j for j in range(w) if not np.isnan(mu[i, j])]
        order = sorted(real, key=lambda j: (c[i, j], -mu[i, j], j))
        want = [j for k, j in enumerate(order) if all(mu[i, j] > mu[i, o] for o in order[:k])]
        kept = ~np.isnan(got_mu[i])
        assert list(zip(got_c[i][kept], got_mu[i][kept])) == [(c[i, j], mu[i, j]) for j in want]
        assert kept.sum() == len(want) and not kept[len(want):].any()


@given(data=st.data())
def test_exact_path_vertices(data):
    """λ ascending from 0, one vertex per distinct breakpoint where the realised outcome can change."""
    ds, est = data.draw(instances())
    path = cascjax.routing_path(ds, est)
    lam = np.asarray(path.lam)
    # Vertex 0 is MAX at λ = 0; vertex 1 may also sit at λ = 0 (MIN at 0 when μ ties at different costs).
    assert lam[0] == 0 and np.all(np.diff(lam[1:]) > 0)
    bps = oracle.breakpoints(est.quality_ante, est.cost_ante)
    # Every other path λ is a breakpoint (up to the rounding of the division).
    for x in lam[1:]:
        assert x == 0 or np.min(np.abs(bps - x)) <= 1e-12 * x
    ref_c, ref_q, _ = oracle.reference_routing(ds.quality, ds.cost, est.quality_ante, est.cost_ante, [0.0], "max")
    _close(path.cost[0], ref_c[0], float(np.max(ds.cost)))
    _close(path.quality[0], ref_q[0], 1.0)


@given(data=st.data())
def test_estimated_cost_is_non_increasing_in_lambda(data):
    ds, est = data.draw(instances())
    lam = _grid(data.draw, est)
    for tie in ("min", "max"):
        choice = np.asarray(cascjax.sweep(ds, est, lam, tie=tie, return_choices=True).choice)
        est_cost = np.take_along_axis(np.asarray(est.cost_ante)[None], choice[..., None], axis=2)[..., 0]
        assert np.all(np.diff(est_cost.mean(axis=1)) <= 1e-12)
        # per query too: the hull walk only ever moves to cheaper models
        assert np.all(np.diff(est_cost, axis=0) <= 1e-12)
    # Under perfect estimates the realised path is a frontier: cost and quality both fall as λ grows.
    perfect = cascjax.routing_path(ds, cascjax.perfect_estimates(ds))
    assert np.all(np.diff(np.asarray(perfect.cost)) <= 1e-12)
    assert np.all(np.diff(np.asarray(perfect.quality)) <= 1e-12)


def test_a_budget_equal_to_the_cheapest_cost_computed_elsewhere_is_reachable():
    """Regression (found by the thorough profile): a one-vertex path whose cost is B up to summation order."""
    a, b = 1.8626451492309571e-10, 7.450580596923829e-10
    cost = np.zeros((6, 3))  # NumPy adds 6 rows in sequence, cascjax as a pairwise tree
    cost[0], cost[2], cost[3] = a, a, b
    ds = cascjax.Dataset.from_arrays(np.zeros((6, 3)), cost, sort=False)
    path = cascjax.routing_path(ds, cascjax.perfect_estimates(ds))
    lo = cost.min(axis=1).mean()
    assert path.lam.shape == (1,) and float(path.cost[0]) != lo  # differs in the last bits
    mix = cascjax.at_budget(path, [lo, lo / 2])
    np.testing.assert_array_equal(mix.feasible, [True, False])
    assert float(mix.cost[0]) == float(path.cost[0]) and float(mix.quality[0]) == 0.0
    # the infeasible budget: no λ, no mixture (lo = hi = the cheapest point, γ = 0), NaN outcomes
    assert np.isnan(float(mix.lam[1])) and int(mix.lo[1]) == int(mix.hi[1]) == 0 and float(mix.gamma[1]) == 0.0
    assert np.isnan(float(mix.cost[1])) and np.isnan(float(mix.quality[1]))


def test_theorem_1_on_the_example():
    """The same on a real subsample, where many queries tie on quality (0/1 correctness)."""
    ds = cascjax.load_example().take(np.arange(0, 12_020, 200))
    path = cascjax.routing_path(ds, cascjax.perfect_estimates(ds))
    c = np.asarray(ds.cost)
    for b in np.linspace(c.min(axis=1).mean(), c.max(axis=1).mean(), 7):
        mix = cascjax.at_budget(path, [b])
        best = oracle.routing_lp(ds.quality, ds.cost, b)
        assert abs(float(mix.quality[0]) - best) <= 1e-7
        assert abs(float(mix.cost[0]) - b) <= 1e-12 * max(b, 1e-12) or float(mix.quality[0]) >= path.quality[0]


@pytest.mark.parametrize("tie", ["min"])  # MAX: tests/test_theorems.py's transforms property
def test_jit_equals_eager(tie):
    ds = cascjax.synthetic(seed=3, n_queries=60, n_models=4)
    est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
    lam = cascjax.lambda_grid(est, 9)
    jitted = cascjax.sweep(ds, est, lam, tie=tie, return_choices=True)
    path = cascjax.routing_path(ds, est)
    with jax.disable_jit():
        eager = cascjax.sweep(ds, est, lam, tie=tie, return_choices=True)
        eager_path = cascjax.routing_path(ds, est)
    np.testing.assert_array_equal(jitted.choice, eager.choice)
    np.testing.assert_allclose(jitted.cost, eager.cost, rtol=1e-14)
    np.testing.assert_allclose(jitted.quality, eager.quality, rtol=1e-14)
    np.testing.assert_allclose(path.lam, eager_path.lam, rtol=1e-14)
    np.testing.assert_allclose(path.cost, eager_path.cost, rtol=1e-12)
    np.testing.assert_allclose(path.quality, eager_path.quality, rtol=1e-12)


def test_a_new_lambda_batch_does_not_recompile():
    ds = cascjax.synthetic(seed=4, n_queries=50, n_models=3)
    est = cascjax.perfect_estimates(ds)
    for _ in range(2):  # twice: the first call may end by clearing the caches (the bound on live programs)
        cascjax.sweep(ds, est, np.linspace(0, 1, 16))
    before = programs()["total"]
    again = cascjax.sweep(ds, est, np.linspace(2, 5, 16))
    assert programs()["total"] == before  # no new program of any kind
    assert again.lam.shape == (16,)
    # 17 λ share the bucket of 32 with 18..32: new programs for the event route's two phases, then none
    cascjax.sweep(ds, est, np.linspace(0, 1, 17))
    assert programs()["total"] == before + 2
    cascjax.sweep(ds, est, np.linspace(0, 1, 29))
    assert programs()["total"] == before + 2


def test_new_data_of_the_same_shape_does_not_recompile_the_event_route():
    """The event route's programs depend on the shapes alone: hulls of every length (all six models on the hull,
    or one model best everywhere) reuse them."""
    n, m = 50, 6
    cost = np.tile(np.arange(1.0, m + 1), (n, 1))
    concave = np.tile(np.sqrt(np.arange(1.0, m + 1)), (n, 1))  # every model a hull vertex: 5 breakpoints
    flat = np.tile(np.full(m, 0.5), (n, 1))  # the cheapest model best at every λ: no breakpoint
    lam = np.linspace(0, 1, 64)
    runs = []
    for mu in (concave, flat, concave):
        ds = cascjax.Dataset.from_arrays(np.asarray(mu > 0.6, float), cost, sort=False)
        before = programs()["total"]
        runs.append(cascjax.sweep(ds, _estimates(mu, cost), lam))
        runs[-1] = (runs[-1], programs()["total"] - before)
    assert [new for _, new in runs[1:]] == [0, 0]
    assert float(runs[0][0].cost[0]) == 6.0 and float(runs[1][0].cost[-1]) == 1.0


def test_float32_and_float64_agree():
    # Dyadic values are exact in both precisions, so the decisions must be identical.
    rng = np.random.default_rng(0)
    quality = rng.integers(0, 9, (300, 5)) / 8
    cost = rng.integers(1, 33, (300, 5)) / 32
    lam = np.concatenate([[0.0], 2.0 ** np.arange(-6, 6)])
    out = {}
    for dtype in (np.float32, np.float64):
        ds = cascjax.Dataset.from_arrays(quality.astype(dtype), cost.astype(dtype))
        assert ds.quality.dtype == dtype
        est = cascjax.perfect_estimates(ds)
        out[dtype] = (cascjax.sweep(ds, est, lam, return_choices=True), cascjax.routing_path(ds, est))
    (g32, p32), (g64, p64) = out[np.float32], out[np.float64]
    np.testing.assert_array_equal(g32.choice, g64.choice)
    np.testing.assert_allclose(g32.quality, g64.quality, rtol=1e-6)
    np.testing.assert_allclose(g32.cost, g64.cost, rtol=1e-6)
    np.testing.assert_allclose(p32.lam, p64.lam, rtol=1e-6)
    np.testing.assert_allclose(p32.quality, p64.quality, rtol=1e-6)
    # And on real data with noisy estimates the curves agree to float32 precision.
    ex = cascjax.load_example()
    ex32 = cascjax.Dataset.from_arrays(np.asarray(ex.quality, np.float32), np.asarray(ex.cost, np.float32),
                                       models=ex.models)
    a64 = cascjax.auc(cascjax.routing_path(ex, cascjax.perfect_estimates(ex)), ex)
    a32 = cascjax.auc(cascjax.routing_path(ex32, cascjax.perfect_estimates(ex32)), ex)
    assert abs(a64 - a32) < 1e-3


def test_decimal_estimates_tie_in_both_precisions():
    """Scores 0.3 − 1·0.7 and 0.1 − 1·0.5 differ by rounding only; the default tolerance ties them."""
    mu = np.array([[0.1, 0.3]])
    c_hat = np.array([[0.5, 0.7]])
    for dtype in (np.float32, np.float64):
        ds = cascjax.Dataset.from_arrays(np.array([[0.0, 1.0]], dtype), c_hat.astype(dtype), sort=False)
        est = _estimates(mu.astype(dtype), c_hat.astype(dtype))
        assert int(cascjax.sweep(ds, est, [1.0], tie="min", return_choices=True).choice[0, 0]) == 0
        assert int(cascjax.sweep(ds, est, [1.0], tie="max", return_choices=True).choice[0, 0]) == 1
    # Without a tolerance the result depends on rounding: the oracle comparison would catch this kernel.
    ds = cascjax.Dataset.from_arrays(np.array([[0.0, 1.0]]), c_hat, sort=False)
    est = _estimates(mu, c_hat)
    strict = [int(cascjax.sweep(ds, est, [1.0], tie=t, tie_rtol=0.0, return_choices=True).choice[0, 0])
              for t in ("min", "max")]
    assert strict[0] == strict[1]


def test_the_oracle_comparison_detects_a_broken_kernel():
    """Guard against tests that cannot fail: a kernel with the tie rules swapped disagrees with the oracle."""
    quality = np.array([[0.0, 1.0], [1.0, 0.0]])
    cost = np.array([[1.0, 2.0], [1.0, 2.0]])
    mu = np.array([[0.5, 1.0], [0.5, 1.0]])
    ds = cascjax.Dataset.from_arrays(quality, cost, sort=False)
    est = _estimates(mu, cost)
    broken = cascjax.sweep(ds, est, [0.5], tie="max", return_choices=True)  # λ = 0.5 is a tie
    _, _, ref = oracle.reference_routing(quality, cost, mu, cost, [0.5], "min")
    assert not np.array_equal(np.asarray(broken.choice), ref)
    # and a path that skipped its last breakpoint would not match the sweep beyond it
    path = cascjax.routing_path(ds, est)
    truncated = cascjax.Curve(path.lam[:-1], path.cost[:-1], path.quality[:-1])
    assert float(cascjax.path_at(truncated, [1.0]).cost[0]) != float(cascjax.sweep(ds, est, [1.0]).cost[0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(lambdas=[0.1, -1.0]), "non-negative"),
    (dict(lambdas=[0.1, float("nan")]), "finite"),
    (dict(lambdas=[]), "empty"),
    (dict(lambdas=[[0.1, 0.2]]), "shape [L]"),
    (dict(lambdas=[0.1], strategy="oracle"), "unknown strategy 'oracle'"),
    (dict(lambdas=[0.1], tie="median"), "unknown tie rule 'median'"),
    (dict(lambdas=[0.1], batch_size=0), "batch_size"),
    (dict(lambdas=[0.1], tie_rtol=-1.0), "tie_rtol"),
])
def test_sweep_bad_input(kwargs, message):
    ds = cascjax.synthetic(seed=0, n_queries=10, n_models=3)
    with pytest.raises(cascjax.CascjaxError, match=message.replace("[", r"\[").replace("]", r"\]")):
        cascjax.sweep(ds, cascjax.perfect_estimates(ds), **kwargs)


def test_estimates_of_the_wrong_shape():
    ds = cascjax.synthetic(seed=0, n_queries=10, n_models=3)
    other = cascjax.perfect_estimates(cascjax.synthetic(seed=0, n_queries=11, n_models=3))
    with pytest.raises(cascjax.CascjaxError, match="quality_ante has shape"):
        cascjax.sweep(ds, other, [0.1])
    with pytest.raises(cascjax.CascjaxError, match="quality_ante has shape"):
        cascjax.routing_path(ds, other)
    with pytest.raises(cascjax.CascjaxError, match="unknown tie rule"):
        cascjax.path_at(cascjax.routing_path(ds, cascjax.perfect_estimates(ds)), [0.1], "median")
