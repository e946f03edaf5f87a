"""Simulation: reproducible, Poisson at the asked photon count, valid data."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data import check_positions_inside
from engine.errors import InputError
from engine.simulation.objects import OBJECTS
from engine.simulation.probes import PROBES
from engine.simulation.scans import SCANS
from engine.simulation.simulate import SimulationConfig, poisson_counts, simulate


def test_same_seed_same_data():
    cfg = SimulationConfig(object="grf", n_positions=20, N=32, step=6, jitter=0.5, seed=4)
    a, b = simulate(cfg), simulate(cfg)
    np.testing.assert_array_equal(a.diffraction, b.diffraction)
    np.testing.assert_array_equal(a.object, b.object)
    c = simulate(SimulationConfig(object="grf", n_positions=20, N=32, step=6, jitter=0.5, seed=5))
    assert not np.array_equal(a.diffraction, c.diffraction)


@pytest.mark.parametrize("nphotons", [1e4, 1e8])
def test_mean_counts_equal_nphotons(nphotons):
    ds = simulate(SimulationConfig(n_positions=30, N=32, step=6, nphotons=nphotons, seed=0))
    counts = ds.diffraction.astype(np.float64) ** 2
    assert counts.sum(axis=(1, 2)).mean() == pytest.approx(nphotons, rel=0.01)
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-2 * max(1, nphotons / 1e6))


def test_poisson_statistics():
    """Repeated draws of one pattern have variance equal to their mean (shot noise)."""
    ds = simulate(SimulationConfig(n_positions=4, N=32, step=6, nphotons=0, seed=0))
    amp = ds.diffraction.astype(np.float64)
    rng = np.random.default_rng(0)
    draws = np.stack([poisson_counts(amp, 1e5, rng)[0].astype(np.float64) ** 2
                      for _ in range(200)])
    m, v = draws.mean(0), draws.var(0)
    bright = m > 20
    assert bright.sum() > 50
    ratio = np.median(v[bright] / m[bright])
    assert 0.85 < ratio < 1.15
    gain = poisson_counts(amp, 1e5, rng)[1]
    np.testing.assert_allclose(m[bright], gain**2 * amp[bright] ** 2, rtol=0.3)


def test_noise_free_amplitudes_match_forward_model():
    ds = simulate(SimulationConfig(object="asym", n_positions=10, N=32, step=6, nphotons=0,
                                   seed=1))
    from engine.backends import get_backend

    be = get_backend("numpy")
    amp = be.forward(ds.object.astype(complex), ds.probe.astype(complex), ds.positions)
    np.testing.assert_allclose(ds.diffraction, amp, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ds.patches, be.extract(ds.object, ds.positions - 16, 32), atol=1e-6)


@pytest.mark.parametrize("obj", sorted(set(OBJECTS) - {"image"}))
@pytest.mark.parametrize("probe", sorted(PROBES))
@pytest.mark.parametrize("scan", sorted(SCANS))
def test_every_generator_gives_valid_data(obj, probe, scan):
    ds = simulate(SimulationConfig(object=obj, probe=probe, scan=scan, n_positions=16, N=32,
                                   step=5, jitter=0.3, seed=0, nphotons=1e5))
    check_positions_inside(ds.positions, ds.object.shape, ds.N)
    amp = np.abs(ds.object)
    assert 0 < amp.min() and amp.max() <= 1.0 + 1e-6
    assert np.abs(ds.probe).max() == pytest.approx(1.0, rel=1e-5)


def test_image_object(tmp_path):
    from matplotlib.image import imsave

    img = np.zeros((40, 50))
    img[5:15, 10:40] = 1
    imsave(tmp_path / "a.png", img, cmap="gray")
    ds = simulate(SimulationConfig(object="image", amplitude_image=str(tmp_path / "a.png"),
                                   n_positions=9, N=32, step=6, seed=0))
    amp = np.abs(ds.object)
    assert amp.max() - amp.min() > 0.5  # the image content is there
    with pytest.raises(InputError, match="amplitude image"):
        simulate(SimulationConfig(object="image", n_positions=9, N=32, step=6))


def test_bad_configs():
    with pytest.raises(InputError, match="object"):
        SimulationConfig(object="cat")
    with pytest.raises(InputError, match="N"):
        SimulationConfig(N=31)
    with pytest.raises(InputError, match="nphotons"):
        SimulationConfig(nphotons=-1)
    with pytest.raises(InputError, match="object_size"):
        simulate(SimulationConfig(n_positions=100, N=32, step=8, object_size=(40, 40)))
