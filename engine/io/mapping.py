"""Any HDF5 layout through a mapping file (TOML) written once per facility.

Each quantity names where it is (``path``) or gives its value (``value``), and its unit
(``unit``; where absent, the dataset's own ``units`` attribute; an energy with neither is
refused with both readings spelled out, a length with neither is refused)::

    [diffraction]
    path = "/measurement/pilatus/frames"   # (n, N, N) counts
    measure = "counts"                     # or "amplitude"

    [translation]                          # x and y separately ...
    x = { path = "/measurement/samx", unit = "um" }
    y = { path = "/measurement/samy", unit = "um" }
    # ... or path = "/positions" (n x 2 or n x 3), unit = "m", order = "xy"

    [energy]
    path = "/instrument/mono/energy"
    unit = "keV"

    [distance]
    value = 5.0
    unit = "m"

    [detector_pixel]                       # or x = {...} and y = {...}
    value = 75
    unit = "um"

    [mask]                                 # optional; good = the value of a usable pixel
    path = "/instrument/detector/mask"
    good = 0

    [probe]                                # optional
    path = "/reconstruction/probe"

A path the file does not hold is one line naming the mapping key and listing the datasets
the file does hold.

Examples
--------
>>> REQUIRED
('diffraction', 'translation', 'energy', 'distance', 'detector_pixel')
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import Dataset
from engine.errors import InputError
from engine.io import h5util
from engine.io.build import Measurement, ProbeInit, build_dataset
from engine.io.placement import ORDERS, _xyz
from engine.io.units import length_scale, photon_wavelength

QUANTITIES = ("diffraction", "translation", "energy", "distance", "detector_pixel", "mask",
              "probe", "basis_vectors")
REQUIRED = ("diffraction", "translation", "energy", "distance", "detector_pixel")


def load_mapping(mapping: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    """A mapping as a dict, from a TOML file or a dict; unknown or missing quantities are
    one line."""
    if isinstance(mapping, dict):
        spec, where = mapping, "mapping"
    else:
        p = Path(mapping)
        where = str(p)
        if not p.is_file():
            raise InputError(where, "an existing mapping file (TOML)", "no such file")
        try:
            spec = tomllib.loads(p.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(where, "a TOML mapping file", str(exc).split("\n")[0]) from None
    unknown = sorted(set(spec) - set(QUANTITIES) - {"propagation"})
    if unknown:
        raise InputError(where, f"quantities among {list(QUANTITIES)}", f"unknown {unknown}")
    missing = [q for q in REQUIRED if q not in spec]
    if missing:
        raise InputError(where, f"the quantities {list(REQUIRED)}", f"missing {missing}")
    return spec


class _Reader:
    def __init__(self, h5: Any, file: str) -> None:
        self.h5, self.file = h5, file

    def array(self, key: str, item: Any) -> tuple[np.ndarray, str | None]:
        """The value of mapping entry ``key`` and its unit (mapping first, then file)."""
        if not isinstance(item, dict):
            raise InputError(f"mapping '{key}'", "a table with 'path' or 'value' (and 'unit')",
                             repr(item))
        unit = item.get("unit")
        if "value" in item:
            return np.asarray(item["value"], np.float64), unit
        if "path" not in item:
            raise InputError(f"mapping '{key}'", "a 'path' or a 'value'", f"keys {list(item)}")
        d = h5util.get(self.h5, item["path"])
        if d is None:
            raise InputError(f"{self.file}: mapping '{key}.path' = '{item['path']}'",
                             "a dataset in the file", f"none; {h5util.holds(self.h5)}")
        return np.asarray(d[()]), unit or h5util.units_of(d)

    def length(self, key: str, item: Any) -> np.ndarray:
        v, unit = self.array(key, item)
        if unit is None:
            raise InputError(f"mapping '{key}'", "a 'unit' (m, mm, um, nm) in the mapping or "
                             "a 'units' attribute in the file", "none")
        return np.asarray(v, np.float64) * length_scale(unit, f"mapping '{key}'")


def read_mapped(path: str | os.PathLike[str], mapping: str | os.PathLike[str] | dict[str, Any],
                *, lazy: bool | str = "auto", probe_init: ProbeInit | None = None) -> Dataset:
    """Read an HDF5 file of any layout through ``mapping`` (module docstring)."""
    spec = load_mapping(mapping)
    file = str(path)
    with h5util.open_h5(path) as h5:
        r = _Reader(h5, file)
        dspec = spec["diffraction"]
        if not isinstance(dspec, dict) or "path" not in dspec:
            raise InputError("mapping 'diffraction'", "a table with 'path'", repr(dspec))
        d = h5util.get(h5, dspec["path"])
        if d is None:
            raise InputError(f"{file}: mapping 'diffraction.path' = '{dspec['path']}'",
                             "a dataset in the file", f"none; {h5util.holds(h5)}")
        if d.ndim != 3:
            raise InputError(f"{file}: {dspec['path']}", "an (n, N, N) stack of patterns",
                             f"shape {tuple(d.shape)}")
        n = int(d.shape[0])
        t = _translation(r, spec["translation"], n)
        e, eunit = r.array("energy", spec["energy"])
        wavelength = photon_wavelength(float(np.asarray(e).reshape(-1)[0]), eunit,
                                       f"{file}: mapping 'energy'")
        distance = float(r.length("distance", spec["distance"]).reshape(-1)[0])
        pspec = spec["detector_pixel"]
        if isinstance(pspec, dict) and "x" in pspec:
            px = float(r.length("detector_pixel.x", pspec["x"]).reshape(-1)[0])
            py = float(r.length("detector_pixel.y", pspec.get("y", pspec["x"])).reshape(-1)[0])
        else:
            v = r.length("detector_pixel", pspec).reshape(-1)
            py, px = (float(v[0]), float(v[-1]))
        mask = None
        if "mask" in spec:
            raw, _ = r.array("mask", spec["mask"])
            good = spec["mask"].get("good", 0)
            mask = np.asarray(raw) == good
        probe = None
        if "probe" in spec:
            probe, _ = r.array("probe", spec["probe"])
        basis = None
        if "basis_vectors" in spec:
            basis = r.length("basis_vectors", spec["basis_vectors"])
        meta = {"format": "mapped", "mapping": spec if isinstance(mapping, dict)
                else str(Path(mapping).resolve()), "energy_unit": eunit}
        m = Measurement(path=file, data_path=dspec["path"].lstrip("/"),
                        measure=dspec.get("measure", "counts"), translations=t,
                        wavelength=wavelength, distance=distance, detector_pixel=(py, px),
                        basis=basis, mask=mask, probe=probe,
                        propagation=spec.get("propagation", "far"), metadata=meta)
    return build_dataset(m, lazy=lazy, probe_init=probe_init)


def _translation(r: _Reader, tspec: Any, n: int) -> np.ndarray:
    if not isinstance(tspec, dict):
        raise InputError("mapping 'translation'", "a table with x and y, or path", repr(tspec))
    if "x" in tspec:
        x = r.length("translation.x", tspec["x"]).reshape(-1)
        y = r.length("translation.y", tspec.get("y")).reshape(-1)
        if x.size != n or y.size != n:
            raise InputError("mapping 'translation'", f"{n} x and y values (one per pattern)",
                             f"{x.size} and {y.size}")
        return np.stack([x, y, np.zeros(n)], axis=1)
    order = tspec.get("order", "xy")
    if order not in ORDERS:
        raise InputError("mapping 'translation.order'", f"one of {ORDERS}", repr(order))
    t = r.length("translation", tspec)
    if t.ndim != 2 or t.shape[0] != n:
        raise InputError("mapping 'translation'", f"an ({n}, 2) or ({n}, 3) array",
                         f"shape {t.shape}")
    return _xyz(t, order)
