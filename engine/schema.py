"""Field checks for what a file says about itself (bundle manifests, checkpoint states).

A digest only proves that a file was not damaged; an edit whose digests were recomputed
passes it. These checks refuse what no writer of this project produces: a scale that is
not a finite positive number, an epoch outside the run, an array with NaN, a shape that
disagrees with the configuration. Each failure is one :class:`~engine.errors.InputError`
line naming the file and the field.

Examples
--------
>>> number({"scale": -1.0}, "scale", "bundle.json", positive=True)
Traceback (most recent call last):
...
engine.errors.InputError: bundle.json: field 'scale': expected a finite number > 0, got -1.0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.errors import InputError


def _field(where: str, key: str) -> str:
    return f"{where}: field '{key}'"


def mapping(meta: Any, key: str, where: str, *, required: bool = True) -> dict | None:
    """``meta[key]`` if it is a JSON object (``None`` when absent and not required)."""
    if not isinstance(meta, Mapping):
        raise InputError(where, "a JSON object", type(meta).__name__)
    if key not in meta and not required:
        return None
    value = meta.get(key)
    if not isinstance(value, Mapping):
        raise InputError(_field(where, key), "a JSON object (a mapping)",
                         "missing" if key not in meta else type(value).__name__)
    return dict(value)


def number(meta: Mapping, key: str, where: str, *, positive: bool = False,
           lo: float | None = None, hi: float | None = None, integer: bool = False,
           required: bool = True) -> Any:
    """``meta[key]`` checked as a finite real number (``integer``: a whole one) within
    ``[lo, hi]`` (``positive``: > 0); ``None`` when absent and not required."""
    if key not in meta:
        if not required:
            return None
        raise InputError(_field(where, key), "a value", "missing")
    v = meta[key]
    kind = "an integer" if integer else "a finite number"
    if positive:
        kind += " > 0"
    if lo is not None or hi is not None:
        kind += f" in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
    ok_type = (isinstance(v, numbers.Integral) if integer else isinstance(v, numbers.Real))
    if isinstance(v, bool) or not ok_type:
        raise InputError(_field(where, key), kind, f"{v!r} ({type(v).__name__})")
    if not math.isfinite(float(v)) or (positive and v <= 0) or (lo is not None and v < lo) \
            or (hi is not None and v > hi):
        raise InputError(_field(where, key), kind, repr(v))
    return v


def flag(meta: Mapping, key: str, where: str, *, required: bool = False) -> bool | None:
    """``meta[key]`` checked as a JSON boolean."""
    if key not in meta:
        if required:
            raise InputError(_field(where, key), "true or false", "missing")
        return None
    if not isinstance(meta[key], bool):
        raise InputError(_field(where, key), "true or false", repr(meta[key]))
    return meta[key]


def listing(meta: Mapping, key: str, where: str, *, required: bool = True) -> list | None:
    """``meta[key]`` checked as a JSON list of objects."""
    if key not in meta and not required:
        return None
    v = meta.get(key)
    if not isinstance(v, list) or not all(isinstance(e, Mapping) for e in v):
        raise InputError(_field(where, key), "a list of records",
                         "missing" if key not in meta else type(v).__name__)
    return v


def files_table(meta: Mapping, where: str) -> dict[str, dict]:
    """The ``files`` table of a manifest: ``{name: {"sha256": hex, "size": int >= 0}}``."""
    files = mapping(meta, "files", where)
    assert files is not None
    for name, info in files.items():
        ok = (isinstance(info, Mapping) and isinstance(info.get("sha256"), str)
              and len(info["sha256"]) == 64 and isinstance(info.get("size"), int)
              and not isinstance(info.get("size"), bool) and info["size"] >= 0)
        if not ok:
            raise InputError(_field(where, f"files.{name}"),
                             "{'sha256': 64 hex digits, 'size': bytes}", repr(info)[:80])
    return files


def finite_array(a: Any, what: str, *, shape: tuple[int, ...] | None = None,
                 ndim: int | None = None) -> np.ndarray:
    """``a`` as an array of finite numbers, of ``shape`` (or ``ndim`` dimensions)."""
    arr = np.asarray(a)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(what, "a numeric array", f"dtype {arr.dtype}")
    if shape is not None and arr.shape != tuple(shape):
        raise InputError(what, f"shape {tuple(shape)}", f"shape {arr.shape}")
    if ndim is not None and arr.ndim != ndim:
        raise InputError(what, f"a {ndim}-D array", f"shape {arr.shape}")
    if arr.dtype != bool and not np.isfinite(arr).all():
        bad = int(arr.size - np.isfinite(arr).sum())
        raise InputError(what, "finite values", f"{bad} NaN or infinite")
    return arr
