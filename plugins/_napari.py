"""The callables the manifest names; each hands over to :mod:`ptycho_gui` at once."""

from __future__ import annotations

from typing import Any

from ptycho_gui import io
from ptycho_gui.layers import dataset_layers
from ptycho_gui.samples import make_sample


def get_reader(path: str | list[str]):
    """napari reader hook: a function reading ``path`` or ``None`` when it is not ours."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    return _read if io.readable(path) else None


def _read(path: str | list[str], **_: Any) -> list[Any]:
    """Read ``path``; what cannot be read is one error notification (its one line) and the
    null-layer sentinel, never a traceback."""
    from engine.errors import PtychoError

    p = path[0] if isinstance(path, list) else path
    try:
        return io.read(p)
    except (PtychoError, OSError, MemoryError) as exc:
        _notify(f"ptycho-workbench: cannot open {p}: {exc}".replace("\n", " "))
        return [(None,)]


def _notify(message: str) -> None:
    """One error notification in napari (in its log when no viewer shows it)."""
    from napari.utils.notifications import show_error

    show_error(message)


def write_npz(path: str, data: Any, meta: dict) -> list[str]:
    return io.write_npz(path, data, meta)


def write_tiff(path: str, data: Any, meta: dict) -> list[str]:
    return io.write_tiff(path, data, meta)


def _sample(name: str) -> list[Any]:
    ds = make_sample(name)
    return dataset_layers(ds, name=name)


def sample_lines() -> list[Any]:
    return _sample("lines")


def sample_asym() -> list[Any]:
    return _sample("asym")


def sample_grf() -> list[Any]:
    return _sample("grf")


def sample_siemens() -> list[Any]:
    return _sample("siemens")


def __getattr__(name: str) -> Any:
    # the widget class is imported only when napari asks for it (it pulls in Qt)
    if name == "WorkbenchWidget":
        from ptycho_gui._qt.widget import WorkbenchWidget

        return WorkbenchWidget
    raise AttributeError(name)
