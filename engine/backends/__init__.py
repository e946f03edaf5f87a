"""Compute backends, chosen by name.

Built-ins are ``numpy`` (the reference) and ``torch``. A third backend is added without
touching the engine by declaring an entry point in the ``ptycho.backends`` group that names a
class implementing :class:`~engine.backends.protocol.Backend`::

    [project.entry-points."ptycho.backends"]
    mybackend = "mypkg.backend:MyBackend"

Examples
--------
>>> from engine.backends import get_backend
>>> get_backend("numpy").name
'numpy'
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from engine.backends.protocol import Backend
from engine.errors import InputError

ENTRY_POINT_GROUP = "ptycho.backends"
_BUILTIN = {
    "numpy": "engine.backends.numpy_backend:NumpyBackend",
    "torch": "engine.backends.torch_backend:TorchBackend",
}


def _load(spec: str) -> Callable[..., Backend]:
    module, _, attr = spec.partition(":")
    return getattr(import_module(module), attr)


def available_backends() -> dict[str, str]:
    """Names of every backend (built-in and plugged in) mapped to their ``module:Class``."""
    found = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def get_backend(name: str = "numpy", device: str = "auto", **options: Any) -> Backend:
    """Instantiate the backend ``name`` on ``device``.

    Parameters
    ----------
    name : a key of :func:`available_backends`.
    device : ``"auto"``, ``"cpu"`` or ``"cuda[:k]"`` (backend permitting).
    **options : passed to the backend class (e.g. ``precision="single"`` for numpy).
    """
    if isinstance(name, Backend) and not isinstance(name, str):
        return name
    names = available_backends()
    if name not in names:
        raise InputError("backend", f"one of {sorted(names)}", repr(name))
    backend = _load(names[name])(device=device, **options)
    if not isinstance(backend, Backend):
        raise InputError(f"backend {name!r}", "an object implementing engine.backends.Backend")
    return backend


__all__ = ["Backend", "ENTRY_POINT_GROUP", "available_backends", "get_backend"]
