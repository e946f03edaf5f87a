"""What a file is, from its content (not its name): an HDF5 signature, then the CXI,
NeXus ``NXcxi_ptycho`` or Ptychodus product layout inside; a zip (NPZ) holding this
project's (or PtychoPINN's) keys or a Ptychodus product's.

Kinds: ``"npz"`` (a dataset NPZ), ``"ptychodus-npz"``, ``"ptychodus-h5"``, ``"cxi"`` (a
measurement), ``"cxi-product"`` (a CXI reconstruction: images, no patterns), ``"nexus"``,
``"hdf5"`` (an HDF5 file of another layout: read it through a mapping file).

Examples
--------
>>> import tempfile, numpy as np
>>> path = tempfile.mkdtemp() + "/x.bin"
>>> np.savez(open(path, "wb"), xcoords=np.zeros(2))
>>> detect(path)
'npz'
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from engine.errors import InputError
from engine.io import h5util

KINDS = ("npz", "ptychodus-npz", "ptychodus-h5", "cxi", "cxi-product", "nexus", "hdf5")
# what a user may name with --format (the extension decides otherwise)
FORMATS = ("npz", "cxi", "nexus", "ptychodus", "mapped")


def detect(path: str | os.PathLike[str]) -> str:
    """The kind of file ``path`` is (module docstring); anything else is one line."""
    p = Path(path)
    if not p.exists():
        raise InputError(str(p), "an existing data file", "no such file")
    if not p.is_file():
        raise InputError(str(p), "a data file", "a directory")
    if p.stat().st_size == 0:
        raise InputError(str(p), "a data file", "an empty (0-byte) file")
    if h5util.is_hdf5(p):
        return _hdf5_kind(p)
    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as z:
                keys = {n.removesuffix(".npy") for n in z.namelist()}
        except (zipfile.BadZipFile, OSError):
            return "npz"  # the NPZ reader says what is wrong with it
        from engine.io.product import is_ptychodus_npz

        return "ptychodus-npz" if is_ptychodus_npz(keys) else "npz"
    with open(p, "rb") as fh:
        head = fh.read(8)
    if head[:6] == b"\x93NUMPY":
        return "npz"  # a lone .npy: the NPZ reader refuses it by name
    raise InputError(str(p), "an HDF5 (CXI, NeXus, Ptychodus, any layout with a mapping) or "
                     "NPZ file", f"neither (starts with {head!r})")


def _hdf5_kind(p: Path) -> str:
    from engine.io.nexus import is_nxcxi_ptycho

    with h5util.open_h5(p) as h5:
        if is_nxcxi_ptycho(h5):
            return "nexus"
        entry = h5.get("entry_1")
        if "cxi_version" in h5 or (entry is not None and any(
                k in entry for k in ("data_1", "instrument_1", "image_1"))):
            from engine.io.cxi import DATA_PATHS

            if any(h5util.get(h5, d) is not None for d in DATA_PATHS):
                return "cxi"
            if entry is not None and any(k.startswith("image_") for k in entry):
                return "cxi-product"
            return "cxi"
        if "probe_energy_eV" in h5.attrs and h5util.get(h5, "probe_position_x_m") is not None:
            return "ptychodus-h5"
    return "hdf5"


def format_from_name(path: str | os.PathLike[str]) -> str | None:
    """The output format an extension names (``.cxi`` → cxi, ``.npz`` → npz, ``.h5`` /
    ``.hdf5`` → a Ptychodus product, ``.nxs`` → nexus), or None."""
    ext = Path(path).suffix.lower()
    return {".cxi": "cxi", ".npz": "npz", ".h5": "ptychodus", ".hdf5": "ptychodus",
            ".nxs": "nexus"}.get(ext)
