"""Resolution without ground truth: the half-split Fourier ring correlation.

The scan is split into two interleaved halves (:func:`split_halves`), each half is
reconstructed with the same options, the second is registered to the first (sub-pixel
shift, global phase) on the largest rectangle both halves illuminate well, and the FRC of
the two complex objects on that rectangle is read off at the half-bit threshold (van Heel
& Schatz 2005): the first ring where the curve falls below
T(n) = (0.2071 + 1.9102/√n) / (1.2071 + 0.9102/√n), n the ring's pixel count, interpolated
linearly between rings (docs/metrics.md#frc). The resolution is the period 1/q at the
crossing, in pixels, and in nanometres when the dataset carries a pixel size.

Each half holds half the dose, so the half-split curve describes the half-data
reconstructions; the full-data reconstruction compared with the truth has, by the
Rosenthal & Henderson (2003) relation FRC_full = √(2 FRC_half / (1 + FRC_half)), the
matching threshold √(2T / (1 + T)) (:func:`engine.evaluation.metrics.truth_threshold`).

Examples
--------
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> from engine.iterative.options import LSQMLOptions
>>> ds = simulate(SimulationConfig(object="grf", n_positions=64, N=32, step=4, seed=0))
>>> a, b = split_halves(ds, "checkerboard")
>>> len(a) + len(b) == ds.n and len(set(a) & set(b)) == 0
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from engine.atomic import write_json
from engine.data import Dataset
from engine.errors import InputError
from engine.evaluation.metrics import frc, frc_crossing, to_jsonable
from engine.evaluation.registration import align, largest_rectangle
from engine.events import Callback, RunControl, StopRequested
from engine.iterative.evaluate import WELL_ILLUMINATED
from engine.iterative.options import SolverOptions
from engine.iterative.result import ReconResult
from engine.physics.stitching import Canvas, place_on_grid

SplitScheme = Literal["alternate", "checkerboard"]
SPLIT_SCHEMES: tuple[str, ...] = get_args(SplitScheme)
# the largest registration shift between the two halves (px)
MAX_HALF_SHIFT_PX = 2.0


def split_halves(dataset: Dataset, scheme: str = "checkerboard") -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved halves of the scan positions (index arrays, sorted).

    ``alternate``: every other position along the scan path (the data's order): even
    indices, odd indices. ``checkerboard``: the raster cells (positions divided by the
    median nearest-neighbour distance, rounded) coloured like a checkerboard, so each half
    is a coarser raster turned by 45° that still covers the whole field (on a raster with
    an even row length ``alternate`` gives stripes instead).
    """
    if scheme not in SPLIT_SCHEMES:
        raise InputError("split", f"one of {list(SPLIT_SCHEMES)}", repr(scheme))
    n = dataset.n
    if n < 4:
        raise InputError("data", "at least 4 scan positions to split into halves",
                         f"{n} position(s)")
    if scheme == "alternate":
        idx = np.arange(n)
        return idx[0::2], idx[1::2]
    pos = dataset.positions
    d = np.hypot(pos[:, None, 0] - pos[None, :, 0], pos[:, None, 1] - pos[None, :, 1])
    np.fill_diagonal(d, np.inf)
    step = float(np.median(d.min(axis=1)))
    if not step > 0:
        raise InputError("positions", "distinct scan positions to split", "repeated positions")
    cells = np.rint((pos - pos.min(axis=0)) / step).astype(np.int64)
    colour = (cells[:, 0] + cells[:, 1]) % 2
    a, b = np.nonzero(colour == 0)[0], np.nonzero(colour == 1)[0]
    if min(a.size, b.size) < 2:
        raise InputError("positions", "a raster-like scan for a checkerboard split",
                         f"halves of {a.size} and {b.size} positions (use 'alternate')")
    return a, b


@dataclass
class ResolutionResult:
    """A half-split FRC: the curve, the threshold, the crossing and the resolution.

    Attributes
    ----------
    frequency : ring centres, cycles per pixel (1/side … 0.5).
    frc : the FRC of the two half reconstructions per ring.
    threshold : the half-bit threshold per ring.
    crossing : the frequency (cycles/px) where the curve first falls below the threshold;
        0.5 (Nyquist) when it never does.
    resolution_px : 1 / crossing.
    resolution_nm : ``resolution_px`` × the pixel size in nm, or ``None`` without a pixel
        size.
    reached_nyquist : the curve never fell below the threshold (the resolution is then at
        least the Nyquist period, 2 px).
    pixel_size_m : (row, col) object pixel size used, or ``None``.
    split : the split scheme; ``halves`` the two index arrays.
    box : (row0, col0, height, width) of the compared rectangle in object coordinates.
    shift_px, phase_offset_rad : the registration of the second half onto the first.
    results : the two half reconstructions.
    """

    frequency: np.ndarray
    frc: np.ndarray
    threshold: np.ndarray
    crossing: float
    resolution_px: float
    resolution_nm: float | None
    reached_nyquist: bool
    pixel_size_m: tuple[float, float] | None
    split: str
    halves: tuple[np.ndarray, np.ndarray]
    box: tuple[int, int, int, int]
    shift_px: tuple[float, float]
    phase_offset_rad: float
    results: tuple[ReconResult, ReconResult] = field(repr=False, default=None)  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (no arrays of the reconstructions)."""
        return to_jsonable({
            "frequency_cycles_per_px": self.frequency.tolist(), "frc": self.frc.tolist(),
            "threshold": "half-bit (van Heel & Schatz 2005)",
            "threshold_curve": self.threshold.tolist(), "crossing_cycles_per_px":
            self.crossing, "resolution_px": self.resolution_px,
            "resolution_nm": self.resolution_nm, "reached_nyquist": self.reached_nyquist,
            "pixel_size_m": None if self.pixel_size_m is None else list(self.pixel_size_m),
            "split": self.split, "half_sizes": [int(h.size) for h in self.halves],
            "box": list(self.box), "shift_px": list(self.shift_px),
            "phase_offset_rad": self.phase_offset_rad})

    def save(self, json_path: str | os.PathLike[str],
             png_path: str | os.PathLike[str] | None = None) -> Path:
        """Write the curve and figures as JSON (and the plot as PNG when asked)."""
        out = write_json(json_path, self.to_dict())
        if png_path is not None:
            save_frc_plot(self, png_path)
        return Path(out) if out is not None else Path(json_path)


def save_frc_plot(result: ResolutionResult, path: str | os.PathLike[str]) -> Path:
    """The FRC curve, the half-bit threshold and the crossing, as a PNG."""
    from matplotlib.figure import Figure

    from engine.evaluation.report import save_figure

    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(result.frequency, result.frc, marker="o", ms=3, label="FRC of the halves")
    ax.plot(result.frequency, result.threshold, ls="--", label="half-bit threshold")
    if not result.reached_nyquist:
        ax.axvline(result.crossing, color="grey", lw=0.8)
    size = ("" if result.resolution_nm is None else f" = {result.resolution_nm:.3g} nm")
    ax.set_title(f"half-split FRC: {result.resolution_px:.3g} px{size}"
                 + (" (Nyquist)" if result.reached_nyquist else ""))
    ax.set_xlabel("spatial frequency (cycles / pixel)")
    ax.set_ylabel("FRC")
    ax.set_ylim(-0.1, 1.05)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    return save_figure(fig, path)


def well_illuminated(canvas: Canvas) -> np.ndarray:
    """Covered pixels with at least :data:`WELL_ILLUMINATED` of the peak illumination."""
    w = canvas.weight.astype(np.float64)
    return canvas.coverage & np.isfinite(canvas.canvas) & (w >= WELL_ILLUMINATED * w.max())


def common_grid(a: Canvas, b: Canvas) -> tuple[tuple[int, int], tuple[int, int]]:
    """Origin and shape of a grid holding both canvases."""
    lo = np.minimum(a.origin, b.origin)
    hi = np.maximum(np.add(a.origin, a.canvas.shape), np.add(b.origin, b.canvas.shape))
    return (int(lo[0]), int(lo[1])), (int(hi[0] - lo[0]), int(hi[1] - lo[1]))


def on_grid(c: Canvas, mask: np.ndarray, origin: tuple[int, int],
            shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The canvas (complex, NaN outside) and ``mask`` placed on a grid."""
    image = place_on_grid(c.canvas.astype(np.complex128), c.origin, origin, shape, np.nan)
    m = place_on_grid(mask, c.origin, origin, shape, False, bool)
    return image, m


def half_frc(first: Canvas, second: Canvas) -> dict[str, Any]:
    """Register ``second`` onto ``first`` and compute their FRC on the largest rectangle
    both illuminate well. Returns the :func:`engine.evaluation.metrics.frc` record plus
    ``box`` (object coordinates), ``shift_px``, ``phase_offset_rad`` and the images."""
    origin, shape = common_grid(first, second)
    ia, ma = on_grid(first, well_illuminated(first), origin, shape)
    ib, mb = on_grid(second, well_illuminated(second), origin, shape)
    # both halves share the grid: only a sub-pixel to pixel drift is searched, so that
    # periodic structure (a raster's) cannot register a whole period off
    al = align(ia, ib, ma, mb, max_shift=MAX_HALF_SHIFT_PX)
    both = ma & al.valid
    r0, c0, h, w = largest_rectangle(both, max_aspect=1.5)
    if min(h, w) < 8:
        raise InputError("halves", "two half reconstructions overlapping on at least 8x8 "
                         "well-illuminated pixels", f"a {h}x{w} common rectangle")
    box = (slice(r0, r0 + h), slice(c0, c0 + w))
    record = frc(ia[box], al.image[box])
    record.update(box=(r0 + origin[0], c0 + origin[1], h, w), shift_px=al.shift,
                  phase_offset_rad=al.phase_offset, images=(ia[box], al.image[box]))
    return record


def half_split_resolution(dataset: Dataset, options: SolverOptions, *,
                          split: str = "checkerboard", backend: str = "numpy",
                          device: str = "auto", init: Any = "flat",
                          emit: Callback | None = None,
                          control: RunControl | None = None) -> ResolutionResult:
    """Reconstruct both halves of the scan with ``options`` and read the resolution off
    their FRC at the half-bit threshold (module docstring).

    Parameters
    ----------
    dataset : measured data; ``dataset.pixel_size`` (from its geometry) gives nm.
    options : the solver options of both half reconstructions.
    split : ``"alternate"`` or ``"checkerboard"`` (:func:`split_halves`).
    backend, device, init, emit, control : as for
        :func:`engine.iterative.solver.reconstruct`; a stop during either half raises
        :class:`~engine.events.StopRequested` (half a split gives no resolution).
    """
    from engine.iterative.solver import reconstruct

    halves = split_halves(dataset, split)
    done = []
    for h in halves:
        done.append(reconstruct(dataset.subset(h), options, backend=backend, device=device,
                                init=init, emit=emit, control=control, snapshot_every=0))
        if done[-1].stopped:
            raise StopRequested("resolution stopped before both halves were reconstructed")
    results = tuple(done)
    record = half_frc(results[0].canvas, results[1].canvas)
    freq = np.asarray(record["frequency"])
    curve = np.asarray(record["frc"])
    thr = np.asarray(record["half_bit"])
    crossing, nyquist = frc_crossing(freq, curve, thr)
    pixel = dataset.pixel_size
    res_px = 1.0 / crossing
    res_nm = None if pixel is None else res_px * float(np.sqrt(pixel[0] * pixel[1])) * 1e9
    return ResolutionResult(freq, curve, thr, crossing, res_px, res_nm, nyquist,
                            None if pixel is None else (float(pixel[0]), float(pixel[1])),
                            split, halves, tuple(int(v) for v in record["box"]),
                            tuple(float(v) for v in record["shift_px"]),
                            float(record["phase_offset_rad"]), results)  # type: ignore[arg-type]
