"""Phase error of a reconstruction against ground truth (docs/conventions.md#evaluation-metrics, the
part the solvers need).

The solvers refine nothing geometric (positions are known), so no registration is needed:
the error is taken on the well-illuminated region after removing the global phase offset
(and, optionally, a linear phase ramp, the ambiguity left when the probe is refined).
"""

from __future__ import annotations

import numpy as np

from engine.errors import InputError
from engine.physics.stitching import Canvas

# pixels with at least this fraction of the peak illumination count as well illuminated
WELL_ILLUMINATED = 0.3


def truth_on_canvas(canvas: Canvas, truth: np.ndarray) -> np.ndarray:
    """The ground-truth object (origin (0, 0)) cut to the canvas grid (NaN outside it)."""
    h, w = canvas.canvas.shape
    out = np.full((h, w), np.nan, dtype=np.complex128)
    r0, c0 = canvas.origin
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + h, truth.shape[0]), min(c0 + w, truth.shape[1])
    if re > rs and ce > cs:
        out[rs - r0:re - r0, cs - c0:ce - c0] = truth[rs:re, cs:ce]
    return out


def evaluation_mask(canvas: Canvas, truth_grid: np.ndarray,
                    min_weight: float = WELL_ILLUMINATED) -> np.ndarray:
    """Covered, well-illuminated pixels where both estimate and truth are finite."""
    w = canvas.weight.astype(np.float64)
    mask = canvas.coverage & np.isfinite(canvas.canvas) & np.isfinite(truth_grid)
    if w.max() > 0:
        mask &= w >= min_weight * w.max()
    return mask


def phase_rms(canvas: Canvas, truth: np.ndarray, *, min_weight: float = WELL_ILLUMINATED,
              remove_ramp: bool = False) -> float:
    """RMS phase error (radians) of ``canvas`` against ``truth``.

    Parameters
    ----------
    canvas : the reconstruction (``origin`` in object coordinates, ``weight`` = illumination).
    truth : the true object on the object grid (origin (0, 0)).
    min_weight : fraction of the peak illumination that counts as well illuminated.
    remove_ramp : also fit and remove a linear phase ramp (after the offset).
    """
    truth_grid = truth_on_canvas(canvas, np.asarray(truth))
    mask = evaluation_mask(canvas, truth_grid, min_weight)
    if mask.sum() < 4:
        raise InputError("canvas", "a reconstruction overlapping the ground truth",
                         f"{int(mask.sum())} common well-illuminated pixels")
    est = canvas.canvas.astype(np.complex128)[mask]
    ref = truth_grid[mask]
    diff = est * np.conj(ref)
    diff = diff / np.maximum(np.abs(diff), 1e-30)
    diff = diff * np.conj(np.sum(diff)) / np.abs(np.sum(diff))  # remove the global offset
    phase = np.angle(diff)
    if remove_ramp:
        rows, cols = np.nonzero(mask)
        design = np.stack([rows, cols, np.ones_like(rows)], axis=1).astype(np.float64)
        coef, *_ = np.linalg.lstsq(design, phase, rcond=None)
        phase = np.angle(np.exp(1j * (phase - design @ coef)))
    return float(np.sqrt(np.mean(phase**2)))
