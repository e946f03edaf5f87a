"""Typed progress events and cooperative run control.

The engine never prints and never touches a GUI: long operations accept an ``emit``
callback (or an :class:`EventBus`) and a :class:`RunControl`. The CLI turns events into a
progress bar, the GUI into live plots, a notebook into whatever it likes.

Examples
--------
>>> bus = EventBus()
>>> seen = []
>>> unsubscribe = bus.subscribe(seen.append)
>>> bus.emit(Progress(task="stitch", done=1, total=2))
>>> seen[0].fraction
0.5
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Event:
    """Base class; ``time`` is a wall-clock timestamp (seconds since the epoch)."""

    time: float = field(default_factory=time.time, kw_only=True)


@dataclass(frozen=True)
class Progress(Event):
    """``done`` of ``total`` units of ``task`` (total -1 when unknown)."""

    task: str
    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total > 0 else float("nan")


@dataclass(frozen=True)
class RunStarted(Event):
    kind: str  # "train", "infer", "reconstruct", ...
    config: dict[str, Any]


@dataclass(frozen=True)
class Step(Event):
    """One optimiser step (training) or one iteration (iterative solvers)."""

    step: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class Epoch(Event):
    epoch: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class Validation(Event):
    epoch: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class StatsSnapshot(Event):
    """A statistics record (docs/conventions.md#statistics) plus a few sample patches (b, C, N, N)
    amplitudes."""

    phase: str
    record: dict[str, Any]
    sample_patches: np.ndarray | None = None


@dataclass(frozen=True)
class CanvasSnapshot(Event):
    """A stitched estimate: complex canvas (NaN where uncovered) and its origin."""

    canvas: np.ndarray
    origin: tuple[int, int] = (0, 0)
    label: str = ""


@dataclass(frozen=True)
class ProbeSnapshot(Event):
    probe: np.ndarray  # (N, N) or (modes, N, N)


@dataclass(frozen=True)
class Finished(Event):
    summary: dict[str, Any]


@dataclass(frozen=True)
class Failed(Event):
    error: str


Callback = Callable[[Event], None]


class EventBus:
    """Fan-out of events to any number of subscribers (called synchronously, in order)."""

    def __init__(self) -> None:
        self._subscribers: list[Callback] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Register ``callback``; returns a function that unsubscribes it."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def emit(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for cb in subscribers:
            cb(event)

    __call__ = emit


class StopRequested(Exception):
    """Raised by :meth:`RunControl.checkpoint` after :meth:`RunControl.stop`."""


class RunControl:
    """Cooperative pause/stop, checked by long loops between steps (thread-safe)."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def checkpoint(self, timeout: float | None = None) -> None:
        """Block while paused; raise :class:`StopRequested` if a stop was asked for."""
        self._running.wait(timeout)
        if self._stop.is_set():
            raise StopRequested


def progress_emitter(emit: Callback | None, task: str) -> Callable[[int, int], None] | None:
    """Adapt an event callback to the ``progress(done, total)`` form the loops call."""
    if emit is None:
        return None
    return lambda done, total: emit(Progress(task=task, done=done, total=total))
