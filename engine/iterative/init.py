"""Initial object estimates: flat, a canvas NPZ, an array, or a network bundle's inference.

Every initial object lives on the solver's grid: the canvas geometry of the positions
(:meth:`engine.physics.stitching.CanvasGeometry.from_positions`); a canvas with another origin is
placed by its origin, and its uncovered (NaN) pixels take the value of the nearest covered
pixel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from engine.data import Dataset, npz_array, open_npz
from engine.errors import InputError
from engine.physics.stitching import Canvas, CanvasGeometry, overlap_slices, place_on_grid
from engine.rundir import readable_run


def start_on_grid(values: np.ndarray, origin: tuple[int, int],
                  geometry: CanvasGeometry, what: str) -> np.ndarray:
    """``values`` (h, w) with ``origin`` in object coordinates, on the grid of ``geometry``,
    uncovered pixels filled from the nearest covered one (a solver's start)."""
    v = np.asarray(values)
    if v.ndim != 2 or not np.iscomplexobj(v) and not np.issubdtype(v.dtype, np.number):
        raise InputError(what, "a 2-D complex object", f"shape {v.shape}, dtype {v.dtype}")
    v = v.astype(np.complex128)
    if not np.isfinite(v).any():
        raise InputError(what, "some covered (finite) pixels", "all NaN")
    if overlap_slices(origin, v.shape, geometry.origin, geometry.shape) is None:
        raise InputError(what, f"an object overlapping the scan's canvas at {geometry.origin} "
                         f"of shape {geometry.shape}", f"origin {origin}, shape {v.shape}")
    out = place_on_grid(v, origin, geometry.origin, geometry.shape, np.nan)
    finite = np.isfinite(out)
    if not finite.any():
        raise InputError(what, "covered (finite) pixels inside the scan's canvas", "none")
    # uncovered pixels take the value of the nearest covered one, so the start stays
    # continuous across the rim of the coverage. A network's canvas carries an arbitrary
    # global phase (each pattern is blind to it), and the former constant zero-phase fill
    # put a step of that size at the rim, which the solver then spread inward
    # (benchmarks/RESULTS.md, "The network beside the iterative solver")
    if not finite.all():
        nearest = ndimage.distance_transform_edt(~finite, return_distances=False,
                                                 return_indices=True)
        out = out[tuple(nearest)]
    return out


def _from_npz(path: Path, geometry: CanvasGeometry) -> np.ndarray:
    with open_npz(path, "a canvas .npz or a dataset with 'objectGuess'") as z:
        keys = set(z.files)
        obj = npz_array(z, "objectGuess", path) if "objectGuess" in keys else None
    if {"canvas", "origin"} <= keys:
        c = Canvas.load(path)
        return start_on_grid(c.canvas, c.origin, geometry, f"{path}: 'canvas'")
    if obj is not None:
        if obj.ndim != 2 or not np.issubdtype(obj.dtype, np.number):
            raise InputError(f"{path}: key 'objectGuess'", "a numeric 2-D (H, W) array",
                             f"shape {obj.shape}, dtype {obj.dtype}")
        return start_on_grid(obj, (0, 0), geometry, f"{path}: 'objectGuess'")
    raise InputError(f"init {path}", "a canvas NPZ (keys canvas, origin) or a dataset with "
                     "'objectGuess'", f"keys {sorted(keys)}")


def _from_bundle(bundle: Path, dataset: Dataset, geometry: CanvasGeometry) -> np.ndarray:
    # imported here: the network pulls in torch, which a NumPy-only reconstruction never needs
    from engine.network.inference import infer_canvas

    out = infer_canvas(bundle, dataset)
    return start_on_grid(out.canvas, out.origin, geometry, f"inference of {bundle}")


def initial_object(init: Any, dataset: Dataset, geometry: CanvasGeometry) -> np.ndarray:
    """The initial object on the solver's grid.

    Parameters
    ----------
    init : ``"flat"`` (modulus 1, zero phase), a :class:`Canvas`, a complex array on the
        object grid of the dataset (origin (0, 0)), a path to a canvas NPZ (or a dataset NPZ
        with ``objectGuess``), or a model bundle directory
        (:func:`engine.network.inference.infer_canvas`).
    """
    if isinstance(init, str) and init == "flat" or init is None:
        return np.ones(geometry.shape, dtype=np.complex128)
    if isinstance(init, Canvas):
        return start_on_grid(init.canvas, init.origin, geometry, "init canvas")
    if isinstance(init, np.ndarray):
        return start_on_grid(init, (0, 0), geometry, "init object")
    if isinstance(init, str | Path):
        # an overwrite in progress (or killed) in a run directory: its previous, complete run
        path = readable_run(init)
        if path.is_dir():
            return _from_bundle(path, dataset, geometry)
        if path.is_file():
            return _from_npz(path, geometry)
        raise InputError("init", "'flat', a canvas .npz or a model bundle directory",
                         f"{str(init)!r} (no such file or directory)")
    raise InputError("init", "'flat', a Canvas, an array or a path", type(init).__name__)
