"""Preparing measured diffraction for the network and the solvers: dark frame, flat field,
negative counts, centring, cropping and binning (docs/conventions.md#preparation).

Every step works on counts (the squared amplitudes), in this order::

    counts = max((amplitude² − dark) / flat, 0)       (each only when given)
    window = the (N·b) × (N·b) pixels about the centre (outside the detector: 0, masked)
    binned = sums of b × b blocks of the window       (b = ``bin``)
    amplitude = sqrt(binned)

The centre is none (the detector's middle), a given (row, col), or the centre of mass of the
mean pattern (``"com"``, streamed over a lazy stack). After preparation the centre sits at
pixel N·b/2 of the window, i.e. N/2 for b = 1 (the centred far field of
docs/conventions.md#forward-model); for an even b it lies (b − 1)/(2b) of a binned pixel
before N/2, which the provenance records.

The mask follows the pixels: a binned pixel is valid only when every detector pixel in it
is, and pixels outside the detector or with a flat field of 0 are masked. The geometry
follows too: binning multiplies the detector pixel by b, and the object pixel λz/(N p)
becomes λz/(N·b·p) — for a window of N·b detector pixels cut from N₀, the object pixel
grows by f = N₀/(N·b), so the positions (object pixels) are divided by f and the probe is
resampled onto the new pixel (:func:`resample_probe`). A ground-truth object on the old
pixel grid no longer matches and is dropped (recorded).

A lazy :class:`~engine.data.DiffractionStack` stays lazy: :class:`PreparedStack` transforms
each batch as it is read. Each step is appended to ``metadata["provenance"]`` as
``{step, parameters, result}``.

Examples
--------
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> ds = simulate(SimulationConfig(n_positions=16, N=64, step=6, seed=0))
>>> out = prepare(ds, PrepareOptions(N=16, bin=2))   # a 32-pixel window, binned 2 x 2
>>> out.N, [p["step"] for p in out.metadata["provenance"]]
(16, ['crop', 'bin', 'probe'])
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from scipy.ndimage import map_coordinates

from engine.data import Dataset, is_lazy, read_rows
from engine.errors import InputError
from engine.geometry import Geometry
from engine.options import Options, option, validate

# rows of a lazy stack read at a time for the mean pattern
STREAM_ROWS = 256

Centre = Literal["none", "com", "given"]


@dataclass(frozen=True)
class PrepareOptions(Options):
    """How raw detector frames become the patterns the methods see.

    ``N``: the prepared pattern size (``None``: the detector's, divided by ``bin``).
    """

    centre: Centre = option("none", "where the beam centre is: none (the detector's middle), "
                            "com (mean pattern's centre of mass) or given (centre_at)")
    centre_at: tuple[float, float] | None = option(
        None, "(row, col) of the beam centre on the detector, pixels (centre='given')")
    N: int | None = option(None, "prepared pattern size (None: the detector's / bin)",
                           minimum=2)
    bin: int = option(1, "detector pixels summed into one, per axis", minimum=1)
    clip_negative: bool = option(True, "set negative counts (after the dark frame) to 0")

    def __post_init__(self) -> None:
        validate(self)
        if self.centre == "given" and self.centre_at is None:
            raise InputError("centre_at", "a (row, col) beam centre with centre='given'",
                             "None")
        if self.centre != "given" and self.centre_at is not None:
            raise InputError("centre", "'given' when centre_at is set", repr(self.centre))


@dataclass(frozen=True)
class Transform:
    """The per-frame part of a preparation, fixed once the centre is known."""

    detector: int  # raw pattern size N0
    top: int  # window corner (row, col) on the detector; may be negative
    left: int
    window: int  # N·b
    bin: int
    dark: np.ndarray | None
    flat: np.ndarray | None
    clip_negative: bool

    @property
    def N(self) -> int:  # noqa: N802 - the physics symbol
        return self.window // self.bin

    def counts(self, amplitudes: np.ndarray) -> np.ndarray:
        """Dark, flat and clip of (b, N0, N0) amplitudes, as float64 counts."""
        c = np.asarray(amplitudes, dtype=np.float64) ** 2
        if self.dark is not None:
            c = c - self.dark
        if self.flat is not None:
            c = c * _inverse_flat(self.flat)
        if self.clip_negative:
            c = np.maximum(c, 0.0)
        return c

    def cut(self, frames: np.ndarray, fill: Any = 0.0) -> np.ndarray:
        """The window of (b, N0, N0) frames (``fill`` outside the detector)."""
        b, N0 = frames.shape[0], self.detector
        out = np.full((b, self.window, self.window), fill, dtype=frames.dtype)
        r0, c0 = max(self.top, 0), max(self.left, 0)
        r1 = min(self.top + self.window, N0)
        c1 = min(self.left + self.window, N0)
        if r1 > r0 and c1 > c0:
            out[:, r0 - self.top:r1 - self.top, c0 - self.left:c1 - self.left] = \
                frames[:, r0:r1, c0:c1]
        return out

    def binned(self, window: np.ndarray, reduce: str = "sum") -> np.ndarray:
        b = self.bin
        if b == 1:
            return window
        shaped = window.reshape(window.shape[0], self.N, b, self.N, b)
        return shaped.all(axis=(2, 4)) if reduce == "all" else shaped.sum(axis=(2, 4))

    def apply(self, amplitudes: np.ndarray) -> np.ndarray:
        """Prepared float32 amplitudes of raw frames (b, N0, N0)."""
        return np.sqrt(self.binned(self.cut(self.counts(amplitudes)))).astype(np.float32)

    def mask(self, mask: np.ndarray | None) -> np.ndarray | None:
        """The prepared (N, N) mask: pixels outside the detector, with an unusable flat
        field, or binned with a masked pixel are invalid; ``None`` when every pixel is
        valid."""
        m = np.ones((self.detector, self.detector), bool) if mask is None else mask.copy()
        if self.flat is not None:
            m &= np.isfinite(self.flat) & (self.flat > 0)
        out = self.binned(self.cut(m[None], fill=False), reduce="all")[0]
        return None if out.all() else out


def _inverse_flat(flat: np.ndarray) -> np.ndarray:
    """1/flat where the flat field is usable (finite, > 0), 0 elsewhere (masked)."""
    ok = np.isfinite(flat) & (flat > 0)
    return np.where(ok, 1.0 / np.where(ok, flat, 1.0), 0.0)


class PreparedStack:
    """A lazy stack of prepared patterns: each read takes the raw rows from ``raw`` and
    transforms them (:class:`Transform`); nothing is read until asked for."""

    def __init__(self, raw: Any, transform: Transform) -> None:
        self.raw, self.transform = raw, transform
        self.shape = (len(raw), transform.N, transform.N)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = read_rows(self.raw, index)
        if rows.ndim == 2:  # a single frame
            return self.transform.apply(rows[None])[0]
        return self.transform.apply(rows)

    def subset(self, index: np.ndarray) -> PreparedStack:
        return PreparedStack(self.raw.subset(index), self.transform)


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def mean_counts(diffraction: Any, dark: np.ndarray | None = None,
                flat: np.ndarray | None = None, clip_negative: bool = True) -> np.ndarray:
    """The mean pattern in counts (after dark, flat and clip), streamed over a lazy stack."""
    N0 = diffraction.shape[-1]
    t = Transform(N0, 0, 0, N0, 1, dark, flat, clip_negative)
    if not is_lazy(diffraction):
        return t.counts(diffraction).mean(axis=0)
    total = np.zeros((N0, N0))
    for sl in _batches(len(diffraction), STREAM_ROWS):
        total += t.counts(read_rows(diffraction, sl)).sum(axis=0)
    return total / len(diffraction)


def centre_of_mass(pattern: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(row, col) centre of mass of a (N, N) pattern over its valid pixels."""
    w = np.asarray(pattern, dtype=np.float64)
    if mask is not None:
        w = w * mask
    total = w.sum()
    if not total > 0:
        raise InputError("centre 'com'", "a mean pattern with some counts", "all zero")
    rows, cols = np.indices(w.shape)
    return float((w * rows).sum() / total), float((w * cols).sum() / total)


def resample_probe(probe: np.ndarray, factor: float, N: int) -> np.ndarray:  # noqa: N803
    """A probe on a grid of N pixels each ``factor`` times the input's pixel, centred as
    the input (pixel N/2 on pixel N₀/2), bicubic on real and imaginary parts, 0 outside.

    Examples
    --------
    >>> p = np.zeros((8, 8), complex); p[4, 4] = 1
    >>> q = resample_probe(p, 1.0, 4)
    >>> q.shape, complex(q[2, 2])
    ((4, 4), (1+0j))
    """
    p = np.asarray(probe)
    N0 = p.shape[-1]
    k = (np.arange(N) - N / 2) * factor + N0 / 2
    rr, cc = np.meshgrid(k, k, indexing="ij")
    coords = np.stack([rr, cc])
    order = 1 if factor == 1.0 else 3
    re = map_coordinates(p.real.astype(np.float64), coords, order=order, mode="constant")
    im = map_coordinates(p.imag.astype(np.float64), coords, order=order, mode="constant")
    return (re + 1j * im).astype(np.complex64)


def _check_frame(name: str, a: np.ndarray | None, N0: int) -> np.ndarray | None:  # noqa: N803
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    if a.shape != (N0, N0):
        raise InputError(name, f"a ({N0}, {N0}) frame in counts, the detector's size",
                         f"shape {a.shape}")
    return a


def plan(ds: Dataset, options: PrepareOptions, dark: np.ndarray | None = None,
         flat: np.ndarray | None = None) -> tuple[Transform, dict[str, Any]]:
    """The transform ``options`` defines for ``ds`` (the mean pattern is streamed for
    ``centre='com'``) and the centre it found."""
    if ds.diffraction is None:
        raise InputError("dataset", "measured 'diffraction' to prepare", "none")
    N0 = int(ds.diffraction.shape[-1])
    dark, flat = _check_frame("dark", dark, N0), _check_frame("flat", flat, N0)
    b = options.bin
    N = options.N if options.N is not None else N0 // b
    window = N * b
    if window > N0 and options.N is None:
        raise InputError("bin", f"at most the detector size {N0}", str(b))
    if options.centre == "com":
        centre = centre_of_mass(mean_counts(ds.diffraction, dark, flat, options.clip_negative),
                                ds.pixel_mask)
    elif options.centre == "given":
        centre = (float(options.centre_at[0]), float(options.centre_at[1]))  # type: ignore[index]
    else:
        centre = (N0 / 2, N0 / 2)
    top = int(round(centre[0])) - window // 2
    left = int(round(centre[1])) - window // 2
    t = Transform(N0, top, left, window, b, dark, flat, options.clip_negative)
    # where the centre lands, in prepared pixels, and how far that is from N/2
    landed = ((centre[0] - top - (b - 1) / 2) / b, (centre[1] - left - (b - 1) / 2) / b)
    return t, {"centre": [centre[0], centre[1]],
               "centre_lands_at": [landed[0], landed[1]],
               "offset_from_N_half": [landed[0] - N / 2, landed[1] - N / 2]}


def prepare(ds: Dataset, options: PrepareOptions | None = None, *,
            dark: np.ndarray | None = None, flat: np.ndarray | None = None) -> Dataset:
    """``ds`` prepared by ``options`` (module docstring): patterns, mask, geometry,
    positions and probe, each step recorded in ``metadata["provenance"]``.

    Parameters
    ----------
    ds : the dataset as read (amplitudes; a lazy stack stays lazy).
    options : :class:`PrepareOptions`.
    dark, flat : (N₀, N₀) dark frame (counts, subtracted) and flat field (relative gain,
        divided by), at the detector's size.
    """
    options = options or PrepareOptions()
    t, found = plan(ds, options, dark, flat)
    N0, N, b = t.detector, t.N, t.bin
    if is_lazy(ds.diffraction):
        diffraction: Any = PreparedStack(ds.diffraction, t)
    else:
        diffraction = np.concatenate([t.apply(ds.diffraction[sl])
                                      for sl in _batches(ds.n, STREAM_ROWS)])
    mask = t.mask(ds.pixel_mask)
    steps: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    if dark is not None:
        steps.append(("dark", {"shape": [N0, N0]}, {"mean_counts": float(dark.mean())}))
    if flat is not None:
        unusable = int((~(np.isfinite(flat) & (flat > 0))).sum())
        steps.append(("flat", {"shape": [N0, N0]}, {"masked_pixels": unusable}))
    if options.clip_negative and dark is not None:
        steps.append(("clip", {"minimum": 0.0}, {}))
    if options.centre != "none":
        steps.append(("centre", {"method": options.centre,
                                 "centre_at": options.centre_at and list(options.centre_at)},
                      found))
    factor = N0 / t.window  # object pixel grows by this
    if t.window != N0 or t.top != 0 or t.left != 0:
        outside = int(max(0, -t.top) + max(0, t.top + t.window - N0)
                      + max(0, -t.left) + max(0, t.left + t.window - N0))
        steps.append(("crop", {"window": t.window, "top": t.top, "left": t.left},
                      {"detector": N0, "outside_detector_rows_cols": outside}))
    if b > 1:
        steps.append(("bin", {"factor": b}, {"N": N}))
    geometry = ds.geometry
    if geometry is not None and b > 1:
        geometry = Geometry(geometry.wavelength, geometry.distance,
                            (geometry.detector_pixel[0] * b, geometry.detector_pixel[1] * b),
                            geometry.propagation, geometry.focus_distance)
    far = geometry is None or geometry.propagation == "far"
    if not far and (factor != 1.0 or b > 1):
        raise InputError("prepare", "cropping or binning of far-field data only (near field: "
                         "the object pixel is the detector's, the window is the object's)",
                         "near-field geometry")
    probe, x, y = ds.probe, ds.xcoords, ds.ycoords
    obj, patches = ds.object, ds.patches
    if factor != 1.0 or N != N0:
        probe = resample_probe(ds.probe, factor, N)
        dropped: list[str] = []
        if factor != 1.0:  # a new object pixel: positions rescale, the truth's grid is gone
            x, y = ds.xcoords / factor, ds.ycoords / factor
            dropped = [k for k, v in (("objectGuess", obj), ("Y", patches)) if v is not None]
            obj = patches = None
        elif patches is not None:  # same pixel, smaller window: the central N x N
            lo = (N0 - N) // 2
            patches = patches[:, lo:lo + N, lo:lo + N]
        steps.append(("probe", {"from_N": N0, "to_N": N, "pixel_factor": factor},
                      {"positions_divided_by": factor, "ground_truth_dropped": dropped}))
    metadata = dict(ds.metadata)
    history = list(metadata.get("provenance", []))
    history += [{"step": s, "parameters": p, "result": r} for s, p, r in steps]
    metadata["provenance"] = history
    if mask is not None and not mask.any():
        raise InputError("prepare", "some valid detector pixel in the prepared window",
                         "every pixel masked")
    return replace(ds, diffraction=diffraction, xcoords=x, ycoords=y, probe=probe, object=obj,
                   patches=patches, pixel_mask=mask, geometry=geometry, metadata=metadata)
