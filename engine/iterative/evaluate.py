"""The solvers' own phase error against ground truth: ``phase_rms_unregistered``.

Not the phase RMS of the reports and benchmarks (:func:`engine.evaluation.metrics.phase_rms`,
registered, every covered pixel; ``docs/metrics.md``): a solver refines nothing geometric
(positions are known), so this one skips the registration and is taken on the
well-illuminated region only (weight >= 30 % of the peak) after removing the global phase
offset (and, optionally, a linear phase ramp, the ambiguity left when the probe is refined).
It is the solver tests' yardstick; its name says it is the other quantity.
"""

from __future__ import annotations

import numpy as np

from engine.errors import InputError
from engine.physics.stitching import Canvas, place_on_grid

# pixels with at least this fraction of the peak illumination count as well illuminated
WELL_ILLUMINATED = 0.3


def truth_on_canvas(canvas: Canvas, truth: np.ndarray) -> np.ndarray:
    """The ground-truth object (origin (0, 0)) cut to the canvas grid (NaN outside it)."""
    return place_on_grid(np.asarray(truth), (0, 0), canvas.origin, canvas.canvas.shape,
                         np.nan, np.complex128)


def evaluation_mask(canvas: Canvas, truth_grid: np.ndarray,
                    min_weight: float = WELL_ILLUMINATED) -> np.ndarray:
    """Covered, well-illuminated pixels where both estimate and truth are finite."""
    w = canvas.weight.astype(np.float64)
    mask = canvas.coverage & np.isfinite(canvas.canvas) & np.isfinite(truth_grid)
    if w.max() > 0:
        mask &= w >= min_weight * w.max()
    return mask


def phase_rms_unregistered(canvas: Canvas, truth: np.ndarray, *,
                           min_weight: float = WELL_ILLUMINATED,
                           remove_ramp: bool = False) -> float:
    """RMS phase error (radians) of ``canvas`` against ``truth``, unregistered, on the
    well-illuminated region (``docs/metrics.md``).

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
