"""The workbench's one error convention.

Actions raise :class:`~engine.errors.PtychoError`. A :class:`Reporter` turns an error or a
warning into one line: logged, kept as ``last_error``, emitted (``errored``/``warned``,
which the widget's status line shows) and, with a notifier (napari's notifications when
there is a viewer), a notification. Engine warnings are shown once per text, not on every
recompute; :class:`EngineWarnings` collects the engine's logged warnings during work.

Examples
--------
>>> r = Reporter()
>>> r.error(ValueError("bad"), "preview")
'preview: ValueError: bad'
>>> r.warn("scale differs"), r.warn("scale differs")
(True, False)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from psygnal import Signal

from engine.errors import PtychoError

log = logging.getLogger("ptycho_gui")


def message_of(exc: BaseException, context: str = "") -> str:
    """One line for an error: a PtychoError's own text, else its type and text."""
    text = str(exc) if isinstance(exc, PtychoError) else f"{type(exc).__name__}: {exc}"
    return f"{context}: {text}" if context and not text.startswith(context) else text


class Reporter:
    """Errors and warnings to the log, the status line and the notifications."""

    errored = Signal(str)
    warned = Signal(str)

    def __init__(self, notify: Callable[[str, str], None] | None = None) -> None:
        self.notify = notify
        self.last_error: str | None = None
        self._warned: set[str] = set()

    def error(self, exc: BaseException | str, context: str = "") -> str:
        text = exc if isinstance(exc, str) else message_of(exc, context)
        if isinstance(exc, BaseException) and not isinstance(exc, PtychoError):
            log.error("%s", text, exc_info=exc)  # not an input error: keep the traceback
        else:
            log.warning("%s", text)
        self.last_error = text
        if self.notify is not None:
            self.notify("error", text)
        self.errored.emit(text)
        return text

    def info(self, text: str) -> None:
        log.info("%s", text)
        if self.notify is not None:
            self.notify("info", text)

    def warn(self, text: str) -> bool:
        """Show ``text`` once; ``False`` when it was shown before."""
        if text in self._warned:
            return False
        self._warned.add(text)
        log.warning("%s", text)
        if self.notify is not None:
            self.notify("warning", text)
        self.warned.emit(text)
        return True

    def clear(self) -> None:
        self.last_error = None


class EngineWarnings(logging.Handler):
    """Collects the engine's logged warnings (``with EngineWarnings() as w: ...``)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        with self._lock2:
            if text not in self.messages:
                self.messages.append(text)

    def __enter__(self) -> EngineWarnings:
        logging.getLogger("engine").addHandler(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        logging.getLogger("engine").removeHandler(self)


def napari_notifier(kind: str, text: str) -> None:
    """Notifications through napari's public API (a viewer's notification area)."""
    from napari.utils import notifications

    {"error": notifications.show_error, "warning": notifications.show_warning}.get(
        kind, notifications.show_info)(text)


__all__ = ["EngineWarnings", "Reporter", "message_of", "napari_notifier"]
