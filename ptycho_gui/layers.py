"""Datasets, canvases and previews as napari layer data (Qt-free).

Every function returns napari ``LayerDataTuple`` s ``(data, kwargs, layer_type)`` so the
reader, the samples and the workbench build the same layers the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import api

LayerData = tuple[Any, dict[str, Any], str]

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


def dataset_layers(ds: api.Dataset, name: str = "") -> list[LayerData]:
    """Diffraction (log display), scan positions, probe amplitude and phase, truth if any."""
    p = f"{name} " if name else ""
    meta = {"ptycho": {"kind": "dataset", "n": ds.n, "N": ds.N, **_jsonable(ds.metadata)}}
    out: list[LayerData] = []
    if ds.diffraction is not None:
        d = np.log1p(ds.diffraction.astype(np.float32))
        out.append((d, {"name": f"{p}diffraction (log)", "colormap": "magma", "visible": False,
                        "metadata": meta}, "image"))
    if ds.object is not None:
        out.append((np.abs(ds.object), {"name": f"{p}truth amplitude", "colormap": "gray",
                                        "visible": False, "metadata": meta}, "image"))
        out.append((np.angle(ds.object), {"name": f"{p}truth phase", "colormap": "twilight",
                                          "visible": False, "metadata": meta}, "image"))
    off = ds.N  # the probe beside the scan, outside the object
    out.append((np.abs(ds.probe), {"name": f"{p}probe amplitude", "colormap": "viridis",
                                   "translate": (0, -off - 4), "visible": False,
                                   "metadata": meta}, "image"))
    out.append((np.angle(ds.probe), {"name": f"{p}probe phase", "colormap": "twilight",
                                     "translate": (ds.N + 4, -off - 4), "visible": False,
                                     "metadata": meta}, "image"))
    out.append((ds.positions, {"name": f"{p}positions", "size": max(1.0, ds.N / 24),
                               "face_color": "cyan", "border_width": 0, "opacity": 0.7,
                               "metadata": meta}, "points"))
    return out


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
