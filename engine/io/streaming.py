"""Figures of a diffraction stack computed a batch of rows at a time (never the whole stack
in memory), and masked pixels filled from their neighbours.

Examples
--------
>>> import numpy as np
>>> d = np.ones((5, 8, 8), np.float32)
>>> s = pattern_summary(d, batch=2)
>>> s.counts.tolist(), s.mean_amplitude.shape
([64.0, 64.0, 64.0, 64.0, 64.0], (8, 8))
>>> img = np.arange(9.0).reshape(3, 3); ok = np.ones((3, 3), bool); ok[0, 0] = False
>>> float(fill_masked(img, ok)[0, 0])  # the mean of 1, 3 and 4
2.6666666666666665
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.data import read_rows


def iter_batches(diffraction: Any, batch: int = 256) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, amplitudes)`` for consecutive rows of an in-memory or lazy stack."""
    n = len(diffraction)
    for s in range(0, n, batch):
        yield s, read_rows(diffraction, slice(s, min(n, s + batch)))


@dataclass
class PatternSummary:
    """What one pass over the patterns gives.

    counts : (n,) photons per pattern (Σ amplitude² over valid pixels).
    mean_amplitude : (N, N) mean amplitude.
    mean_counts : (N, N) mean counts.
    saturated : pixels (summed over patterns) at or above ``saturation``; 0 without one.
    centre_offset : (row, col) of the mean pattern's centre of mass minus N/2, pixels.
    """

    counts: np.ndarray
    mean_amplitude: np.ndarray
    mean_counts: np.ndarray
    saturated: int
    centre_offset: tuple[float, float]


def pattern_summary(diffraction: Any, *, mask: np.ndarray | None = None,
                    saturation: float | None = None, batch: int = 256) -> PatternSummary:
    """Stream once over ``diffraction`` (amplitudes) and summarise it."""
    n, N = len(diffraction), diffraction.shape[-1]
    counts = np.zeros(n)
    sum_a = np.zeros((N, N))
    sum_c = np.zeros((N, N))
    saturated = 0
    valid = np.ones((N, N), bool) if mask is None else mask
    for s, a in iter_batches(diffraction, batch):
        c = a.astype(np.float64) ** 2
        counts[s:s + len(a)] = (c * valid).sum(axis=(1, 2))
        sum_a += a.sum(axis=0)
        sum_c += c.sum(axis=0)
        if saturation is not None:
            saturated += int((c >= saturation * (1 - 1e-6)).sum())
    mean_c = sum_c / max(n, 1)
    w = mean_c * valid
    total = w.sum()
    if total > 0:
        rr, cc = np.indices((N, N))
        off = (float((w * rr).sum() / total - N / 2), float((w * cc).sum() / total - N / 2))
    else:
        off = (0.0, 0.0)
    return PatternSummary(counts, sum_a / max(n, 1), mean_c, saturated, off)


def fill_masked(image: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """``image`` with its invalid pixels replaced by the mean of their valid 3 × 3
    neighbours (repeated inwards for clusters), so a dead or hot pixel does not shape an
    estimate made from it."""
    out = np.asarray(image, np.float64).copy()
    if valid is None or valid.all():
        return out
    have = valid.copy()
    out[~have] = 0.0
    for _ in range(max(out.shape)):
        if have.all():
            break
        H, W = out.shape
        vals = np.pad(out * have, 1)  # no wrap-around: the detector has edges
        hits = np.pad(have.astype(np.float64), 1)
        s = sum(vals[1 + dy:1 + dy + H, 1 + dx:1 + dx + W]
                for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        c = sum(hits[1 + dy:1 + dy + H, 1 + dx:1 + dx + W]
                for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        new = ~have & (c > 0)
        if not new.any():
            break
        out[new] = s[new] / c[new]
        have = have | new
    return out
