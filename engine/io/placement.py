"""Scan positions from metres to object pixels, and back (docs/conventions.md#geometry).

A file gives the **sample** translation T_j (metres, lab frame x, y, z; the beam travels
along +z) and the detector's orientation as two basis vectors (metres per detector pixel
along its rows and along its columns, in the lab frame). The object pixel basis follows:

- far field: ``B_obj = λ z · pinv(N · B_det)ᵀ`` (3 × 2), so a pixel is λz/(N p) wide;
- near field: ``B_obj = B_det / M`` (M the Fresnel-scaling magnification, 1 for a plane wave).

The probe moves by −T_j relative to the sample, so the probe centre in object pixels is
``(row, col) = pinv(B_obj) · (−T_j)`` (only the x, y components enter: the sample faces the
beam). Positions are then shifted so that the smallest row and column sit at N/2: every
N × N window lies inside the object (docs/conventions.md#coordinates); the shift is kept in
the dataset's metadata (``position_shift_px``) and undone on writing.

With the CXI default orientation, ``B_det = [[0, −p_y, 0], [−p_x, 0, 0]]`` (rows along −y,
columns along −x, as CDTools writes), this reduces to ``row = T_y / dy``, ``col = T_x / dx``.

Examples
--------
>>> import numpy as np
>>> B = default_basis((75e-6, 75e-6))
>>> T = np.array([[0.0, 0.0, 0.0], [1e-6, 2e-6, 0.0]])
>>> px = translations_to_pixels(T, B, wavelength=1e-10, distance=2.0, N=64)
>>> np.round(px / px[1], 6).tolist()  # (row, col): y/dy, x/dx
[[0.0, 0.0], [1.0, 1.0]]
"""

from __future__ import annotations

import numpy as np

from engine.errors import InputError

ORDERS = ("xy", "yx")


def default_basis(detector_pixel: tuple[float, float]) -> np.ndarray:
    """The CXI default detector basis (2 × 3, rows: row step, column step) for pixel pitches
    ``(p_y, p_x)``: rows along −y, columns along −x of the lab frame."""
    py, px = detector_pixel
    return np.array([[0.0, -py, 0.0], [-px, 0.0, 0.0]])


def basis_2x3(basis: np.ndarray, what: str = "basis_vectors") -> np.ndarray:
    """A detector basis as (2, 3): row-step and column-step vectors. CXI stores (2, 3);
    CDTools stores the transpose (3, 2); both are accepted."""
    b = np.asarray(basis, dtype=np.float64)
    if b.shape == (3, 2):
        b = b.T
    if b.shape != (2, 3) or not np.all(np.isfinite(b)):
        raise InputError(what, "a finite (2, 3) array (row and column step vectors, metres)",
                         f"shape {b.shape}")
    norms = np.linalg.norm(b, axis=1)
    if np.any(norms <= 0):
        raise InputError(what, "two non-zero step vectors", f"norms {norms.tolist()}")
    # a sheared (non-orthogonal) detector needs nothing special: the pseudo-inverse below
    return b


def pixel_pitch(basis: np.ndarray) -> tuple[float, float]:
    """(row, col) pixel pitch in metres: the lengths of the basis vectors."""
    b = basis_2x3(basis)
    return float(np.linalg.norm(b[0])), float(np.linalg.norm(b[1]))


def object_basis(basis: np.ndarray, *, wavelength: float, distance: float, N: int,
                 propagation: str = "far", magnification: float = 1.0) -> np.ndarray:
    """The object pixel basis (3 × 2: columns are the row and column steps, metres)."""
    b = basis_2x3(basis).T  # 3 x 2
    if propagation == "far":
        return wavelength * distance * np.linalg.pinv(N * b).T
    return b / magnification


def translations_to_pixels(translations: np.ndarray, basis: np.ndarray, *, wavelength: float,
                           distance: float, N: int, propagation: str = "far",
                           magnification: float = 1.0, order: str = "xy") -> np.ndarray:
    """(n, 2) probe centres (row, col) in object pixels, before any shift.

    Parameters
    ----------
    translations : (n, 3) or (n, 2) sample translations in metres, columns x, y(, z)
        (``order="yx"``: y first, as some writers store them).
    basis : the detector basis (:func:`basis_2x3`).
    """
    t = _xyz(translations, order)
    B = object_basis(basis, wavelength=wavelength, distance=distance, N=N,
                     propagation=propagation, magnification=magnification)
    t[:, 2] = 0.0  # the sample faces the beam: its z translation moves no pixel
    return (np.linalg.pinv(B) @ (-t).T).T


def pixels_to_translations(pixels: np.ndarray, basis: np.ndarray, *, wavelength: float,
                           distance: float, N: int, propagation: str = "far",
                           magnification: float = 1.0) -> np.ndarray:
    """The inverse of :func:`translations_to_pixels`: (n, 3) sample translations (x, y, z)
    in metres of probe centres (row, col) in object pixels."""
    B = object_basis(basis, wavelength=wavelength, distance=distance, N=N,
                     propagation=propagation, magnification=magnification)
    return -(B @ np.asarray(pixels, np.float64).T).T


def place(pixels: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """Shift positions so that the smallest row and column are N/2 (every window inside
    the object). Returns the placed positions and the shift added (row, col)."""
    pixels = np.asarray(pixels, np.float64)
    shift = N / 2 - pixels.min(axis=0)
    return pixels + shift, shift


def _xyz(translations: np.ndarray, order: str) -> np.ndarray:
    if order not in ORDERS:
        raise InputError("translation order", f"one of {ORDERS}", repr(order))
    t = np.asarray(translations, dtype=np.float64)
    if t.ndim != 2 or t.shape[1] not in (2, 3):
        raise InputError("translation", "an (n, 3) or (n, 2) array in metres",
                         f"shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise InputError("translation", "finite values",
                         f"{int((~np.isfinite(t)).sum())} NaN/Inf")
    out = np.zeros((t.shape[0], 3))
    out[:, : t.shape[1]] = t
    if order == "yx":
        out[:, [0, 1]] = out[:, [1, 0]]
    return out
