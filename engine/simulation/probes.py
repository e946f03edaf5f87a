"""Illumination functions (probes) for simulation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.errors import InputError


def _radius(N: int) -> np.ndarray:
    c = np.arange(N) - N / 2
    return np.sqrt(c[:, None] ** 2 + c[None, :] ** 2)


def fresnel_propagate(field: np.ndarray, defocus: float, radius: float) -> np.ndarray:
    """Angular-spectrum propagation; ``defocus`` is 1 / Fresnel number of ``radius``."""
    N = field.shape[-1]
    f = np.fft.fftfreq(N)
    f2 = f[:, None] ** 2 + f[None, :] ** 2
    lam_z = defocus * radius**2
    kernel = np.exp(-1j * np.pi * lam_z * f2)
    return np.fft.ifft2(np.fft.fft2(np.fft.ifftshift(field)) * kernel)


def _soft_aperture(N: int, outer: float, inner: float = 0.0) -> np.ndarray:
    r = _radius(N)
    edge = 1.0
    a = np.clip((outer - r) / edge + 0.5, 0, 1)
    if inner > 0:
        a *= np.clip((r - inner) / edge + 0.5, 0, 1)
    return a


def disk(N: int, radius: float | None = None, defocus: float = 1.0) -> np.ndarray:
    """A circular aperture (radius N/4 by default) propagated out of focus: rings and phase."""
    radius = N / 4 if radius is None else radius
    field = fresnel_propagate(_soft_aperture(N, radius), 0.1 * defocus, radius)
    return np.fft.fftshift(field).astype(np.complex64)


def zone_plate(N: int, radius: float | None = None, defocus: float = 1.0) -> np.ndarray:
    """An annular (central-stop) aperture further from focus, like a zone-plate beam."""
    radius = N / 4 if radius is None else radius
    field = fresnel_propagate(_soft_aperture(N, radius, 0.4 * radius), 0.3 * defocus, radius)
    return np.fft.fftshift(field).astype(np.complex64)


def gaussian(N: int, radius: float | None = None, defocus: float = 1.0) -> np.ndarray:
    """A Gaussian beam (sigma N/8 by default) with a weak quadratic phase."""
    sigma = N / 8 if radius is None else radius
    r2 = _radius(N) ** 2
    return (np.exp(-r2 / (2 * sigma**2)) * np.exp(0.25j * defocus * r2 / sigma**2)).astype(
        np.complex64)


PROBES: dict[str, Callable[..., np.ndarray]] = {"disk": disk, "gaussian": gaussian,
                                                "zone-plate": zone_plate}


def make_probe(name: str, N: int, radius: float | None = None, defocus: float = 1.0) -> np.ndarray:
    """Probe ``name`` of size N×N (unnormalised; peak amplitude about 1)."""
    if name not in PROBES:
        raise InputError("probe", f"one of {sorted(PROBES)}", repr(name))
    if radius is not None and not 0 < radius < N / 2:
        raise InputError("probe_radius", f"between 0 and N/2 = {N / 2}", str(radius))
    p = PROBES[name](N, radius, defocus)
    return (p / np.abs(p).max()).astype(np.complex64)
