"""Propagation from the exit wave to the detector (docs/conventions.md#propagation).

It lives beside the backends because the simulator and the solvers both apply it (they sit
in independent layers) and it does its work through the backend protocol's FFTs.

Three geometries, one interface:

* **far field** (Fraunhofer): the centred orthonormal DFT ``fftshift(fft2(ψ)) / N``, the
  backends' :meth:`~engine.backends.protocol.Backend.propagate`; the solvers keep their
  checkerboard fast path for it (:mod:`engine.iterative.model`).
* **near field, flat wavefront**: the angular-spectrum method,
  ``ψ_z = F⁻¹[H · F[ψ]]`` with the exact transfer function
  ``H(f) = exp(i 2π z (sqrt(1/λ² − |f|²) − 1/λ))`` over the FFT frequency grid of the
  sample-plane pixel (the constant plane-wave phase exp(ikz) is dropped: no measurement sees
  it). Evanescent frequencies (λ|f| > 1) are set to zero.
* **near field, divergent beam** (Fresnel scaling theorem): a point focus ``z1`` upstream of
  the sample and the detector ``z2`` downstream equal a plane wave propagated over
  ``z2 / M`` on the sample-plane pixel ``p / M``, ``M = (z1 + z2) / z1``; the sphere of the
  beam is part of neither the object nor the modelled probe.

The transfer function is built once in float64 on the host and moved to the backend once
(:meth:`Propagator.bind`), so numpy and torch apply the same numbers.

Examples
--------
>>> import numpy as np
>>> from engine.backends import get_backend
>>> from engine.geometry import Geometry
>>> g = Geometry(wavelength=1e-10, distance=0.2, detector_pixel=(1e-6, 1e-6),
...              propagation="near")
>>> prop = Propagator.from_geometry(g, 64)
>>> prop.kind, round(prop.fresnel_number, 3)
('near', 0.05)
>>> be = get_backend("numpy")
>>> psi = np.ones((1, 64, 64), complex)
>>> bool(np.allclose(prop.bind(be).forward(psi), psi))  # a plane wave stays a plane wave
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from engine.errors import InputError
from engine.geometry import Geometry

Array = Any
PropagationChoice = Literal["auto", "far", "near"]
PROPAGATION_CHOICES: tuple[str, ...] = get_args(PropagationChoice)


def transfer_function(N: int, wavelength: float, distance: float,  # noqa: N803
                      pixel: tuple[float, float]) -> np.ndarray:
    """The exact angular-spectrum transfer function (N, N) complex128, unshifted FFT order.

    ``H = exp(−i 2π (z/λ) u / (1 + sqrt(1 − u)))`` with ``u = λ²|f|²``: the same number as
    ``exp(i 2π z (sqrt(1/λ² − |f|²) − 1/λ))``, written without the cancellation of
    ``sqrt(1 − u) − 1`` for the tiny ``u`` of X-rays. Zero where ``u > 1`` (evanescent).
    """
    fy = np.fft.fftfreq(N, d=pixel[0])
    fx = np.fft.fftfreq(N, d=pixel[1])
    u = wavelength**2 * (fy[:, None] ** 2 + fx[None, :] ** 2)
    propagating = u <= 1.0
    root = np.sqrt(np.where(propagating, 1.0 - u, 0.0))
    phase = -2.0 * math.pi * (distance / wavelength) * u / (1.0 + root)
    return np.where(propagating, np.exp(1j * phase), 0.0)


@dataclass(frozen=True)
class Propagator:
    """How exit waves of N×N pixels reach the detector.

    Parameters
    ----------
    kind : ``"far"`` or ``"near"``.
    N : pattern size.
    wavelength, distance : near field: λ and the (effective, z2/M) distance in metres.
    pixel : near field: (row, col) sample-plane pixel in metres (the detector pixel / M).
    """

    kind: Literal["far", "near"]
    N: int
    wavelength: float | None = None
    distance: float | None = None
    pixel: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("far", "near"):
            raise InputError("propagation", "'far' or 'near'", repr(self.kind))
        if self.kind == "near":
            for name in ("wavelength", "distance"):
                v = getattr(self, name)
                if v is None or not math.isfinite(v) or v <= 0:
                    raise InputError(f"near-field {name}", "a finite length > 0 in metres",
                                     repr(v))
            if self.pixel is None or len(self.pixel) != 2 or not all(
                    math.isfinite(p) and p > 0 for p in self.pixel):
                raise InputError("near-field pixel", "(row, col) pitches > 0 in metres",
                                 repr(self.pixel))

    @classmethod
    def far_field(cls, N: int) -> Propagator:  # noqa: N803
        """The far-field (one centred FFT) propagator."""
        return cls("far", int(N))

    @classmethod
    def from_geometry(cls, geometry: Geometry | None, N: int,  # noqa: N803
                      choice: str = "auto") -> Propagator:
        """The propagator of a dataset's geometry, or the one ``choice`` forces.

        ``"auto"``: the geometry's regime (far field without a geometry). ``"far"``: the
        far field whatever the geometry says. ``"near"``: Fresnel propagation with the
        geometry's wavelength, distance and pixel (Fresnel scaling when it has a focus
        distance); a dataset without a geometry cannot be propagated in the near field.
        """
        if choice not in PROPAGATION_CHOICES:
            raise InputError("propagation", f"one of {list(PROPAGATION_CHOICES)}",
                             repr(choice))
        kind = choice if choice != "auto" else (
            "far" if geometry is None else geometry.propagation)
        if kind == "far":
            return cls.far_field(N)
        if geometry is None:
            raise InputError("propagation 'near'", "a dataset geometry (wavelength, distance, "
                             "detector pixel)", "data in pixel units only")
        m = geometry.magnification
        py, px = geometry.detector_pixel
        return cls("near", int(N), geometry.wavelength, geometry.effective_distance,
                   (py / m, px / m))

    @property
    def fresnel_number(self) -> float:
        """Fresnel number of one sample-plane pixel, p² / (λ z) (the smaller pitch); ``inf``
        in the far field. The transfer function is sampled without aliasing while
        ``N · p² / (λ z) ≥ 1`` (docs/conventions.md#propagation).

It lives beside the backends because the simulator and the solvers both apply it (they sit
in independent layers) and it does its work through the backend protocol's FFTs."""
        if self.kind == "far":
            return math.inf
        p = min(self.pixel)  # type: ignore[arg-type]
        return p * p / (self.wavelength * self.distance)  # type: ignore[operator]

    @property
    def well_sampled(self) -> bool:
        """Whether the transfer function's phase is sampled without aliasing."""
        return self.N * self.fresnel_number >= 1.0

    def transfer(self) -> np.ndarray:
        """The near-field transfer function (N, N) complex128 (FFT order)."""
        if self.kind != "near":
            raise InputError("transfer function", "a near-field propagator", "far field")
        return transfer_function(self.N, self.wavelength, self.distance,  # type: ignore[arg-type]
                                 self.pixel)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (for a run's start event and its records)."""
        if self.kind == "far":
            return {"propagation": "far"}
        return {"propagation": "near", "wavelength": self.wavelength,
                "distance": self.distance, "pixel": list(self.pixel),  # type: ignore[arg-type]
                "fresnel_number": self.fresnel_number, "well_sampled": self.well_sampled}

    def bind(self, backend: Any) -> BoundPropagator:
        """This propagator on ``backend`` (the transfer function moved there once)."""
        if self.kind == "far":
            return BoundPropagator(self, backend, None, None)
        h = self.transfer()
        return BoundPropagator(self, backend, backend.asarray(h, complex=True),
                               backend.asarray(h.conj(), complex=True))


@dataclass
class BoundPropagator:
    """A :class:`Propagator` whose transfer function lives on a backend.

    :meth:`forward` maps exit waves (..., N, N) to detector-plane waves; :meth:`adjoint` is its
    exact adjoint (⟨A x, y⟩ = ⟨x, A* y⟩), which the solvers use to bring detector-plane
    corrections back. In the far field the adjoint is the inverse; in the near field it
    is the inverse on every propagating frequency (|H| = 1 there).
    """

    propagator: Propagator
    backend: Any
    h: Array | None
    h_conj: Array | None  # the adjoint's transfer function, formed once

    @property
    def kind(self) -> str:
        return self.propagator.kind

    def forward(self, psi: Array) -> Array:
        be = self.backend
        if self.h is None:
            return be.propagate(psi)
        return be.ifft2(be.fft2(psi) * self.h)

    def adjoint(self, field: Array) -> Array:
        be = self.backend
        if self.h is None:
            return be.backpropagate(field)
        return be.ifft2(be.fft2(field) * self.h_conj)
