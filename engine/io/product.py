"""A reconstruction as other programs exchange it (a "product", in Ptychodus's word): the
object, the probe modes, the scan positions (corrected, where a solver refined them), the
pixel size, the loss history and the settings that made it.

Written and read as:

- a **Ptychodus product** file, HDF5 (``.h5``) or NPZ (``.npz``): Ptychodus's own keys
  (``probe``, ``object``, ``probe_position_x_m``/``_y_m``, ``loss_values``, attributes
  ``probe_energy_eV``, ``detector_object_distance_m`` ...), positions in metres about the
  object's centre: ``x = (col − W/2) · dx + center_x`` (likewise y with rows);
- a **CXI** reconstruction: the probe in ``/entry_1/image_1/data``, the object in
  ``/entry_1/image_2/data`` (Ptychodus's places), positions as sample translations in
  ``/entry_1/sample_1/geometry_1/translation``, the settings (JSON) and the software
  version in ``/entry_1/process_1``.

Examples
--------
>>> import tempfile, numpy as np
>>> p = Product(object=np.ones((40, 40), np.complex64), probe=np.ones((1, 16, 16), np.complex64),
...             positions=np.array([[12.0, 12.0], [20.0, 28.0]]), object_pixel=(1e-8, 1e-8))
>>> back = read_product(write_ptychodus(tempfile.mkdtemp() + "/p.h5", p, energy_ev=8000.0,
...                                     distance=2.0))
>>> bool(np.allclose(back.positions, p.positions)), back.object.shape
(True, (40, 40))
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__
from engine.data import open_npz, save_arrays
from engine.errors import InputError
from engine.geometry import ELECTRONVOLT, PLANCK_C
from engine.io import h5util

PTYCHODUS_KEYS = ("probe_position_x_m", "probe_position_y_m", "probe", "object")


@dataclass
class Product:
    """A reconstruction in exchangeable form.

    object : (H, W) complex64; probe : (K, N, N) complex64 modes;
    positions : (n, 2) probe centres (row, col) in pixels of ``object``;
    object_pixel : (row, col) pixel size in metres, or None (pixel units);
    wavelength, distance : metres, or None; losses : (epochs, values);
    settings : the options of the run; corrected_positions : True if ``positions`` were
    refined by the solver.
    """

    object: np.ndarray
    probe: np.ndarray
    positions: np.ndarray
    object_pixel: tuple[float, float] | None = None
    wavelength: float | None = None
    distance: float | None = None
    losses: tuple[np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.zeros(0, np.int64), np.zeros(0)))
    settings: dict[str, Any] = field(default_factory=dict)
    software: str = f"ptycho-workbench {__version__}"
    name: str = "reconstruction"
    corrected_positions: bool = False

    def __post_init__(self) -> None:
        self.object = np.asarray(self.object, np.complex64)
        p = np.asarray(self.probe, np.complex64)
        self.probe = p[None] if p.ndim == 2 else p
        self.positions = np.asarray(self.positions, np.float64)
        if self.object.ndim != 2:
            raise InputError("product object", "a 2-D (H, W) array", f"shape {self.object.shape}")
        if self.probe.ndim != 3 or self.probe.shape[1] != self.probe.shape[2]:
            raise InputError("product probe", "(K, N, N) modes", f"shape {self.probe.shape}")
        if self.positions.ndim != 2 or self.positions.shape[1] != 2:
            raise InputError("product positions", "an (n, 2) array of (row, col)",
                             f"shape {self.positions.shape}")


def _energy_ev(wavelength: float | None) -> float:
    return 0.0 if not wavelength else PLANCK_C / wavelength / ELECTRONVOLT


def _need_pixel(p: Product, what: str) -> tuple[float, float]:
    if p.object_pixel is None:
        raise InputError("product object pixel size", f"metres to write {what}",
                         "a reconstruction in pixel units (the dataset has no geometry)")
    return p.object_pixel


def _metres(p: Product, centre: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, ...]:
    dy, dx = _need_pixel(p, "a Ptychodus product")
    H, W = p.object.shape
    x = (p.positions[:, 1] - W / 2) * dx + centre[1]
    y = (p.positions[:, 0] - H / 2) * dy + centre[0]
    return x, y


def ptychodus_contents(p: Product, *, energy_ev: float | None = None,
                       distance: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(attributes, arrays) of a Ptychodus product for ``p``."""
    dy, dx = _need_pixel(p, "a Ptychodus product")
    x, y = _metres(p)
    attrs = {
        "name": p.name,
        "comments": json.dumps({"software": p.software, "settings": p.settings,
                                "corrected_positions": p.corrected_positions}),
        "detector_object_distance_m": float(distance if distance is not None
                                            else (p.distance or 0.0)),
        "probe_energy_eV": float(energy_ev if energy_ev is not None
                                 else _energy_ev(p.wavelength)),
        "probe_photon_count": 0.0,
        "exposure_time_s": 0.0,
        "mass_attenuation_m2_kg": 0.0,
    }
    arrays = {
        "probe_position_indexes": np.arange(len(x), dtype=np.int64),
        "probe_position_x_m": x, "probe_position_y_m": y,
        # Ptychodus holds (OPR modes, incoherent modes, N, N) probes and (layers, H, W) objects
        "probe": p.probe[None], "object": p.object[None],
        "object_layer_spacing_m": np.zeros(0),
        "loss_epochs": np.asarray(p.losses[0], np.int64),
        "loss_values": np.asarray(p.losses[1], np.float64),
    }
    pixel = {"probe_pixel": (dy, dx), "object_pixel": (dy, dx), "centre": (0.0, 0.0)}
    return attrs, {**arrays, "_pixel": pixel}


def write_ptychodus(path: str | os.PathLike[str], p: Product, *, energy_ev: float | None = None,
                    distance: float | None = None) -> Path:
    """Write ``p`` as a Ptychodus product file, atomically: HDF5 unless ``path`` ends in
    ``.npz``."""
    attrs, arrays = ptychodus_contents(p, energy_ev=energy_ev, distance=distance)
    px = arrays.pop("_pixel")
    (py_, px_), (cy, cx) = px["object_pixel"], px["centre"]
    if str(path).lower().endswith(".npz"):
        out: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in attrs.items()}
        out.update(arrays)
        out.update({"probe_pixel_height_m": np.float64(py_), "probe_pixel_width_m":
                    np.float64(px_), "object_pixel_height_m": np.float64(py_),
                    "object_pixel_width_m": np.float64(px_), "object_center_x_m":
                    np.float64(cx), "object_center_y_m": np.float64(cy)})
        return save_arrays(path, out)
    with h5util.atomic_h5(path) as h5:
        for k, v in attrs.items():
            h5.attrs[k] = v
        for k, v in arrays.items():
            d = h5.create_dataset(k, data=v)
            if k == "probe":
                d.attrs["pixel_height_m"], d.attrs["pixel_width_m"] = py_, px_
            if k == "object":
                d.attrs["pixel_height_m"], d.attrs["pixel_width_m"] = py_, px_
                d.attrs["center_x_m"], d.attrs["center_y_m"] = cx, cy
    return Path(path)


def _settings_from_comments(text: str) -> tuple[dict[str, Any], str | None, bool]:
    try:
        c = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {"comments": text} if text else {}, None, False
    if not isinstance(c, dict):
        return {"comments": text}, None, False
    return c.get("settings", {}), c.get("software"), bool(c.get("corrected_positions", False))


def _from_ptychodus(get: Any, attr: Any, path: str) -> Product:
    obj = np.asarray(get("object"))
    if obj.ndim == 3:  # layers: the transmission of a thin stack is their product
        obj = np.prod(obj, axis=0) if obj.shape[0] > 1 else obj[0]
    probe = np.asarray(get("probe"))
    if probe.ndim == 4:  # (OPR modes, modes, N, N): the first OPR mode
        probe = probe[0]
    dy, dx = float(attr("object", "pixel_height_m")), float(attr("object", "pixel_width_m"))
    cx, cy = float(attr("object", "center_x_m")), float(attr("object", "center_y_m"))
    H, W = obj.shape
    x = np.asarray(get("probe_position_x_m"), np.float64)
    y = np.asarray(get("probe_position_y_m"), np.float64)
    positions = np.stack([(y - cy) / dy + H / 2, (x - cx) / dx + W / 2], axis=1)
    energy = float(attr(None, "probe_energy_eV"))
    distance = float(attr(None, "detector_object_distance_m"))
    values = np.asarray(get("loss_values", "costs"), np.float64)
    epochs = get("loss_epochs", optional=True)
    epochs = np.arange(values.size) if epochs is None else np.asarray(epochs, np.int64)
    settings, software, corrected = _settings_from_comments(str(attr(None, "comments", "")))
    return Product(object=obj, probe=probe, positions=positions, object_pixel=(dy, dx),
                   wavelength=PLANCK_C / (energy * ELECTRONVOLT) if energy > 0 else None,
                   distance=distance or None, losses=(epochs, values), settings=settings,
                   software=software or "Ptychodus", name=str(attr(None, "name", "")),
                   corrected_positions=corrected)


def read_ptychodus(path: str | os.PathLike[str]) -> Product:
    """Read a Ptychodus product file (HDF5 or NPZ)."""
    file = str(path)
    if h5util.is_hdf5(path):
        with h5util.open_h5(path) as h5:
            def get(*names: str, optional: bool = False) -> Any:
                for n in names:
                    if h5util.get(h5, n) is not None:
                        return h5[n][()]
                if optional:
                    return None
                raise InputError(f"{file}: '{names[0]}'", "a Ptychodus product dataset",
                                 f"none; {h5util.holds(h5)}")

            def attr(ds: str | None, key: str, default: Any = None) -> Any:
                a = (h5 if ds is None else h5[ds]).attrs
                if key not in a:
                    if default is not None:
                        return default
                    raise InputError(f"{file}: attribute '{key}'", "a Ptychodus product "
                                     "attribute", "none")
                v = a[key]
                return v.decode() if isinstance(v, bytes) else v

            return _from_ptychodus(get, attr, file)
    with open_npz(path, "a Ptychodus product .npz") as z:
        files = set(z.files)
        prefix = {"object": "object_", "probe": "probe_"}

        def zget(*names: str, optional: bool = False) -> Any:
            for n in names:
                if n in files:
                    return z[n]
            if optional:
                return None
            raise InputError(f"{file}: key '{names[0]}'", "a Ptychodus product key",
                             f"keys {sorted(files)}")

        def zattr(ds: str | None, key: str, default: Any = None) -> Any:
            k = key if ds is None else prefix[ds] + key
            if k.startswith("object_center"):
                k = "object_" + key
            if k not in files:
                if default is not None:
                    return default
                raise InputError(f"{file}: key '{k}'", "a Ptychodus product key",
                                 f"keys {sorted(files)}")
            return z[k][()]

        return _from_ptychodus(zget, zattr, file)


def write_cxi_product(path: str | os.PathLike[str], p: Product) -> Path:
    """Write ``p`` as a CXI reconstruction (module docstring), atomically."""
    dy, dx = p.object_pixel or (1.0, 1.0)
    with h5util.atomic_h5(path) as h5:
        h5.create_dataset("cxi_version", data=160)
        h5.create_dataset("number_of_entries", data=1)
        e = h5.create_group("entry_1")
        e.create_dataset("program_name", data=p.software)
        for k, (what, arr) in {"image_1": ("probe", p.probe), "image_2": ("object",
                                                                          p.object)}.items():
            g = e.create_group(k)
            g.create_dataset("data", data=arr)
            g.create_dataset("data_type", data=what)
            g.create_dataset("is_fft_shifted", data=0)
            if p.object_pixel is not None:
                g.create_dataset("x_pixel_size", data=dx).attrs["units"] = "m"
                g.create_dataset("y_pixel_size", data=dy).attrs["units"] = "m"
        if p.object_pixel is not None:
            x, y = _metres(p)
            geo = e.create_group("sample_1/geometry_1")
            geo.create_dataset("translation", data=np.stack([-x, -y, np.zeros_like(x)], 1)
                               ).attrs["units"] = "m"
        src = e.create_group("instrument_1/source_1")
        if p.wavelength:
            src.create_dataset("wavelength", data=p.wavelength).attrs["units"] = "m"
            src.create_dataset("energy", data=PLANCK_C / p.wavelength).attrs["units"] = "J"
        if p.distance:
            e.create_group("instrument_1/detector_1").create_dataset(
                "distance", data=p.distance).attrs["units"] = "m"
        proc = e.create_group("process_1")
        proc.create_dataset("program", data="ptycho-workbench")
        proc.create_dataset("version", data=p.software)
        proc.create_dataset("configuration", data=json.dumps(p.settings))
        extra = e.create_group("ptycho_workbench")
        extra.create_dataset("positions_px", data=p.positions)
        extra.create_dataset("loss_epochs", data=np.asarray(p.losses[0], np.int64))
        extra.create_dataset("loss_values", data=np.asarray(p.losses[1], np.float64))
        extra.attrs["name"] = p.name
        extra.attrs["corrected_positions"] = bool(p.corrected_positions)
        extra.attrs["pixel_units"] = p.object_pixel is None
    return Path(path)


def read_cxi_product(path: str | os.PathLike[str]) -> Product:
    """Read a CXI reconstruction (the probe in ``image_1``, the object in ``image_2``, or
    whichever ``image_k`` says ``data_type`` object/probe)."""
    file = str(path)
    with h5util.open_h5(path) as h5:
        images: dict[str, Any] = {}
        for k in sorted(h5.get("entry_1", {})):
            if not k.startswith("image_") or h5util.get(h5, f"entry_1/{k}/data") is None:
                continue
            kind = (h5util.text(h5[f"entry_1/{k}/data_type"])
                    if h5util.get(h5, f"entry_1/{k}/data_type") is not None else
                    ("probe" if k == "image_1" else "object"))
            images[kind] = h5[f"entry_1/{k}/data"][()]
        if "object" not in images or "probe" not in images:
            raise InputError(f"{file}: reconstruction", "an object and a probe image "
                             "(/entry_1/image_k/data)", f"{sorted(images)}; {h5util.holds(h5)}")
        ex = h5.get("entry_1/ptycho_workbench")
        pixel = None
        if h5util.get(h5, "entry_1/image_2/x_pixel_size") is not None:
            pixel = (float(h5["entry_1/image_2/y_pixel_size"][()]),
                     float(h5["entry_1/image_2/x_pixel_size"][()]))
        obj = images["object"]
        H, W = obj.shape[-2:]
        if ex is not None and "positions_px" in ex:
            positions = ex["positions_px"][()]
        elif pixel is not None and h5util.get(h5, "entry_1/sample_1/geometry_1/translation"):
            t = h5["entry_1/sample_1/geometry_1/translation"][()]
            positions = np.stack([-t[:, 1] / pixel[0] + H / 2, -t[:, 0] / pixel[1] + W / 2], 1)
        else:
            positions = np.zeros((0, 2))
        wl = (float(h5["entry_1/instrument_1/source_1/wavelength"][()])
              if h5util.get(h5, "entry_1/instrument_1/source_1/wavelength") is not None else None)
        dist = (float(h5["entry_1/instrument_1/detector_1/distance"][()])
                if h5util.get(h5, "entry_1/instrument_1/detector_1/distance") is not None
                else None)
        settings: dict[str, Any] = {}
        software = "unknown"
        if h5util.get(h5, "entry_1/process_1/configuration") is not None:
            settings = json.loads(h5util.text(h5["entry_1/process_1/configuration"]))
        if h5util.get(h5, "entry_1/process_1/version") is not None:
            software = h5util.text(h5["entry_1/process_1/version"])
        losses = (np.zeros(0, np.int64), np.zeros(0))
        name, corrected = "reconstruction", False
        if ex is not None:
            if "loss_values" in ex:
                losses = (ex["loss_epochs"][()], ex["loss_values"][()])
            name = str(ex.attrs.get("name", name))
            corrected = bool(ex.attrs.get("corrected_positions", False))
        return Product(object=obj.reshape(H, W) if obj.ndim == 2 else obj[0],
                       probe=images["probe"], positions=positions, object_pixel=pixel,
                       wavelength=wl, distance=dist, losses=losses, settings=settings,
                       software=software, name=name, corrected_positions=corrected)


def is_ptychodus_npz(keys: set[str]) -> bool:
    return {"probe_position_x_m", "probe_position_y_m", "object", "probe"} <= keys


def read_product(path: str | os.PathLike[str]) -> Product:
    """A product from a Ptychodus (HDF5/NPZ) or CXI reconstruction file, by content."""
    from engine.io.detect import detect

    kind = detect(path)
    if kind in ("ptychodus-h5", "ptychodus-npz"):
        return read_ptychodus(path)
    if kind == "cxi-product":
        return read_cxi_product(path)
    raise InputError(str(path), "a reconstruction (Ptychodus product or CXI reconstruction)",
                     f"a {kind} file")
