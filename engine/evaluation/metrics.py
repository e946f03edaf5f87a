"""Image-quality figures and the evaluation of a canvas against the truth
(docs/conventions.md#comparison, #evaluation-metrics).

:func:`evaluate_canvas` places a stitched canvas on the truth object's grid (through its
origin), registers it to sub-pixel precision, removes the global phase offset (and
optionally a phase ramp), scales its amplitude by mean(truth)/mean(estimate) and reports,
for amplitude and phase, MAE, RMSE, PSNR, SSIM, Pearson r and FRC resolutions, plus the
phase RMS error. :func:`compare_canvases` does the same between two canvases (the
amplitude scale is reported: a scale difference between two runs is a finding, but PSNR
and SSIM of unscaled amplitudes would only restate it). Both say whether the registration
can be trusted (``alignment.registration.ok`` and ``reason``, see
:func:`registration_check`).

Infinite or undefined figures (PSNR of identical images, Pearson r of a flat image) are
``inf``/``nan`` in the returned dicts; :func:`to_jsonable` turns them into JSON ``null``,
and ``exact_match`` says which of the two a null PSNR was.

Examples
--------
>>> import numpy as np
>>> x = np.linspace(0, 1, 64)[None, :] * np.ones((64, 1))
>>> round(ssim(x, x, data_range=1.0), 6), psnr(x, x, data_range=1.0)
(1.0, inf)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from engine.errors import InputError
from engine.evaluation.registration import align, largest_rectangle, tukey_window
from engine.physics.stitching import Canvas, place_on_grid

FRC_ONE_SEVENTH = 1.0 / 7.0
NYQUIST_PX = 2.0
MIN_FRC_SIDE = 8


def _region(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a.ravel() if mask is None else a[np.asarray(mask, dtype=bool)]


def mae(reference: np.ndarray, image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute difference over ``mask`` (all pixels when ``None``)."""
    return float(np.mean(np.abs(_region(image, mask) - _region(reference, mask))))


def rmse(reference: np.ndarray, image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root-mean-square difference over ``mask``."""
    return float(np.sqrt(np.mean((_region(image, mask) - _region(reference, mask)) ** 2)))


def psnr(reference: np.ndarray, image: np.ndarray, data_range: float,
         mask: np.ndarray | None = None) -> float:
    """10 log10(data_range² / MSE) in dB; ``inf`` for identical images."""
    if not data_range > 0:
        raise InputError("data_range", "a positive peak value", str(data_range))
    err = rmse(reference, image, mask) ** 2
    return math.inf if err == 0 else float(10 * np.log10(data_range**2 / err))


def pearson_r(reference: np.ndarray, image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation; ``nan`` when either image is constant (to 1e-6) on the region."""
    a, b = _region(reference, mask), _region(image, mask)
    if a.size < 2 or any(float(v.std()) <= 1e-6 * float(np.abs(v).max()) for v in (a, b)):
        return math.nan  # constant up to float32 rounding: correlation means nothing
    a, b = a - a.mean(), b - b.mean()
    return float(np.sum(a * b) / math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b))))


def ssim(reference: np.ndarray, image: np.ndarray, data_range: float,
         mask: np.ndarray | None = None, *, sigma: float = 1.5, k1: float = 0.01,
         k2: float = 0.03) -> float:
    """Mean structural similarity (Wang et al. 2004) with a Gaussian window.

    Local means, variances and covariance are Gaussian-weighted (σ = 1.5 px, truncated at
    3.5σ: the 11 × 11 window of the paper). On a masked region the weights are renormalised
    to the region, and the mean is taken where the whole window lies inside it (all region
    pixels when none does), as the paper crops the image border.
    """
    if not data_range > 0:
        raise InputError("data_range", "a positive dynamic range", str(data_range))
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(image, dtype=np.float64)
    m = np.ones(x.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    m = m & np.isfinite(x) & np.isfinite(y)
    if not m.any():
        raise InputError("mask", "at least one pixel to compute SSIM on", "none")
    x, y, w = np.where(m, x, 0.0), np.where(m, y, 0.0), m.astype(np.float64)
    truncate = 3.5

    def blur(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma, truncate=truncate, mode="constant")

    norm = np.maximum(blur(w), 1e-12)
    mx, my = blur(x) / norm, blur(y) / norm
    vx = blur(x * x) / norm - mx * mx
    vy = blur(y * y) / norm - my * my
    cxy = blur(x * y) / norm - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    radius = int(truncate * sigma + 0.5)
    inner = ndimage.binary_erosion(m, np.ones((2 * radius + 1,) * 2, bool), border_value=0)
    return float(np.mean(smap[inner if inner.any() else m]))


def frc(reference: np.ndarray, image: np.ndarray, *, apodise: bool = True) -> dict[str, Any]:
    """Fourier ring correlation of two equally shaped (H, W) images and its resolutions.

    Both are mean-subtracted and Tukey-apodised; rings are 1/min(H, W) cycles/pixel wide up
    to Nyquist (0.5), so non-square images are handled. Resolutions are the period 1/q in
    pixels at the first crossing (linearly interpolated) of the 1/7 and ½-bit (van Heel &
    Schatz 2005) thresholds; a curve that never crosses gives Nyquist, 2 px, with
    ``reached_nyquist_*`` true. Rings with no energy in either image are ``nan`` and skipped.

    Returns ``frequency`` (cycles/pixel), ``frc``, ``half_bit`` (threshold per ring),
    ``resolution_px_1_7``, ``resolution_px_half_bit``, ``reached_nyquist_1_7``,
    ``reached_nyquist_half_bit``, ``nyquist_px`` and ``shape``.
    """
    a, b = np.asarray(reference), np.asarray(image)
    if a.ndim != 2 or a.shape != b.shape or min(a.shape) < MIN_FRC_SIDE:
        raise InputError("FRC images", f"two equal 2-D arrays at least {MIN_FRC_SIDE} px a side",
                         f"shapes {a.shape} and {b.shape}")
    H, W = a.shape
    window = tukey_window((H, W)) if apodise else np.ones((H, W))

    def spectrum(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.complex128)
        return np.fft.fft2((x - np.sum(window * x) / np.sum(window)) * window)

    fa, fb = spectrum(a), spectrum(b)
    q = np.hypot(np.fft.fftfreq(H)[:, None], np.fft.fftfreq(W)[None, :])
    dq = 1.0 / min(H, W)
    n_rings = int(0.5 / dq)
    ring = np.rint(q / dq).astype(np.int64)
    keep = ring <= n_rings
    idx = ring[keep]
    cross = np.bincount(idx, (fa * np.conj(fb)).real[keep], n_rings + 1)
    pa = np.bincount(idx, (np.abs(fa) ** 2)[keep], n_rings + 1)
    pb = np.bincount(idx, (np.abs(fb) ** 2)[keep], n_rings + 1)
    count = np.bincount(idx, minlength=n_rings + 1).astype(np.float64)
    den = np.sqrt(pa * pb)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(den > 0, cross / den, np.where((pa > 0) | (pb > 0), 0.0, np.nan))
    freq = np.arange(n_rings + 1) * dq
    sq = np.sqrt(np.maximum(count, 1.0))
    half_bit = (0.2071 + 1.9102 / sq) / (1.2071 + 0.9102 / sq)
    out: dict[str, Any] = {"shape": [H, W], "nyquist_px": NYQUIST_PX}
    for name, thr in (("1_7", np.full_like(curve, FRC_ONE_SEVENTH)), ("half_bit", half_bit)):
        res, nyq = _crossing(freq[1:], curve[1:], thr[1:])
        out[f"resolution_px_{name}"] = res
        out[f"reached_nyquist_{name}"] = nyq
    out.update(frequency=freq[1:].tolist(), frc=curve[1:].tolist(), half_bit=half_bit[1:].tolist())
    return out


def _crossing(freq: np.ndarray, curve: np.ndarray, thr: np.ndarray) -> tuple[float, bool]:
    """Period (px) at the first drop of ``curve`` below ``thr``; Nyquist if it never drops."""
    ok = np.isfinite(curve)
    f, c, t = freq[ok], curve[ok], thr[ok]
    if f.size == 0:
        return math.nan, False
    below = np.nonzero(c < t)[0]
    if below.size == 0:
        return NYQUIST_PX, True
    i = int(below[0])
    if i == 0:
        return float(1.0 / f[0]), False
    d0, d1 = c[i - 1] - t[i - 1], c[i] - t[i]  # d0 >= 0 > d1
    q = f[i - 1] + (f[i] - f[i - 1]) * d0 / (d0 - d1)
    return float(min(1.0 / q, 1.0 / f[0])), False


def frc_crossing(frequency: np.ndarray, curve: np.ndarray,
                 threshold: np.ndarray) -> tuple[float, bool]:
    """Frequency (cycles/px) where ``curve`` first falls below ``threshold`` after having
    been above it, linearly interpolated between rings, and whether it never does (then
    0.5, Nyquist).

    Rings before the curve first reaches the threshold are skipped: the lowest rings hold
    few pixels (their half-bit threshold is near 1) and carry what registration leaves
    (a residual phase ramp, a slightly stretched object from uncorrected scale errors), so
    a dip there says nothing about the finest detail the halves share. A curve that never
    reaches the threshold has no resolution better than its lowest ring.

    Examples
    --------
    >>> f = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    >>> frc_crossing(f, np.array([0.9, 0.7, 0.3, 0.1, 0.0]), np.full(5, 0.5))
    (0.25, False)
    >>> frc_crossing(f, np.array([0.4, 0.9, 0.7, 0.3, 0.0]), np.full(5, 0.5))  # low dip
    (0.35, False)
    """
    freq = np.asarray(frequency, float)
    c, t = np.asarray(curve, float), np.asarray(threshold, float)
    above = np.nonzero(np.isfinite(c) & (c >= t))[0]
    if above.size == 0:
        finite = np.nonzero(np.isfinite(c))[0]
        return (float(freq[finite[0]]) if finite.size else math.nan), False
    first = int(above[0])
    period, nyquist = _crossing(freq[first:], c[first:], t[first:])
    return float(1.0 / period), nyquist


def truth_threshold(half_threshold: np.ndarray | float) -> np.ndarray | float:
    """The threshold against the truth that matches a half-split threshold T.

    The FRC of a full-data reconstruction against a noise-free reference relates to the
    FRC of two half-data reconstructions by FRC_ref = √(2 FRC_half / (1 + FRC_half))
    (Rosenthal & Henderson 2003): the half-split curve crosses T where the truth curve
    crosses √(2T / (1 + T)) (1/7 ↦ 0.5; the half-bit curve ↦ its image per ring).

    Examples
    --------
    >>> round(float(truth_threshold(1 / 7)), 6)
    0.5
    """
    t = np.asarray(half_threshold, dtype=np.float64)
    return np.sqrt(2.0 * t / (1.0 + t))


def data_range_of(reference: np.ndarray, mask: np.ndarray | None = None) -> float:
    """max − min of the reference on the region; max |ref| (or 1) when it is constant."""
    vals = _region(reference, mask)
    span = float(vals.max() - vals.min()) if vals.size else 0.0
    if span > 0:
        return span
    peak = float(np.abs(vals).max()) if vals.size else 0.0
    return peak if peak > 0 else 1.0


def image_figures(reference: np.ndarray, image: np.ndarray, mask: np.ndarray,
                  data_range: float | None = None,
                  box: tuple[int, int, int, int] | None = None) -> dict[str, Any]:
    """MAE, RMSE, PSNR, SSIM, Pearson r and FRC of real images on a region.

    FRC is computed on ``box`` (row0, col0, height, width), by default the largest rectangle
    (aspect ≤ 2) inside ``mask``; it is ``None`` when that is smaller than 8 × 8.
    """
    m = np.asarray(mask, dtype=bool)
    dr = data_range_of(reference, m) if data_range is None else float(data_range)
    r0, c0, h, w = largest_rectangle(m) if box is None else box
    box = (slice(r0, r0 + h), slice(c0, c0 + w))
    ring = frc(reference[box], image[box]) if min(h, w) >= MIN_FRC_SIDE else None
    err = rmse(reference, image, m)
    return {
        "mae": mae(reference, image, m), "rmse": err,
        "psnr": psnr(reference, image, dr, m), "ssim": ssim(reference, image, dr, m),
        "pearson_r": pearson_r(reference, image, m), "data_range": dr,
        "exact_match": err == 0, "frc": ring,
        "frc_box": [r0, c0, h, w],
    }


def _sections(reference: np.ndarray, aligned: np.ndarray, valid: np.ndarray,
              scale_amplitude: bool) -> dict[str, Any]:
    amp_t = np.abs(reference)
    amp_r = np.abs(np.where(valid, aligned, 0))
    mean_r = float(amp_r[valid].mean())
    scale = float(amp_t[valid].mean()) / mean_r if scale_amplitude and mean_r > 0 else 1.0
    box = largest_rectangle(valid)
    out: dict[str, Any] = {"amplitude": image_figures(amp_t, amp_r * scale, valid, box=box),
                           "phase": None}
    out["amplitude"]["scale"] = scale
    if np.iscomplexobj(reference) and np.iscomplexobj(aligned):
        ph_t = np.angle(reference)
        # the truth's phase plus the wrapped difference: no spurious 2π jumps in the estimate
        dphi = np.angle(np.where(valid, aligned, 1) * np.conj(np.where(valid, reference, 1)))
        phase = image_figures(ph_t, ph_t + dphi, valid, box=box)
        phase["rms_error_rad"] = float(np.sqrt(np.mean(dphi[valid] ** 2)))
        out["phase"] = phase
    return out


# a registration is trusted when the aligned images correlate (Pearson r of amplitude or
# phase at least this) and the shift is small beside the compared region (a reconstruction
# is placed by its scan positions: a large shift means the peak found was noise)
MIN_REGISTRATION_R = 0.2
MAX_SHIFT_FRACTION = 0.1
MIN_SHIFT_LIMIT_PX = 4.0


def registration_check(result: dict[str, Any]) -> dict[str, Any]:
    """``{"ok": bool, "reason": str | None}`` for an :func:`evaluate_canvas` or
    :func:`compare_canvases` result: not ok when neither amplitude nor phase correlates
    (Pearson r < :data:`MIN_REGISTRATION_R` after alignment) or the shift exceeds
    max(:data:`MIN_SHIFT_LIMIT_PX`, :data:`MAX_SHIFT_FRACTION` × the registration box's
    smaller side). The figures of a failed registration compare misplaced images."""
    reg = result["alignment"]["registration"]
    rs = [s.get("pearson_r") for s in (result.get("amplitude"), result.get("phase")) if s]
    rs = [float(r) for r in rs if r is not None and math.isfinite(r)]
    reasons = []
    best = max(rs) if rs else float("nan")
    if not rs or best < MIN_REGISTRATION_R:
        reasons.append(f"the aligned images do not correlate (Pearson r {best:.3g} < "
                       f"{MIN_REGISTRATION_R:g})")
    dy, dx = reg["shift_px"]
    box = reg.get("box") or [0, 0, 0, 0]
    limit = max(MIN_SHIFT_LIMIT_PX, MAX_SHIFT_FRACTION * min(box[2], box[3]))
    if max(abs(dy), abs(dx)) > limit:
        reasons.append(f"shift ({dy:+.1f}, {dx:+.1f}) px exceeds {limit:.1f} px "
                       f"({MAX_SHIFT_FRACTION:g} of the {box[2]}x{box[3]} region)")
    return {"ok": not reasons, "reason": "; ".join(reasons) or None}


def _alignment_record(al: Any, n_valid: int) -> dict[str, Any]:
    return {
        "registration": {"shift_px": list(al.shift), "error": al.registration_error,
                         "box": list(al.box)},
        "phase_offset_rad": al.phase_offset,
        "phase_ramp_rad_per_px": None if al.phase_ramp is None else list(al.phase_ramp),
        "n_pixels": n_valid,
    }


def evaluate_canvas(canvas: Canvas, truth: np.ndarray, *, remove_ramp: bool = False,
                    upsample: int = 100, max_shift: float | None = None,
                    min_weight: float = 0.0) -> dict[str, Any]:
    """Evaluate a stitched canvas against the ground-truth object
    (docs/conventions.md#evaluation-metrics).

    Parameters
    ----------
    canvas : the estimate; its ``origin`` places it on the truth's grid.
    truth : (H, W) complex ground-truth object (a real truth or canvas: amplitudes only).
    remove_ramp : also remove a linear phase ramp before the phase figures.
    upsample : registration precision 1/upsample px.
    max_shift : largest registration shift searched (px); ``None``: a quarter of the region;
        ``0``: no registration.
    min_weight : compare only pixels whose stitching weight is at least this fraction of
        the canvas's largest (e.g. 0.3 leaves out the faintly illuminated rim of a
        probe-weighted canvas); 0 keeps every covered pixel.

    Returns
    -------
    dict with ``alignment`` (``registration`` {``shift_px`` [dy, dx] applied to the estimate,
    ``error``, ``box``}, ``phase_offset_rad`` and ``phase_ramp_rad_per_px`` of the estimate
    relative to the truth, ``n_pixels`` compared), ``coverage_fraction`` (of the truth
    object), ``amplitude`` (``mae``, ``rmse``, ``psnr`` dB, ``ssim``, ``pearson_r``,
    ``data_range``, ``exact_match``, ``frc`` (see :func:`frc`), ``frc_box``, ``scale``) and
    ``phase`` (the same in radians plus ``rms_error_rad``; ``None`` for a real canvas).
    """
    t = np.asarray(truth)
    if t.ndim != 2 or t.size == 0:
        raise InputError("truth", "a 2-D (H, W) object", f"shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise InputError("truth", "finite values", f"{int(np.sum(~np.isfinite(t)))} NaN/Inf")
    if not 0.0 <= min_weight <= 1.0:
        raise InputError("min_weight", "a fraction of the largest weight in [0, 1]",
                         str(min_weight))
    est = canvas.crop_object(t.shape)
    cov = canvas.crop_coverage(t.shape) & np.isfinite(est)
    if min_weight > 0:
        weights = Canvas(canvas.weight.astype(np.float32), canvas.coverage, canvas.origin,
                         canvas.weight).crop_object(t.shape)
        cov &= np.nan_to_num(weights) >= min_weight * float(np.max(canvas.weight))
    if not cov.any():
        raise InputError("canvas", f"coverage overlapping the {t.shape[0]}x{t.shape[1]} truth",
                         f"origin {canvas.origin}, shape {canvas.canvas.shape}")
    if np.iscomplexobj(est) and np.iscomplexobj(t):
        reference = t.astype(np.complex128)
    else:  # an amplitude-only canvas or truth: amplitudes are all there is to compare
        reference, est = np.abs(t).astype(np.float64), np.abs(est).astype(np.float64)
    al = align(reference, est, np.ones(t.shape, bool), cov, remove_ramp=remove_ramp,
               upsample=upsample, max_shift=max_shift)
    out = {"alignment": _alignment_record(al, int(al.valid.sum())),
           "coverage_fraction": float(cov.mean()), "min_weight": float(min_weight)}
    out.update(_sections(reference, al.image, al.valid, scale_amplitude=True))
    out["alignment"]["registration"].update(registration_check(out))
    return out


def phase_rms(canvas: Canvas, truth: np.ndarray, *, remove_ramp: bool = False,
              min_weight: float = 0.0, upsample: int = 100,
              max_shift: float | None = None) -> float:
    """The phase RMS error in radians, as every report and benchmark states it
    (``docs/metrics.md``): :func:`evaluate_canvas`'s ``phase.rms_error_rad``: the canvas
    registered to the truth, its global phase offset (and optionally a ramp) removed, the
    wrapped phase difference's RMS over the covered pixels (weight at least ``min_weight``
    of the largest).

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[0:48, 0:48]
    >>> truth = np.exp(1j * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.complex64)
    >>> est = truth * np.exp(0.7j)                    # a global phase offset only
    >>> c = Canvas(est, np.ones(est.shape, bool), (0, 0), np.ones(est.shape, np.float32))
    >>> phase_rms(c, truth) < 1e-6
    True
    """
    ev = evaluate_canvas(canvas, truth, remove_ramp=remove_ramp, upsample=upsample,
                         max_shift=max_shift, min_weight=min_weight)
    if ev["phase"] is None:
        raise InputError("canvas", "a complex canvas and truth (a phase to compare)",
                         "amplitudes only")
    return float(ev["phase"]["rms_error_rad"])


def _on_grid(c: Canvas, origin: tuple[int, int], shape: tuple[int, int]) -> tuple[np.ndarray, ...]:
    dtype = np.result_type(c.canvas.dtype, np.float32)
    return (place_on_grid(c.canvas, c.origin, origin, shape, np.nan, dtype),
            place_on_grid(c.coverage & np.isfinite(c.canvas), c.origin, origin, shape, False))


def compare_canvases(baseline: Canvas, candidate: Canvas, *, upsample: int = 100,
                     max_shift: float | None = None, images: bool = False) -> dict[str, Any]:
    """Compare two canvases (docs/conventions.md#comparison): figures of ``candidate`` against
    ``baseline``.

    Both are placed on one grid through their origins; the candidate is registered to the
    baseline, its global phase aligned and its amplitude scaled by mean(baseline) /
    mean(candidate) (``amplitude.scale``), as :func:`evaluate_canvas` does. Returns
    ``alignment`` (as
    :func:`evaluate_canvas`), ``overlap_fraction`` (of the baseline's covered pixels) and
    ``amplitude``/``phase`` figure sections (``phase`` ``None`` unless both are complex).
    ``images=True`` adds ``images``: the ``origin`` of the common grid, the ``baseline`` and
    the registered, phase-aligned and amplitude-scaled ``candidate`` on it, and ``valid``
    (both defined), what a viewer shows as A, B and A − B.
    """
    both = (baseline, candidate)
    lo = (min(c.origin[0] for c in both), min(c.origin[1] for c in both))
    hi = tuple(max(c.origin[i] + c.canvas.shape[i] for c in both) for i in (0, 1))
    shape = (hi[0] - lo[0], hi[1] - lo[1])
    base, base_cov = _on_grid(baseline, lo, shape)
    cand, cand_cov = _on_grid(candidate, lo, shape)
    if not np.iscomplexobj(cand):
        base = np.abs(base)
    elif not np.iscomplexobj(base):
        cand = np.abs(cand)
    al = align(base, cand, base_cov, cand_cov, upsample=upsample, max_shift=max_shift)
    out = {"alignment": _alignment_record(al, int(al.valid.sum())),
           "overlap_fraction": float(al.valid.sum() / max(int(base_cov.sum()), 1))}
    out.update(_sections(np.where(al.valid, base, 0), al.image, al.valid, scale_amplitude=True))
    out["alignment"]["registration"].update(registration_check(out))
    if images:
        scale = out["amplitude"]["scale"]
        out["images"] = {"origin": lo, "baseline": np.where(base_cov, base, np.nan),
                         "candidate": al.image * scale, "valid": al.valid}
    return out


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays unwrapped, ``inf``/``nan`` become ``None``."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


def read_truth(path: str | Any) -> np.ndarray:
    """The ground-truth object (key ``objectGuess``) of a data file, as complex128.

    Only the object is read and checked (2-D, finite): a truth file need not carry
    diffraction data. One-line :class:`InputError` for a missing or unreadable file or key.
    """
    from pathlib import Path

    from engine.data import npz_array, open_npz

    p = Path(path)
    with open_npz(p, "a .npz file with the truth 'objectGuess'") as z:
        if "objectGuess" not in z.files:
            raise InputError(str(p), "key 'objectGuess' (the ground-truth object)",
                             f"keys {sorted(z.files)}")
        obj = npz_array(z, "objectGuess", p)
    if obj.ndim != 2 or obj.size == 0 or not np.issubdtype(obj.dtype, np.number):
        raise InputError(f"{p}: key 'objectGuess'", "a numeric 2-D (H, W) array",
                         f"shape {obj.shape}, dtype {obj.dtype}")
    if not np.all(np.isfinite(obj)):
        raise InputError(f"{p}: key 'objectGuess'", "finite values",
                         f"{int(np.sum(~np.isfinite(obj)))} NaN/Inf")
    return obj.astype(np.complex128)
