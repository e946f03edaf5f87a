"""Scan patterns in relative coordinates: (n, 2) arrays of (y, x), pixels."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from engine.errors import InputError


def raster(n: int, step: float, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """Row-by-row grid, ``ceil(sqrt(n))`` per row, Gaussian jitter of std ``jitter``."""
    nx = math.ceil(math.sqrt(n))
    iy, ix = np.divmod(np.arange(n), nx)
    pos = np.stack([iy, ix], axis=1).astype(np.float64) * step
    if jitter > 0:
        pos += rng.normal(0.0, jitter, pos.shape)
    return pos


def spiral(n: int, step: float, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """Fermat spiral with uniform density, mean neighbour distance about ``step``."""
    k = np.arange(n)
    c = step / math.sqrt(math.pi)
    r = c * np.sqrt(k + 0.5)
    theta = k * math.pi * (3 - math.sqrt(5))
    pos = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)
    if jitter > 0:
        pos += rng.normal(0.0, jitter, pos.shape)
    return pos


def random(n: int, step: float, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """Uniform random positions in a square of area n · step²."""
    side = step * math.sqrt(n)
    return rng.uniform(0.0, side, (n, 2))


SCANS: dict[str, Callable[..., np.ndarray]] = {"raster": raster, "spiral": spiral,
                                               "random": random}


def make_scan(name: str, n: int, step: float, jitter: float,
              rng: np.random.Generator) -> np.ndarray:
    if name not in SCANS:
        raise InputError("scan", f"one of {sorted(SCANS)}", repr(name))
    return SCANS[name](n, step, jitter, rng)
