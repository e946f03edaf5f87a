"""Helpers of the iterative-solver tests."""

from __future__ import annotations

import numpy as np


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − c·b‖ / ‖a‖ with the complex scalar c that best aligns b to a."""
    a, b = np.asarray(a, np.complex128).ravel(), np.asarray(b, np.complex128).ravel()
    c = np.vdot(b, a) / np.vdot(b, b)
    return float(np.linalg.norm(a - c * b) / np.linalg.norm(a))
