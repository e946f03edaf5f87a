"""Shared fixtures of the registration / metrics / evaluation tests."""

from __future__ import annotations

import numpy as np
import pytest

from engine.simulation.simulate import SimulationConfig, simulate

from .helpers import canvas_of


@pytest.fixture(scope="session")
def dataset():
    """A small simulated scan with its ground-truth object (70 x 70, N = 32)."""
    return simulate(SimulationConfig(object="lines", n_positions=36, N=32, step=6,
                                     nphotons=0, seed=0))


@pytest.fixture(scope="session")
def truth(dataset) -> np.ndarray:
    return dataset.object


@pytest.fixture(scope="session")
def make_canvas(dataset):
    return lambda obj: canvas_of(obj, dataset.positions, dataset.N)
