"""Reading and writing the files the workbench opens and saves (Qt-free).

Readable: dataset NPZ files (the project's layout and PtychoPINN's ``diff3d`` layout),
canvas files (``recon.npz``, ``Canvas.save`` output), run directories holding one of those
(their report/summary JSON and bundle metadata go to the layers' ``metadata``) and model
bundles (the bundle's probe, its metadata on the layers). Writable: a canvas to NPZ (the
canvas layout) and to TIFF (amplitude and phase pages).

Examples
--------
>>> import tempfile, pathlib
>>> from ptycho_gui.samples import make_sample
>>> from engine import api
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = api.save_dataset(d / "ds.npz", make_sample("asym", n_positions=16, N=32))
>>> [kw["name"] for _, kw, _ in read(d / "ds.npz")][-1]
'ds positions'
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from engine import api
from engine.errors import InputError
from ptycho_gui.layers import LayerData, canvas_layers, dataset_layers

CANVAS_NAMES = ("recon.npz", "canvas.npz", "stitched.npz")


def _keys(path: Path) -> list[str]:
    with np.load(path, allow_pickle=False) as z:
        return list(z.files)


def readable(path: str | os.PathLike[str]) -> bool:
    """Whether :func:`read` can open ``path`` (an NPZ file or a run directory)."""
    p = Path(path)
    if p.is_dir():
        return _run_canvas(p) is not None or _bundle(p) is not None
    return p.suffix == ".npz" and p.is_file()


def _bundle(d: Path) -> Any:
    """The model bundle in ``d`` (a bundle directory or a run directory holding one), or
    ``None``."""
    from engine.network.bundles import load_bundle, resolve_bundle_path

    try:
        resolve_bundle_path(d)
    except InputError:
        return None
    return load_bundle(d, "cpu")


def _run_canvas(d: Path) -> Path | None:
    for name in CANVAS_NAMES:
        if (d / name).is_file():
            return d / name
    found = sorted(d.glob("*canvas*.npz")) + sorted(d.glob("*/recon.npz"))
    return found[0] if found else None


def _run_metadata(d: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {"run_dir": str(d)}
    for name in ("report.json", "summary.json", "metrics.json", "config.json", "manifest.json"):
        f = d / name
        if f.is_file():
            try:
                meta[f.stem] = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
    return meta


def read(path: str | os.PathLike[str]) -> list[LayerData]:
    """The layers of a dataset, canvas or run directory at ``path``."""
    p = Path(path)
    if p.is_dir():
        f, bundle = _run_canvas(p), _bundle(p)
        meta = _run_metadata(p)
        if bundle is not None:
            meta["bundle"] = {k: v for k, v in bundle.meta.items() if k != "files"}
            meta["bundle_path"] = str(bundle.path)
        if f is not None:
            return canvas_layers(api.load_canvas(f), name=p.name, metadata=meta)
        if bundle is not None:  # a bundle alone: its probe, the metadata on the layers
            m = {"ptycho": {"kind": "bundle", **meta}}
            return [(np.abs(bundle.probe), {"name": f"{p.name} bundle probe amplitude",
                                            "colormap": "viridis", "metadata": m}, "image"),
                    (np.angle(bundle.probe), {"name": f"{p.name} bundle probe phase",
                                              "colormap": "twilight", "metadata": m}, "image")]
        raise InputError(str(p), "a run directory holding recon.npz, a canvas .npz or a "
                         "model bundle", "none found")
    if "canvas" in _keys(p):
        return canvas_layers(api.load_canvas(p), name=p.stem, metadata={"path": str(p)})
    return dataset_layers(api.load_dataset(p, require_diffraction=False), name=p.stem)


def canvas_of(data: np.ndarray, meta: dict[str, Any]) -> api.Canvas:
    """The canvas behind an image layer: the complex one the reader kept, else the image."""
    kept = meta.get("metadata", {}).get("canvas")
    if isinstance(kept, api.Canvas):
        return kept
    a = np.asarray(data, dtype=np.float32)
    cov = np.isfinite(a)
    origin = tuple(int(round(v)) for v in (meta.get("translate") or (0, 0))[-2:])
    return api.Canvas(a, cov, origin, cov.astype(np.float32))


def write_npz(path: str | os.PathLike[str], data: np.ndarray, meta: dict[str, Any]) -> list[str]:
    """Write an image layer's canvas in the canvas NPZ layout (``canvas``, ``coverage``...)."""
    return [str(canvas_of(data, meta).save(path))]


def write_tiff(path: str | os.PathLike[str], data: np.ndarray, meta: dict[str, Any]) -> list[str]:
    """Write a canvas as a two-page float32 TIFF: amplitude, then phase (NaN outside coverage)."""
    import tifffile

    from engine.atomic import atomic_open

    c = canvas_of(data, meta).canvas
    pages = np.stack([np.abs(c), np.angle(c) if np.iscomplexobj(c) else np.zeros(c.shape)])
    pages[:, ~np.isfinite(np.abs(c))] = np.nan
    buf = io.BytesIO()
    tifffile.imwrite(buf, pages.astype(np.float32), metadata={"axes": "CYX",
                     "Labels": ["amplitude", "phase"]})
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
    return [str(path)]
