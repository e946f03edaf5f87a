"""Physical geometry of a measurement (docs/conventions.md#geometry).

One object, carried by every :class:`engine.data.Dataset` that knows its units, says how the
detector plane relates to the sample plane: the wavelength, the sample-to-detector distance,
the detector pixel, and whether the diffraction is far-field (one Fourier transform) or
near-field (Fresnel propagation, optionally from a divergent beam whose focus lies ``z1``
upstream of the sample, by the Fresnel scaling theorem).

Lengths are metres throughout. A dataset without a geometry is in pixel units only: its
object pixel size is unknown and lengths are reported in pixels.

Examples
--------
>>> g = Geometry(wavelength=1.0e-10, distance=2.0, detector_pixel=(75e-6, 75e-6))
>>> round(g.object_pixel(128)[0] * 1e9, 3)  # λz / (N p), in nm
20.833
>>> nf = Geometry(wavelength=1e-10, distance=0.5, detector_pixel=(1e-6, 1e-6),
...               propagation="near", focus_distance=0.05)
>>> round(nf.magnification, 3), round(nf.effective_distance, 6)
(11.0, 0.045455)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from engine.errors import InputError

Propagation = Literal["far", "near"]

# h c in J m: E [J] = h c / λ
PLANCK_C = 6.62607015e-34 * 299792458.0
ELECTRONVOLT = 1.602176634e-19


def wavelength_from_energy(energy: float, unit: str) -> float:
    """Photon wavelength in metres from an energy with an explicit unit (``"J"``, ``"eV"``
    or ``"keV"``); an unknown unit is refused, never guessed."""
    scale = {"J": 1.0, "eV": ELECTRONVOLT, "keV": 1e3 * ELECTRONVOLT}.get(unit)
    if scale is None:
        raise InputError("energy unit", "one of 'J', 'eV', 'keV'", repr(unit))
    e = float(energy) * scale
    if not math.isfinite(e) or e <= 0:
        raise InputError("energy", "a finite photon energy > 0", f"{energy} {unit}")
    return PLANCK_C / e


@dataclass(frozen=True)
class Geometry:
    """How the detector sees the sample.

    Parameters
    ----------
    wavelength : metres.
    distance : sample-to-detector distance z (``z2`` for a divergent beam), metres.
    detector_pixel : (row, col) = (y, x) pixel pitch on the detector, metres.
    propagation : ``"far"`` (Fraunhofer, one FFT) or ``"near"`` (Fresnel, angular spectrum).
    focus_distance : near field only: focus-to-sample distance ``z1`` of a divergent beam,
        metres; ``None`` for a plane (flat-wavefront) illumination.
    """

    wavelength: float
    distance: float
    detector_pixel: tuple[float, float]
    propagation: Propagation = "far"
    focus_distance: float | None = None

    def __post_init__(self) -> None:
        for name in ("wavelength", "distance"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise InputError(f"geometry.{name}", "a finite length > 0 in metres", repr(v))
        px = self.detector_pixel
        if (not isinstance(px, tuple | list) or len(px) != 2
                or not all(isinstance(v, int | float) and math.isfinite(v) and v > 0
                           for v in px)):
            raise InputError("geometry.detector_pixel", "(row, col) pitches > 0 in metres",
                             repr(px))
        object.__setattr__(self, "detector_pixel", (float(px[0]), float(px[1])))
        if self.propagation not in ("far", "near"):
            raise InputError("geometry.propagation", "'far' or 'near'", repr(self.propagation))
        z1 = self.focus_distance
        if z1 is not None:
            if self.propagation != "near":
                raise InputError("geometry.focus_distance",
                                 "None for far-field data (a focus distance is near-field only)",
                                 repr(z1))
            if not isinstance(z1, int | float) or not math.isfinite(z1) or z1 <= 0:
                raise InputError("geometry.focus_distance", "a finite length > 0 in metres",
                                 repr(z1))

    @property
    def magnification(self) -> float:
        """M = (z1 + z2) / z1 for a divergent beam, 1 otherwise."""
        if self.focus_distance is None:
            return 1.0
        return (self.focus_distance + self.distance) / self.focus_distance

    @property
    def effective_distance(self) -> float:
        """The plane-wave-equivalent propagation distance z2 / M (Fresnel scaling theorem)."""
        return self.distance / self.magnification

    def object_pixel(self, N: int) -> tuple[float, float]:  # noqa: N803 - the physics symbol
        """(row, col) object pixel size in metres for N×N patterns.

        Far field: λ z / (N p). Near field: the detector pixel divided by the magnification.
        """
        py, px = self.detector_pixel
        if self.propagation == "far":
            return (self.wavelength * self.distance / (N * py),
                    self.wavelength * self.distance / (N * px))
        m = self.magnification
        return (py / m, px / m)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["detector_pixel"] = list(self.detector_pixel)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Geometry:
        if not isinstance(d, dict):
            raise InputError("geometry", "a mapping of wavelength, distance, detector_pixel",
                             type(d).__name__)
        known = {"wavelength", "distance", "detector_pixel", "propagation", "focus_distance"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError("geometry", f"keys among {sorted(known)}", f"unknown {unknown}")
        missing = sorted({"wavelength", "distance", "detector_pixel"} - set(d))
        if missing:
            raise InputError("geometry", "wavelength, distance and detector_pixel",
                             f"missing {missing}")
        px = d["detector_pixel"]
        return cls(wavelength=d["wavelength"], distance=d["distance"],
                   detector_pixel=tuple(px) if isinstance(px, list | tuple) else px,
                   propagation=d.get("propagation", "far"),
                   focus_distance=d.get("focus_distance"))
