"""The checkerboard frame (even N) is an exact reformulation of the shifted transforms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.backends import get_backend
from engine.data import Dataset
from engine.iterative import EPIEOptions, LSQMLOptions, RPIEOptions, reconstruct
from engine.iterative.lsqml import lsqml_step
from engine.iterative.model import Problem
from engine.iterative.pie import pie_step
from engine.physics.scaling import intensity_scale, normalise_probe
from engine.physics.stitching import CanvasGeometry
from engine.simulation.simulate import SimulationConfig, simulate
from tests.conftest import TORCH_DEVICE

STEPS = [(pie_step, EPIEOptions(batch_size=8)), (pie_step, RPIEOptions(batch_size=8)),
         (lsqml_step, LSQMLOptions(batch_size=8, noise="poisson"))]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("step, options", STEPS, ids=lambda s: getattr(s, "method", ""))
def test_one_step_in_the_frame_equals_the_shifted_step(small32, backend, step, options):
    be = get_backend(backend, TORCH_DEVICE if backend == "torch" else "cpu")
    ds = small32
    geometry = CanvasGeometry.from_positions(ds.positions, ds.N)
    X = be.asarray(ds.diffraction / intensity_scale(ds.diffraction))
    tl = ds.positions - ds.N / 2 - np.asarray(geometry.origin, float)
    framed = Problem.create(be, X, tl, 1.0)
    plain = dataclasses.replace(framed, frame=None)
    assert framed.frame is not None
    rng = np.random.default_rng(0)
    obj = be.asarray(np.exp(0.3j * rng.standard_normal(geometry.shape)), complex=True)
    probe = be.asarray(normalise_probe(ds.probe)[0][None] * 0.9, complex=True)
    idx = rng.permutation(ds.n)[:8]
    o1, p1, e1 = step(plain, obj, probe, idx, options, True)
    o2, p2, e2 = step(framed, obj, framed.to_frame(probe), idx, options, True)
    scale = np.abs(be.to_numpy(o1)).max()
    assert np.abs(be.to_numpy(o1) - be.to_numpy(o2)).max() < 1e-5 * scale
    p1n, p2n = be.to_numpy(p1), be.to_numpy(framed.from_frame(p2))
    assert np.abs(p1n - p2n).max() < 1e-5 * np.abs(p1n).max()
    assert abs(float(e1) - float(e2)) < 1e-5 * abs(float(e1))


def test_odd_pattern_size_reconstructs_without_the_frame():
    """Odd N keeps the shifted transforms; numpy and torch still agree and converge."""
    even = simulate(SimulationConfig(object="grf", probe="disk", scan="raster", n_positions=36,
                                     N=32, step=5, nphotons=0, seed=3))
    # simulate() makes even sizes only: the odd case is built from the same object with a
    # 31x31 probe through the reference forward model
    probe = even.probe[:31, :31]
    positions = np.stack([even.ycoords, even.xcoords], 1)
    amp = get_backend("numpy").forward(even.object, probe, positions)
    ds = Dataset(diffraction=(100 * amp).astype(np.float32), xcoords=even.xcoords,
                 ycoords=even.ycoords, probe=probe, object=even.object)
    options = EPIEOptions(iterations=4, batch_size=1, update_probe=True)
    ref = reconstruct(ds, options, backend="numpy")
    got = reconstruct(ds, options, backend="torch", device=TORCH_DEVICE)
    assert ref.errors[-1] < ref.errors[0] / 3
    np.testing.assert_allclose(got.errors, ref.errors, rtol=1e-3)
    np.testing.assert_allclose(got.probe, ref.probe, atol=1e-4 * np.abs(ref.probe).max())


@pytest.mark.parametrize("step, options", STEPS, ids=lambda s: getattr(s, "method", ""))
def test_device_indices_give_the_host_index_result(small32, step, options):
    """Batches picked by device indices (the GPU path, forced here on the CPU) update exactly
    as batches picked by host indices, over several batches of one epoch."""
    be = get_backend("torch", TORCH_DEVICE)
    ds = small32
    geometry = CanvasGeometry.from_positions(ds.positions, ds.N)
    X = be.asarray(ds.diffraction / intensity_scale(ds.diffraction))
    tl = ds.positions - ds.N / 2 - np.asarray(geometry.origin, float)
    host = Problem.create(be, X, tl, 1.0, device_indices=False)
    dev = Problem.create(be, X, tl, 1.0, device_indices=True)
    assert host.device_top_left is None and dev.device_top_left is not None
    order = np.random.default_rng(4).permutation(ds.n)
    obj0 = be.asarray(np.ones(geometry.shape), complex=True)
    probe0 = host.to_frame(be.asarray(normalise_probe(ds.probe)[0][None], complex=True))
    results = []
    for problem in (host, dev):
        obj, probe = obj0, probe0
        ordered = problem.epoch_order(order)
        for i in range(0, ds.n, 8):
            obj, probe, _ = step(problem, obj, probe, ordered[i:i + 8], options, True)
        results.append((be.to_numpy(obj), be.to_numpy(probe)))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=0, atol=1e-5)
