"""CXI files (cxidb specification 1.4–1.6): read a measurement, write a dataset.

Reading (links followed):

- diffraction: ``/entry_1/data_1/data``, else ``/entry_1/instrument_1/detector_1/data``
  (counts; an ``(n, N, N)`` stack);
- translations: ``/entry_1/sample_1/geometry_1/translation`` (else ``data_1/translation``,
  ``detector_1/translation``), (n, 3) sample translations in metres, columns x, y, z
  (``translation_order="yx"`` for files whose first column is y);
- energy: ``/entry_1/instrument_1/source_1/energy`` in J per photon (the specification's
  unit; a ``units`` attribute overrides it; a value that is no photon energy in J is refused
  with both readings spelled out), else ``source_1/wavelength`` in metres;
- ``detector_1/distance``, ``x_pixel_size``, ``y_pixel_size`` (metres), ``basis_vectors``
  ((2, 3), or CDTools' (3, 2)), ``mask`` (0 = good pixel; bit 0x1000 "has signal" is
  good too, as CDTools reads it), ``saturation_value``;
- a probe from ``source_1/illumination`` or ``/entry_1/image_1/data`` (Ptychodus writes the
  probe there), else an estimate from the mean pattern (``metadata["probe_source"]``).

Writing a dataset gives what PtyPy, CDTools and Ptychodus read: ``/cxi_version`` 160,
counts at ``instrument_1/detector_1/data`` with ``data_1/data`` linked to it, translations,
energy (J) and wavelength, distance, pixel sizes, basis vectors, mask (1 = bad), the probe
as ``source_1/illumination``; this workbench's extras (the true object, scan index,
metadata) live in ``/entry_1/ptycho_workbench``.

Examples
--------
>>> import tempfile
>>> from engine.geometry import Geometry
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> ds = simulate(SimulationConfig(n_positions=9, N=32, step=6, seed=0))
>>> g = Geometry(wavelength=1.55e-10, distance=2.0, detector_pixel=(75e-6, 75e-6))
>>> path = write_cxi(tempfile.mkdtemp() + "/d.cxi", ds, geometry=g)
>>> back = read_cxi(path, lazy=False)
>>> bool(abs(back.xcoords - ds.xcoords).max() < 1e-6), back.geometry == g
(True, True)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__
from engine.data import Dataset, is_lazy
from engine.errors import InputError
from engine.geometry import Geometry, wavelength_from_energy
from engine.io import h5util
from engine.io.build import Measurement, ProbeInit, build_dataset
from engine.io.placement import (
    ORDERS,
    _xyz,
    basis_2x3,
    default_basis,
    pixel_pitch,
    pixels_to_translations,
)
from engine.io.streaming import iter_batches
from engine.io.units import (
    energy_unit,
    joules_plausible,
    length_scale,
    photon_wavelength,
)

DATA_PATHS = ("entry_1/data_1/data", "entry_1/instrument_1/detector_1/data")
TRANSLATION_PATHS = ("entry_1/sample_1/geometry_1/translation", "entry_1/data_1/translation",
                     "entry_1/instrument_1/detector_1/translation")
DET = "entry_1/instrument_1/detector_1"
SRC = "entry_1/instrument_1/source_1"
EXTRA = "entry_1/ptycho_workbench"
CXI_VERSION = 160
# the detector-mask bit CXI calls "pixel has signal": not a defect
MASK_HAS_SIGNAL = 0x1000


def valid_from_cxi_mask(mask: np.ndarray) -> np.ndarray:
    """True where a CXI/NeXus detector mask marks a usable pixel (no defect bit set)."""
    m = np.asarray(mask)
    if m.dtype == bool:
        return ~m
    return (m.astype(np.int64) & ~MASK_HAS_SIGNAL) == 0


def read_length(h5: Any, path: str, file: str, default_unit: str = "m") -> float:
    value, unit = h5util.scalar(h5, path, file)
    v = value * length_scale(unit or default_unit, f"{file}: '{path}'")
    if not np.isfinite(v) or v <= 0:
        raise InputError(f"{file}: '{path}'", "a length > 0", f"{value} {unit or default_unit}")
    return v


def read_wavelength(h5: Any, energy_path: str | None, wavelength_path: str | None,
                    file: str, *, spec_unit: str | None, energy_unit_override: str | None,
                    what: str = "energy") -> tuple[float, dict[str, Any]]:
    """Wavelength from an energy dataset (its ``units``, else ``energy_unit_override``, else
    the format's ``spec_unit`` where the value is plausible in it) or a wavelength dataset.
    Returns the wavelength and a record of how it was read."""
    if energy_path is not None and h5util.get(h5, energy_path) is not None:
        value, unit = h5util.scalar(h5, energy_path, file)
        if energy_unit_override is not None:
            unit = energy_unit(energy_unit_override)
        elif unit is None and spec_unit == "J" and joules_plausible(value):
            unit = "J"
        elif unit is None and spec_unit is not None and spec_unit != "J":
            unit = spec_unit
        lam = photon_wavelength(value, unit, f"{file}: {what} '{energy_path}'")
        return lam, {"energy": value, "energy_unit": energy_unit(unit), "energy_path":
                     energy_path}
    if wavelength_path is not None and h5util.get(h5, wavelength_path) is not None:
        lam = read_length(h5, wavelength_path, file)
        return lam, {"wavelength_path": wavelength_path}
    paths = [p for p in (energy_path, wavelength_path) if p]
    raise InputError(f"{file}: photon energy", f"a dataset at {' or '.join(paths)}",
                     f"none; {h5util.holds(h5)}")


def _first(h5: Any, paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if h5util.get(h5, p) is not None), None)


def _probe(h5: Any, N: int) -> tuple[np.ndarray | None, str | None]:
    for path in (f"{SRC}/illumination", "entry_1/image_1/data", "entry_1/image_1/probe"):
        d = h5util.get(h5, path)
        if d is None:
            continue
        a = np.asarray(d[()])
        if a.ndim >= 2 and a.shape[-2:] == (N, N) and np.issubdtype(a.dtype, np.number):
            return a.reshape(-1, N, N).astype(np.complex64), path
    return None, None


def read_cxi(path: str | os.PathLike[str], *, lazy: bool | str = "auto",
             energy_unit: str | None = None, translation_order: str = "xy",
             probe_init: ProbeInit | None = None) -> Dataset:
    """Read a CXI file as a :class:`Dataset` (module docstring: what is read where).

    Parameters
    ----------
    lazy : ``True`` keeps the diffraction in the file (:class:`engine.io.lazy.H5Stack`),
        ``False`` reads it into memory, ``"auto"`` reads it lazily above 1 GiB.
    energy_unit : the unit of ``source_1/energy`` where the file's own is wrong or absent.
    translation_order : ``"xy"`` (the specification, CDTools, Ptychodus) or ``"yx"``.
    probe_init : replaces the mean-pattern probe estimate for files without a probe.
    """
    file = str(path)
    if translation_order not in ORDERS:
        raise InputError("translation_order", f"one of {ORDERS}", repr(translation_order))
    with h5util.open_h5(path) as h5:
        data_path = _first(h5, DATA_PATHS)
        if data_path is None:
            raise InputError(f"{file}: diffraction", f"a dataset at /{DATA_PATHS[0]} or "
                             f"/{DATA_PATHS[1]}", f"none; {h5util.holds(h5)}")
        d = h5[data_path]
        if d.ndim != 3:
            raise InputError(f"{file}: /{data_path}", "an (n, N, N) stack of patterns",
                             f"shape {tuple(d.shape)}")
        n, N = int(d.shape[0]), int(d.shape[-1])
        tpath = _first(h5, TRANSLATION_PATHS)
        if tpath is None:
            raise InputError(f"{file}: translations", f"a dataset at /{TRANSLATION_PATHS[0]}",
                             f"none; {h5util.holds(h5)}")
        td = h5[tpath]
        t = np.asarray(td[()], np.float64)
        if t.ndim == 2 and t.shape[0] in (2, 3) and t.shape[1] == n and n not in (2, 3):
            t = t.T  # some writers store (3, n)
        if t.ndim != 2 or t.shape[0] != n or t.shape[1] not in (2, 3):
            raise InputError(f"{file}: /{tpath}", f"an ({n}, 3) array (one row per pattern)",
                             f"shape {t.shape}")
        t = _xyz(t * length_scale(h5util.units_of(td) or "m", f"{file}: /{tpath}"),
                 translation_order)
        wavelength, energy_info = read_wavelength(
            h5, f"{SRC}/energy", f"{SRC}/wavelength", file, spec_unit="J",
            energy_unit_override=energy_unit)
        distance = read_length(h5, f"{DET}/distance", file)
        basis = None
        if h5util.get(h5, f"{DET}/basis_vectors") is not None:
            basis = basis_2x3(h5[f"{DET}/basis_vectors"][()], f"{file}: /{DET}/basis_vectors")
            pixel = pixel_pitch(basis)
        else:
            px = (read_length(h5, f"{DET}/x_pixel_size", file)
                  if h5util.get(h5, f"{DET}/x_pixel_size") is not None else None)
            py = (read_length(h5, f"{DET}/y_pixel_size", file)
                  if h5util.get(h5, f"{DET}/y_pixel_size") is not None else None)
            if px is None and py is None:
                raise InputError(f"{file}: detector pixel size",
                                 f"/{DET}/x_pixel_size, y_pixel_size or basis_vectors",
                                 f"none; {h5util.holds(h5)}")
            pixel = (py or px, px or py)  # type: ignore[assignment]
        mask = None
        if h5util.get(h5, f"{DET}/mask") is not None:
            mask = valid_from_cxi_mask(h5[f"{DET}/mask"][()])
        meta: dict[str, Any] = {"format": "cxi", "translation_path": f"/{tpath}",
                                "translation_order": translation_order, **energy_info}
        if h5util.get(h5, "cxi_version") is not None:
            meta["cxi_version"] = int(np.asarray(h5["cxi_version"][()]).reshape(-1)[0])
        if h5util.get(h5, f"{DET}/saturation_value") is not None:
            meta["saturation_value"] = h5util.scalar(h5, f"{DET}/saturation_value", file)[0]
        probe, probe_path = _probe(h5, N)
        if probe_path is not None:
            meta["probe_source"] = f"file: /{probe_path}"
        obj = scan_index = offset = focus = None
        measure, propagation = "counts", "far"
        if EXTRA in h5:
            extra = h5[EXTRA]
            propagation = h5util.text(extra.attrs.get("propagation", "far"))
            if "focus_distance" in extra.attrs:
                focus = float(extra.attrs["focus_distance"])
            if "metadata" in extra.attrs:
                saved = json.loads(h5util.text(extra.attrs["metadata"]))
                offset = saved.pop("written_position_shift_px", None)
                meta = {**saved, **meta}
            if "object" in extra:
                obj = extra["object"][()]
            if "scan_index" in extra:
                scan_index = extra["scan_index"][()].astype(np.int64)
        if "measure" in d.attrs and h5util.text(d.attrs["measure"]) == "amplitude":
            measure = "amplitude"
        # h5py follows the links; the stack reopens the path it was read from
        m = Measurement(path=file, data_path=data_path, measure=measure, translations=t,
                        wavelength=wavelength, distance=distance,
                        detector_pixel=(float(pixel[0]), float(pixel[1])), basis=basis,
                        mask=mask, probe=probe, object=obj, scan_index=scan_index,
                        position_offset=None if offset is None else tuple(offset),
                        propagation=propagation, focus_distance=focus,
                        metadata=meta)
    return build_dataset(m, lazy=lazy, probe_init=probe_init)


def _raw_source(ds: Dataset) -> Any:
    """The lazy stack whose file counts can be copied as they are (a lossless conversion),
    or None."""
    from engine.io.lazy import H5Stack

    d = ds.diffraction
    if isinstance(d, H5Stack) and d.measure == "counts":
        return d
    return None


def _counts_dtype(ds: Dataset) -> Any:
    """The file's own dtype when copying a lazy stack's counts; uint32 where the amplitudes
    are √ of whole counts (simulated or photon-counting data: stored exactly); float32
    otherwise."""
    d = ds.diffraction
    if _raw_source(ds) is not None:
        return d.file_dtype
    if is_lazy(d):
        return np.float32
    c = np.asarray(d, np.float64) ** 2
    if c.size and c.max() < 2**32 and np.all(np.abs(c - np.rint(c)) < 1e-3 * np.maximum(1, c)):
        return np.uint32
    return np.float32


def write_cxi(path: str | os.PathLike[str], ds: Dataset, *, geometry: Geometry | None = None,
              batch: int = 256) -> Path:
    """Write ``ds`` as a CXI 1.6 file, atomically; ``geometry`` replaces or supplies the
    dataset's (a CXI file needs one: metres, not pixels). Counts are √-inverted amplitudes
    (whole counts stored as uint32, exactly). Lazy stacks are copied a batch at a time."""
    import h5py

    geometry = geometry or ds.geometry
    if geometry is None:
        raise InputError("geometry", "a wavelength, distance and detector pixel to write CXI "
                         "(metres, not pixels)", "a dataset in pixel units")
    if ds.diffraction is None:
        raise InputError("dataset", "diffraction patterns to write a CXI measurement",
                         "none (write it as a Ptychodus product or NPZ instead)")
    N, n = ds.N, ds.n
    basis = np.asarray(ds.metadata.get("basis_vectors", default_basis(geometry.detector_pixel)))
    basis = basis_2x3(basis)
    if not np.allclose(np.linalg.norm(basis, axis=1), geometry.detector_pixel, rtol=1e-9):
        basis = default_basis(geometry.detector_pixel)
    pos = ds.positions - (ds.positions.min(axis=0) - N / 2)  # what the reader's shift gives
    shift = ds.positions.min(axis=0) - N / 2
    t = pixels_to_translations(pos - N / 2, basis, wavelength=geometry.wavelength,
                               distance=geometry.distance, N=N,
                               propagation=geometry.propagation,
                               magnification=geometry.magnification)
    dtype = _counts_dtype(ds)
    with h5util.atomic_h5(path) as h5:
        h5.create_dataset("cxi_version", data=CXI_VERSION)
        h5.create_dataset("number_of_entries", data=1)
        e = h5.create_group("entry_1")
        e.create_dataset("program_name", data=f"ptycho-workbench {__version__}")
        src = e.create_group("instrument_1/source_1")
        energy_j = float(wavelength_from_energy(1.0, "J") / geometry.wavelength)
        src.create_dataset("energy", data=energy_j).attrs["units"] = "J"
        src.create_dataset("wavelength", data=geometry.wavelength).attrs["units"] = "m"
        src.create_dataset("illumination", data=ds.probe.astype(np.complex64))
        det = e["instrument_1"].create_group("detector_1")
        det.create_dataset("distance", data=geometry.distance).attrs["units"] = "m"
        det.create_dataset("x_pixel_size", data=geometry.detector_pixel[1]).attrs["units"] = "m"
        det.create_dataset("y_pixel_size", data=geometry.detector_pixel[0]).attrs["units"] = "m"
        det.create_dataset("basis_vectors", data=basis).attrs["units"] = "m"
        chunks = (max(1, min(n, 64, (1 << 22) // (N * N * 4))), N, N)
        data = det.create_dataset("data", shape=(n, N, N), dtype=dtype, chunks=chunks)
        data.attrs["axes"] = "translation:y:x"
        source = _raw_source(ds)
        if source is not None:  # counts copied as stored, a batch at a time
            for s in range(0, n, batch):
                data[s:s + batch] = source.raw_rows(slice(s, min(n, s + batch)))
        else:
            for s, a in iter_batches(ds.diffraction, batch):
                c = a.astype(np.float64) ** 2
                data[s:s + len(a)] = np.rint(c).astype(dtype) if dtype == np.uint32 else c
        if ds.pixel_mask is not None:
            det.create_dataset("mask", data=(~ds.pixel_mask).astype(np.uint32))
        geo = e.create_group("sample_1/geometry_1")
        geo.create_dataset("translation", data=t).attrs["units"] = "m"
        d1 = e.create_group("data_1")
        d1["data"] = h5py.SoftLink(f"/{DET}/data")
        d1["translation"] = h5py.SoftLink("/entry_1/sample_1/geometry_1/translation")
        extra = e.create_group("ptycho_workbench")
        meta = {k: v for k, v in ds.metadata.items()
                if k not in ("position_shift_px", "basis_vectors", "basis_source",
                             "source_file", "diffraction_path", "probe_source")}
        meta["written_position_shift_px"] = [float(shift[0]), float(shift[1])]
        extra.attrs["metadata"] = json.dumps(meta)
        extra.attrs["software"] = f"ptycho-workbench {__version__}"
        # CXI has no word for near-field data: kept here so it reads back as written
        extra.attrs["propagation"] = geometry.propagation
        if geometry.focus_distance is not None:
            extra.attrs["focus_distance"] = geometry.focus_distance
        if ds.object is not None:
            extra.create_dataset("object", data=ds.object.astype(np.complex64))
        if ds.scan_index is not None:
            extra.create_dataset("scan_index", data=ds.scan_index.astype(np.int64))
    return Path(path)
