"""Argument checks at the boundary of :mod:`engine.api`: one line naming the parameter.

Every public action checks what it was given before any work starts, so a string where an
options object belongs, ``None`` where a dataset belongs or a number where a path belongs is
an :class:`~engine.errors.InputError` naming the parameter and the expected type, never an
``AttributeError`` from deep inside. Where a path is the natural thing to pass (a dataset, a
canvas, a ground truth), it is accepted and loaded, the same way in every action.

Examples
--------
>>> from engine.physics.stitching import StitchConfig
>>> options("foo", StitchConfig, "options")
Traceback (most recent call last):
...
engine.errors.InputError: options: expected a StitchConfig (or None for the defaults), got str 'foo'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from engine.data import Dataset
from engine.errors import InputError
from engine.events import RunControl

T = TypeVar("T")

PathLike = (str, os.PathLike)


def _got(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def dataset(value: Any, name: str = "data") -> Dataset:
    """A :class:`Dataset`, or the dataset file at a path (loaded as ``api.load_dataset``
    loads it: NPZ, CXI, NeXus, Ptychodus; HDF5 patterns lazily when large)."""
    if isinstance(value, Dataset):
        return value
    if isinstance(value, PathLike):
        # as api.load_dataset reads it, so a path means the same in every action (this
        # module sits below the API: the preview checks its arguments here too)
        from engine.data import read_npz
        from engine.io import h5util

        if Path(value).is_file() and h5util.is_hdf5(Path(value)):
            from engine.io.readers import read_dataset

            return read_dataset(value)
        return read_npz(value)
    raise InputError(name, "a Dataset or the path of a dataset file (.npz, .cxi, .h5, .nxs)",
                     _got(value))


def options(value: Any, cls: type[T], name: str = "options", *,
            default: Callable[[], T] | None = None, required: bool = False) -> T:
    """An options object of ``cls``; ``None`` gives ``default()`` (or ``cls()``) unless
    ``required``. A dict is refused with the way to build one (``cls(**d)``)."""
    if isinstance(value, cls):
        return value
    if value is None and not required:
        return default() if default is not None else cls()
    hint = (f" (build one: {cls.__name__}(**the_dict) or {cls.__name__}.from_dict(the_dict))"
            if isinstance(value, dict) else "")
    expected = f"a {cls.__name__}" + ("" if required else " (or None for the defaults)")
    raise InputError(name, expected, _got(value) + hint)


def optional(value: Any, cls: type | tuple[type, ...], name: str, expected: str) -> Any:
    """``value`` if it is ``None`` or an instance of ``cls``."""
    if value is None or isinstance(value, cls):
        return value
    raise InputError(name, expected, _got(value))


def path(value: Any, name: str, *, required: bool = False) -> Path | None:
    """A file-system path (``str`` or ``os.PathLike``); ``None`` unless ``required``."""
    if value is None and not required:
        return None
    if isinstance(value, PathLike) and str(value):
        return Path(value)
    raise InputError(name, "a path (str or os.PathLike)" + ("" if required else " or None"),
                     _got(value))


def canvas(value: Any, name: str = "canvas") -> Any:
    """A :class:`~engine.physics.stitching.Canvas`, or the canvas file at a path (loaded)."""
    from engine.physics.stitching import Canvas

    if isinstance(value, Canvas):
        return value
    if isinstance(value, PathLike):
        return Canvas.load(value)
    raise InputError(name, "a Canvas or the path of a canvas .npz (recon.npz)", _got(value))


def truth(value: Any, name: str = "truth") -> np.ndarray:
    """A ground-truth object array, or the data file at a path (its ``objectGuess``)."""
    if isinstance(value, PathLike):
        from engine.evaluation.metrics import read_truth

        return read_truth(value)
    if isinstance(value, Dataset):
        if value.object is None:
            raise InputError(name, "a dataset holding its true object", "none in it")
        return value.object
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.number) \
            and value.ndim == 2:
        return value
    raise InputError(name, "a 2-D numeric array, a Dataset with its object or the path of a "
                     "data file with 'objectGuess'",
                     f"shape {value.shape}, dtype {value.dtype}"
                     if isinstance(value, np.ndarray) else _got(value))


def bundle(value: Any, name: str = "bundle", *, required: bool = True) -> Any:
    """A loaded bundle, or a path to a run, bundle or ``.zip`` (loaded where it is used)."""
    if value is None and not required:
        return None
    if isinstance(value, PathLike):
        return value
    if type(value).__name__ == "Bundle" and hasattr(value, "weights"):
        return value
    raise InputError(name, "a model bundle (a Bundle, or the path of a run, a bundle "
                     "directory or a bundle .zip)", _got(value))


def callback(value: Any, name: str = "emit") -> Any:
    """``None`` or a callable (an event callback)."""
    if value is None or callable(value):
        return value
    raise InputError(name, "a callable receiving events, or None", _got(value))


def run_control(value: Any, name: str = "control") -> RunControl | None:
    """``None`` or a :class:`~engine.events.RunControl`."""
    return optional(value, RunControl, name, "a RunControl or None")


def flag(value: Any, name: str) -> bool:
    """A boolean (``numpy.bool_`` accepted)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise InputError(name, "True or False", _got(value))


def text(value: Any, name: str, choices: tuple[str, ...] | None = None, *,
         optional_: bool = False) -> str | None:
    """A string (one of ``choices``, if given); ``None`` when ``optional_``."""
    if value is None and optional_:
        return None
    if isinstance(value, str) and (choices is None or value in choices):
        return value
    expected = f"one of {', '.join(repr(c) for c in choices)}" if choices else "a string"
    raise InputError(name, expected + (" or None" if optional_ else ""), _got(value))


def integer(value: Any, name: str, *, minimum: int | None = None,
            optional_: bool = False) -> int | None:
    """An integer (not a bool) of at least ``minimum``; ``None`` when ``optional_``."""
    if value is None and optional_:
        return None
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if ok and (minimum is None or value >= minimum):
        return int(value)
    expected = "an integer" + (f" >= {minimum}" if minimum is not None else "")
    raise InputError(name, expected + (" or None" if optional_ else ""), _got(value))


def number(value: Any, name: str, *, minimum: float | None = None) -> float:
    """A finite real number (not a bool) of at least ``minimum``."""
    ok = isinstance(value, int | float | np.integer | np.floating) \
        and not isinstance(value, bool | np.bool_) and np.isfinite(value)
    if ok and (minimum is None or value >= minimum):
        return float(value)
    raise InputError(name, "a finite number" + (f" >= {minimum}" if minimum is not None
                                                  else ""), _got(value))


def stats_source(value: Any, name: str) -> Any:
    """What :func:`engine.api.compare` compares: a Canvas (or a canvas ``.npz`` path), a
    statistics file or run directory path, a list of records or a ``StatsLog``."""
    from engine.physics.stitching import Canvas

    if isinstance(value, Canvas):
        return value
    if isinstance(value, PathLike):
        p = Path(value)
        return Canvas.load(p) if p.suffix == ".npz" and p.is_file() else value
    if isinstance(value, list) and all(isinstance(r, dict) for r in value):
        return value
    records = getattr(value, "records", None)
    if isinstance(records, list):
        return records
    raise InputError(name, "a Canvas or canvas .npz path, a statistics JSON or run directory "
                     "path, a list of records or a StatsLog", _got(value))


def run_keywords(*, backend: Any = "numpy", device: Any = "auto", emit: Any = None,
                 control: Any = None) -> None:
    """The keywords every action shares: backend and device names, the event callback and
    the run control."""
    if not (isinstance(backend, str) or hasattr(backend, "asarray")):  # a name or a Backend
        raise InputError("backend", "a backend name ('numpy', 'torch') or a Backend",
                         _got(backend))
    text(device, "device", optional_=True)
    callback(emit)
    run_control(control)
