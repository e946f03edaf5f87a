"""``ptycho convert IN OUT``: between every format this workbench reads and writes.

Measurements (NPZ, CXI, NeXus, a mapped layout) are written as NPZ or CXI; a dataset that
carries an object (simulated, or a product's) also as a Ptychodus product. Reconstructions
(Ptychodus products, CXI reconstructions) are written as Ptychodus products (HDF5 or NPZ),
CXI reconstructions, or an NPZ of object, probe and positions. The output format comes from
``format`` or the extension (``.cxi``, ``.npz``, ``.h5``/``.hdf5`` = Ptychodus product);
every write is atomic. HDF5 patterns are streamed a batch at a time.

Examples
--------
>>> import tempfile
>>> from engine.data import write_npz
>>> from engine.geometry import Geometry
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> d = tempfile.mkdtemp()
>>> src = write_npz(d + "/d.npz", simulate(SimulationConfig(n_positions=9, N=32, step=6)))
>>> g = Geometry(wavelength=1.55e-10, distance=2.0, detector_pixel=(75e-6, 75e-6))
>>> convert(src, d + "/d.cxi", geometry=g).suffix
'.cxi'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.data import Dataset, write_npz
from engine.errors import InputError
from engine.geometry import Geometry
from engine.io.detect import detect, format_from_name

OUT_FORMATS = ("npz", "cxi", "ptychodus")
PRODUCT_KINDS = ("ptychodus-h5", "ptychodus-npz", "cxi-product")


def output_format(dst: str | os.PathLike[str], format: str | None) -> str:
    fmt = format or format_from_name(dst)
    if fmt == "nexus":
        raise InputError(f"output {dst}", "a format this workbench writes (npz, cxi, "
                         "ptychodus); NeXus is read only", "nexus")
    if fmt not in OUT_FORMATS:
        raise InputError("format", f"an output extension .cxi, .npz or .h5 for {dst}, or a "
                         f"format among {OUT_FORMATS}",
                         repr(fmt or Path(dst).suffix or "no extension"))
    return fmt


def product_from_dataset(ds: Dataset, *, name: str = "dataset") -> Any:
    """A product of a dataset that carries an object (its true object or a start)."""
    from engine.io.product import Product

    if ds.object is None:
        raise InputError("dataset", "an object to write a Ptychodus product (a product is a "
                         "reconstruction)", "a measurement without one: write .cxi or .npz")
    g = ds.geometry
    return Product(object=ds.object, probe=ds.probe, positions=ds.positions,
                   object_pixel=ds.pixel_size, wavelength=None if g is None else g.wavelength,
                   distance=None if g is None else g.distance, name=name,
                   settings={"metadata": ds.metadata})


def write_product(dst: str | os.PathLike[str], product: Any, fmt: str) -> Path:
    from engine.io.product import write_cxi_product, write_ptychodus

    if fmt == "ptychodus":
        return write_ptychodus(dst, product)
    if fmt == "cxi":
        return write_cxi_product(dst, product)
    from engine.io.readers import dataset_from_product

    return write_npz(dst, dataset_from_product(product))


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
            format: str | None = None, geometry: Geometry | None = None,
            load: Callable[..., Dataset] | None = None, **read: Any) -> Path:
    """Convert ``src`` to ``dst`` (module docstring); ``geometry`` supplies or replaces the
    physical geometry (a CXI file needs one); ``read`` goes to
    :func:`engine.io.readers.read_dataset` (``mapping``, ``energy_unit`` ...), or to
    ``load`` in its place (the API's ``load_dataset``, which also masks bad pixels)."""
    fmt = output_format(dst, format)
    kind = detect(src)
    if kind in PRODUCT_KINDS and read.get("mapping") is None:
        from engine.io.product import read_product

        return write_product(dst, read_product(src), fmt)
    from engine.io.readers import read_dataset

    read.setdefault("lazy", True)
    ds = (load or read_dataset)(src, require_diffraction=fmt != "cxi", **read)
    if geometry is not None:
        ds = replace(ds, geometry=geometry)
    if fmt == "cxi":
        from engine.io.cxi import write_cxi

        return write_cxi(dst, ds)
    if fmt == "ptychodus":
        return write_product(dst, product_from_dataset(ds, name=Path(src).stem), fmt)
    return write_npz(dst, ds)
