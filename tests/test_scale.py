"""Scale: chunked = unchunked, sharded over devices = one device, float32 ≈ float64, and the options' checks."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cascjax
from cascjax import _chunks
from cascjax._cascade_routing import chunk_bytes

N, M = 24, 4
#: Options per strategy: small K and depth keep each compilation short.
OPTIONS = {"routing": {}, "threshold_cascade": dict(max_depth=3), "cascade": dict(max_depth=3, samples=4),
           "cascade_routing": dict(max_depth=3, samples=4)}


def _instance(seed, n=N, m=M, dtype=jnp.float64):
    rng = np.random.default_rng(seed)
    quality = rng.random((n, m))
    cost = np.sort(rng.random((n, m)), axis=1) + 0.01
    ds = cascjax.Dataset(jnp.asarray(quality, dtype), jnp.asarray(cost, dtype))
    est = cascjax.noisy_estimates(ds, jax.random.key(seed), "low")
    return ds, est


def _values(strategy, est, n=6):
    if strategy == "threshold_cascade":
        return cascjax.threshold_grid(est, n, max_depth=3)
    return cascjax.lambda_grid(est, n)


def _same(a, b, exact_sums=True):
    for field in ("choice", "query_cost"):
        np.testing.assert_array_equal(np.asarray(getattr(a, field)), np.asarray(getattr(b, field)), err_msg=field)
    for field in ("cost", "quality", "answered", "ran"):
        x, y = np.asarray(getattr(a, field)), np.asarray(getattr(b, field))
        if exact_sums:
            np.testing.assert_array_equal(x, y, err_msg=field)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15, err_msg=field)


@pytest.mark.parametrize("strategy", list(OPTIONS))
@settings(max_examples=2)
@given(seed=st.integers(0, 2**16))
def test_chunked_sweeps_equal_the_unchunked_sweep(strategy, seed):
    """Chunk sizes that divide N (6, and 24 = N) and one that does not (7): the same decisions per query
    and λ, and the same means to the bit (chunks are powers of two and sums pairwise trees, cascjax._compile)."""
    ds, est = _instance(seed)
    lam = _values(strategy, est)
    whole = cascjax.sweep(ds, est, lam, strategy, return_choices=True, chunk_size=N, **OPTIONS[strategy])
    for chunk in (6, 7):
        _same(cascjax.sweep(ds, est, lam, strategy, return_choices=True, chunk_size=chunk, **OPTIONS[strategy]),
              whole)


@settings(max_examples=3)
@given(seed=st.integers(0, 2**16))
def test_chunked_routing_event_sweeps_equal_the_unchunked_one(seed):
    """The routing event route (64 λ) sums its events in an order that depends on no chunking: the same
    decisions and the same sums to the bit for chunks of 1, 7 and N queries, with and without per-query
    outputs."""
    ds, est = _instance(seed)
    lam = cascjax.lambda_grid(est, 64)
    whole = cascjax.sweep(ds, est, lam, return_choices=True, chunk_size=N)
    for chunk in (1, 7):
        _same(cascjax.sweep(ds, est, lam, return_choices=True, chunk_size=chunk), whole)
    plain = cascjax.sweep(ds, est, lam, chunk_size=3)
    for field in ("cost", "quality", "answered"):
        np.testing.assert_array_equal(np.asarray(getattr(plain, field)), np.asarray(getattr(whole, field)), field)


def test_chunk_from_a_memory_budget():
    """``memory`` sets the chunk size: a tiny budget gives one query per chunk and still the same curve; the
    plan divides a budget by the per-query estimate and takes the largest power of two under it — or its half
    or quarter where they pad the queries less —, or all N queries in one chunk when they fit."""
    ds, est = _instance(3)
    lam = _values("cascade", est)
    small = cascjax.sweep(ds, est, lam, "cascade", return_choices=True, memory=1, **OPTIONS["cascade"])
    _same(small, cascjax.sweep(ds, est, lam, "cascade", return_choices=True, **OPTIONS["cascade"]))
    most = 2**30 // 704  # queries one chunk may hold; the largest power of two under it is 2^20
    assert 2**20 <= most < 2**21
    # 10,000,000 queries: 10 chunks of 2^20 or 20 of 2^19 pad to 10,485,760 rows, 39 of 2^18 to 10,223,616.
    assert _chunks.plan(10_000_000, None, 2**30, 704, devices=1).chunk == 2**18
    assert _chunks.plan(2**22, None, 2**30, 704, devices=1).chunk == 2**20  # no padding: the largest
    assert _chunks.plan(20_480, None, 2**30, 2**17, devices=1).chunk == 4_096  # 5 x 4,096, not 3 x 8,192
    assert _chunks.plan(2_000, None, 1835, 1, devices=1).chunk == 1_024
    assert _chunks.plan(100, None, 2**40, 704, devices=1).chunk == 100  # all in one chunk: no padding
    assert _chunks.plan(100, 7, None, 704, devices=1).chunk == 8  # chunk_size rounded up to a power of two
    per_query, fixed = chunk_bytes(11, 5, 64, 256, 4)
    chunk = _chunks.plan(1_000_000, None, 2**30, per_query, fixed, devices=1).chunk
    assert 0 < chunk < 1_000_000 and chunk * per_query + fixed <= 2**30
    # A fixed part over the budget (cascade routing's tables on 24 models, depth 5) still leaves the queries
    # half the budget, not chunks of one: 2^29 / 17.7 MB = 30 queries, the largest power of two 16.
    per_query, fixed = chunk_bytes(24, 5, 64, 2, 4)
    assert fixed > 2**30 and 2**29 // per_query == 30
    assert _chunks.plan(1_000_000, None, 2**30, per_query, fixed, devices=1).chunk == 16


def test_chunked_paths_equal_the_unchunked_paths():
    ds, est = _instance(5)
    pairs = [(cascjax.routing_path(ds, est, chunk_size=5), cascjax.routing_path(ds, est)),
             (cascjax.routing_path(ds, est, memory=1), cascjax.routing_path(ds, est)),
             (cascjax.cascade_path(ds, est, max_depth=3, samples=4, chunk_size=7),
              cascjax.cascade_path(ds, est, max_depth=3, samples=4)),
             (cascjax.cascade_routing_path(ds, est, max_depth=2, samples=4, chunk_size=5),
              cascjax.cascade_routing_path(ds, est, max_depth=2, samples=4, chunk_size=N))]
    for a, b in pairs:
        np.testing.assert_array_equal(np.asarray(a.lam), np.asarray(b.lam))
        np.testing.assert_array_equal(np.asarray(a.cost), np.asarray(b.cost))
        np.testing.assert_array_equal(np.asarray(a.quality), np.asarray(b.quality))


def test_unpadded_inputs_give_the_padded_bits(monkeypatch):
    """Inputs of ``PAD_BYTES`` or more per array are neither padded to a bucket nor copied to whole chunks: each
    chunk is read in place, the last one's rows past N taken from the start with weight 0. Same bits as the
    padded run, for every strategy and route, per-query outputs and the exact paths included (27 queries in
    chunks of 8: the last chunk has 3 real rows)."""
    from cascjax import _compile, _sweep

    ds, est = _instance(11, n=27)

    def everything():
        runs = {s: cascjax.sweep(ds, est, _values(s, est), s, return_choices=True, chunk_size=8, **OPTIONS[s])
                for s in OPTIONS}
        with monkeypatch.context() as mp:  # the routing event route too
            mp.setattr(_sweep, "EVENT_LAMBDAS", ((None, 1),))
            runs["routing events"] = cascjax.sweep(ds, est, _values("routing", est), return_choices=True,
                                                   chunk_size=8)
        paths = [cascjax.routing_path(ds, est, chunk_size=8),
                 cascjax.cascade_path(ds, est, max_depth=3, samples=4, chunk_size=8)]
        return runs, paths

    padded, padded_paths = everything()
    assert _compile.bucket(27, 4 * 8) == 32
    monkeypatch.setattr(_compile, "PAD_BYTES", 1)
    assert _compile.bucket(27, 4 * 8) == 27
    in_place, paths = everything()
    for name in padded:
        _same(in_place[name], padded[name])
    for a, b in zip(paths, padded_paths):
        for field in ("lam", "cost", "quality"):
            np.testing.assert_array_equal(np.asarray(getattr(a, field)), np.asarray(getattr(b, field)))


def test_chunks_are_read_in_place():
    """A query axis that is not a whole number of chunks costs no copy of the input: the compiled program's
    temporaries stay far below the input's size (a padded copy would be larger than the input)."""
    a = jnp.ones((1000, 256), jnp.float32)

    def run(a, n):
        return _chunks.over_queries(lambda args: ((args[0] * args[1][:, None]).sum(0), args[0][:, 0]), (a,), n,
                                    _chunks.Plan(64))

    compiled = jax.jit(run).lower(a, np.int32(1000)).compile()
    assert compiled.memory_analysis().temp_size_in_bytes < a.nbytes / 4
    sums, first = jax.jit(run)(a, np.int32(999))
    np.testing.assert_array_equal(np.asarray(sums), np.full(256, 999.0, np.float32))
    assert first.shape == (1000,)


@pytest.mark.parametrize("strategy", list(OPTIONS))
def test_float32_is_close_to_float64(strategy):
    """The default float32 (no ``jax_enable_x64``) against float64 on continuous data (few near-ties): the
    same decision for ≥ 99% of (query, λ) pairs and means within 1%."""
    n = 300
    ds64, est64 = _instance(11, n=n)
    ds32 = cascjax.Dataset(ds64.quality.astype(jnp.float32), ds64.cost.astype(jnp.float32))
    est32 = jax.tree.map(lambda a: a.astype(jnp.float32), est64)
    lam = _values(strategy, est64, 16)
    a = cascjax.sweep(ds32, est32, lam, strategy, return_choices=True, **OPTIONS[strategy])
    b = cascjax.sweep(ds64, est64, lam, strategy, return_choices=True, **OPTIONS[strategy])
    assert a.cost.dtype == jnp.float32 and b.cost.dtype == jnp.float64
    assert np.mean(np.asarray(a.choice) == np.asarray(b.choice)) >= 0.99
    np.testing.assert_allclose(np.asarray(a.quality, np.float64), np.asarray(b.quality), rtol=1e-2)
    np.testing.assert_allclose(np.asarray(a.cost, np.float64), np.asarray(b.cost), rtol=1e-2)


@pytest.mark.parametrize("options, match", [
    (dict(chunk_size=0), "chunk_size"), (dict(chunk_size=2.5), "chunk_size"), (dict(chunk_size=True), "chunk_size"),
    (dict(memory=0), "memory"), (dict(memory=float("nan")), "memory"), (dict(memory="1GB"), "memory"),
    (dict(devices=0), "devices"), (dict(devices=10_000), "devices"), (dict(devices="gpu"), "devices"),
])
def test_bad_chunk_memory_and_device_options(options, match):
    ds, est = _instance(1)
    for strategy in OPTIONS:
        with pytest.raises(cascjax.CascjaxError, match=match):
            cascjax.sweep(ds, est, _values(strategy, est), strategy, **OPTIONS[strategy], **options)
    with pytest.raises(cascjax.CascjaxError, match=match):
        cascjax.routing_path(ds, est, **options)


_SHARDED = """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
import cascjax
from cascjax import _chunks
assert jax.device_count() == 4 and _chunks.plan(103, 10, None, 1.0).n_devices == 4
rng = np.random.default_rng(0)
n, m = 103, 4                     # not a multiple of 4 devices or of the chunk size
ds = cascjax.Dataset(rng.random((n, m)), np.sort(rng.random((n, m)), axis=1) + 0.01)
est = cascjax.noisy_estimates(ds, jax.random.key(0), "low")
lam = cascjax.lambda_grid(est, 8)
from cascjax._sweep import group_sweep
groups = (rng.random((n, 3)) < 0.5).astype(np.int8)
groups[0] = 1
runs = {"routing": {}, "threshold_cascade": dict(max_depth=3), "cascade": dict(max_depth=3, samples=4),
        "cascade_routing": dict(max_depth=3, samples=4), "routing events": {}}
for strategy, kw in runs.items():
    values = cascjax.threshold_grid(est, 8, max_depth=3) if strategy == "threshold_cascade" else lam
    if strategy == "routing events":  # 64 λ: the event route (cascjax._routing_events)
        strategy, values = "routing", cascjax.lambda_grid(est, 64)
    one = cascjax.sweep(ds, est, values, strategy, return_choices=True, chunk_size=10, devices=1, **kw)
    four = cascjax.sweep(ds, est, values, strategy, return_choices=True, chunk_size=10, **kw)
    for field in ("cost", "quality", "answered", "ran", "choice", "query_cost"):
        assert np.array_equal(np.asarray(getattr(one, field)), np.asarray(getattr(four, field))), (strategy, field)
    assert len(four.cost.sharding.device_set) == 4, four.cost.sharding
    # Sums per group of queries (the grid's engine): the same on four devices.
    one, four = (group_sweep(ds, est, values, groups, strategy, chunk_size=10, devices=d, **kw) for d in (1, None))
    for a, b in zip(one, four):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=strategy)
paths = {"routing_path": lambda **o: cascjax.routing_path(ds, est, chunk_size=10, **o),
         "cascade_path": lambda **o: cascjax.cascade_path(ds, est, max_depth=3, samples=4, chunk_size=10, **o),
         "cascade_routing_path": lambda **o: cascjax.cascade_routing_path(ds, est, max_depth=2, samples=4,
                                                                          chunk_size=10, **o)}
for name, run in paths.items():
    one, four = run(devices=1), run()
    for field in ("lam", "cost", "quality"):
        assert np.array_equal(np.asarray(getattr(one, field)), np.asarray(getattr(four, field))), (name, field)
fit_ds, test_ds = ds.split(0.5, seed=0)
fits = [cascjax.fit(fit_ds, cascjax.perfect_estimates(fit_ds), [0.3, 0.5], "routing", chunk_size=10, devices=d)
        for d in (1, None)]
for f in ("cost", "quality", "lo", "hi", "gamma"):
    assert np.array_equal(getattr(fits[0], f), getattr(fits[1], f), equal_nan=True), f
print("ok")
"""


def test_sharded_over_four_devices_equals_one_device():
    """A fresh process with 4 host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``): every
    sweep, exact path and a fit give the one-device results to the bit, with N a multiple of neither the
    device count nor the chunk size; sums per group of queries (``group_sweep``) to float64 rounding."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", _SHARDED], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok"), out.stdout
