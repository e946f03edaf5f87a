"""Shared, seeded simulated problems for the iterative-solver tests."""

from __future__ import annotations

import pytest

from engine.data import Dataset
from engine.simulation.simulate import SimulationConfig, simulate
from tests.conftest import single_torch_thread

_one_torch_thread = pytest.fixture(scope="module", autouse=True)(single_torch_thread)


@pytest.fixture(scope="session")
def smooth64() -> Dataset:
    """The issue's problem: 64x64 disk probe, 100-position raster, 1e6 photons, smooth object."""
    return simulate(SimulationConfig(object="grf", probe="disk", scan="raster", n_positions=100,
                                     N=64, step=8, nphotons=1e6, seed=1))


@pytest.fixture(scope="session")
def small32() -> Dataset:
    """A small noise-free problem: 32x32, 36 positions."""
    return simulate(SimulationConfig(object="grf", probe="disk", scan="raster", n_positions=36,
                                     N=32, step=5, nphotons=0, seed=3))

