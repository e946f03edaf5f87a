"""Datasets, canvases and previews as napari layer data (Qt-free).

Every function returns napari ``LayerDataTuple`` s ``(data, kwargs, layer_type)`` so the
reader, the samples and the workbench build the same layers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import api

LayerData = tuple[Any, dict[str, Any], str]
# rows of patterns per dask chunk when the file does not say (its HDF5 chunking does)
LAZY_ROWS = 16


@dataclass(frozen=True)
class Frame:
    """The physical frame of a dataset's layers: a layer's world coordinate is its object
    pixel times ``scale`` (in ``unit``), so the canvas, the positions, the probe and every
    result overlay and napari's scale bar reads nm or µm. Without a geometry the frame is
    the identity in pixels.

    Examples
    --------
    >>> f = Frame((129e-9, 129e-9))
    >>> f.unit, f.scale, f.world((2, 1)).tolist()
    ('nm', (129.0, 129.0), [258.0, 129.0])
    >>> Frame().kwargs()
    {'scale': (1.0, 1.0), 'units': ('pixel', 'pixel')}
    """

    pixel_size: tuple[float, float] | None = None  # (row, col) metres

    @classmethod
    def of(cls, ds: Any) -> Frame:
        """The frame of a dataset (its ``pixel_size``; pixels without one)."""
        ps = None if ds is None else ds.pixel_size
        return cls(None if ps is None else (float(ps[0]), float(ps[1])))

    @property
    def unit(self) -> str:
        """``nm`` for sub-micrometre pixels, ``µm`` above, ``pixel`` without a geometry."""
        if self.pixel_size is None:
            return "pixel"
        return "nm" if max(self.pixel_size) < 1e-6 else "µm"

    @property
    def scale(self) -> tuple[float, float]:
        """One object pixel in :attr:`unit` (row, col)."""
        if self.pixel_size is None:
            return (1.0, 1.0)
        f = 1e9 if self.unit == "nm" else 1e6
        return (round(self.pixel_size[0] * f, 9), round(self.pixel_size[1] * f, 9))

    def world(self, yx: Any) -> np.ndarray:
        """Object-pixel (row, col) coordinates (…, 2) in the frame's unit."""
        return np.asarray(yx, dtype=float) * np.asarray(self.scale)

    def pixels(self, world: Any) -> np.ndarray:
        """World (row, col) coordinates back in object pixels."""
        return np.asarray(world, dtype=float)[..., -2:] / np.asarray(self.scale)

    def kwargs(self, ndim: int = 2, k: float = 1.0) -> dict[str, Any]:
        """napari ``scale`` and ``units`` of a layer whose last two axes are object pixels
        (drawn ``k`` times their size); leading axes are indices (pixels)."""
        lead = ndim - 2
        return {"scale": (1.0,) * lead + tuple(k * v for v in self.scale),
                "units": ("pixel",) * lead + (self.unit, self.unit)}

# group colours: a qualitative cycle (tab10) so neighbouring groups differ
GROUP_COLOURS = np.array([
    (0.12, 0.47, 0.71), (1.00, 0.50, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16),
    (0.58, 0.40, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.50, 0.50, 0.50),
    (0.74, 0.74, 0.13), (0.09, 0.75, 0.81)])
UNGROUPED = (0.35, 0.35, 0.35)


def group_colours(group: np.ndarray) -> np.ndarray:
    """(n, 4) RGBA of group ids (``-1``: grey, not in any group)."""
    g = np.asarray(group)
    rgb = GROUP_COLOURS[np.where(g >= 0, g, 0) % len(GROUP_COLOURS)]
    rgb[g < 0] = UNGROUPED
    return np.concatenate([rgb, np.ones((len(g), 1))], axis=1)


def limits(values: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    """The one contrast rule of every layer: 1st and 99th percentile of the finite pixels
    (min and max when those coincide; a unit span for a flat image); ``symmetric`` about 0.

    >>> lo, hi = limits(np.array([0.0, 1.0, 2.0, np.nan]))
    >>> round(lo, 2), round(hi, 2)
    (0.02, 1.98)
    """
    v = np.asarray(values)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        m = float(np.percentile(np.abs(v), 99)) or float(np.abs(v).max()) or 1.0
        return -m, m
    lo, hi = (float(x) for x in np.percentile(v, [1, 99]))
    if not hi > lo:
        lo, hi = float(v.min()), float(v.max())
        if not hi > lo:
            hi = lo + 1.0
    return lo, hi


def finite_limits(a: np.ndarray, fallback: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """Contrast limits of ``a`` by the one rule (:func:`limits`)."""
    return limits(a) if np.isfinite(np.asarray(a)).any() else fallback


def lazy_patterns(diffraction: Any, rows: int | None = None) -> Any:
    """The diffraction stack as a dask array (chunks of ``rows`` patterns; default
    :data:`LAZY_ROWS`, or the file's own HDF5 chunk rows when fewer): napari computes only
    the chunk of the pattern on screen, so a file larger than memory opens at once.
    In-memory arrays are wrapped the same way (nothing is copied).

    Examples
    --------
    >>> lazy_patterns(np.ones((40, 8, 8), np.float32)).chunks[0]
    (16, 16, 8)
    """
    import dask.array as da

    if rows is None:  # the file's chunk when smaller (a read never spans two chunks)
        chunks = getattr(diffraction, "chunks", None)
        rows = min(LAZY_ROWS, int(chunks[0])) if isinstance(chunks, tuple) and chunks \
            else LAZY_ROWS
    n, h, w = (int(v) for v in diffraction.shape)
    rows = max(1, min(int(rows), n))
    return da.from_array(_Rows(diffraction), chunks=(rows, h, w), asarray=False,
                         fancy=False, meta=np.empty((0, 0, 0), np.float32),
                         name=f"patterns-{id(diffraction):x}")


class _Rows:
    """A row-indexed stack (:class:`engine.data.DiffractionStack`) seen as the
    ``(rows, y, x)`` array dask slices: the rows are read, the rest sliced in memory."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.shape = tuple(int(v) for v in stack.shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __getitem__(self, index: Any) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        rows, rest = index[0], index[1:]
        if isinstance(rows, slice):  # one contiguous read of the chunk's rows
            rows = np.arange(self.shape[0])[rows]
        block = np.asarray(self.stack[rows], dtype=np.float32)
        return block[(slice(None), *rest)] if block.ndim == 3 else block[rest]


def dataset_layers(ds: api.Dataset, name: str = "") -> list[LayerData]:
    """Diffraction (log display; a lazy dask array for a lazy stack), scan positions, probe
    amplitude and phase, truth if any, all in the dataset's physical :class:`Frame`."""
    p = f"{name} " if name else ""
    frame = Frame.of(ds)
    meta = {"ptycho": {"kind": "dataset", "n": ds.n, "N": ds.N, "unit": frame.unit,
                       "pixel_size_m": frame.pixel_size, **_jsonable(ds.metadata)}}
    out: list[LayerData] = []
    if ds.diffraction is not None:
        if not isinstance(ds.diffraction, np.ndarray):  # a lazy stack (never loaded whole)
            import dask.array as da

            d = da.log1p(lazy_patterns(ds.diffraction))
            lim = {"contrast_limits": (0.0, float(np.log1p(_peak(ds.diffraction))))}
        else:
            d, lim = np.log1p(ds.diffraction.astype(np.float32)), {}
        # the patterns sit in the frame of one probe window (N object pixels), so the
        # scale bar keeps one unit; the detector pitch is in the geometry summary
        # the dataset itself rides on its patterns' layer: a script or a run can take it
        out.append((d, {"name": f"{p}diffraction (log)", "colormap": "magma", "visible": False,
                        "metadata": {**meta, "dataset": ds}, **lim, **frame.kwargs(3)},
                    "image"))
    two = frame.kwargs()
    if ds.object is not None:
        out.append((np.abs(ds.object), {"name": f"{p}truth amplitude", "colormap": "gray",
                                        "visible": False, "metadata": meta, **two}, "image"))
        out.append((np.angle(ds.object), {"name": f"{p}truth phase", "colormap": "twilight",
                                          "visible": False, "metadata": meta, **two},
                    "image"))
    off = ds.N  # the probe beside the scan, outside the object
    out.append((np.abs(ds.probe), {"name": f"{p}probe amplitude", "colormap": "viridis",
                                   "translate": tuple(frame.world((0, -off - 4))),
                                   "visible": False, "metadata": meta, **two}, "image"))
    out.append((np.angle(ds.probe), {"name": f"{p}probe phase", "colormap": "twilight",
                                     "translate": tuple(frame.world((ds.N + 4, -off - 4))),
                                     "visible": False, "metadata": meta, **two}, "image"))
    out.append((ds.positions, {"name": f"{p}positions", "size": max(1.0, ds.N / 24),
                               "face_color": "cyan", "border_width": 0, "opacity": 0.7,
                               "metadata": meta, **two}, "points"))
    return out


def _peak(stack: Any) -> float:
    """The brightest amplitude of the first pattern (one row read): the lazy layer's
    contrast limit, so napari does not compute the whole stack's range."""
    return float(np.nanmax(np.asarray(stack[0], dtype=np.float32))) or 1.0


def canvas_layers(canvas: api.Canvas, name: str = "canvas",
                  metadata: dict[str, Any] | None = None) -> list[LayerData]:
    """Amplitude and phase of a canvas (NaN outside the coverage), placed at its origin."""
    c = canvas.canvas
    amp = np.abs(c).astype(np.float32)
    meta = {"ptycho": {"kind": "canvas", "origin": tuple(canvas.origin), **(metadata or {})},
            "canvas": canvas}
    out: list[LayerData] = [(amp, {"name": f"{name} amplitude", "colormap": "gray",
                                   "translate": canvas.origin,
                                   "contrast_limits": finite_limits(amp), "metadata": meta},
                             "image")]
    if np.iscomplexobj(c):
        ph = np.angle(c).astype(np.float32)
        ph[~np.isfinite(amp)] = np.nan
        out.append((ph, {"name": f"{name} phase", "colormap": "twilight",
                         "translate": canvas.origin, "contrast_limits": finite_limits(ph),
                         "visible": False, "metadata": meta}, "image"))
    return out


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, str | int | float | bool | type(None) | list | dict):
            out[k] = v
    return out
