"""NeXus ``NXcxi_ptycho`` files: groups found by their ``NX_class``, units from each field's
``units`` attribute.

The photon energy is ``NXbeam/energy`` (``instrument_1/beam_1/energy``; ``incident_energy``
is accepted too). The ``NXsource/energy`` of these files is the **machine's** (a storage
ring's 6 GeV, say): reading it as the photon energy is a known silent error, so it is never
read; a file without a beam energy is refused with a line that says so.

Translations: ``sample_1/geometry_1/translation`` (n × 3), else the ``x`` and ``y`` fields
of the ``NXdata`` group, else ``NXdetector/translation``. Detector: ``distance``,
``x_pixel_size``, ``y_pixel_size``, ``pixel_mask`` or ``mask`` (0 = good), ``data``.

Examples
--------
>>> is_nxcxi_ptycho  # doctest: +ELLIPSIS
<function is_nxcxi_ptycho at ...>
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from engine.data import Dataset
from engine.errors import InputError
from engine.io import h5util
from engine.io.build import Measurement, ProbeInit, build_dataset
from engine.io.cxi import read_length, read_wavelength, valid_from_cxi_mask
from engine.io.placement import ORDERS, _xyz
from engine.io.units import length_scale

DEFINITION = "NXcxi_ptycho"


def nx_class(obj: Any) -> str:
    v = obj.attrs.get("NX_class", b"")
    return v.decode() if isinstance(v, bytes) else str(v)


def _children(group: Any, cls: str) -> list[Any]:
    import h5py

    return [group[k] for k in group if isinstance(group.get(k), h5py.Group)
            and nx_class(group[k]) == cls]


def _definition(entry: Any) -> str:
    if "definition" in entry:
        return h5util.text(entry["definition"])
    v = entry.attrs.get("definition", "")
    return v.decode() if isinstance(v, bytes) else str(v)


def find_entry(h5: Any) -> Any | None:
    """The ``NXentry`` whose definition is ``NXcxi_ptycho`` (or None)."""
    for entry in _children(h5, "NXentry"):
        if _definition(entry) == DEFINITION:
            return entry
    return None


def is_nxcxi_ptycho(h5: Any) -> bool:
    return find_entry(h5) is not None


def _one(group: Any, cls: str, file: str, what: str) -> Any:
    found = _children(group, cls)
    if not found:
        raise InputError(f"{file}: {what}", f"an {cls} group in {group.name}",
                         f"none; {h5util.holds(group.file)}")
    return found[0]


def read_nexus(path: str | os.PathLike[str], *, lazy: bool | str = "auto",
               energy_unit: str | None = None, translation_order: str = "xy",
               probe_init: ProbeInit | None = None) -> Dataset:
    """Read an ``NXcxi_ptycho`` file as a :class:`Dataset` (options as
    :func:`engine.io.cxi.read_cxi`)."""
    file = str(path)
    if translation_order not in ORDERS:
        raise InputError("translation_order", f"one of {ORDERS}", repr(translation_order))
    with h5util.open_h5(path) as h5:
        entry = find_entry(h5)
        if entry is None:
            raise InputError(file, f"an NXentry with definition {DEFINITION}",
                             f"none; {h5util.holds(h5)}")
        inst = _one(entry, "NXinstrument", file, "instrument")
        det = _one(inst, "NXdetector", file, "detector")
        beams = _children(inst, "NXbeam")
        energy_path = None
        for beam in beams:
            for name in ("energy", "incident_energy"):
                if h5util.get(beam, name) is not None:
                    energy_path = f"{beam.name}/{name}"
                    break
            if energy_path:
                break
        if energy_path is None:
            sources = [s.name for s in _children(inst, "NXsource")]
            raise InputError(f"{file}: photon energy", "an NXbeam 'energy' in "
                             f"{inst.name} (the photon energy)",
                             "none (the NXsource energy at " + (", ".join(sources) or "-")
                             + " is the machine's, not the photon energy)")
        wavelength, info = read_wavelength(h5, energy_path, None, file, spec_unit=None,
                                           energy_unit_override=energy_unit,
                                           what="photon energy")
        datas = _children(entry, "NXdata")
        data_path = None
        for g in [det, *datas]:
            if h5util.get(g, "data") is not None:
                data_path = f"{g.name}/data"
                break
        if data_path is None:
            raise InputError(f"{file}: diffraction", f"'data' in {det.name} or an NXdata",
                             f"none; {h5util.holds(h5)}")
        n = int(h5[data_path].shape[0])
        t = _translations(h5, entry, det, datas, file, n)
        t = _xyz(t, translation_order)
        distance = read_length(h5, f"{det.name}/distance", file)
        px = read_length(h5, f"{det.name}/x_pixel_size", file)
        py = (read_length(h5, f"{det.name}/y_pixel_size", file)
              if h5util.get(det, "y_pixel_size") is not None else px)
        mask = None
        for name in ("pixel_mask", "mask"):
            if h5util.get(det, name) is not None:
                mask = valid_from_cxi_mask(det[name][()])
                break
        meta = {"format": "nexus", "definition": DEFINITION,
                "translation_order": translation_order, **info}
        if h5util.get(det, "saturation_value") is not None:
            meta["saturation_value"] = h5util.scalar(det, "saturation_value", file)[0]
        m = Measurement(path=file, data_path=data_path.lstrip("/"), measure="counts",
                        translations=t, wavelength=wavelength, distance=distance,
                        detector_pixel=(py, px), mask=mask, metadata=meta)
    return build_dataset(m, lazy=lazy, probe_init=probe_init)


def _field_m(h5: Any, d: Any, file: str) -> np.ndarray:
    unit = h5util.units_of(d)
    if unit is None:
        raise InputError(f"{file}: {d.name}", "a 'units' attribute (NeXus fields state "
                         "their unit)", "none")
    return np.asarray(d[()], np.float64) * length_scale(unit, f"{file}: {d.name}")


def _translations(h5: Any, entry: Any, det: Any, datas: list[Any], file: str,
                  n: int) -> np.ndarray:
    for sample in _children(entry, "NXsample"):
        d = h5util.get(sample, "geometry_1/translation")
        if d is not None:
            return _field_m(h5, d, file).reshape(n, -1)
    for g in datas:
        if h5util.get(g, "x") is not None and h5util.get(g, "y") is not None:
            x = _field_m(h5, g["x"], file).reshape(-1)
            y = _field_m(h5, g["y"], file).reshape(-1)
            if x.size != n or y.size != n:
                raise InputError(f"{file}: {g.name}/x, y", f"{n} values each (one per pattern)",
                                 f"{x.size} and {y.size}")
            return np.stack([x, y, np.zeros(n)], axis=1)
    d = h5util.get(det, "translation")
    if d is not None:
        return _field_m(h5, d, file).reshape(n, -1)
    raise InputError(f"{file}: translations", "sample_1/geometry_1/translation, NXdata x/y "
                     "or NXdetector/translation", f"none; {h5util.holds(h5)}")
