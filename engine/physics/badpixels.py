"""Bad detector pixels found in the data itself: saturated, hot and cold (dead) pixels.

Three tests, all from one streamed pass over the stack (a lazy
:class:`~engine.data.DiffractionStack` is read a batch of rows at a time):

- **saturated**: a pixel that reaches the detector's saturation count (when it is known) in
  any frame, or, when it is not, a pixel that sits at the stack's maximum count in at least
  ``saturated_frames`` frames (a real intensity maximum is not repeated to the last digit
  over many frames; a clipped one is).
- **hot** / **cold**: a pixel whose mean amplitude over the frames is an outlier against its
  8 neighbours: its residual to their median, divided by a robust local scale (1.4826 × the
  median absolute residual in a 7 × 7 window, plus the noise of a mean of F amplitudes,
  0.5/√F), beyond ``threshold`` (above: hot, below: cold), and in log intensity more than
  1.5 robust deviations off the quadratic surface through its 24 surrounding pixels. The
  local scale keeps the steep centre of a pattern, and the quadratic its sharp direct-beam
  peak, from passing for outliers. Three passes, each with the bad pixels found so far
  filled by their neighbours' median, so that two bad neighbours do not hide each other.
- **dead**: a pixel that reads zero in every frame while its neighbours' mean amplitude
  says it should have seen about ``dead_photons`` photons over the stack.

The result is a mask (True = valid) to merge into ``Dataset.pixel_mask``
(docs/conventions.md#detector-mask); :func:`mask_bad_pixels` does that and records the step
and its counts in ``metadata["provenance"]``.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> D = np.sqrt(rng.poisson(100.0, (40, 16, 16))).astype(np.float32)
>>> D[:, 3, 4] = 30.0                  # a hot pixel (900 counts against ~100)
>>> D[:, 9, 9] = 40.0                  # clipped: the stack's largest count, every frame
>>> report = find_bad_pixels(D)
>>> report.counts["hot"], report.counts["saturated"], int((~report.mask).sum())
(1, 1, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.ndimage import correlate, median_filter

from engine.data import Dataset, is_lazy, read_rows
from engine.errors import InputError
from engine.options import Options, option, validate

# rows of a lazy stack read at a time
STREAM_ROWS = 256
# a count equal to the maximum within this relative tolerance is "at" the maximum
AT_MAXIMUM = 1e-6
# neighbours of a pixel: the 3 x 3 window without its centre
_NEIGHBOURS = np.ones((3, 3), dtype=bool)
_NEIGHBOURS[1, 1] = False


@dataclass(frozen=True)
class BadPixelOptions(Options):
    """How bad pixels are found (docs/conventions.md#detector-mask)."""

    saturation: float | None = option(
        None, "the detector's saturation in counts (None: repeated stack maximum)",
        minimum=0, exclusive_minimum=True)
    saturated_frames: int = option(
        3, "frames at the stack's maximum count that mark a pixel saturated", minimum=1,
        advanced=True)
    threshold: float = option(
        8.0, "robust z-score of a pixel's mean against its neighbours (hot/cold)",
        minimum=0, exclusive_minimum=True, advanced=True)
    dead_photons: float = option(
        20.0, "photons a pixel that reads 0 throughout should have seen to count as dead",
        minimum=0, exclusive_minimum=True, advanced=True)
    batch: int = option(STREAM_ROWS, "rows of a lazy stack read at a time", minimum=1,
                        advanced=True)

    def __post_init__(self) -> None:
        validate(self)


@dataclass
class BadPixelReport:
    """What :func:`find_bad_pixels` found.

    Attributes
    ----------
    mask : (N, N) bool, True = valid (every bad pixel False; the input mask not merged).
    saturated, hot, cold : (N, N) bool of each kind (cold includes dead pixels).
    counts : pixels of each kind and ``bad`` (their union).
    saturation : the count taken as saturation (given, or the stack's maximum).
    frames : frames read.
    """

    mask: np.ndarray
    saturated: np.ndarray
    hot: np.ndarray
    cold: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)
    saturation: float = 0.0
    frames: int = 0

    def summary(self) -> str:
        """One line for a log or a report."""
        c = self.counts
        return (f"{c['bad']} bad pixel(s) masked: {c['saturated']} saturated (at "
                f"{self.saturation:.6g} counts), {c['hot']} hot, {c['cold']} cold/dead, "
                f"from {self.frames} frames")


class _Accumulator:
    """Per-pixel sums of one streamed pass: mean amplitude, maximum count and how often
    each pixel sits at its own maximum (or at a given saturation)."""

    def __init__(self, shape: tuple[int, int], saturation: float | None) -> None:
        self.total = np.zeros(shape, np.float64)
        self.peak = np.full(shape, -1.0, np.float64)  # each pixel's largest count
        self.at_peak = np.zeros(shape, np.int64)  # frames at that count
        self.saturation = saturation
        self.over = np.zeros(shape, np.int64)  # frames at or above a known saturation
        self.frames = 0

    def add(self, rows: np.ndarray) -> None:
        amp = rows.astype(np.float64)
        counts = amp * amp
        self.total += amp.sum(axis=0)
        self.frames += amp.shape[0]
        if self.saturation is not None:
            self.over += np.sum(counts >= self.saturation * (1 - AT_MAXIMUM), axis=0)
        batch_peak = counts.max(axis=0)
        at = np.sum(counts >= batch_peak * (1 - AT_MAXIMUM), axis=0)
        higher = batch_peak > self.peak * (1 + AT_MAXIMUM)
        same = ~higher & (batch_peak >= self.peak * (1 - AT_MAXIMUM))
        self.at_peak = np.where(higher, at, np.where(same, self.at_peak + at, self.at_peak))
        self.peak = np.where(higher, batch_peak, self.peak)


def _quadratic_centre_kernel() -> np.ndarray:
    """The 5 x 5 weights that predict a pixel from its 24 neighbours by a least-squares
    quadratic surface (zero weight on the pixel itself)."""
    yy, xx = np.mgrid[-2:3, -2:3]
    around = ~((yy == 0) & (xx == 0))
    y, x = yy[around], xx[around]
    design = np.stack([np.ones_like(y), y, x, y * y, x * x, y * x], axis=1).astype(float)
    kernel = np.zeros((5, 5))
    kernel[around] = np.linalg.pinv(design)[0]
    return kernel


_QUADRATIC = _quadratic_centre_kernel()
# robust z-score of a pixel's log mean against the quadratic through its neighbours below
# which a local outlier is taken for a real, smooth peak
SMOOTH_THRESHOLD = 1.5


def _log_smoothness(mean: np.ndarray, frames: int) -> np.ndarray:
    """Robust z-score of log(mean) against the quadratic surface through the 24 pixels
    around each pixel (the noise floor of a mean of ``frames`` amplitudes keeps dark pixels'
    logarithms finite and quiet)."""
    floor = 0.5 / np.sqrt(frames) + 1e-3 * float(mean.max())
    a = np.log(mean + floor)
    r = a - correlate(a, _QUADRATIC, mode="reflect")
    scale = 1.4826 * median_filter(np.abs(r), size=7, mode="reflect")
    scale = np.maximum(scale, 1.4826 * np.median(np.abs(r)) + 1e-12)
    return r / scale


# passes of the hot/cold test, each with the bad pixels found so far filled in
OUTLIER_PASSES = 3


def _filled(mean: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """``mean`` with the ``bad`` pixels replaced by the median of their 8 neighbours."""
    if not bad.any():
        return mean
    out = mean.copy()
    out[bad] = median_filter(mean, footprint=_NEIGHBOURS, mode="reflect")[bad]
    return out


def _outliers(mean: np.ndarray, frames: int, threshold: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """(hot, cold): pixels of ``mean`` beyond ``threshold`` robust deviations from their
    neighbours' median (module docstring) and off the log-quadratic surface around them."""
    neighbours = median_filter(mean, footprint=_NEIGHBOURS, mode="reflect")
    residual = mean - neighbours
    scale = (1.4826 * median_filter(np.abs(residual), size=7, mode="reflect")
             + 0.5 / np.sqrt(frames))
    z = residual / scale
    # a sharp but real peak (the direct beam of a bright pattern) also stands out from its
    # neighbours' median; it is smooth in log intensity, where a quadratic through the 24
    # pixels around it predicts it: an outlier must also stand out from that prediction
    smooth = _log_smoothness(mean, frames)
    return ((z > threshold) & (smooth > SMOOTH_THRESHOLD),
            (z < -threshold) & (smooth < -SMOOTH_THRESHOLD))


def find_bad_pixels(diffraction: Any, options: BadPixelOptions | None = None) -> BadPixelReport:
    """Saturated, hot and cold pixels of an (n, N, N) amplitude stack, in one streamed pass.

    Parameters
    ----------
    diffraction : amplitudes (sqrt of counts), an array or a lazy
        :class:`~engine.data.DiffractionStack` (read ``options.batch`` rows at a time).
    options : :class:`BadPixelOptions` (default: saturation unknown, threshold 8).
    """
    options = options or BadPixelOptions()
    shape = tuple(diffraction.shape)
    if len(shape) != 3 or shape[0] == 0:
        raise InputError("diffraction", "a non-empty (n, N, N) stack", f"shape {shape}")
    acc = _Accumulator((shape[1], shape[2]), options.saturation)
    if is_lazy(diffraction):
        for start in range(0, shape[0], options.batch):
            acc.add(read_rows(diffraction, slice(start, min(start + options.batch, shape[0]))))
    else:
        acc.add(np.asarray(diffraction))
    F = acc.frames
    if options.saturation is not None:
        saturation = float(options.saturation)
        saturated = acc.over > 0
    else:
        saturation = float(acc.peak.max())
        saturated = ((acc.peak >= saturation * (1 - AT_MAXIMUM))
                     & (acc.at_peak >= options.saturated_frames))
        if saturation <= 0:
            saturated[:] = False
    mean = acc.total / F
    # a pixel that never counted although its neighbours' mean says it should have seen
    # dead_photons over the stack (amplitude ≈ counts for the weak pixels where this matters)
    neighbours = median_filter(mean, footprint=_NEIGHBOURS, mode="reflect")
    dead = (acc.peak <= 0) & (neighbours * F >= options.dead_photons) & ~saturated
    hot = np.zeros_like(saturated)
    cold = dead.copy()
    # bad pixels next to each other hide one another: each pass fills the ones found so far
    # with their neighbours' median and looks again
    for _ in range(OUTLIER_PASSES):
        found = saturated | hot | cold
        h, c = _outliers(_filled(mean, found), F, options.threshold)
        h, c = h & ~found, c & ~found
        if not (h.any() or c.any()):
            break
        hot, cold = hot | h, cold | c
    bad = saturated | hot | cold
    counts = {"saturated": int(saturated.sum()), "hot": int(hot.sum()), "cold": int(cold.sum()),
              "bad": int(bad.sum())}
    return BadPixelReport(~bad, saturated, hot, cold, counts, saturation, F)


def mask_bad_pixels(ds: Dataset, options: BadPixelOptions | None = None
                    ) -> tuple[Dataset, BadPixelReport]:
    """``ds`` with its bad pixels merged into ``pixel_mask`` and the step in its provenance.

    Examples
    --------
    >>> from engine.simulation.simulate import SimulationConfig, simulate
    >>> ds = simulate(SimulationConfig(n_positions=16, N=32, step=6, seed=0))
    >>> D = ds.diffraction.copy(); D[:, 5, 7] = 10 * D.max()
    >>> masked, report = mask_bad_pixels(ds.with_diffraction(D))
    >>> bool(masked.pixel_mask[5, 7]), masked.metadata["provenance"][-1]["step"]
    (False, 'bad_pixels')
    """
    if ds.diffraction is None:
        raise InputError("dataset", "measured 'diffraction' to look for bad pixels in", "none")
    options = options or BadPixelOptions()
    report = find_bad_pixels(ds.diffraction, options)
    before = ds.pixel_mask
    mask = report.mask if before is None else before & report.mask
    if not mask.any():
        raise InputError("bad pixels", "some valid detector pixel left after masking",
                         report.summary())
    result = {**report.counts, "saturation_counts": report.saturation,
              "masked_total": int((~mask).sum()),
              "newly_masked": int((~mask).sum() - (0 if before is None else (~before).sum()))}
    metadata = append_provenance(ds.metadata, "bad_pixels", options.to_dict(), result)
    return replace(ds, pixel_mask=mask, metadata=metadata), report


def append_provenance(metadata: dict[str, Any], step: str, parameters: dict[str, Any],
                      result: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``metadata`` with ``{step, parameters, result}`` appended to its
    ``provenance`` list (docs/conventions.md#provenance)."""
    history = list(metadata.get("provenance", []))
    history.append({"step": step, "parameters": parameters, "result": result})
    return {**metadata, "provenance": history}


# formats read from a detector's own file, where bad pixels are looked for on load
DETECTOR_FORMATS = ("cxi", "nexus", "mapped")


def file_saturation(ds: Dataset) -> float | None:
    """The saturation (counts) a file states (``metadata["saturation_value"]``), or None
    where it states none or a value that cannot be one (≤ 0, not finite)."""
    value = ds.metadata.get("saturation_value")
    try:
        value = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def mask_on_load(ds: Dataset, options: BadPixelOptions | None = None, *,
                 reestimate_probe: bool = True) -> Dataset:
    """What a reader's dataset becomes when bad pixels are looked for on load: the
    :func:`mask_bad_pixels` of ``ds`` (with the file's saturation value where it states one
    and ``options`` leave it open), the counts also in ``metadata["bad_pixels"]``, and —
    where the reader estimated the probe from the mean pattern before the bad pixels were
    known — the probe estimated again without them (a hot pixel would otherwise shape it).

    Examples
    --------
    >>> from engine.simulation.simulate import SimulationConfig, simulate
    >>> ds = simulate(SimulationConfig(n_positions=16, N=32, step=6, seed=0))
    >>> D = ds.diffraction.copy(); D[:, 5, 7] = 10 * D.max()
    >>> found = mask_on_load(ds.with_diffraction(D)).metadata["bad_pixels"]
    >>> found["bad"], found["saturation_source"]  # the stack's maximum in every frame
    (1, 'repeated stack maximum')
    """
    if ds.diffraction is None:
        return ds
    if options is None:
        options = BadPixelOptions(saturation=file_saturation(ds))
    elif options.saturation is None and file_saturation(ds) is not None:
        options = replace(options, saturation=file_saturation(ds))
    masked, report = mask_bad_pixels(ds, options)
    meta = {**masked.metadata, "bad_pixels": {**report.counts,
                                              "saturation_counts": report.saturation,
                                              "saturation_source": "file" if
                                              options.saturation is not None else
                                              "repeated stack maximum"}}
    probe = masked.probe
    if (reestimate_probe and report.counts["bad"]
            and str(ds.metadata.get("probe_source", "")).startswith("estimated")):
        from engine.io.build import mean_pattern_probe

        probe, how = mean_pattern_probe(masked.diffraction, masked.geometry,
                                        masked.pixel_mask)
        meta["probe_source"] = f"{how} (bad pixels filled)"
    return replace(masked, metadata=meta, probe=np.asarray(probe, np.complex64))
