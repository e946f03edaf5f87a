"""Where the workbench's work runs: one interface, two executors.

:class:`SyncExecutor` (scripts, tests, ``Workbench(viewer=None)``) runs a submitted
function at once in the calling thread and drives periodic callbacks from
:meth:`~Executor.process_events` (which :meth:`Workbench.wait` calls). The Qt executor
(:class:`ptycho_gui._qt.executor.QtExecutor`) runs them on napari workers and a Qt timer,
shows runs in napari's task status and stops them when the viewer closes. The services
(:mod:`ptycho_gui.services`) are written once against this interface; runs themselves
always go through :func:`engine.runs.start` (a worker thread) with either executor.

Examples
--------
>>> ex = SyncExecutor()
>>> got = []
>>> ex.submit(lambda x: x + 1, 1, on_result=got.append, on_error=print)
>>> got
[2]
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Ticker(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Executor(Protocol):
    """What the services need from an executor."""

    def submit(self, func: Callable[..., Any], *args: Any, on_result: Callable[[Any], None],
               on_error: Callable[[BaseException], None],
               on_yield: Callable[[Any], None] | None = None, **kwargs: Any) -> None:
        """Run ``func(*args, **kwargs)``; ``on_yield`` gets a generator's values,
        ``on_result`` the return value, ``on_error`` an exception, all on the caller's
        (GUI) thread."""

    def every(self, seconds: float, callback: Callable[[], None]) -> Ticker:
        """A ticker calling ``callback`` every ``seconds`` while started."""

    def process_events(self) -> None:
        """Deliver what is due (callbacks, ticks) now."""

    def busy(self) -> bool:
        """Submitted work is still running."""

    def task_started(self, label: str, cancel: Callable[[], Any]) -> Any:
        """Show a run in the host's task list (``None`` when there is none)."""

    def task_ended(self, handle: Any, ok: bool, text: str) -> None: ...

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the host (the viewer) closes."""

    def close(self) -> None:
        """Undo process-wide settings made for responsiveness; stop tickers."""


class _SyncTicker:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback, self.active = callback, False

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False


class SyncExecutor:
    """Everything in the calling thread (see the module docstring)."""

    def __init__(self) -> None:
        self._tickers: list[_SyncTicker] = []

    def submit(self, func: Callable[..., Any], *args: Any, on_result: Callable[[Any], None],
               on_error: Callable[[BaseException], None],
               on_yield: Callable[[Any], None] | None = None, **kwargs: Any) -> None:
        try:
            value = func(*args, **kwargs)
            if inspect.isgenerator(value):
                for item in value:
                    if on_yield is not None:
                        on_yield(item)
                value = None
        except Exception as exc:  # noqa: BLE001 - handed to on_error, which reports it
            on_error(exc)
            return
        on_result(value)

    def every(self, seconds: float, callback: Callable[[], None]) -> _SyncTicker:
        ticker = _SyncTicker(callback)
        self._tickers.append(ticker)
        return ticker

    def process_events(self) -> None:
        for ticker in list(self._tickers):
            if ticker.active:
                ticker.callback()

    def busy(self) -> bool:
        return False

    def task_started(self, label: str, cancel: Callable[[], Any]) -> Any:
        return None

    def task_ended(self, handle: Any, ok: bool, text: str) -> None:
        return None

    def on_close(self, callback: Callable[[], None]) -> None:
        return None

    def close(self) -> None:
        for ticker in self._tickers:
            ticker.stop()


__all__ = ["Executor", "SyncExecutor", "Ticker"]
