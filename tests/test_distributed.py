"""Several processes through ``jax.distributed``: 2 processes of 2 CPU devices each (gloo collectives over
127.0.0.1) shard the query axis over all 4 devices and give the plain one-process, one-device curves, to the bit.

The workers are ``tests/_distributed_worker.py``; each computes the same sweeps and exact path on the same full
dataset and writes what it received. Exact equality holds across processes for the reason it holds across the
devices of one process (with the same ``chunk_size`` the chunks, and so the order of the sums, do not depend
on the device count), and each process reads its own copy of a replicated result.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).with_name("_distributed_worker.py")
N = 103  # _distributed_worker.N
SWEEPS = ("routing", "threshold_cascade", "cascade", "cascade_routing")
#: Seconds all the workers may take together (measured: 26-30 s on an idle 2-core CPU, 63-68 s under load).
TIMEOUT = 240

pytestmark = pytest.mark.slow


def _has_gloo() -> bool:
    """Whether this jaxlib was built with the gloo CPU collectives ``jax.distributed`` uses on CPU."""
    try:
        from jax._src.lib import _jax
    except ImportError:
        return False
    return hasattr(_jax, "make_gloo_tcp_collectives")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(n_processes: int, folder: Path, port: int) -> tuple[list, list[Path]]:
    """Starts ``n_processes`` workers (one plain process for 1); returns them and the files they write."""
    # The workers share the run's persistent cache (process 0 writes it): with a warm cache this file took 23 s
    # alone, against 41 s with the cache off in the workers.
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # the worker sets its device count itself
    files = [folder / f"{n_processes}-{i}.npz" for i in range(n_processes)]
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(i), str(n_processes), str(port), str(f)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, f in enumerate(files)]
    return procs, files


def _collect(procs: list, files: list[Path], deadline: float) -> list[dict]:
    """Waits for the workers and returns what each wrote."""
    logs = [None] * len(procs)
    try:
        for i, proc in enumerate(procs):
            logs[i] = proc.communicate(timeout=max(deadline - time.monotonic(), 1))[0]
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        logs = [proc.communicate()[0] if log is None else log for proc, log in zip(procs, logs)]
        pytest.fail(f"{len(procs)} worker(s) still running after {TIMEOUT} s:\n"
                    + "\n".join(log[-2000:] for log in logs))
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log[-4000:]
    return [dict(np.load(f)) for f in files]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """(the 2 processes' outputs, the one-process output)."""
    if not _has_gloo():
        pytest.skip("this jaxlib has no gloo CPU collectives, which jax.distributed needs on CPU")
    folder = tmp_path_factory.mktemp("distributed")
    deadline = time.monotonic() + TIMEOUT
    # The reference process runs beside the two (they wait on each other's collectives part of the time).
    started = [_start(2, folder, _free_port()), _start(1, folder, _free_port())]
    try:
        two, (one,) = (_collect(*run, deadline) for run in started)
    finally:  # a failure in one run leaves no worker of the other behind
        for proc in (p for procs, _ in started for p in procs if p.poll() is None):
            proc.kill()
            proc.communicate()
    return two, one


def _assert_same(name, two, one):
    for i, got in enumerate(two):
        assert f"{name}/error" not in got, f"process {i}: {got[f'{name}/error']}"
        fields = sorted(k for k in one if k.startswith(name + "/"))
        assert fields and fields == sorted(k for k in got if k.startswith(name + "/")), (i, fields)
        for field in fields:
            np.testing.assert_array_equal(got[field], one[field], err_msg=f"process {i}, {field}")


def test_each_process_holds_its_share(results):
    """``jax.devices()`` spans both processes (4 devices, 2 local each), and the mesh gives each process's
    devices a contiguous, disjoint share of the queries: together all N."""
    two, one = results
    assert [r["process"].tolist() for r in two] == [[0, 4, 2], [1, 4, 2]]
    assert one["process"].tolist() == [0, 1, 1]
    first, second = (r["queries"].tolist() for r in two)
    assert first and second and first + second == list(range(N))


@pytest.mark.parametrize("strategy", SWEEPS)
def test_sweeps_over_two_processes_equal_one_process(results, strategy):
    """Every sweep's λ, mean cost and quality, fractions answered and models run are the one-process values
    to the bit, in both processes."""
    _assert_same(strategy, *results)


def test_per_query_outputs_over_two_processes_equal_one_process(results):
    """``return_choices=True``: every process receives the whole [L, N] choice and query cost, equal to the
    one-process ones, at N = 103 and at N = 128 (a multiple of the chunk size times the 4 devices)."""
    for name in ("choices103", "choices128"):
        _assert_same(name, *results)


def test_routing_path_over_two_processes_equals_one_process(results):
    """The exact routing path: the same vertices (λ, cost, quality) as one process, to the bit."""
    _assert_same("routing_path", *results)


def test_routing_event_sweep_over_two_processes_equals_one_process(results):
    """A routing sweep of 64 λ (the event route: hull segments per query chunk, then the rule and one sorted
    running sum on the replicated per-query outputs): every field, per-query outputs included, to the bit."""
    _assert_same("routing_events", *results)

