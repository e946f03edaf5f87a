"""Reading and writing the files the workbench opens and saves (Qt-free).

Readable: dataset NPZ files (the project's layout and PtychoPINN's ``diff3d`` layout), CXI,
NeXus ``NXcxi_ptycho`` and Ptychodus files (``.cxi``/``.h5``/``.hdf5``/``.nxs``, claimed by
their HDF5 signature alone; the patterns stay in the file as a lazy dask layer, every layer
in the file's physical units), CXI and Ptychodus reconstruction products,
canvas files (``recon.npz``, ``Canvas.save`` output), run directories holding one of those
(their report/summary JSON and bundle metadata go to the layers' ``metadata``) and model
bundles, as directories or ``.zip`` files (the bundle's probe, its metadata on the layers).
Writable: a 2-D canvas to NPZ (the canvas layout) and to TIFF (amplitude and phase pages);
other layers are refused, naming the layer.

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
# HDF5 files a beamline writes: CXI, NeXus NXcxi_ptycho, Ptychodus products, mapped layouts
HDF5_SUFFIXES = (".cxi", ".h5", ".hdf5", ".nxs")
PRODUCT_KINDS = ("cxi-product", "ptychodus-h5", "ptychodus-npz")
EXPECTED_HDF5 = ("a CXI, NeXus NXcxi_ptycho or Ptychodus file (other HDF5 layouts: "
                 "api.load_dataset with a mapping file)")


def _keys(path: Path) -> list[str]:
    return api.npz_keys(path)  # the engine's opener: never unpickles, one-line errors


ZIP_MAGIC = b"PK\x03\x04"


def _zip_head(p: Path) -> bool:
    """Whether ``p`` starts like a zip archive (an NPZ or a zipped bundle): 4 bytes read."""
    try:
        with open(p, "rb") as fh:
            return fh.read(4) == ZIP_MAGIC
    except OSError:
        return False


def _zipped_bundle(p: Path) -> bool:
    """Whether ``p`` is a zip holding a ``bundle.json`` (its directory only is read)."""
    import zipfile

    try:
        with zipfile.ZipFile(p) as z:
            return "bundle.json" in z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def readable(path: str | os.PathLike[str]) -> bool:
    """Whether :func:`read` may open ``path``, decided cheaply (napari asks for every file
    it is given): a run directory with a canvas or a bundle (nothing loaded, no digest
    verified), an ``.npz`` that starts like a zip archive, a bundle ``.zip``. Empty, text,
    pickled and other files are declined (napari's convention: the reader returns
    ``None`` and another plugin may try)."""
    p = Path(path)
    try:
        if p.is_dir():  # a run of ours (even an incomplete one: read() then says so)
            return (api.is_run_dir(p) or _run_canvas(p) is not None
                    or _has_bundle(p))
        if not p.is_file():
            return False
        if p.suffix.lower() in HDF5_SUFFIXES:  # the signature only: no group is opened
            return api.is_hdf5(p)
        if p.suffix == ".npz":
            return _zip_head(p)
        if p.suffix == ".zip":
            return _zip_head(p) and _zipped_bundle(p)
    except OSError:  # an unreadable directory: not ours to claim
        return False
    return False


def _has_bundle(d: Path) -> bool:
    return api.find_bundle(d) is not None


def _bundle(d: Path) -> Any:
    """The model bundle in ``d`` (a bundle directory, a run directory holding one, a bundle
    ``.zip``), loaded and verified, or ``None`` when there is none."""
    if not _has_bundle(d):
        return None
    return api.load_bundle(d, "cpu")


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
    """The layers of a dataset, canvas, bundle ``.zip`` or run directory at ``path``.

    Anything it cannot read is one :class:`~engine.errors.InputError` line naming the path.
    """
    p = Path(path)
    if p.is_dir():
        p = api.readable_run(p)  # a run being replaced: its previous, complete run
        f, bundle = _run_canvas(p), _bundle(p)
        meta = _run_metadata(p)
        if bundle is not None:
            meta["bundle"] = {k: v for k, v in bundle.meta.items() if k != "files"}
            meta["bundle_path"] = str(bundle.path)
        if f is not None:
            return canvas_layers(api.load_canvas(f), name=Path(path).name, metadata=meta)
        if bundle is not None:
            return _bundle_layers(bundle, Path(path).name, meta)
        raise InputError(str(p), "a run directory holding recon.npz, a canvas .npz or a "
                         "model bundle", "none found")
    if p.suffix == ".zip":
        bundle = _bundle(p)
        if bundle is None:
            raise InputError(str(p), "a model bundle .zip", "no bundle.json in it")
        return _bundle_layers(bundle, p.stem, {"bundle": {k: v for k, v in bundle.meta.items()
                                                          if k != "files"},
                                               "bundle_path": str(p)})
    if p.suffix.lower() in HDF5_SUFFIXES or api.is_hdf5(p):
        return _hdf5_layers(p)
    if p.suffix == ".npz" and api.file_kind(p) == "ptychodus-npz":
        return product_layers(api.load_reconstruction(p), p.stem, {"path": str(p)})
    if "canvas" in _keys(p):
        return canvas_layers(api.load_canvas(p), name=p.stem, metadata={"path": str(p)})
    return _with_path(dataset_layers(api.load_dataset(p, require_diffraction=False),
                                     name=p.stem), p)


def _hdf5_layers(p: Path) -> list[LayerData]:
    """A measurement (lazy patterns) or a reconstruction product in an HDF5 file."""
    if not api.is_hdf5(p):
        raise InputError(str(p), EXPECTED_HDF5, "not an HDF5 file")
    kind = api.file_kind(p)
    if kind == "hdf5":  # another layout: only a mapping file says where things are
        raise InputError(str(p), EXPECTED_HDF5, "an HDF5 file of another layout")
    if kind in PRODUCT_KINDS:
        return product_layers(api.load_reconstruction(p), p.stem, {"path": str(p)})
    # the patterns stay in the file: napari reads the chunk on screen (a dask layer). The
    # patterns are shown as stored, with the file's own mask: the bad-pixel search reads
    # every pattern, so it runs when the workbench takes the file (off the GUI thread),
    # not when napari merely shows it
    return _with_path(dataset_layers(api.load_dataset(p, require_diffraction=False,
                                                      lazy=True, bad_pixels=False),
                                     name=p.stem), p)


def _with_path(layers: list[LayerData], p: Path) -> list[LayerData]:
    """A dataset's layers knowing their file: a docked workbench takes it as its dataset."""
    for _, kwargs, _ in layers:
        kwargs["metadata"]["ptycho"] = {**kwargs["metadata"]["ptycho"], "path": str(p)}
    return layers


def product_layers(product: Any, name: str, meta: dict[str, Any]) -> list[LayerData]:
    """A reconstruction product (CXI or Ptychodus): object and probe amplitude and phase in
    its physical frame (the product's object pixel), and its positions."""
    from ptycho_gui.layers import Frame

    ps = product.object_pixel
    frame = Frame(None if ps is None else (float(ps[0]), float(ps[1])))
    m = {"ptycho": {"kind": "product", "unit": frame.unit, **meta}}
    out: list[LayerData] = []
    obj = np.asarray(product.object)
    obj = obj[0] if obj.ndim == 3 else obj
    out.append((np.abs(obj), {"name": f"{name} object amplitude", "colormap": "gray",
                              "metadata": m, **frame.kwargs()}, "image"))
    out.append((np.angle(obj), {"name": f"{name} object phase", "colormap": "twilight",
                                "visible": False, "metadata": m, **frame.kwargs()}, "image"))
    probe = np.asarray(product.probe)
    probe = probe[0] if probe.ndim == 3 else probe
    out.append((np.abs(probe), {"name": f"{name} probe amplitude", "colormap": "viridis",
                                "visible": False, "metadata": m, **frame.kwargs()}, "image"))
    if len(product.positions):
        out.append((product.positions, {"name": f"{name} positions", "size": 2.0,
                                             "face_color": "cyan", "metadata": m,
                                             **frame.kwargs()}, "points"))
    return out


def _bundle_layers(bundle: Any, name: str, meta: dict[str, Any]) -> list[LayerData]:
    """A bundle alone: its probe, the metadata on the layers."""
    m = {"ptycho": {"kind": "bundle", **meta}}
    return [(np.abs(bundle.probe), {"name": f"{name} bundle probe amplitude",
                                    "colormap": "viridis", "metadata": m}, "image"),
            (np.angle(bundle.probe), {"name": f"{name} bundle probe phase",
                                      "colormap": "twilight", "metadata": m}, "image")]


def _writable_layer(data: Any, meta: dict[str, Any]) -> str:
    """Refuse a layer the canvas writers cannot write as a canvas their reader reads back
    (one line naming the layer); returns the layer's name."""
    name = str(meta.get("name") or "layer")
    kept = meta.get("metadata", {}).get("canvas") if isinstance(meta.get("metadata"),
                                                                 dict) else None
    if isinstance(kept, api.Canvas):
        return name
    try:
        a = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise InputError(f"layer '{name}'", "an image layer of numbers",
                         type(exc).__name__) from None
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"layer '{name}'", "an image of numbers (a canvas)", f"dtype {a.dtype}")
    if a.ndim != 2:
        raise InputError(f"layer '{name}'", "a 2-D image (a canvas: one amplitude plane)",
                         f"a {a.ndim}-D layer of shape {a.shape}")
    translate = meta.get("translate")
    if translate is not None:
        t = np.asarray(translate, dtype=object).ravel()[-2:]
        ok = len(t) == 2 and all(isinstance(v, int | float | np.number)
                                 and np.isfinite(float(v)) for v in t)
        if not ok:
            raise InputError(f"layer '{name}': translate", "two finite numbers (row, col)",
                             repr(translate))
    return name


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
    """Write an image layer's canvas in the canvas NPZ layout (``canvas``, ``coverage``...);
    a layer that is not a 2-D numeric canvas is refused, naming it."""
    _writable_layer(data, meta)
    return [str(canvas_of(data, meta).save(path))]


def write_tiff(path: str | os.PathLike[str], data: np.ndarray, meta: dict[str, Any]) -> list[str]:
    """Write a canvas as a two-page float32 TIFF: amplitude, then phase (NaN outside coverage);
    a layer that is not a 2-D numeric canvas is refused, naming it."""
    import tifffile

    _writable_layer(data, meta)
    c = canvas_of(data, meta).canvas
    pages = np.stack([np.abs(c), np.angle(c) if np.iscomplexobj(c) else np.zeros(c.shape)])
    pages[:, ~np.isfinite(np.abs(c))] = np.nan
    buf = io.BytesIO()
    tifffile.imwrite(buf, pages.astype(np.float32), metadata={"axes": "CYX",
                     "Labels": ["amplitude", "phase"]})
    api.write_bytes(path, buf.getvalue())
    return [str(path)]
