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
    """Base class of every event.

    ``time`` is a wall-clock timestamp (seconds since the epoch); ``run_id`` names the run
    that emitted it (:func:`engine.runs.start` sets it on every event it forwards; ``""``
    for an action called directly).
    """

    time: float = field(default_factory=time.time, kw_only=True)
    run_id: str = field(default="", kw_only=True)


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
    """One optimiser step (training) or one iteration, a pass over every position
    (iterative solvers).

    ``step`` counts from 1 over the whole run, ``total`` is the planned step count (-1 when
    unknown), ``epoch`` the 1-based epoch the step belongs to, ``loss`` the step's loss (the
    solver's: the batch's data error per pattern); ``metrics`` holds further figures only
    (never step, total or epoch).
    """

    step: int
    total: int = -1
    epoch: int = 0
    loss: float = float("nan")
    metrics: dict[str, float] = field(default_factory=dict)


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
    """A whole estimate of the object in object coordinates (the canvas layout of
    docs/conventions.md#stitching).

    ``canvas`` is complex (H, W), NaN where uncovered; ``coverage`` the (H, W) bool mask of
    covered pixels; ``origin`` the object-coordinate (row, col) of pixel (0, 0).
    """

    canvas: np.ndarray
    coverage: np.ndarray | None = None
    origin: tuple[int, int] = (0, 0)
    label: str = ""

    @classmethod
    def of(cls, canvas: Any, label: str = "", **kwargs: Any) -> CanvasSnapshot:
        """The snapshot of a :class:`~engine.physics.stitching.Canvas`-like object."""
        return cls(canvas=canvas.canvas, coverage=canvas.coverage,
                   origin=tuple(int(v) for v in canvas.origin), label=label, **kwargs)


@dataclass(frozen=True)
class PatchGridSnapshot(Event):
    """Predicted patches of the first groups of the current batch, with their layout.

    ``amplitude`` and ``phase`` are (b, C, N, N) float32; ``gridsize`` g lays each group's
    C = g² patches out as a g x g block.
    """

    amplitude: np.ndarray
    phase: np.ndarray
    gridsize: int
    label: str = ""


@dataclass(frozen=True)
class ProbeSnapshot(Event):
    probe: np.ndarray  # (N, N) or (modes, N, N)


@dataclass(frozen=True)
class PositionsSnapshot(Event):
    """The scan positions of a position-corrected run after epoch ``epoch`` (1-based).

    ``initial`` and ``current`` are (n, 2) float64 window centres (row, col) in object
    coordinates (pixels), in the order of the dataset's positions: the given positions and
    the corrected ones. A view draws ``current`` as points and ``current − initial`` as
    vectors. Emitted at most once per epoch, with the canvas snapshots (``snapshot_every``).
    """

    epoch: int
    initial: np.ndarray
    current: np.ndarray

    @property
    def displacement(self) -> np.ndarray:
        """(n, 2) current − initial."""
        return self.current - self.initial


@dataclass(frozen=True)
class Finished(Event):
    """The run ended normally (terminal)."""

    summary: dict[str, Any]


@dataclass(frozen=True)
class Stopped(Event):
    """The run ended on a stop request; ``summary`` says what it completed (terminal)."""

    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed(Event):
    """The run ended with an error (terminal).

    ``error_type`` is the exception's class name, ``message`` its one-line text, ``field``
    the options field or input at fault when known (:attr:`engine.errors.InputError.what`).
    """

    error_type: str
    message: str
    field: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, **kwargs: Any) -> Failed:
        """The event describing ``exc``."""
        return cls(error_type=type(exc).__name__, message=str(exc),
                   field=getattr(exc, "what", None), **kwargs)

    @property
    def error(self) -> str:
        """``"<type>: <message>"``, the one format a log or a dialog shows."""
        return f"{self.error_type}: {self.message}"


# the events that end a run: exactly one of them is a run's last event
TERMINAL = (Finished, Stopped, Failed)


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

    def checkpoint(self, timeout: float | None = None) -> bool:
        """Block while paused; raise :class:`StopRequested` if a stop was asked for.

        Returns True when the caller may go on. With a ``timeout`` (seconds) it returns
        False if the run is still paused when the timeout expires: the pause is not ended
        by the timeout, the caller calls again (e.g. after servicing something else).
        """
        running = self._running.wait(timeout)
        if self._stop.is_set():
            raise StopRequested
        return running


def progress_emitter(emit: Callback | None, task: str) -> Callable[[int, int], None] | None:
    """Adapt an event callback to the ``progress(done, total)`` form the loops call."""
    if emit is None:
        return None
    return lambda done, total: emit(Progress(task=task, done=done, total=total))
