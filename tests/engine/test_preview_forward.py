"""The preview's forward check follows the dataset's geometry (far or near field)."""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.backends import get_backend
from engine.physics.sources import truth_patches
from engine.preview import PreviewOptions, forward_check, preview
from engine.simulation.simulate import SimulationConfig, simulate

NEAR = {"propagation": "near", "wavelength": 1e-10, "distance": 0.1, "detector_pixel": 1e-6}


def test_forward_check_uses_the_geometry() -> None:
    near = simulate(SimulationConfig(object="siemens", n_positions=36, N=32, step=4,
                                     nphotons=1e6, seed=0, **NEAR))
    p = preview(near, PreviewOptions(gridsize=2))
    assert p.forward["propagation"] == "near"
    assert p.forward["misfit"] < 0.05  # Poisson noise at 1e6 photons
    be = get_backend("numpy")
    patches = truth_patches(near, be)[:8]
    idx = np.arange(8)
    assert forward_check(near, patches, idx, be, "far")["misfit"] > 0.3
    # a wrong distance is a different hologram
    wrong = dataclasses.replace(near, geometry=dataclasses.replace(near.geometry,
                                                                   distance=0.3))
    assert forward_check(wrong, patches, idx, be)["misfit"] > 5 * p.forward["misfit"]
    far = simulate(SimulationConfig(object="siemens", n_positions=36, N=32, step=4,
                                    nphotons=1e6, seed=0))
    f = preview(far).forward
    assert f["propagation"] == "far" and f["misfit"] < 0.05
