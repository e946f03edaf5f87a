"""Propagators: the Gaussian beam in closed form, adjointness, numpy↔torch parity, the
Fresnel scaling theorem against direct propagation of a divergent beam."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.backends import get_backend
from engine.backends.propagation import Propagator, transfer_function
from engine.errors import InputError
from engine.geometry import Geometry

WAVELENGTH = 1e-10
PIXEL = 50e-9


def gaussian_beam(N: int, w0: float, z: float, wavelength: float, pixel: float) -> np.ndarray:  # noqa: N803
    """The paraxial Gaussian beam of waist w0 (metres) at distance z, without exp(ikz):
    (w0/w) exp(−r²/w²) exp(i k r² / 2R) exp(−i ψ), ψ = arctan(z / z_R) the Gouy phase."""
    c = (np.arange(N) - N // 2) * pixel
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    zr = math.pi * w0**2 / wavelength
    if z == 0:
        return np.exp(-r2 / w0**2).astype(complex)
    w = w0 * math.sqrt(1 + (z / zr) ** 2)
    R = z * (1 + (zr / z) ** 2)
    gouy = math.atan(z / zr)
    k = 2 * math.pi / wavelength
    return (w0 / w) * np.exp(-r2 / w**2) * np.exp(1j * k * r2 / (2 * R)) * np.exp(-1j * gouy)


def near(N: int, z: float, wavelength: float = WAVELENGTH, pixel: float = PIXEL) -> Propagator:  # noqa: N803
    return Propagator("near", N, wavelength, z, (pixel, pixel))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_gaussian_beam_matches_closed_form(backend: str) -> None:
    N, w0 = 128, 5 * PIXEL
    zr = math.pi * w0**2 / WAVELENGTH
    be = get_backend(backend, "cpu")
    u0 = gaussian_beam(N, w0, 0.0, WAVELENGTH, PIXEL)
    for z in (0.5 * zr, zr, 2 * zr):
        prop = near(N, z)
        got = be.to_numpy(prop.bind(be).forward(be.asarray(u0, complex=True)))
        want = gaussian_beam(N, w0, z, WAVELENGTH, PIXEL)
        # exact vs paraxial differ by ~k z (λ f)⁴ / 8, below 1e-8 here
        tol = 1e-7 if backend == "numpy" else 2e-6
        assert np.max(np.abs(got - want)) < tol, z
        # the on-axis value carries the Gouy phase and the waist's growth
        c = N // 2
        assert abs(np.angle(got[c, c]) + math.atan(z / zr)) < 1e-5
        assert abs(abs(got[c, c]) - 1 / math.sqrt(1 + (z / zr) ** 2)) < 1e-5
    # the wrong sign of the transfer function (exp(−ikz) convention) is caught
    wrong = np.fft.ifft2(np.fft.fft2(u0) * np.conj(near(N, zr).transfer()))
    assert np.max(np.abs(wrong - gaussian_beam(N, w0, zr, WAVELENGTH, PIXEL))) > 0.1


@pytest.mark.parametrize("kind", ["far", "near", "near-evanescent"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_adjoint(kind: str, backend: str) -> None:
    N = 32
    if kind == "far":
        prop = Propagator.far_field(N)
    elif kind == "near":
        prop = near(N, 0.02)
    else:  # λ|f| > 1 at the grid's corners: the zeroed frequencies keep the adjoint exact
        prop = Propagator("near", N, 1.5, 3.0, (1.0, 1.0))
        assert np.sum(prop.transfer() == 0) > 0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, N, N)) + 1j * rng.standard_normal((3, N, N))
    y = rng.standard_normal((3, N, N)) + 1j * rng.standard_normal((3, N, N))
    be = get_backend(backend, "cpu")
    bound = prop.bind(be)
    ax = be.to_numpy(bound.forward(be.asarray(x, complex=True))).astype(complex)
    aty = be.to_numpy(bound.adjoint(be.asarray(y, complex=True))).astype(complex)
    lhs, rhs = np.vdot(y, ax), np.vdot(aty, x)
    tol = 1e-12 if backend == "numpy" else 1e-5
    assert abs(lhs - rhs) <= tol * abs(lhs)
    if kind != "near-evanescent":  # unitary: the adjoint is the inverse
        back = be.to_numpy(bound.adjoint(bound.forward(be.asarray(x, complex=True))))
        assert np.max(np.abs(back - x)) < (1e-12 if backend == "numpy" else 1e-5)


@pytest.mark.parametrize("kind", ["far", "near", "scaled"])
def test_numpy_torch_parity(kind: str) -> None:
    N = 64
    geo = {"far": None,
           "near": Geometry(1e-10, 0.2, (1e-6, 1e-6), "near"),
           "scaled": Geometry(1e-10, 5.0, (6.5e-6, 6.5e-6), "near", focus_distance=0.5)}[kind]
    prop = Propagator.from_geometry(geo, N)
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, N, N)) + 1j * rng.standard_normal((4, N, N))) / N
    ref = get_backend("numpy").to_numpy(prop.bind(get_backend("numpy")).forward(x))
    tb = get_backend("torch", "cpu")
    got = tb.to_numpy(prop.bind(tb).forward(tb.asarray(x, complex=True)))
    assert np.max(np.abs(got - ref)) <= 1e-5 * np.max(np.abs(ref))


def test_fresnel_scaling_matches_direct_propagation_of_a_divergent_beam() -> None:
    """A divergent beam (point focus z1 upstream) over z2 equals, magnified by M, the plane
    wave over z2 / M: I_direct(M x) = I_scaled(x) / M² (M = 2 here: z1 = z2)."""
    N, lam, z1, z2 = 256, 0.01, 20000.0, 20000.0  # pixel units: pixel 1
    # (the sphere's local frequency r / (λ z1) stays well below 1/2 over the support: no aliasing)
    geo = Geometry(lam, z2, (2.0, 2.0), "near", focus_distance=z1)  # detector pixel M·p
    assert geo.magnification == 2.0
    scaled = Propagator.from_geometry(geo, N)
    assert scaled.pixel == (1.0, 1.0) and scaled.distance == z2 / 2
    c = np.arange(N) - N // 2
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    rng = np.random.default_rng(2)
    from scipy import ndimage

    texture = ndimage.gaussian_filter(rng.standard_normal((N, N)), 3.0)
    support = np.clip(18.0 - np.sqrt(r2), 0, 1)
    t = support * np.exp(1j * 3 * texture)
    sphere = np.exp(1j * math.pi * r2 / (lam * z1))  # the divergent beam's wavefront
    direct = np.fft.ifft2(np.fft.fft2(t * sphere) * transfer_function(N, lam, z2, (1.0, 1.0)))
    be = get_backend("numpy")
    model = scaled.bind(be).forward(t)
    i_direct = np.abs(direct[N // 2 - 60:N // 2 + 60:2, N // 2 - 60:N // 2 + 60:2]) ** 2
    i_model = np.abs(model[N // 2 - 30:N // 2 + 30, N // 2 - 30:N // 2 + 30]) ** 2 / 4
    err = np.max(np.abs(i_direct - i_model)) / np.max(i_model)
    assert err < 0.02
    # and it is a real test: the unscaled distance is far off
    plain = np.abs(near(N, z2, lam, 1.0).bind(be).forward(t)) ** 2
    off = np.max(np.abs(plain[N // 2 - 30:N // 2 + 30, N // 2 - 30:N // 2 + 30] / 4 - i_direct))
    assert off / np.max(i_model) > 0.2


def test_choices_and_refusals() -> None:
    assert Propagator.from_geometry(None, 32).kind == "far"
    nf = Geometry(1e-10, 0.2, (1e-6, 1e-6), "near")
    assert Propagator.from_geometry(nf, 32).kind == "near"
    assert Propagator.from_geometry(nf, 32, "far").kind == "far"
    ff = Geometry(1e-10, 2.0, (75e-6, 75e-6))
    assert Propagator.from_geometry(ff, 32, "near").distance == 2.0
    with pytest.raises(InputError, match="geometry"):
        Propagator.from_geometry(None, 32, "near")
    with pytest.raises(InputError, match="propagation"):
        Propagator.from_geometry(nf, 32, "fresnel")
    with pytest.raises(InputError, match="distance"):
        Propagator("near", 32, 1e-10, -1.0, (1e-6, 1e-6))
    assert not Propagator("near", 32, 1e-10, 10.0, (1e-6, 1e-6)).well_sampled
