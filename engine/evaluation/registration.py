"""Sub-pixel registration and phase alignment of an estimate to a reference
(docs/conventions.md#comparison, #evaluation-metrics).

Translation is found by cross-correlation (Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 33,
156 (2008)): the integer peak of the FFT cross-correlation, then the band-limited
correlation evaluated by a matrix DFT on a grid ``1/upsample`` pixel fine around it.
Images are mean-subtracted and apodised first so that the borders of the compared window
do not pull the peak towards zero shift.

Conventions: arrays are indexed (row, col); a shift ``s = (dy, dx)`` moves an image so that
``shifted[r] = image[r - s]``; :func:`register_translation` returns the shift that, applied
to ``moving``, best matches ``reference``.

Examples
--------
>>> import numpy as np
>>> from scipy import ndimage
>>> ref = ndimage.gaussian_filter(np.random.default_rng(0).normal(size=(64, 64)), 1.5)
>>> mov, valid = shift_image(ref, (-2.5, 1.25))     # NaN where no data came in
>>> al = align(ref, mov, np.ones(ref.shape, bool), valid)
>>> [round(v, 2) for v in al.shift]
[2.5, -1.25]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from engine.errors import InputError


@dataclass(frozen=True)
class Registration:
    """Result of :func:`register_translation`.

    Attributes
    ----------
    shift : (dy, dx) in pixels to apply to ``moving`` to match ``reference``.
    error : Guizar-Sicairos' normalised error sqrt(1 - |CC_max|² / (Σ|f|² Σ|g|²)) of the
        apodised images, in [0, 1]; 1 when either image has no structure (then shift = 0).
    """

    shift: tuple[float, float]
    error: float


@dataclass(frozen=True)
class Alignment:
    """Result of :func:`align`: ``moving`` registered and phase-aligned to the reference.

    Attributes
    ----------
    image : aligned moving image on the reference grid, NaN outside ``valid``.
    valid : bool mask where both the reference and the shifted moving image are defined.
    shift : (dy, dx) applied to the moving image (pixels).
    registration_error : see :class:`Registration`.
    phase_offset : global phase (rad) the moving image had relative to the reference and
        that was removed (0 for real images).
    phase_ramp : (gy, gx) linear phase (rad/pixel) of the moving image relative to the
        reference that was removed, or ``None`` when ramp removal was not asked for.
    box : (row0, col0, height, width) of the rectangle used for registration.
    """

    image: np.ndarray
    valid: np.ndarray
    shift: tuple[float, float]
    registration_error: float
    phase_offset: float
    phase_ramp: tuple[float, float] | None
    box: tuple[int, int, int, int]


def largest_rectangle(mask: np.ndarray, max_aspect: float = 2.0,
                      max_cells: int = 128) -> tuple[int, int, int, int]:
    """A large rectangle fully inside ``mask`` with aspect ratio at most ``max_aspect``.

    Exact on masks up to ``max_cells`` a side. Larger masks are searched on a grid of
    k × k blocks (a block counts only when all its pixels are inside) to bound the cost, and
    the rectangle found is then grown pixel by pixel while it stays inside. Returns
    (row0, col0, height, width); (0, 0, 0, 0) for an empty mask.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise InputError("mask", "a 2-D boolean array", f"shape {m.shape}")
    k = max(1, math.ceil(max(m.shape) / max_cells))
    if k == 1:
        return _largest_rectangle_exact(m, max_aspect)
    H, W = (-(-m.shape[0] // k)) * k, (-(-m.shape[1] // k)) * k
    padded = np.zeros((H, W), bool)
    padded[: m.shape[0], : m.shape[1]] = m
    coarse = padded.reshape(H // k, k, W // k, k).all(axis=(1, 3))
    r0, c0, h, w = (v * k for v in _largest_rectangle_exact(coarse, max_aspect))
    if h == 0:
        return _largest_rectangle_exact(m, max_aspect)
    return _grow(m, r0, c0, h, w, max_aspect)


def _grow(m: np.ndarray, r0: int, c0: int, h: int, w: int,
          max_aspect: float) -> tuple[int, int, int, int]:
    grown = True
    while grown:
        grown = False
        if h + 1 <= max_aspect * w:
            if r0 > 0 and m[r0 - 1, c0:c0 + w].all():
                r0, h, grown = r0 - 1, h + 1, True
            elif r0 + h < m.shape[0] and m[r0 + h, c0:c0 + w].all():
                h, grown = h + 1, True
        if w + 1 <= max_aspect * h:
            if c0 > 0 and m[r0:r0 + h, c0 - 1].all():
                c0, w, grown = c0 - 1, w + 1, True
            elif c0 + w < m.shape[1] and m[r0:r0 + h, c0 + w].all():
                w, grown = w + 1, True
    return r0, c0, h, w


def _largest_rectangle_exact(m: np.ndarray, max_aspect: float) -> tuple[int, int, int, int]:
    """Every maximal all-True rectangle is enumerated by the stack ("largest rectangle in a
    histogram") scan row by row; each is clamped to the aspect limit around its centre."""
    best, best_area = (0, 0, 0, 0), 0
    heights = np.zeros(m.shape[1] + 1, dtype=np.int64)  # trailing 0 flushes the stack
    for row in range(m.shape[0]):
        heights[:-1] = np.where(m[row], heights[:-1] + 1, 0)
        if not heights.any():
            continue
        hl = heights.tolist()
        stack: list[int] = []
        for col, h in enumerate(hl):
            while stack and hl[stack[-1]] >= h:
                height = hl[stack.pop()]
                left = stack[-1] + 1 if stack else 0
                width = col - left
                ch = min(height, int(max_aspect * width))
                cw = min(width, int(max_aspect * height))
                if ch * cw > best_area:
                    best_area = ch * cw
                    r0 = row - height + 1 + (height - ch) // 2
                    best = (r0, left + (width - cw) // 2, ch, cw)
            stack.append(col)
    return best


def tukey_window(shape: tuple[int, int], alpha: float = 0.25) -> np.ndarray:
    """Separable 2-D Tukey window: flat centre, cosine tapers over ``alpha``/2 of each side."""

    def tukey(n: int) -> np.ndarray:
        # two pixels have no interior: a taper would zero both (and NaN the mean removal)
        if n < 3 or alpha <= 0:
            return np.ones(n)
        x = np.arange(n) / (n - 1)
        edge = alpha / 2
        w = np.ones(n)
        lo, hi = x < edge, x > 1 - edge
        w[lo] = 0.5 * (1 + np.cos(np.pi * (x[lo] / edge - 1)))
        w[hi] = 0.5 * (1 + np.cos(np.pi * ((x[hi] - 1) / edge + 1)))
        return w

    return np.outer(tukey(shape[0]), tukey(shape[1]))


def _prepare(image: np.ndarray, window: np.ndarray | None) -> np.ndarray:
    a = np.asarray(image, dtype=np.complex128)
    if window is None:
        return a - a.mean()
    return (a - np.sum(window * a) / np.sum(window)) * window


def _dft_at(data: np.ndarray, ky: np.ndarray, kx: np.ndarray, ys: np.ndarray, xs: np.ndarray,
            sign: float) -> np.ndarray:
    """Σ_ab data[a, b] exp(sign 2πi (ky[a] ys/H + kx[b] xs/W)) on the grid ys × xs."""
    H, W = data.shape
    ey = np.exp(sign * 2j * np.pi * np.outer(ys, ky) / H)
    ex = np.exp(sign * 2j * np.pi * np.outer(kx, xs) / W)
    return ey @ data @ ex


def _refine_peak(data: np.ndarray, ky: np.ndarray, kx: np.ndarray, coarse: tuple[float, float],
                 upsample: int, sign: float) -> tuple[tuple[float, float], complex]:
    """Maximise |DFT| on a ±0.75 px grid of step 1/upsample around the coarse peak."""
    if upsample <= 1:
        val = _dft_at(data, ky, kx, np.array([coarse[0]]), np.array([coarse[1]]), sign)[0, 0]
        return coarse, complex(val)
    n = int(math.ceil(1.5 * upsample)) | 1  # odd, so the coarse peak is a grid point
    steps = (np.arange(n) - n // 2) / upsample
    ys, xs = coarse[0] + steps, coarse[1] + steps
    vals = _dft_at(data, ky, kx, ys, xs, sign)
    iy, ix = np.unravel_index(int(np.argmax(np.abs(vals))), vals.shape)
    return (float(ys[iy]), float(xs[ix])), complex(vals[iy, ix])


def register_translation(reference: np.ndarray, moving: np.ndarray, *, upsample: int = 100,
                         max_shift: float | None = None, apodise: bool = True) -> Registration:
    """Sub-pixel shift that registers ``moving`` onto ``reference`` (same shape, 2-D).

    Parameters
    ----------
    reference, moving : real or complex images of equal shape.
    upsample : refinement factor; the shift is found to 1/upsample pixel.
    max_shift : largest |dy|, |dx| searched (pixels); ``None``: a quarter of the smaller side.
    apodise : subtract the mean and apply a Tukey window before correlating.
    """
    ref, mov = np.asarray(reference), np.asarray(moving)
    if ref.ndim != 2 or ref.shape != mov.shape:
        raise InputError("registration images", "two 2-D arrays of equal shape",
                         f"shapes {ref.shape} and {mov.shape}")
    if min(ref.shape) < 2:
        raise InputError("registration region", "at least 2x2 pixels", f"shape {ref.shape}")
    if upsample < 1:
        raise InputError("upsample", "an integer >= 1", str(upsample))
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(mov))):
        raise InputError("registration images", "finite values (crop to the covered region)",
                         "NaN or Inf")
    H, W = ref.shape
    window = tukey_window((H, W)) if apodise else None
    f, g = _prepare(ref, window), _prepare(mov, window)
    ef, eg = float(np.sum(np.abs(f) ** 2)), float(np.sum(np.abs(g) ** 2))
    # RMS structure below 1e-6 of the peak (float32 rounding of a flat image) counts as none
    floor = 1e-12 * H * W
    if not (ef > floor * max(float(np.max(np.abs(ref))) ** 2, 1e-300)
            and eg > floor * max(float(np.max(np.abs(mov))) ** 2, 1e-300)
            and np.isfinite(ef * eg)):
        return Registration((0.0, 0.0), 1.0)
    energy = ef * eg
    product = np.fft.fft2(f) * np.conj(np.fft.fft2(g))
    cc = np.abs(np.fft.ifft2(product))
    ky, kx = np.fft.fftfreq(H) * H, np.fft.fftfreq(W) * W  # signed lags and frequencies
    limit = min(H, W) / 4 if max_shift is None else float(max_shift)
    cc[~((np.abs(ky)[:, None] <= limit) & (np.abs(kx)[None, :] <= limit))] = -1.0
    iy, ix = np.unravel_index(int(np.argmax(cc)), cc.shape)
    shift, peak = _refine_peak(product, ky, kx, (float(ky[iy]), float(kx[ix])), upsample, 1.0)
    peak_sq = abs(peak / (H * W)) ** 2
    error = math.sqrt(max(0.0, 1.0 - peak_sq / energy))
    return Registration(shift, min(error, 1.0))


def fill_nearest(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copy of ``image`` with pixels outside ``mask`` set to their nearest masked-in value."""
    m = np.asarray(mask, dtype=bool)
    if m.all():
        return np.array(image, copy=True)
    if not m.any():
        raise InputError("mask", "at least one valid pixel", "an empty mask")
    idx = ndimage.distance_transform_edt(~m, return_distances=False, return_indices=True)
    return np.asarray(image)[idx[0], idx[1]]


def shift_image(image: np.ndarray, shift: tuple[float, float],
                mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fourier (band-limited) shift: ``out[r] = image[r - shift]``; exact for integer shifts.

    Pixels outside ``mask`` (default: the finite pixels) are first filled from their nearest
    valid neighbour and the image is edge-padded, so no wrap-around reaches the result.
    Returns the shifted image and the mask of pixels whose every interpolation neighbour was
    valid (NaN elsewhere in the image).
    """
    a = np.asarray(image)
    m = np.isfinite(a) if mask is None else (np.asarray(mask, dtype=bool) & np.isfinite(a))
    dy, dx = float(shift[0]), float(shift[1])
    if dy == 0 and dx == 0:
        out = np.where(m, a, np.nan).astype(np.result_type(a.dtype, np.float32))
        return out, m.copy()
    pad = int(math.ceil(max(abs(dy), abs(dx)))) + 2
    filled = np.pad(fill_nearest(np.where(m, a, 0), m), pad, mode="edge")
    ky = np.fft.fftfreq(filled.shape[0])[:, None]
    kx = np.fft.fftfreq(filled.shape[1])[None, :]
    ramp = np.exp(-2j * np.pi * (ky * dy + kx * dx))
    moved = np.fft.ifft2(np.fft.fft2(filled) * ramp)[pad:-pad, pad:-pad]
    if not np.iscomplexobj(a):
        moved = moved.real
    valid = ndimage.shift(m.astype(np.float64), (dy, dx), order=1, mode="constant",
                          cval=0.0) > 1 - 1e-6
    out = np.where(valid, moved, np.nan)
    return out, valid


def phase_offset(reference: np.ndarray, moving: np.ndarray, mask: np.ndarray) -> float:
    """Global phase (rad) of ``moving`` relative to ``reference`` over ``mask``.

    The amplitude-weighted estimate -arg Σ ref·conj(mov); ``moving · exp(-i·offset)`` is then
    in phase with the reference (exactly, for a pure offset).
    """
    m = np.asarray(mask, dtype=bool)
    s = np.sum(np.asarray(reference)[m] * np.conj(np.asarray(moving)[m]))
    return float(-np.angle(s)) + 0.0 if abs(s) > 0 else 0.0  # + 0.0: no "-0.0" in JSON


def phase_ramp(reference: np.ndarray, moving: np.ndarray, mask: np.ndarray, *,
               upsample: int = 100) -> tuple[float, float]:
    """Linear phase (gy, gx) in rad/pixel of ``moving`` relative to ``reference`` over ``mask``.

    The ramp of d = ref·conj(mov) is the frequency where |DFT(d)| peaks (for a pure ramp the
    DFT of a non-negative weight shifted there), refined to 1/upsample of a frequency bin.
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise InputError("mask", "at least one valid pixel to estimate a phase ramp", "none")
    rows, cols = np.nonzero(m)
    r0, c0 = rows.min(), cols.min()
    box = (slice(r0, rows.max() + 1), slice(c0, cols.max() + 1))
    d = np.where(m[box], np.asarray(reference)[box] * np.conj(np.asarray(moving)[box]), 0)
    H, W = d.shape
    spectrum = np.abs(np.fft.fft2(d))
    ky, kx = np.fft.fftfreq(H) * H, np.fft.fftfreq(W) * W
    iy, ix = np.unravel_index(int(np.argmax(spectrum)), spectrum.shape)
    (fy, fx), _ = _refine_peak(d, np.arange(H), np.arange(W), (float(ky[iy]), float(kx[ix])),
                               upsample, -1.0)
    gy, gx = 2 * math.pi * fy / H, 2 * math.pi * fx / W
    # the DFT grid quantises the slope: refine by a weighted plane fit of the now small
    # residual phase (no wrapping left to defeat a least-squares fit)
    r, c = np.nonzero(m[box])
    dv = d[r, c]
    resid = np.angle(dv * np.exp(-1j * (gy * r + gx * c)))
    wts = np.sqrt(np.abs(dv))
    design = np.stack([np.ones_like(resid), r, c], axis=1) * wts[:, None]
    if design.shape[0] >= 3 and wts.any():
        coef = np.linalg.lstsq(design, resid * wts, rcond=None)[0]
        gy, gx = gy + float(coef[1]), gx + float(coef[2])
    # d carries exp(-i g·r): its ramp is minus the moving image's
    return (-gy, -gx)


def _apply_ramp(image: np.ndarray, ramp: tuple[float, float]) -> np.ndarray:
    r = np.arange(image.shape[0])[:, None]
    c = np.arange(image.shape[1])[None, :]
    return image * np.exp(-1j * (ramp[0] * r + ramp[1] * c))


def align(reference: np.ndarray, moving: np.ndarray, reference_mask: np.ndarray,
          moving_mask: np.ndarray, *, remove_ramp: bool = False, upsample: int = 100,
          max_shift: float | None = None) -> Alignment:
    """Register ``moving`` onto ``reference`` (same grid), then remove its global phase.

    Steps: registration on the largest rectangle inside both masks (``max_shift = 0``
    disables it; ``None`` searches a quarter of the rectangle); Fourier shift of the
    moving image; for complex images, optional removal of a linear phase ramp and then of
    the global phase offset, both estimated on the pixels valid after the shift.
    """
    ref = np.asarray(reference)
    mov = np.asarray(moving)
    if ref.shape != mov.shape or ref.ndim != 2:
        raise InputError("alignment images", "two 2-D arrays on one grid",
                         f"shapes {ref.shape} and {mov.shape}")
    ref_m = np.asarray(reference_mask, bool) & np.isfinite(ref)
    mov_m = np.asarray(moving_mask, bool) & np.isfinite(mov)
    both = ref_m & mov_m
    if not both.any():
        raise InputError("coverage", "an overlap between the estimate and the reference",
                         "no common pixel")
    if np.iscomplexobj(ref) != np.iscomplexobj(mov):
        raise InputError("alignment images", "both complex or both real",
                         f"{ref.dtype} and {mov.dtype}")
    is_complex = np.iscomplexobj(ref)
    mov = np.where(mov_m, mov, 0).astype(np.complex128 if is_complex else np.float64)
    ref_f = np.where(ref_m, ref, 0)
    ramp = (0.0, 0.0)
    if remove_ramp and is_complex:  # a strong ramp decorrelates the fields: remove it first
        ramp = phase_ramp(ref_f, mov, both, upsample=upsample)
        mov = _apply_ramp(mov, ramp)
    r0, c0, h, w = largest_rectangle(both)
    if h < 2 or w < 2:
        raise InputError("coverage", "an overlap containing at least a 2x2 rectangle",
                         f"{int(both.sum())} common pixels")
    shift, error, mov0 = (0.0, 0.0), 1.0, mov
    shifted_m = mov_m
    for _ in range(4 if max_shift is None or max_shift > 0 else 0):
        # the shared apodisation window biases large shifts towards 0: re-register the
        # residual after moving the full image (not the crop), until it is below a step
        k = int(math.ceil(max(abs(shift[0]), abs(shift[1])))) + (1 if shift != (0.0, 0.0) else 0)
        if h - 2 * k < 2 or w - 2 * k < 2:
            break
        box = (slice(r0 + k, r0 + h - k), slice(c0 + k, c0 + w - k))
        reg = register_translation(ref_f[box], np.where(shifted_m, mov, 0)[box],
                                   upsample=upsample, max_shift=max_shift if k == 0 else 2.0)
        error = reg.error
        if reg.shift == (0.0, 0.0):
            break
        shift = (shift[0] + reg.shift[0], shift[1] + reg.shift[1])
        mov, shifted_m = shift_image(mov0, shift, mov_m)
        if max(abs(reg.shift[0]), abs(reg.shift[1])) < 1.5 / upsample:
            break
    valid = ref_m & shifted_m
    if not valid.any():
        raise InputError("coverage", "an overlap left after registration",
                         f"none after a shift of {shift}")
    offset = 0.0
    if is_complex:
        if remove_ramp:
            extra = phase_ramp(ref_f, np.where(valid, mov, 0), valid, upsample=upsample)
            mov = _apply_ramp(mov, extra)
            ramp = (ramp[0] + extra[0], ramp[1] + extra[1])
        offset = phase_offset(ref_f, np.where(valid, mov, 0), valid)
        mov = mov * np.exp(-1j * offset)
    image = np.where(valid, mov, np.nan)
    return Alignment(image, valid, (float(shift[0]), float(shift[1])), error,
                     offset, ramp if remove_ramp and is_complex else None, (r0, c0, h, w))
