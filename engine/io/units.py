"""Units of the quantities a measurement file holds: lengths and photon energies.

A value is read with the unit its file states (an HDF5 ``units`` attribute, the format's
specification, or the mapping file); a unit is never guessed. An energy with no stated unit
is refused with both readings spelled out, because 8000 read as joules and as electronvolts
differ by 19 orders of magnitude and either looks like a number.

Examples
--------
>>> length_in_metres(75.0, "um")
7.5e-05
>>> round(photon_wavelength(8000.0, "eV") * 1e10, 4)  # Å
1.5498
"""

from __future__ import annotations

import math

from engine.errors import InputError
from engine.geometry import ELECTRONVOLT, wavelength_from_energy

LENGTH_UNITS = {
    "m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "meters": 1.0,
    "mm": 1e-3, "millimetre": 1e-3, "millimeter": 1e-3,
    "um": 1e-6, "µm": 1e-6, "μm": 1e-6, "micron": 1e-6, "microns": 1e-6,
    "micrometre": 1e-6, "micrometer": 1e-6,
    "nm": 1e-9, "nanometre": 1e-9, "nanometer": 1e-9,
    "pm": 1e-12, "A": 1e-10, "Å": 1e-10, "angstrom": 1e-10,
}

ENERGY_UNITS = {"J": "J", "joule": "J", "joules": "J", "eV": "eV", "ev": "eV",
                "electronvolt": "eV", "keV": "keV", "kev": "keV", "kiloelectronvolt": "keV"}

# photon energies a ptychography experiment uses, in joules: 10 meV (far infrared) to 10 MeV
_PLAUSIBLE_J = (1e-21, 1e-12)


def length_in_metres(value: float, unit: str, what: str = "length") -> float:
    """``value`` in metres; ``unit`` is one of :data:`LENGTH_UNITS`."""
    scale = LENGTH_UNITS.get(str(unit).strip())
    if scale is None:
        raise InputError(f"{what} unit", f"one of {sorted(set(LENGTH_UNITS))}", repr(unit))
    return float(value) * scale


def length_scale(unit: str, what: str = "length") -> float:
    """Metres per ``unit``."""
    return length_in_metres(1.0, unit, what)


def energy_unit(unit: str, what: str = "energy") -> str:
    """The canonical spelling (``"J"``, ``"eV"``, ``"keV"``) of an energy unit."""
    canon = ENERGY_UNITS.get(str(unit).strip())
    if canon is None:
        raise InputError(f"{what} unit", "one of 'J', 'eV', 'keV'", repr(unit))
    return canon


def photon_wavelength(energy: float, unit: str | None, what: str = "energy") -> float:
    """Photon wavelength in metres from ``energy`` in ``unit``.

    ``unit=None`` (the file states none) is refused with both readings spelled out.

    Examples
    --------
    >>> try:
    ...     photon_wavelength(8000.0, None)
    ... except ValueError as exc:
    ...     print(str(exc)[:72])
    energy: expected a stated unit (8000 read as J gives λ=2.483e-29 m, as e
    """
    if unit is None:
        as_j = wavelength_from_energy(energy, "J") if energy > 0 else float("nan")
        as_ev = wavelength_from_energy(energy, "eV") if energy > 0 else float("nan")
        raise InputError(what, f"a stated unit ({energy:g} read as J gives λ={as_j:.4g} m, "
                               f"as eV gives λ={as_ev:.4g} m; say which)", "no unit")
    return wavelength_from_energy(energy, energy_unit(unit, what))


def joules_plausible(energy: float) -> bool:
    """True if ``energy`` read as joules is a photon energy an experiment uses."""
    return math.isfinite(energy) and _PLAUSIBLE_J[0] <= energy <= _PLAUSIBLE_J[1]


def energy_in_ev(wavelength: float) -> float:
    """The photon energy in eV of ``wavelength`` metres."""
    from engine.geometry import PLANCK_C

    return PLANCK_C / wavelength / ELECTRONVOLT


def format_length(metres: float | None) -> str:
    """A length for people: nm below 1 µm, µm below 1 mm, else mm or m.

    Examples
    --------
    >>> format_length(2.08e-8), format_length(7.5e-5), format_length(2.0)
    ('20.8 nm', '75 µm', '2 m')
    """
    if metres is None or not math.isfinite(metres):
        return "unknown"
    a = abs(metres)
    if a < 1e-6:
        return f"{metres * 1e9:.3g} nm"
    if a < 1e-3:
        return f"{metres * 1e6:.3g} µm"
    if a < 1.0:
        return f"{metres * 1e3:.3g} mm"
    return f"{metres:.3g} m"
