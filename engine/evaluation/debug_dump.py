"""``--debug-dump`` of inference: the figures needed to tell a scaling, offset or collapse
bug from a merely poor model, written next to the reconstruction.

Files (all JSON written atomically; positions and offsets are (dy, dx) = (row, col) pixels):

``canvas.json``
    ``{"patch_size": N, "canvas_size": [h, w], "origin": [row, col], "n_groups": b,
    "channels": C, "n_patch_slots": b·C, "max_abs_dx": float, "max_abs_dy": float,
    "max_abs_local_dx": float, "max_abs_local_dy": float, "coverage_fraction": float}``.
    ``max_abs_dx``/``dy`` are the largest distances of a patch centre (group offset + local
    offset) from the centroid of all patch centres: the canvas spans about
    N + 2·max |d| in each direction. The ``local`` ones are the largest in-group offsets.
``offsets.json``
    ``{"count": b·C, "first": [{"dy", "dx"}, … up to 16 patch centres, group-major],
    "mean": {"dy", "dx"}, "std": {"dy", "dx"}, "centred_std": float,
    "local": {"mean": {"dy", "dx"}, "std": {"dy", "dx"}}}``. ``centred_std`` is the RMS
    distance of the patch centres from their centroid, sqrt(mean((dy−ȳ)² + (dx−x̄)²)).
``stats.json``
    ``{"patches": engine.physics.stats.patch_statistics (mean, std, var_zero_mean, var_across_group,
    n_patches; docs/conventions.md#statistics), "canvas": engine.physics.stats.canvas_statistics
    (mean, std, min, max of the canvas amplitude over covered pixels, coverage)}``.
``pred_patches_amp_grid.png``, ``pred_patches_amp_grid_normalized.png``
    figures of the first groups' amplitude patches (rows: groups, columns: channels) on one
    shared scale, and each stretched to its own range, with a title, axis labels and a
    colour bar (:func:`engine.evaluation.report.patch_figure`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import write_json
from engine.errors import InputError
from engine.evaluation.report import patch_figure
from engine.physics.stats import canvas_statistics, patch_statistics
from engine.physics.stitching import Canvas

N_FIRST_OFFSETS = 16


def _check(patches_amp: Any, group_offsets: Any,
           local_offsets: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(patches_amp)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[-1] != a.shape[-2] or a.shape[0] == 0:
        raise InputError("patches_amp", "a non-empty (b, C, N, N) array", f"shape {a.shape}")
    b, C = a.shape[:2]
    g = np.asarray(group_offsets, dtype=np.float64)
    if g.shape != (b, 2):
        raise InputError("group_offsets", f"shape ({b}, 2)", f"shape {g.shape}")
    loc = np.asarray(local_offsets, dtype=np.float64)
    if loc.shape == (b, 2) and C == 1:
        loc = loc[:, None]
    if loc.shape != (b, C, 2):
        raise InputError("local_offsets", f"shape ({b}, {C}, 2)", f"shape {loc.shape}")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(loc))):
        raise InputError("offsets", "finite values", "NaN or Inf")
    return np.abs(a).astype(np.float32), g, loc


def _yx(v: np.ndarray) -> dict[str, float]:
    return {"dy": float(v[0]), "dx": float(v[1])}


def canvas_summary(patches_amp: np.ndarray, group_offsets: np.ndarray,
                   local_offsets: np.ndarray, canvas: Canvas) -> dict[str, Any]:
    """The ``canvas.json`` record (see the module docstring)."""
    a, g, loc = _check(patches_amp, group_offsets, local_offsets)
    centres = (g[:, None, :] + loc).reshape(-1, 2)
    d = np.abs(centres - centres.mean(axis=0))
    return {
        "patch_size": int(a.shape[-1]), "canvas_size": [int(v) for v in canvas.canvas.shape],
        "origin": [int(v) for v in canvas.origin], "n_groups": int(a.shape[0]),
        "channels": int(a.shape[1]), "n_patch_slots": int(a.shape[0] * a.shape[1]),
        "max_abs_dx": float(d[:, 1].max()), "max_abs_dy": float(d[:, 0].max()),
        "max_abs_local_dx": float(np.abs(loc[..., 1]).max()),
        "max_abs_local_dy": float(np.abs(loc[..., 0]).max()),
        "coverage_fraction": float(canvas.coverage.mean()) if canvas.coverage.size else 0.0,
    }


def offsets_summary(group_offsets: np.ndarray, local_offsets: np.ndarray) -> dict[str, Any]:
    """The ``offsets.json`` record (see the module docstring)."""
    g = np.asarray(group_offsets, dtype=np.float64)
    loc = np.asarray(local_offsets, dtype=np.float64).reshape(g.shape[0], -1, 2)
    centres = (g[:, None, :] + loc).reshape(-1, 2)
    mean = centres.mean(axis=0)
    flat = loc.reshape(-1, 2)
    return {
        "count": int(centres.shape[0]),
        "first": [_yx(c) for c in centres[:N_FIRST_OFFSETS]],
        "mean": _yx(mean), "std": _yx(centres.std(axis=0)),
        "centred_std": float(np.sqrt(np.mean(np.sum((centres - mean) ** 2, axis=1)))),
        "local": {"mean": _yx(flat.mean(axis=0)), "std": _yx(flat.std(axis=0))},
    }


def write_debug_dump(out_dir: str | os.PathLike[str], patches_amp: np.ndarray,
                     group_offsets: np.ndarray, local_offsets: np.ndarray, canvas: Canvas,
                     *, max_grid_groups: int = 8) -> list[Path]:
    """Write the five debug files into ``out_dir`` (created if needed); returns their paths.

    Parameters
    ----------
    out_dir : destination directory.
    patches_amp : (b, C, N, N) predicted amplitude patches ((n, N, N) reads as C = 1).
    group_offsets : (b, 2) group offsets (dy, dx).
    local_offsets : (b, C, 2) member offsets from their group offset.
    canvas : the stitched canvas of these patches.
    max_grid_groups : groups (rows) shown in the two PNG grids.
    """
    a, g, loc = _check(patches_amp, group_offsets, local_offsets)
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    stats = {"patches": patch_statistics(a, loc if a.shape[1] > 1 else None),
             "canvas": canvas_statistics(canvas)}
    grid = a[:max(1, max_grid_groups)]
    shown = f"first {grid.shape[0]} of {a.shape[0]} groups"
    return [
        write_json(d / "canvas.json", canvas_summary(a, g, loc, canvas)),
        write_json(d / "offsets.json", offsets_summary(g, loc)),
        write_json(d / "stats.json", stats),
        patch_figure(d / "pred_patches_amp_grid.png", grid, False,
                     f"predicted amplitude patches, {shown}\n(one shared scale: collapsed or "
                     "mis-scaled patches look it)"),
        patch_figure(d / "pred_patches_amp_grid_normalized.png", grid, True,
                     f"predicted amplitude patches, {shown}\n(each stretched to its own "
                     "min ... max: structure)"),
    ]
