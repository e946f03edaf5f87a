"""Complex test objects (amplitude and phase) for simulation.

All generators take the object shape and a seeded ``numpy.random.Generator`` and return a
complex64 (H, W) array; amplitudes lie in (0, 1], phases in a fraction of ±π.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from engine.errors import InputError

# 5x7 glyphs: chosen so that no flip, transpose or 180° rotation maps the text onto itself.
_GLYPHS = {
    "P": ["11110", "10001", "10001", "11110", "10000", "10000", "10000"],
    "T": ["11111", "00100", "00100", "00100", "00100", "00100", "00100"],
    "Y": ["10001", "10001", "01010", "00100", "00100", "00100", "00100"],
    "C": ["01111", "10000", "10000", "10000", "10000", "10000", "01111"],
    "H": ["10001", "10001", "10001", "11111", "10001", "10001", "10001"],
    "O": ["01110", "10001", "10001", "10001", "10001", "10001", "01110"],
    "F": ["11111", "10000", "10000", "11110", "10000", "10000", "10000"],
    "R": ["11110", "10001", "10001", "11110", "10100", "10010", "10001"],
    "4": ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    "7": ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
}


def text_bitmap(text: str, scale: int) -> np.ndarray:
    """A binary image of ``text`` in the 5x7 font, each font pixel ``scale`` pixels."""
    cols = []
    for ch in text:
        glyph = np.array([[int(b) for b in row] for row in _GLYPHS[ch]], dtype=np.float64)
        cols.append(np.pad(glyph, ((0, 0), (0, 1))))
    bitmap = np.concatenate(cols, axis=1)
    return np.kron(bitmap, np.ones((scale, scale)))


def _normalise(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _compose(amplitude: np.ndarray, phase: np.ndarray) -> np.ndarray:
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def lines(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Random anti-aliased line segments, blurred (PtychoPINN's ``lines`` family)."""
    from scipy import ndimage  # here, not at import: `ptycho --help` stays fast

    H, W = shape
    img = np.zeros(shape)
    n_lines = max(4, (H * W) // 300)
    for _ in range(n_lines):
        y0, y1 = rng.uniform(0, H, 2)
        x0, x1 = rng.uniform(0, W, 2)
        length = math.hypot(y1 - y0, x1 - x0)
        t = np.linspace(0.0, 1.0, max(2, int(2 * length)))
        ys, xs = y0 + t * (y1 - y0), x0 + t * (x1 - x0)
        iy, ix = np.clip(ys.astype(int), 0, H - 1), np.clip(xs.astype(int), 0, W - 1)
        np.add.at(img, (iy, ix), rng.uniform(0.3, 1.0))
    img = _normalise(ndimage.gaussian_filter(np.minimum(img, 2.0), 1.0))
    return _compose(0.35 + 0.65 * img, 0.8 * (img - 0.5))


def grf(shape: tuple[int, int], rng: np.random.Generator, exponent: float = 3.0) -> np.ndarray:
    """Gaussian random fields with a power-law spectrum (independent amplitude and phase)."""
    H, W = shape
    ky = np.fft.fftfreq(H)[:, None]
    kx = np.fft.fftfreq(W)[None, :]
    k = np.sqrt(kx**2 + ky**2)
    k[0, 0] = 1.0
    filt = k ** (-exponent / 2)
    filt[0, 0] = 0.0

    def field() -> np.ndarray:
        f = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * filt))
        return _normalise(f)

    return _compose(0.4 + 0.6 * field(), 1.2 * (field() - 0.5))


def asym(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Letters and ramps: any flip, transpose, sign or shift error is visible."""
    from scipy import ndimage  # here, not at import: `ptycho --help` stays fast

    H, W = shape
    scale = max(1, min(H, W) // 40)
    word = text_bitmap("PTYCHO74", scale)
    tiled = np.zeros(shape)
    step_y = word.shape[0] + 3 * scale
    for r, y in enumerate(range(2 * scale, H, step_y)):
        shift = (r * 5 * scale) % max(1, word.shape[1])
        row = np.roll(np.tile(word, (1, W // word.shape[1] + 2)), -shift, axis=1)[:, :W]
        h = min(row.shape[0], H - y)
        tiled[y:y + h] = row[:h]
    tiled = ndimage.gaussian_filter(tiled, 0.6)
    yy, xx = np.mgrid[0:H, 0:W]
    amp = 0.35 + 0.45 * tiled + 0.2 * xx / max(W - 1, 1)
    shifted = np.roll(tiled, (scale * 3, scale * 2), axis=(0, 1))
    phase = 0.9 * shifted + 0.6 * yy / max(H - 1, 1) - 0.6
    return _compose(amp, phase)


def siemens(shape: tuple[int, int], rng: np.random.Generator, spokes: int = 36) -> np.ndarray:
    """A Siemens star: ``spokes`` wedges (half of them opaque and phase-shifting) about the
    centre, so the resolution reached is read off the radius where the spokes blur.

    Edges are anti-aliased by the signed arc distance to the nearest edge (r·sin(nθ)/n
    pixels): towards the centre, where a period is shorter than two pixels, the star turns
    into its mean grey instead of aliasing. Amplitude 0.55 on the spokes and 0.95 between
    them, phase 1.0 rad on the spokes; a soft rim closes the star inside the object, and the
    background outside it is that of the gaps. ``rng`` is unused (the star is the same for
    every seed).
    """
    del rng
    H, W = shape
    yy, xx = np.mgrid[0:H, 0:W]
    y, x = yy - (H - 1) / 2, xx - (W - 1) / 2
    r = np.hypot(y, x)
    theta = np.arctan2(y, x)
    n = spokes // 2  # dark-bright pairs
    wedge = np.clip(0.5 + r * np.sin(n * theta) / n, 0.0, 1.0)
    rim = np.clip(0.45 * min(H, W) - r + 0.5, 0.0, 1.0)
    spoke = wedge * rim
    return _compose(0.95 - 0.4 * spoke, 1.0 * spoke)


def from_images(amplitude: np.ndarray, phase: np.ndarray | None = None,
                shape: tuple[int, int] | None = None,
                phase_range: float = math.pi / 2) -> np.ndarray:
    """An object from two images: amplitude mapped to [0.2, 1], phase to ±phase_range/2."""
    from scipy import ndimage  # here, not at import: `ptycho --help` stays fast

    def load(a: np.ndarray | str, what: str) -> np.ndarray:
        if isinstance(a, str):
            from matplotlib.image import imread  # Agg-free reader, no pyplot

            try:
                a = imread(a)
            except (OSError, ValueError, SyntaxError):
                raise InputError(what, "a readable PNG image", repr(a)) from None
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 3:
            a = a[..., :3].mean(axis=-1)
        if a.ndim != 2 or a.size == 0:
            raise InputError(what, "a 2-D image", f"shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise InputError(what, "finite pixel values", "NaN/Inf")
        if shape is not None and a.shape != tuple(shape):
            a = ndimage.zoom(a, (shape[0] / a.shape[0], shape[1] / a.shape[1]), order=1)
            a = a[: shape[0], : shape[1]]
        return a

    amp = _normalise(load(amplitude, "amplitude image"))
    ph = _normalise(load(phase, "phase image")) if phase is not None else amp
    if ph.shape != amp.shape:
        raise InputError("phase image", f"the amplitude image's shape {amp.shape}", str(ph.shape))
    return _compose(0.2 + 0.8 * amp, phase_range * (ph - 0.5))


OBJECTS: dict[str, Callable[..., np.ndarray]] = {"lines": lines, "grf": grf, "asym": asym,
                                                 "siemens": siemens, "image": from_images}


def make_object(name: str, shape: tuple[int, int], rng: np.random.Generator,
                images: tuple[str | np.ndarray, str | np.ndarray | None] | None = None,
                ) -> np.ndarray:
    """Generate object ``name`` of ``shape``; ``image`` needs ``images=(amplitude, phase)``."""
    if name not in OBJECTS:
        raise InputError("object", f"one of {sorted(OBJECTS)}", repr(name))
    if name == "image":
        if images is None or images[0] is None:
            raise InputError("object 'image'", "an amplitude image (amplitude_image: a PNG path)")
        return from_images(images[0], images[1], shape=shape)
    return OBJECTS[name](shape, rng)
