"""Backends are discoverable through the ``ptycho.backends`` entry-point group."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import numpy as np

import engine.backends as backends
from engine.backends import Backend, available_backends, get_backend
from engine.backends.numpy_backend import NumpyBackend


class DoublingBackend(NumpyBackend):
    """A third-party backend: the reference with a different name."""

    name = "doubling"


def test_builtins_implement_the_protocol():
    assert {"numpy", "torch"} <= set(available_backends())
    for name in ("numpy", "torch"):
        assert isinstance(get_backend(name, "cpu"), Backend)


def test_plugin_backend_via_entry_point(monkeypatch):
    ep = EntryPoint(name="doubling", value=f"{__name__}:DoublingBackend",
                    group=backends.ENTRY_POINT_GROUP)
    monkeypatch.setattr(backends, "entry_points", lambda group: [ep])
    assert "doubling" in available_backends()
    be = get_backend("doubling", "cpu")
    assert be.name == "doubling"
    out = be.forward(np.ones((40, 40), complex), np.ones((16, 16), complex), [[20.0, 20.0]])
    assert out.shape == (1, 16, 16)


def test_installed_package_declares_builtin_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group=backends.ENTRY_POINT_GROUP)}
    assert {"numpy", "torch"} <= names
