"""Near-field ptychography end to end: simulate with the angular spectrum (flat wavefront and
Fresnel scaling), reconstruct with every solver; a far-field model of the same data fails."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.errors import InputError
from engine.iterative import (
    EPIEOptions,
    LSQMLOptions,
    RPIEOptions,
    phase_rms_unregistered,
    reconstruct,
)
from engine.simulation.simulate import SimulationConfig, simulate

# pixel Fresnel number p²/(λz) = 0.1: the transfer function is sampled (N p²/(λz) = 3.2)
NEAR = {"propagation": "near", "wavelength": 1e-10, "distance": 0.1, "detector_pixel": 1e-6}


@pytest.fixture(scope="module")
def star() -> object:
    return simulate(SimulationConfig(object="siemens", probe="disk", n_positions=49, N=32,
                                     step=4, nphotons=1e4, seed=0, **NEAR))


def test_simulated_data_carry_the_geometry(star) -> None:
    assert star.geometry is not None and star.geometry.propagation == "near"
    assert star.pixel_size == (1e-6, 1e-6)
    # near-field patterns are real-space holograms: their energy sits where the probe is,
    # not in a central far-field peak
    mean = np.mean(star.diffraction.astype(float) ** 2, axis=0)
    far = simulate(SimulationConfig(object="siemens", probe="disk", n_positions=49, N=32,
                                    step=4, nphotons=1e4, seed=0))
    far_mean = np.mean(far.diffraction.astype(float) ** 2, axis=0)
    assert mean.max() / mean.mean() < 0.2 * far_mean.max() / far_mean.mean()


def test_near_field_reconstruction_needs_the_near_field_model(star) -> None:
    opts = LSQMLOptions(iterations=20, batch_size=16, noise="poisson")
    near = reconstruct(star, opts)
    far = reconstruct(star, opts.replace(propagation="far"))
    e_near = phase_rms_unregistered(near.canvas, star.object)
    e_far = phase_rms_unregistered(far.canvas, star.object)
    assert near.info["propagation"] == "near" and far.info["propagation"] == "far"
    assert e_near < 0.12  # 1 rad spokes, 1e4 photons per pattern
    assert e_far > 5 * e_near
    assert near.errors[-1] < 0.25 * far.errors[-1]  # near the Poisson floor


@pytest.mark.parametrize("options", [EPIEOptions(iterations=15, batch_size=8),
                                     RPIEOptions(iterations=15, batch_size=8, alpha=0.5)],
                         ids=["epie", "rpie"])
def test_pie_solvers_reconstruct_near_field_data(star, options) -> None:
    err = phase_rms_unregistered(reconstruct(star, options).canvas, star.object)
    far = reconstruct(star, options.replace(propagation="far"))
    assert err < 0.2
    assert phase_rms_unregistered(far.canvas, star.object) > 3 * err


def test_fresnel_scaling_geometry_round_trip() -> None:
    """A divergent beam (focus 5 mm upstream, detector 0.5 m: M = 101): the simulator and the
    solver agree on the effective geometry, and the object pixel is the detector's / M."""
    cfg = SimulationConfig(object="siemens", probe="zone-plate", n_positions=36, N=32,
                           step=4, nphotons=0, seed=1, propagation="near", wavelength=1e-10,
                           distance=0.5, detector_pixel=6.5e-6, focus_distance=5e-3)
    ds = simulate(cfg)
    assert ds.geometry.magnification == pytest.approx(101.0)
    assert ds.pixel_size[0] == pytest.approx(6.5e-6 / 101)
    res = reconstruct(ds, LSQMLOptions(iterations=15, batch_size=12))
    assert res.info["distance"] == pytest.approx(0.5 / 101)
    e = phase_rms_unregistered(res.canvas, ds.object)
    # the plain (unscaled) distance is a different hologram: it cannot fit the data
    wrong = dataclasses.replace(ds, geometry=dataclasses.replace(ds.geometry,
                                                                 focus_distance=None))
    e_wrong = phase_rms_unregistered(reconstruct(wrong, LSQMLOptions(
        iterations=15, batch_size=12)).canvas, ds.object)
    assert e < 0.1 and e_wrong > 3 * e


def test_torch_matches_numpy_on_near_field_data(star) -> None:
    opts = LSQMLOptions(iterations=2, batch_size=49, batch_order="sequential")
    a = reconstruct(star, opts)
    b = reconstruct(star, opts, backend="torch", device="cpu")
    assert np.allclose(a.errors, b.errors, rtol=1e-4)
    rel = np.linalg.norm(b.object - a.object) / np.linalg.norm(a.object)
    assert rel < 1e-5


def test_near_field_needs_a_geometry_and_the_network_refuses_it(star, tmp_path) -> None:
    far = simulate(SimulationConfig(object="grf", n_positions=16, N=32, step=6, seed=0))
    with pytest.raises(InputError, match="geometry"):
        reconstruct(far, LSQMLOptions(iterations=1, propagation="near"))
    from engine.network.regime import check_far_field

    check_far_field(far, "training")
    with pytest.raises(InputError, match="near-field") as exc:
        check_far_field(star, "training")
    assert "\n" not in str(exc.value)
    from engine import api

    with pytest.raises(InputError, match="training data.*near-field"):
        api.train(star, api.TrainConfig(epochs=1), out=tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_near_field_simulation_needs_the_whole_geometry() -> None:
    with pytest.raises(InputError, match="near"):
        SimulationConfig(propagation="near", wavelength=1e-10)
    with pytest.raises(InputError, match="geometry"):
        SimulationConfig(wavelength=1e-10, distance=1.0)
    with pytest.raises(InputError, match="focus_distance"):
        SimulationConfig(wavelength=1e-10, distance=1.0, detector_pixel=1e-6,
                         focus_distance=0.1)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_problem_propagates_near_field_without_the_frame(backend: str) -> None:
    from engine.backends import get_backend
    from engine.backends.propagation import Propagator
    from engine.geometry import Geometry
    from engine.iterative.model import Problem

    be = get_backend(backend, "cpu")
    prop = Propagator.from_geometry(Geometry(1e-10, 0.1, (1e-6, 1e-6), "near"), 16)
    problem = Problem.create(be, be.asarray(np.ones((2, 16, 16))), np.zeros((2, 2)), 1.0,
                             propagator=prop)
    assert problem.frame is None and problem.near is not None
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1, 16, 16)) + 1j * rng.standard_normal((2, 1, 16, 16))
    y = rng.standard_normal((2, 1, 16, 16)) + 1j * rng.standard_normal((2, 1, 16, 16))
    ax = be.to_numpy(problem.far_field(be.asarray(x, complex=True)))
    aty = be.to_numpy(problem.exit_wave(be.asarray(y, complex=True)))
    assert abs(np.vdot(y, ax) - np.vdot(aty, x)) < 1e-5 * abs(np.vdot(y, ax))
    ref = np.fft.ifft2(np.fft.fft2(x) * prop.transfer())
    assert np.max(np.abs(ax - ref)) < 1e-5 * np.max(np.abs(ref))
