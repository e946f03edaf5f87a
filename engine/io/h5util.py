"""Small helpers to read HDF5 files with one-line errors: listing what a file holds, reading
scalars with their ``units`` attribute, opening a file or refusing it.

Examples
--------
>>> import tempfile, h5py
>>> path = tempfile.mkdtemp() + "/a.h5"
>>> with h5py.File(path, "w") as f:
...     d = f.create_dataset("beam/energy", data=8.0)
...     d.attrs["units"] = "keV"
>>> with open_h5(path) as f:
...     scalar(f, "beam/energy", path), dataset_list(f)
((8.0, 'keV'), ['/beam/energy () float64'])
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_path
from engine.errors import InputError, OutputError, os_reason

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` starts with the HDF5 signature (at offset 0 or a user block of
    512, 1024, ... bytes)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(8) == HDF5_SIGNATURE:
                return True
            size = os.fstat(fh.fileno()).st_size
            off = 512
            while off + 8 <= size and off <= 1 << 20:
                fh.seek(off)
                if fh.read(8) == HDF5_SIGNATURE:
                    return True
                off *= 2
    except OSError:
        return False
    return False


def open_h5(path: str | os.PathLike[str]) -> Any:
    """Open an HDF5 file for reading; a missing or unreadable file is one line."""
    import h5py

    p = Path(path)
    if not p.exists():
        raise InputError(str(p), "an existing HDF5 file", "no such file")
    if not p.is_file():
        raise InputError(str(p), "an HDF5 file", "a directory")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise InputError(str(p), "a readable HDF5 file", str(exc).split("\n")[0]) from None


def dataset_list(h5: Any, limit: int = 40) -> list[str]:
    """``"/path (shape) dtype"`` of every dataset in ``h5`` (the first ``limit``)."""
    import h5py

    out: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and len(out) < limit:
            out.append(f"/{name} {tuple(obj.shape)} {obj.dtype}")

    h5.visititems(visit)
    return out


def holds(h5: Any) -> str:
    """One-line description of the datasets a file holds, for error messages."""
    items = dataset_list(h5)
    more = " …" if len(items) >= 40 else ""
    return "the file holds " + (", ".join(items) + more if items else "no datasets")


def get(h5: Any, path: str) -> Any:
    """The dataset at ``path`` (links followed) or None."""
    import h5py

    try:
        obj = h5.get(path)
    except (KeyError, OSError):  # a dangling link
        return None
    return obj if isinstance(obj, h5py.Dataset) else None


def require(h5: Any, path: str, file: str | os.PathLike[str], what: str) -> Any:
    """The dataset at ``path``; its absence is one line naming it and listing the file."""
    d = get(h5, path)
    if d is None:
        raise InputError(f"{file}: {what} at '{path}'", "an existing dataset",
                         f"none; {holds(h5)}")
    return d


def units_of(d: Any) -> str | None:
    """The ``units`` (or ``unit``) attribute of a dataset, if any."""
    for key in ("units", "unit"):
        if key in d.attrs:
            v = d.attrs[key]
            if isinstance(v, bytes):
                v = v.decode()
            if isinstance(v, np.ndarray):
                v = v.reshape(-1)[0]
                v = v.decode() if isinstance(v, bytes) else str(v)
            return str(v).strip() or None
    return None


def scalar(h5: Any, path: str, file: str | os.PathLike[str]) -> tuple[float, str | None]:
    """A numeric scalar (or the first element of a 1-element array) and its unit."""
    d = require(h5, path, file, "value")
    v = np.asarray(d[()])
    if v.size < 1 or not np.issubdtype(v.dtype, np.number) or np.iscomplexobj(v):
        raise InputError(f"{file}: '{path}'", "a real number", f"{v.dtype} shape {v.shape}")
    x = float(v.reshape(-1)[0])
    return x, units_of(d)


def text(d: Any) -> str:
    """A string dataset or attribute value as str."""
    v = d[()] if hasattr(d, "shape") and hasattr(d, "dtype") else d
    if isinstance(v, np.ndarray):
        v = v.reshape(-1)[0] if v.size else ""
    return v.decode() if isinstance(v, bytes) else str(v)


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike[str]) -> Iterator[Any]:
    """An HDF5 file opened for writing under a hidden temporary name beside ``path`` and
    renamed over it only when the block succeeds (:func:`engine.atomic.atomic_path`: HDF5
    needs a path, not :func:`engine.atomic.atomic_open`'s handle). On failure ``path`` is
    untouched and the temporary file removed."""
    import h5py

    with atomic_path(path) as tmp:
        try:
            h5 = h5py.File(tmp, "w")
        except OSError as exc:
            raise OutputError(Path(path), os_reason(exc)) from None
        with h5:
            yield h5
