"""The Siemens star test object."""

from __future__ import annotations

import numpy as np

from engine.simulation.objects import OBJECTS, siemens


def test_spokes_amplitude_and_phase() -> None:
    obj = siemens((128, 128), np.random.default_rng(0))
    assert obj.shape == (128, 128) and obj.dtype == np.complex64
    amp, phase = np.abs(obj), np.angle(obj)
    assert 0.5 < amp.min() and amp.max() <= 0.95 + 1e-6
    assert phase.min() >= -1e-6 and phase.max() <= 1.0 + 1e-6
    # on a circle of radius 40 px: 18 dark, phase-shifting spokes, 36 edges
    t = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    ring = phase[np.round(63.5 + 40 * np.sin(t)).astype(int),
                 np.round(63.5 + 40 * np.cos(t)).astype(int)]
    side = np.sign(ring - 0.5)
    edges = np.sum(side != np.roll(side, 1))  # around the closed circle
    assert edges == 36
    # amplitude and phase are one pattern: dark where the phase is high
    assert np.corrcoef(amp.ravel(), phase.ravel())[0, 1] < -0.99
    # the centre, where a period is shorter than a pixel, is the mean grey (no aliasing)
    assert abs(float(phase[62:66, 62:66].mean()) - 0.5) < 0.1
    # outside the rim: the background of the gaps
    assert phase[0, 0] == 0 and abs(amp[0, 0] - 0.95) < 1e-6


def test_seed_independent_and_registered() -> None:
    a = siemens((64, 80), np.random.default_rng(0))
    b = siemens((64, 80), np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert OBJECTS["siemens"] is siemens


def test_napari_sample_is_near_field() -> None:
    from ptycho_gui.samples import SAMPLES, make_sample

    assert "siemens" in SAMPLES
    ds = make_sample("siemens", n_positions=16, N=32)
    assert ds.geometry is not None and ds.geometry.propagation == "near"
    assert ds.metadata["name"] == "siemens"
