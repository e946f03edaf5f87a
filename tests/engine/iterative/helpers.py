"""Helpers of the iterative-solver tests."""

from __future__ import annotations

import numpy as np


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − c·b‖ / ‖a‖ with the complex scalar c that best aligns b to a."""
    a, b = np.asarray(a, np.complex128).ravel(), np.asarray(b, np.complex128).ravel()
    c = np.vdot(b, a) / np.vdot(b, b)
    return float(np.linalg.norm(a - c * b) / np.linalg.norm(a))


def relative_error_modulo_ramp(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`relative_error` after also removing the linear phase ramp between a and b.

    A ramp exp(i k·r) moved from the object to the probe leaves every measured intensity
    unchanged (it only multiplies each exit wave by a constant phase), so no solver can
    recover it: a probe comparison must not count it.
    """
    from engine.evaluation.registration import phase_ramp

    a = np.asarray(a, np.complex128)
    gy, gx = phase_ramp(a, np.asarray(b, np.complex128), np.ones(a.shape, bool))
    yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    return relative_error(a, np.asarray(b) * np.exp(1j * (gy * yy + gx * xx)))
