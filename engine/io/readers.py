"""One entry point for every data file: :func:`read_dataset` picks the reader by content
(:func:`engine.io.detect.detect`) or by ``format``, and returns a
:class:`engine.data.Dataset` whose HDF5 diffraction may be lazy.

Examples
--------
>>> import tempfile
>>> from engine.data import write_npz
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> path = write_npz(tempfile.mkdtemp() + "/d.npz", simulate(SimulationConfig(
...     n_positions=9, N=32, step=6)))
>>> read_dataset(path).n
9
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from engine.data import Dataset, read_npz
from engine.errors import InputError
from engine.geometry import Geometry
from engine.io import h5util
from engine.io.build import ProbeInit
from engine.io.detect import FORMATS, detect

_KIND_OF_FORMAT = {"npz": ("npz",), "cxi": ("cxi",), "nexus": ("nexus",),
                   "ptychodus": ("ptychodus-h5", "ptychodus-npz"), "mapped": ("hdf5", "cxi",
                                                                              "nexus")}


def read_dataset(path: str | os.PathLike[str], *, format: str | None = None,
                 mapping: Any = None, lazy: bool | str = "auto",
                 energy_unit: str | None = None, translation_order: str = "xy",
                 probe_init: ProbeInit | None = None,
                 require_diffraction: bool = True) -> Dataset:
    """Read any supported data file as a :class:`Dataset`.

    Parameters
    ----------
    format : ``"npz"``, ``"cxi"``, ``"nexus"``, ``"ptychodus"`` or ``"mapped"``; default:
        from the content. A format that contradicts the content is refused.
    mapping : a TOML mapping file (or dict) for an HDF5 layout of your own
        (:mod:`engine.io.mapping`); it implies ``format="mapped"``.
    lazy : HDF5 diffraction kept in the file (``True``), read into memory (``False``), or
        lazily above 1 GiB (``"auto"``).
    energy_unit : the energy's unit where the file states none (or a wrong one).
    translation_order : ``"xy"`` (the CXI specification) or ``"yx"``.
    probe_init : how a file without a probe gets its start (default: from the mean pattern).
    require_diffraction : False accepts files without patterns (a Ptychodus product, an
        object-probe-positions NPZ).
    """
    if format is not None and format not in FORMATS:
        raise InputError("format", f"one of {FORMATS}", repr(format))
    kind = detect(path)
    if mapping is not None or format == "mapped":
        if mapping is None:
            raise InputError("mapping", "a mapping file (TOML) with format 'mapped'", "none")
        if kind not in _KIND_OF_FORMAT["mapped"]:
            raise InputError(str(path), "an HDF5 file to read through a mapping", f"a {kind} file")
        from engine.io.mapping import read_mapped

        return read_mapped(path, mapping, lazy=lazy, probe_init=probe_init)
    if format is not None and kind not in _KIND_OF_FORMAT[format]:
        raise InputError("format", f"the format of {path}",
                         f"{format!r}, but its content is a {kind} file")
    opts = dict(lazy=lazy, energy_unit=energy_unit, translation_order=translation_order,
                probe_init=probe_init)
    if kind == "npz":
        return read_npz(path, require_diffraction=require_diffraction)
    if kind == "cxi":
        from engine.io.cxi import read_cxi

        return read_cxi(path, **opts)
    if kind == "nexus":
        from engine.io.nexus import read_nexus

        return read_nexus(path, **opts)
    if kind in ("ptychodus-h5", "ptychodus-npz", "cxi-product"):
        if require_diffraction:
            raise InputError(str(path), "a file with diffraction patterns",
                             f"a reconstruction ({kind}: object, probe, positions; read it "
                             "with load_reconstruction, or with require_diffraction=False)")
        from engine.io.product import read_product

        return dataset_from_product(read_product(path))
    with h5util.open_h5(path) as h5:
        listing = h5util.holds(h5)
    raise InputError("mapping", f"a mapping file (TOML, docs/formats.md) for {path}, an HDF5 "
                     "file of another layout than CXI, NeXus NXcxi_ptycho or Ptychodus",
                     f"none; {listing}")


def dataset_from_product(p: Any) -> Dataset:
    """The object, strongest probe mode and positions of a product as a dataset without
    patterns (what ``simulate --from-npz`` or a solver's ``init`` take)."""
    powers = np.sum(np.abs(p.probe) ** 2, axis=(1, 2))
    probe = p.probe[int(np.argmax(powers))]
    N = probe.shape[0]
    geometry = None
    if p.object_pixel and p.wavelength and p.distance:
        dy, dx = p.object_pixel
        geometry = Geometry(wavelength=p.wavelength, distance=p.distance,
                            detector_pixel=(p.wavelength * p.distance / (N * dy),
                                            p.wavelength * p.distance / (N * dx)))
    meta = {"format": "product", "software": p.software, "settings": p.settings,
            "corrected_positions": p.corrected_positions, "probe_source": "file"}
    return Dataset(diffraction=None, xcoords=p.positions[:, 1].copy(),
                   ycoords=p.positions[:, 0].copy(), probe=probe, object=p.object,
                   metadata=meta, geometry=geometry)
