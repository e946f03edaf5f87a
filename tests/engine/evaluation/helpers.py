"""Helpers of the registration / metrics / evaluation tests."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from engine.backends import get_backend
from engine.physics.stitching import Canvas, StitchConfig, stitch


def canvas_of(obj: np.ndarray, positions: np.ndarray, N: int = 32) -> Canvas:
    """The canvas that stitching the patches of ``obj`` at ``positions`` gives."""
    be = get_backend("numpy")
    patches = be.extract(obj.astype(np.complex64), positions - N / 2, N)
    return stitch(patches, positions, backend=be, config=StitchConfig(crop=N // 2))


def smooth_field(shape: tuple[int, int], seed: int, sigma: float = 1.5) -> np.ndarray:
    """A random complex field with structure at all scales down to ~sigma."""
    rng = np.random.default_rng(seed)
    re = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    im = ndimage.gaussian_filter(rng.normal(size=shape), sigma * 1.3)
    return 1.0 + re / re.std() * 0.2 + 1j * im / im.std() * 0.2
