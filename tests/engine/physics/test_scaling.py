"""Scaling (docs/conventions.md#intensity-scaling): the normalisation makes the photon count
irrelevant."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from engine.errors import InputError
from engine.physics.scaling import ScalingConfig, intensity_scale, normalise_probe, resolve_scale


def test_mean_energy_is_quarter_N_squared(small_ds):
    X = small_ds.diffraction / intensity_scale(small_ds.diffraction)
    N = small_ds.N
    assert np.mean(np.sum(X.astype(float) ** 2, axis=(1, 2))) == pytest.approx((N / 2) ** 2)


def test_counts_times_100_change_nothing_in_X(small_ds):
    D = small_ds.diffraction.astype(np.float64)
    D100 = np.sqrt(100 * D**2)  # every count times 100
    X1 = D / intensity_scale(D)
    X2 = D100 / intensity_scale(D100)
    np.testing.assert_allclose(X1, X2, rtol=1e-12, atol=1e-12)
    assert intensity_scale(D100) == pytest.approx(10 * intensity_scale(D))


def test_normalised_probe_power(small_ds):
    p, f = normalise_probe(small_ds.probe)
    N = small_ds.N
    assert np.sum(np.abs(p) ** 2) == pytest.approx((N / 2) ** 2, rel=1e-5)
    np.testing.assert_allclose(p, small_ds.probe * f, rtol=1e-6)


def test_model_units_match_photon_units():
    """The forward model with the normalised probe predicts the scaled data: for an object of
    unit modulus, ``|F(P_hat · O)|`` (P_hat = f·P, orthonormal FFT, docs/conventions.md) equals
    ``D / s`` pattern by pattern, up to Poisson noise, whatever the dose. Computed here from
    the physics (Parseval), independently of how ``intensity_scale`` is written."""
    from engine.simulation.simulate import SimulationConfig, simulate

    cfg = SimulationConfig(object="grf", probe="disk", n_positions=25, N=32, step=5, seed=3)
    phase_only = np.exp(1j * np.angle(simulate(cfg).object))  # |O| = 1 everywhere
    for nphotons in (1e6, 1e9):
        ds = simulate(SimulationConfig(**{**cfg.to_dict(), "nphotons": nphotons,
                                          "object_size": phase_only.shape}),
                      object_array=phase_only)
        p_hat, _ = normalise_probe(ds.probe)
        model = np.abs(np.fft.fftshift(np.fft.fft2(p_hat * ds.patches, norm="ortho"),
                                       axes=(-2, -1)))
        X = ds.diffraction.astype(np.float64) / intensity_scale(ds.diffraction)
        err = np.linalg.norm(X - model) / np.linalg.norm(model)
        # sqrt(Poisson) noise: about 1/2 per pixel in counts, relative to sqrt(nphotons)
        assert err < 2 * np.sqrt(X.shape[-1] ** 2 / nphotons), (nphotons, err)
    # and the scale is the photon gain over the probe factor: D = s · model
    s = intensity_scale(ds.diffraction)
    assert np.median(ds.diffraction / np.maximum(model, 1e-12)) == pytest.approx(s, rel=1e-3)


def test_scaling_modes(small_ds, caplog):
    D = small_ds.diffraction
    s_data = intensity_scale(D)
    assert resolve_scale(ScalingConfig("data"), D)[0] == pytest.approx(s_data)
    s, source = resolve_scale(ScalingConfig("bundle"), D, bundle_scale=s_data * 1.5)
    assert s == pytest.approx(1.5 * s_data) and source.startswith("from bundle: ")
    with caplog.at_level(logging.WARNING):
        resolve_scale(ScalingConfig.parse("fixed=1e-3"), D)
    assert "differs from the data's own" in caplog.text
    with pytest.raises(InputError, match="scaling"):
        ScalingConfig.parse("auto")
    with pytest.raises(InputError, match="fixed"):
        ScalingConfig.parse("fixed=-1")
    with pytest.raises(InputError, match="bundle"):
        resolve_scale(ScalingConfig("bundle"), D)


def test_scale_of_empty_or_zero_data_is_an_error():
    with pytest.raises(InputError, match="diffraction"):
        intensity_scale(np.zeros((0, 8, 8)))
    with pytest.raises(InputError, match="non-zero"):
        intensity_scale(np.zeros((2, 8, 8)))
