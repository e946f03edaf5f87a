"""The Qt executor: napari workers for previews and comparisons, a Qt timer for the run
poll, napari's task status for a running run, and the viewer-close hook.

A process-wide setting made for responsiveness (the interpreter's switch interval, so the
GUI thread gets the interpreter lock quickly while a run computes) is set when a run starts
and restored when the workbench closes.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QCoreApplication, QTimer

log = logging.getLogger(__name__)
GUI_SWITCH_INTERVAL_S = 0.001


class _QtTicker:
    def __init__(self, seconds: float, callback: Callable[[], None]) -> None:
        self.timer = QTimer()
        self.timer.setInterval(int(seconds * 1000))
        self.timer.timeout.connect(callback)

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        try:
            self.timer.stop()
        except RuntimeError:  # Qt already deleted it (the application is going down)
            log.debug("timer already deleted")


class QtExecutor:
    """The executor a workbench with a viewer uses (see :mod:`ptycho_gui.executors`)."""

    def __init__(self, viewer: Any) -> None:
        self.viewer = viewer
        self._workers: set[Any] = set()
        self._tickers: list[_QtTicker] = []
        self._closers: list[Callable[[], None]] = []
        self._switch: float | None = None
        self._closed = False
        window = getattr(viewer, "window", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            qt_window = getattr(window, "_qt_window", None)
        if qt_window is not None:
            # napari has no public "viewer closing" event: the main window's destroyed
            # signal is how a run learns of it
            qt_window.destroyed.connect(lambda *_: self._on_destroyed())

    def submit(self, func: Callable[..., Any], *args: Any, on_result: Callable[[Any], None],
               on_error: Callable[[BaseException], None],
               on_yield: Callable[[Any], None] | None = None, **kwargs: Any) -> Any:
        from napari.qt.threading import create_worker

        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True,
                               **kwargs)
        worker.returned.connect(on_result)
        worker.errored.connect(on_error)
        if on_yield is not None and hasattr(worker, "yielded"):
            worker.yielded.connect(on_yield)
        worker.finished.connect(lambda: self._workers.discard(worker))
        self._workers.add(worker)
        worker.start()
        return worker

    def every(self, seconds: float, callback: Callable[[], None]) -> _QtTicker:
        ticker = _QtTicker(seconds, callback)
        self._tickers.append(ticker)
        return ticker

    def process_events(self) -> None:
        app = QCoreApplication.instance()
        if app is not None:
            app.processEvents()

    def busy(self) -> bool:
        return bool(self._workers)

    def task_started(self, label: str, cancel: Callable[[], Any]) -> Any:
        # the GUI thread waits for the interpreter lock at most this long while the worker
        # runs Python between its tensor operations (default 5 ms at every hand-over);
        # restored in close()
        if self._switch is None:
            self._switch = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch, GUI_SWITCH_INTERVAL_S))
        window = getattr(self.viewer, "window", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            register = getattr(window, "_register_task_status", None)
        if register is None:
            return None
        try:
            from napari.utils.task_status import Status

            def _cancel() -> bool:
                cancel()
                return True

            return register("ptycho-workbench", Status.BUSY, label, cancel_callback=_cancel)
        except Exception:  # noqa: BLE001 - the close hook still stops the run; logged
            log.warning("napari task status unavailable", exc_info=True)
            return None

    def task_ended(self, handle: Any, ok: bool, text: str) -> None:
        if handle is None:
            return
        window = getattr(self.viewer, "window", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            update = getattr(window, "_update_task_status", None)
        if update is not None:
            from napari.utils.task_status import Status

            update(handle, Status.COMPLETED if ok else Status.FAILED, text)

    def on_close(self, callback: Callable[[], None]) -> None:
        self._closers.append(callback)

    def _on_destroyed(self) -> None:
        for cb in list(self._closers):
            cb()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for ticker in self._tickers:
            ticker.stop()
        if self._switch is not None:
            sys.setswitchinterval(self._switch)
            self._switch = None


def canvas_size(viewer: Any) -> Callable[[], tuple[int, int]]:
    """A function giving the viewer canvas's (height, width) in pixels."""

    def size() -> tuple[int, int]:
        with warnings.catch_warnings():  # napari-private, read only here
            warnings.simplefilter("ignore")
            s = getattr(viewer, "_canvas_size", None)
        return tuple(s) if s else (600, 600)

    return size


def warm_up() -> threading.Thread:
    """Import the network's modules on a background thread when the workbench opens, so
    pressing Start never waits for torch's first import on the GUI thread."""

    def run() -> None:
        import importlib

        from engine import api

        try:
            for module in ("torch", "lightning_fabric"):
                importlib.import_module(module)
            api.TrainConfig, api.InferConfig  # noqa: B018 - the network's modules
        except ImportError:
            log.info("warm-up: the network's modules are not importable", exc_info=True)

    t = threading.Thread(target=run, daemon=True, name="workbench-warm-up")
    t.start()
    return t
