"""Stitching (reassembly) of patches onto the object grid (docs/conventions.md#stitching).

Each patch contributes its central ``crop`` × ``crop`` window, weighted by a window
(``uniform`` or ``probe`` = |P|²), through the bilinear adjoint of extraction; the canvas is
Σ w·patch / Σ w where Σ w > ε and NaN elsewhere, with a boolean coverage mask. Accumulation
is streamed batch by batch, so memory is O(canvas), not O(patches).

Examples
--------
>>> import numpy as np
>>> from engine.backends import get_backend
>>> obj = (np.arange(80 * 80).reshape(80, 80) % 7 + 1).astype(complex)
>>> pos = np.array([[30.0, 30.0], [40.0, 44.0], [50.0, 36.0]])
>>> be = get_backend("numpy")
>>> patches = be.extract(obj, pos - 16, 32)
>>> canvas = stitch(patches, pos, backend=be, config=StitchConfig(crop=32))
>>> bool(np.allclose(canvas.crop_object(obj.shape)[canvas.crop_coverage(obj.shape)],
...                  obj[canvas.crop_coverage(obj.shape)]))
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from engine.backends import Backend, get_backend
from engine.data import npz_array, open_npz, save_arrays
from engine.errors import InputError
from engine.options import Options, option, validate

Window = Literal["uniform", "probe"]
WINDOWS: tuple[str, ...] = get_args(Window)


@dataclass(frozen=True)
class StitchConfig(Options):
    """Stitching options.

    Parameters
    ----------
    crop : central window size in pixels (``None``: N/2; N allowed).
    window : ``"uniform"`` or ``"probe"`` (weights |P|² of the cropped window).
    eps : pixels whose weight is at most ``eps`` × max weight are uncovered (NaN).
    """

    crop: int | None = option(None, "central window of each patch in pixels (None: N/2)",
                              minimum=1)
    window: Window = option("uniform", "patch weights: uniform or the probe's |P|^2")
    eps: float = option(1e-6, "weights at most eps x the largest are uncovered (NaN)",
                        minimum=0, advanced=True)

    def __post_init__(self) -> None:
        validate(self)

    def crop_for(self, N: int) -> int:
        crop = N // 2 if self.crop is None else self.crop
        if crop > N:
            raise InputError("crop", f"at most the patch size N = {N}", str(crop))
        return crop


@dataclass(frozen=True)
class CanvasGeometry:
    """Where the canvas sits: ``origin`` (row, col) of canvas pixel 0 in object coordinates."""

    origin: tuple[int, int]
    shape: tuple[int, int]

    @classmethod
    def from_positions(cls, positions: np.ndarray, N: int) -> CanvasGeometry:
        """Bounds from the positions plus the N/2 margin (and one row/col for interpolation).

        Depends only on the set of positions, so any gridsize, group count or batch size of
        the same patches gives the same canvas.
        """
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        if pos.shape[0] == 0:
            raise InputError("positions", "at least one position to bound the canvas", "none")
        lo = np.floor(pos.min(axis=0) - N / 2).astype(int)
        hi = np.ceil(pos.max(axis=0) + N / 2).astype(int) + 1
        return cls(origin=(int(lo[0]), int(lo[1])), shape=(int(hi[0] - lo[0]), int(hi[1] - lo[1])))


def overlap_slices(origin: tuple[int, int], shape: tuple[int, int],
                   grid_origin: tuple[int, int], grid_shape: tuple[int, int]
                   ) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Where an array of ``shape`` at ``origin`` meets a grid of ``grid_shape`` at
    ``grid_origin`` (both in object coordinates): ``(grid slices, array slices)`` of the
    overlap, or ``None`` when they do not overlap. The one canvas-placement rule.

    >>> overlap_slices((2, -1), (3, 3), (0, 0), (4, 4))
    ((slice(2, 4, None), slice(0, 2, None)), (slice(0, 2, None), slice(1, 3, None)))
    """
    r0, c0 = origin[0] - grid_origin[0], origin[1] - grid_origin[1]
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + shape[0], grid_shape[0]), min(c0 + shape[1], grid_shape[1])
    if re <= rs or ce <= cs:
        return None
    return (slice(rs, re), slice(cs, ce)), (slice(rs - r0, re - r0), slice(cs - c0, ce - c0))


def place_on_grid(values: np.ndarray, origin: tuple[int, int], grid_origin: tuple[int, int],
                  grid_shape: tuple[int, int], fill: Any = np.nan,
                  dtype: Any = None) -> np.ndarray:
    """``values`` (h, w) at ``origin`` copied onto a grid of ``grid_shape`` at
    ``grid_origin``, ``fill`` elsewhere (the part outside the grid is dropped).

    >>> place_on_grid(np.ones((2, 2)), (1, 1), (0, 0), (3, 3), fill=0.0)
    array([[0., 0., 0.],
           [0., 1., 1.],
           [0., 1., 1.]])
    """
    v = np.asarray(values)
    out = np.full(grid_shape, fill, dtype=v.dtype if dtype is None else dtype)
    where = overlap_slices(origin, v.shape, grid_origin, grid_shape)
    if where is not None:
        out[where[0]] = v[where[1]]
    return out


@dataclass
class Canvas:
    """A stitched estimate.

    Attributes
    ----------
    canvas : (h, w) complex64 (or float32 for amplitude-only), NaN where uncovered.
    coverage : (h, w) bool.
    origin : (row, col) of canvas pixel 0 in object coordinates.
    weight : (h, w) float32, Σ w.
    """

    canvas: np.ndarray
    coverage: np.ndarray
    origin: tuple[int, int]
    weight: np.ndarray

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Atomic NPZ with ``canvas``, ``coverage``, ``origin`` and ``weight``."""
        return save_arrays(path, {
            "canvas": self.canvas,
            "coverage": self.coverage,
            "origin": np.asarray(self.origin, dtype=np.int64),
            "weight": self.weight,
        })

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Canvas:
        """Read a canvas file (:meth:`save`'s layout); one-line errors for a bad file.

        The canvas must be a numeric 2-D array and its coverage (and weight) of the same
        shape: a mask of another shape would score pixels that do not exist.
        """
        from engine.rundir import readable_run

        path = readable_run(path)  # a run being replaced: its previous, complete run
        with open_npz(path, "a canvas .npz file") as z:
            for key in ("canvas", "coverage", "origin"):
                if key not in z.files:
                    raise InputError(str(path), f"key '{key}' of a canvas file", f"keys {z.files}")
            canvas = npz_array(z, "canvas", path)
            coverage = npz_array(z, "coverage", path)
            origin = npz_array(z, "origin", path)
            weight = npz_array(z, "weight", path) if "weight" in z.files else None
        if canvas.ndim != 2 or not np.issubdtype(canvas.dtype, np.number):
            raise InputError(f"{path}: key 'canvas'", "a numeric 2-D (h, w) array",
                             f"shape {canvas.shape}, dtype {canvas.dtype}")
        for key, a in (("coverage", coverage), ("weight", weight)):
            if a is not None and a.shape != canvas.shape:
                raise InputError(f"{path}: key '{key}'", f"the canvas's shape {canvas.shape}",
                                 f"shape {a.shape}")
        if origin.shape != (2,) or not np.issubdtype(origin.dtype, np.number):
            raise InputError(f"{path}: key 'origin'", "two numbers (row, col)",
                             f"shape {origin.shape}, dtype {origin.dtype}")
        if weight is None:
            weight = coverage.astype(np.float32)
        return cls(canvas, coverage.astype(bool), tuple(int(v) for v in origin), weight)

    def crop_object(self, shape: tuple[int, int]) -> np.ndarray:
        """The canvas on an object grid of ``shape`` (NaN where not covered)."""
        return place_on_grid(self.canvas, self.origin, (0, 0), shape, np.nan)

    def crop_coverage(self, shape: tuple[int, int]) -> np.ndarray:
        """The coverage on an object grid of ``shape``."""
        return place_on_grid(self.coverage, self.origin, (0, 0), shape, False, bool)


def window_weights(N: int, crop: int, window: str, probe: np.ndarray | None) -> np.ndarray:
    """The (crop, crop) weight window of one patch."""
    if window == "uniform":
        return np.ones((crop, crop))
    if probe is None:
        raise InputError("window 'probe'", "a probe to weight by |P|²", "none given")
    s = (N - crop) // 2
    w = np.abs(np.asarray(probe)[s:s + crop, s:s + crop]) ** 2
    return w / w.max()


class Stitcher:
    """Streaming accumulator: :meth:`add` batches, then :meth:`result`.

    Parameters
    ----------
    geometry : the canvas bounds (see :meth:`CanvasGeometry.from_positions`).
    N : patch size.
    backend : where the accumulation runs.
    config : crop and window.
    probe : needed for ``window="probe"``.
    complex : complex canvas (default) or real (amplitude-only).
    """

    def __init__(self, geometry: CanvasGeometry, N: int, backend: Backend | str = "numpy",
                 config: StitchConfig | None = None, probe: np.ndarray | None = None,
                 complex: bool = True) -> None:
        self.geometry = geometry
        self.N = N
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.config = config or StitchConfig()
        self.crop = self.config.crop_for(N)
        self._start = (N - self.crop) // 2
        self._w = self.backend.asarray(window_weights(N, self.crop, self.config.window, probe))
        self._num = self.backend.zeros(geometry.shape, complex=complex)
        self._den = self.backend.zeros(geometry.shape)
        self.n_added = 0

    def add(self, patches: Any, positions: np.ndarray) -> None:
        """Accumulate patches (..., N, N) centred at ``positions`` (..., 2) (y, x)."""
        be = self.backend
        p = be.asarray(patches)
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        if tuple(p.shape[-2:]) != (self.N, self.N):
            raise InputError("patches", f"trailing shape ({self.N}, {self.N})", str(tuple(p.shape)))
        p = p.reshape(-1, self.N, self.N)
        if p.shape[0] != pos.shape[0]:
            raise InputError("positions", f"one per patch ({p.shape[0]})", str(pos.shape[0]))
        if p.shape[0] == 0:
            return
        s, c = self._start, self.crop
        p = p[:, s:s + c, s:s + c]
        tl = pos - self.N / 2 + s - np.asarray(self.geometry.origin, dtype=np.float64)
        be.scatter_add(self._num, p * self._w, tl)
        be.scatter_add(self._den, self._w[None], tl)  # broadcast over the batch
        self.n_added += p.shape[0]

    def result(self) -> Canvas:
        """The canvas: NaN and ``coverage = False`` where Σ w <= eps · max Σ w."""
        num = self.backend.to_numpy(self._num)
        den = self.backend.to_numpy(self._den).astype(np.float64)
        thresh = self.config.eps * (den.max() if den.size and den.max() > 0 else 1.0)
        coverage = den > max(thresh, 0.0) if den.max() > 0 else np.zeros(den.shape, bool)
        out_dtype = np.complex64 if np.iscomplexobj(num) else np.float32
        canvas = np.full(den.shape, np.nan, dtype=out_dtype)
        canvas[coverage] = (num[coverage] / den[coverage]).astype(out_dtype)
        return Canvas(canvas, coverage, self.geometry.origin, den.astype(np.float32))


def stitch(patches: Any, positions: np.ndarray, *, backend: Backend | str = "numpy",
           config: StitchConfig | None = None, probe: np.ndarray | None = None,
           geometry: CanvasGeometry | None = None, batch_size: int = 1024,
           progress: Callable[[int, int], None] | None = None) -> Canvas:
    """Stitch patches (..., N, N) at ``positions`` (..., 2) into a :class:`Canvas`.

    ``patches`` may be an in-memory array or an iterable of ``(patch_batch, position_batch)``
    pairs (streaming, for data that does not fit in memory; then ``geometry`` is required).
    """
    be = get_backend(backend) if isinstance(backend, str) else backend
    if not hasattr(patches, "shape"):
        if geometry is None:
            raise InputError("geometry", "canvas bounds when stitching a stream of batches")
        return _stitch_stream(patches, geometry, be, config, probe, progress)
    N = int(patches.shape[-1])
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    flat = patches.reshape(-1, N, N)
    geometry = geometry or CanvasGeometry.from_positions(pos, N)
    is_complex = bool(np.iscomplexobj(flat)) if isinstance(flat, np.ndarray) else flat.is_complex()
    st = Stitcher(geometry, N, be, config, probe, complex=is_complex)
    if batch_size < 1:
        raise InputError("batch_size", "an integer >= 1", str(batch_size))
    total = flat.shape[0]
    for start in range(0, total, batch_size):
        st.add(flat[start:start + batch_size], pos[start:start + batch_size])
        if progress is not None:
            progress(min(start + batch_size, total), total)
    return st.result()


def _stitch_stream(batches: Iterable[tuple[Any, np.ndarray]], geometry: CanvasGeometry,
                   be: Backend, config: StitchConfig | None, probe: np.ndarray | None,
                   progress: Callable[[int, int], None] | None) -> Canvas:
    st: Stitcher | None = None
    for p, pos in batches:
        if st is None:
            is_complex = bool(np.iscomplexobj(p)) if isinstance(p, np.ndarray) else p.is_complex()
            st = Stitcher(geometry, int(p.shape[-1]), be, config, probe, complex=is_complex)
        st.add(p, pos)
        if progress is not None:
            progress(st.n_added, -1)
    if st is None:
        raise InputError("patch stream", "at least one batch", "an empty stream")
    return st.result()

