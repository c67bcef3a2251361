"""Test configuration: thread pool, hypothesis profiles, one JIT warm-up per session."""

from __future__ import annotations

import os

# Allow up to 4 Numba threads even on a 2-core machine, so thread-count
# invariance can be tested for 1, 2 and 4 threads. Must precede numba's import.
os.environ.setdefault("NUMBA_NUM_THREADS", "4")

import numba
import pytest
from hypothesis import HealthCheck, settings

numba.set_num_threads(min(os.cpu_count() or 1, numba.config.NUMBA_NUM_THREADS))

# JIT code: no per-example deadline (compilation and first calls are slow).
# The statistical properties (tests/test_properties_engine.py) add database=None to
# these profiles and state each profile's false-failure rate; ``ci``'s derandomize
# already implies database=None.
settings.register_profile("dev", max_examples=20, deadline=None)
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def warm_kernels() -> None:
    """Compile (or load from the cache) every engine kernel once per session.

    Engine test modules request it with ``pytestmark = pytest.mark.usefixtures(...)``.
    """
    from initsim.simulation import simulate

    for method in ("exact", "dense"):
        simulate(
            activation="tanh",
            init="he_normal",
            depth=2,
            width=4,
            nets=2,
            method=method,
            backward=True,
            histograms=4,
            seed=0,
        )
