"""What a running run shows, and the table from engine events to it.

A :class:`LiveFeed` holds the :class:`LiveState` of the current run (the latest canvas,
patch grid, probe, the loss and statistics curves, progress, rate and time left).
:data:`EVENT_TABLE` maps each :mod:`engine.events` class to the function that applies it;
events are matched on their classes (a subclass finds its base's entry), never on names.
A new live quantity is one entry here and one line in the painter.

Examples
--------
>>> from engine import events
>>> feed = LiveFeed()
>>> feed.apply(events.Step(step=3, total=10, epoch=1, loss=0.5))
True
>>> feed.state.step, feed.state.loss, feed.state.fraction
(3, [(3, 0.5)], 0.3)
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import events

log = logging.getLogger(__name__)
STAT_KEYS = ("mean", "std", "var_zero_mean", "var_across_group")


@dataclass
class CanvasView:
    """A canvas snapshot as the views need it (canvas, coverage, origin)."""

    canvas: np.ndarray
    coverage: np.ndarray
    origin: tuple[int, int]

    @classmethod
    def of(cls, event: events.CanvasSnapshot) -> CanvasView:
        c = np.asarray(event.canvas)
        cov = np.isfinite(c) if event.coverage is None else np.asarray(event.coverage, bool)
        return cls(c, cov, tuple(int(v) for v in event.origin))


@dataclass
class LiveState:
    """The latest state of the current run.

    Curves are lists of ``(step, value)``; ``stats`` of ``(step, record)``; arrays are the
    latest snapshot (``None`` before the first).
    """

    run_id: str = ""
    kind: str = ""
    phase: str = ""
    step: int = 0
    total: int = -1
    epoch: int = 0
    fraction: float = 0.0
    rate: float = float("nan")  # patterns per second
    eta_s: float = float("nan")
    paused: bool = False
    loss: list[tuple[int, float]] = field(default_factory=list)
    val_loss: list[tuple[int, float]] = field(default_factory=list)
    error: list[tuple[int, float]] = field(default_factory=list)
    stats: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    canvas: CanvasView | None = None
    canvas_label: str = ""
    patches: tuple[np.ndarray, np.ndarray | None, int] | None = None  # amp, phase, gridsize
    probe: np.ndarray | None = None
    positions: np.ndarray | None = None  # (n, 2) current scan positions (row, col)
    initial_positions: np.ndarray | None = None  # (n, 2) the given ones (the vectors' tails)
    positions_epoch: int = 0
    ended: str = ""  # finished, stopped, failed once the engine said so
    version: int = 0

    def copy(self) -> LiveState:
        out = dataclasses.replace(self)
        for name in ("loss", "val_loss", "error", "stats"):
            setattr(out, name, list(getattr(self, name)))
        return out


class LiveFeed:
    """The current run's state, fed by engine events from any thread (a lock guards it).

    Parameters
    ----------
    iterations : the solver's planned epochs (progress across epochs).
    patterns_per_step : patterns one step processes (the rate).
    epoch0 : epochs already done (a continuation).
    """

    def __init__(self, kind: str = "", *, iterations: int = 0, patterns_per_step: float = 1.0,
                 epoch0: int = 0) -> None:
        self.state = LiveState(kind=kind, epoch=epoch0)
        self.iterations = iterations
        self.patterns_per_step = patterns_per_step
        self.epoch0 = epoch0
        self.lock = threading.Lock()
        self._rate_mark: tuple[float, int] | None = None

    def apply(self, event: events.Event) -> bool:
        """Apply ``event``; ``False`` for an event type the table does not know."""
        handler = handler_for(type(event))
        if handler is None:
            return False
        with self.lock:
            handler(self, event)
            self.state.version += 1
        return True

    def snapshot(self) -> LiveState:
        with self.lock:
            return self.state.copy()

    def set_paused(self, paused: bool) -> None:
        with self.lock:
            self.state.paused = paused
            self.state.version += 1

    def progress(self, done: int, total: int) -> None:
        s, now = self.state, time.monotonic()
        if total > 0:
            s.fraction = min(1.0, done / total)
        if self._rate_mark is None:
            self._rate_mark = (now, done)
            return
        t0, d0 = self._rate_mark
        if now - t0 >= 0.5 and done > d0:
            steps_per_s = (done - d0) / (now - t0)
            s.rate = steps_per_s * self.patterns_per_step
            s.eta_s = (total - done) / steps_per_s if total > 0 else float("nan")
            self._rate_mark = (now, done)


# -- the table ---------------------------------------------------------------------------------
def _started(feed: LiveFeed, e: events.RunStarted) -> None:
    s = feed.state
    s.phase = e.kind
    s.total, s.fraction = -1, 0.0  # steps keep counting: one x-axis per run
    feed._rate_mark = None


def _step(feed: LiveFeed, e: events.Step) -> None:
    s = feed.state
    s.step, s.total = int(e.step), int(e.total)
    s.epoch = int(e.epoch) if e.epoch else s.epoch
    if s.phase in ("train", "") and e.loss == e.loss and np.isfinite(e.loss):
        s.loss.append((s.step, float(e.loss)))
    feed.progress(s.step, s.total)


def _progress(feed: LiveFeed, e: events.Progress) -> None:
    s = feed.state
    if s.phase == "reconstruct":
        done = (s.epoch - feed.epoch0) * e.total + e.done
        total = feed.iterations * e.total if feed.iterations else -1
        feed.progress(done, total)
    elif s.phase == "train":
        return  # a training's progress is its steps; its inference tail must not reset it
    elif e.total > 0:
        s.fraction = e.done / e.total


def _epoch(feed: LiveFeed, e: events.Epoch) -> None:
    s, m = feed.state, e.metrics
    s.epoch = int(e.epoch)
    if "error" in m:
        s.error.append((int(e.epoch), float(m["error"])))
    rate = m.get("patterns_per_s")
    if rate is not None and np.isfinite(rate):
        s.rate = float(rate)


def _validation(feed: LiveFeed, e: events.Validation) -> None:
    s = feed.state
    s.val_loss.append((s.step, float(e.metrics.get("loss", float("nan")))))


def _stats(feed: LiveFeed, e: events.StatsSnapshot) -> None:
    s = feed.state
    s.stats.append((s.step if s.phase == "train" else s.epoch,
                    {k: e.record.get(k) for k in STAT_KEYS}))
    if e.sample_patches is not None and (s.patches is None or s.patches[1] is None):
        amp = np.asarray(e.sample_patches, dtype=np.float32)
        g = int(round(np.sqrt(amp.shape[1]))) if amp.ndim == 4 else 1
        s.patches = (amp, None, g)


def _patch_grid(feed: LiveFeed, e: events.PatchGridSnapshot) -> None:
    feed.state.patches = (np.asarray(e.amplitude, np.float32),
                          np.asarray(e.phase, np.float32), int(e.gridsize))


def _canvas(feed: LiveFeed, e: events.CanvasSnapshot) -> None:
    feed.state.canvas = CanvasView.of(e)
    feed.state.canvas_label = e.label


def _probe(feed: LiveFeed, e: events.ProbeSnapshot) -> None:
    feed.state.probe = np.asarray(e.probe)


def _positions(feed: LiveFeed, e: events.PositionsSnapshot) -> None:
    s = feed.state
    s.positions = np.asarray(e.current, dtype=np.float64)
    s.initial_positions = np.asarray(e.initial, dtype=np.float64)
    s.positions_epoch = int(e.epoch)


def _ended(feed: LiveFeed, e: events.Event) -> None:
    s = feed.state
    s.ended = {events.Finished: "finished", events.Stopped: "stopped"}.get(type(e), "failed")
    if isinstance(e, events.Finished):
        s.fraction, s.eta_s = 1.0, 0.0


EVENT_TABLE: dict[type[events.Event], Callable[[LiveFeed, Any], None]] = {
    events.RunStarted: _started,
    events.Step: _step,
    events.Progress: _progress,
    events.Epoch: _epoch,
    events.Validation: _validation,
    events.StatsSnapshot: _stats,
    events.PatchGridSnapshot: _patch_grid,
    events.CanvasSnapshot: _canvas,
    events.ProbeSnapshot: _probe,
    events.PositionsSnapshot: _positions,
    events.Finished: _ended,
    events.Stopped: _ended,
    events.Failed: _ended,
}

def handler_for(kind: type) -> Callable[[LiveFeed, Any], None] | None:
    """The table's entry for an event class or its nearest base class."""
    for cls in kind.__mro__:
        if cls in EVENT_TABLE:
            return EVENT_TABLE[cls]
    return None


def describe_rate(state: LiveState) -> str:
    """``"1,234 patterns/s, 0:42 left"`` (what the progress bars show)."""
    parts = []
    if np.isfinite(state.rate):
        parts.append(f"{state.rate:,.0f} patterns/s")
    if np.isfinite(state.eta_s) and not state.ended:
        m, s = divmod(int(round(state.eta_s)), 60)
        parts.append(f"{m}:{s:02d} left")
    if state.paused:
        parts.append("paused")
    return ", ".join(parts)


__all__ = ["EVENT_TABLE", "CanvasView", "LiveFeed", "LiveState", "describe_rate",
           "handler_for"]
