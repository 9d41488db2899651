"""Test configuration: x64 available, strict rank promotion, deterministic hypothesis profiles.

Tests that exercise float32 create float32 arrays explicitly; x64 is enabled so that float64 runs too.
"""

import os
import sys
import time

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("ci", max_examples=12, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_FAILED: list[str] = []
_STARTED = time.perf_counter()


def pytest_configure(config):
    """The verification report counts the examples of one process: with ``CASCJAX_VERIFY_REPORT`` the run is not
    distributed over workers (pyproject's ``-n auto`` from pytest-xdist; the default run uses it)."""
    if os.environ.get("CASCJAX_VERIFY_REPORT") and getattr(config.option, "dist", "no") != "no":
        config.option.dist, config.option.numprocesses, config.option.tx = "no", 0, []


def pytest_runtest_logreport(report):
    if report.failed:
        _FAILED.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """With ``CASCJAX_VERIFY_REPORT=path.md``: the theorem suite's report of this run (cascjax.testing.report)."""
    path = os.environ.get("CASCJAX_VERIFY_REPORT")
    if path and "cascjax.testing" in sys.modules:
        from cascjax.testing import report

        out = report.write(path, profile=os.environ.get("HYPOTHESIS_PROFILE", "ci"),
                           seconds=time.perf_counter() - _STARTED, failed=_FAILED,
                           examples=settings.default.max_examples)
        print(f"\nverification report written to {out}")


@pytest.fixture
def broken(monkeypatch):
    """``broken(module, name, mutant)`` swaps in a mutant for one test. Every compiled program is dropped before
    and after (``jax.clear_caches()``): the kernel that traces the mutant may be inlined in an outer jitted
    function, so clearing the kernel alone can leave the real thing running. So the mutant is what runs and
    later tests get the real thing, whenever the process last cleared its caches."""
    def swap(module, name, mutant):
        jax.clear_caches()
        monkeypatch.setattr(module, name, mutant)

    yield swap
    monkeypatch.undo()
    jax.clear_caches()
