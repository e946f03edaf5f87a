"""Shared fixtures: small seeded datasets (generated, never copied from shared data)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from engine.backends import get_backend
from engine.simulation.simulate import SimulationConfig, simulate

# property tests keep their example database and caches in a temporary folder, not in the
# checkout (a test run leaves no files)
try:
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="ptycho-hypothesis-"))
except ImportError:  # hypothesis is a dev extra
    pass

# the torch device of the backend tests: cpu here and in CI; a lent GPU session runs the
# same tests on cuda (benchmarks/gpu_session.sh)
TORCH_DEVICE = os.environ.get("PTYCHO_TEST_DEVICE", "cpu")


def single_torch_thread():
    """Generator body of the suites' autouse fixtures: one torch thread while they run.

    On a busy 2-core runner two OpenMP threads spin against each other (5-10x slower); one
    thread keeps the suites fast and the losses bit-reproducible.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_ds():
    """An asymmetric object, 64 jittered raster positions, N = 32."""
    return simulate(SimulationConfig(object="asym", probe="disk", scan="raster", n_positions=64,
                                     N=32, step=5, jitter=0.4, nphotons=1e6, seed=3))


@pytest.fixture(scope="session")
def numpy_backend():
    return get_backend("numpy")


@pytest.fixture(scope="session")
def torch_backend():
    return get_backend("torch", TORCH_DEVICE)


@pytest.fixture(params=["numpy", "torch"])
def backend(request):
    return get_backend(request.param, "cpu")


def rel_err(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
