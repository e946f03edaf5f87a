"""Run an engine action on a worker thread and watch it through its events.

:func:`start` runs any :mod:`engine.api` action (anything taking ``emit`` and ``control``
keywords) on a daemon thread and returns a :class:`Run`: its events arrive in order through
:meth:`Run.events`, each stamped with the run's ``run_id``, and end with exactly one
terminal event (:class:`~engine.events.Finished`, :class:`~engine.events.Stopped` or
:class:`~engine.events.Failed`). :func:`iterate` is the same as a generator (napari's
``thread_worker`` consumes it directly); :func:`throttle` coalesces high-rate events so a
consumer's queue stays bounded however fast the engine runs.

Examples
--------
>>> from engine import api, runs
>>> ds = api.simulate(api.SimulationConfig(object="asym", n_positions=36, N=32, step=6))
>>> run = runs.start(api.stitch, ds, api.StitchConfig())
>>> kinds = [type(e).__name__ for e in run.events()]
>>> kinds[-1], run.result().canvas.ndim
('Finished', 2)
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Generator, Iterator
from typing import Any

from engine.events import (
    TERMINAL,
    Callback,
    Epoch,
    Event,
    Failed,
    Finished,
    RunControl,
    RunStarted,
    Stopped,
    StopRequested,
    Validation,
)

__all__ = ["Run", "iterate", "start", "throttle", "PASS_THROUGH"]

# events a throttle never drops or delays: they are rare and each one matters
PASS_THROUGH = (Finished, Stopped, Failed, Epoch, RunStarted, Validation)

_END = object()  # the queue's end marker, put after the terminal event


def _stamp(event: Event, run_id: str) -> Event:
    return event if event.run_id == run_id else dataclasses.replace(event, run_id=run_id)


def _summary(result: Any) -> dict[str, Any]:
    """A small JSON-like summary of an action's result for the Finished/Stopped event."""
    summary = getattr(result, "summary", None)
    if callable(summary):
        try:
            return dict(summary())
        except Exception:  # a summary is a courtesy; the result itself is what counts
            return {}
    metrics = getattr(result, "metrics", None)
    return dict(metrics) if isinstance(metrics, dict) else {}


class Run:
    """An action running on a worker thread (made by :func:`start`).

    Attributes
    ----------
    run_id : the id stamped on every event of the run.
    control : the :class:`~engine.events.RunControl` the action checks between steps.
    """

    def __init__(self, action: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any], run_id: str | None = None,
                 throttle_s: float | None = None) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.action = action
        self._user_emit: Callback | None = kwargs.pop("emit", None)
        self.control: RunControl = kwargs.pop("control", None) or RunControl()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._finished = threading.Event()
        self._drained = False
        self._result: Any = None
        self._error: BaseException | None = None
        self._terminal: Event | None = None  # the action's own terminal event, held back

        self._sink = throttle(self._queue.put, throttle_s) if throttle_s else self._queue.put
        self._thread = threading.Thread(target=self._main, args=(args, kwargs), daemon=True,
                                        name=f"engine-run-{self.run_id}")
        self._thread.start()

    # -- the worker side -------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        event = _stamp(event, self.run_id)
        if isinstance(event, TERMINAL):
            # delivered once the action has returned, so it is the last event and the only
            # terminal one (a nested action's own Finished must not end the stream early)
            self._terminal = event
            return
        if self._user_emit is not None:
            self._user_emit(event)
        self._sink(event)

    def _main(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        terminal: Event
        try:
            self._result = self.action(*args, emit=self._emit, control=self.control, **kwargs)
        except StopRequested as exc:
            self._error = exc
            terminal = self._own(Stopped) or Stopped(summary={}, run_id=self.run_id)
        except BaseException as exc:  # noqa: BLE001 - every failure must end the stream
            # the frames' locals (a model, its optimiser, device buffers) must not live on in
            # the kept exception: the run's memory goes back when it ends, failed or not
            traceback.clear_frames(exc.__traceback__)
            self._error = exc
            terminal = self._own(Failed) or Failed.from_exception(exc, run_id=self.run_id)
        else:
            if getattr(self._result, "stopped", False):
                terminal = self._own(Stopped) or Stopped(summary=_summary(self._result),
                                                         run_id=self.run_id)
            else:
                terminal = self._own(Finished) or Finished(summary=_summary(self._result),
                                                           run_id=self.run_id)
        try:
            if self._user_emit is not None:
                self._user_emit(terminal)
            self._sink(terminal)
        finally:
            self._queue.put(_END)
            self._finished.set()

    def _own(self, kind: type[Event]) -> Event | None:
        """The action's own terminal event when it is of ``kind`` (it carries more detail)."""
        if isinstance(self._terminal, kind):
            return self._terminal
        if kind is Stopped and isinstance(self._terminal, Finished):
            return Stopped(summary=self._terminal.summary, time=self._terminal.time,
                           run_id=self.run_id)
        return None

    # -- the consumer side -----------------------------------------------------------------
    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """The run's events in emission order, ending after the one terminal event.

        ``timeout`` bounds the wait for each next event (:class:`TimeoutError` when it
        passes). The events are delivered once: a second iteration yields what the first
        left.
        """
        while not self._drained:
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no event of run {self.run_id} within {timeout} s") \
                    from None
            if item is _END:
                self._drained = True
                return
            yield item

    def stop(self) -> None:
        """Ask the action to stop at its next check (within about a second)."""
        self.control.stop()

    def pause(self) -> None:
        """Park the action at its next check until :meth:`resume` (or :meth:`stop`)."""
        self.control.pause()

    def resume(self) -> None:
        """End a pause."""
        self.control.resume()

    @property
    def done(self) -> bool:
        """True once the action has ended and its terminal event is queued."""
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the action to end; True if it has."""
        return self._finished.wait(timeout)

    def result(self, timeout: float | None = None) -> Any:
        """The action's return value, or raise its exception (:class:`StopRequested`
        for an action stopped before it had a result); :class:`TimeoutError` if it is
        still running after ``timeout`` seconds."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"run {self.run_id} still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result


def start(action: Callable[..., Any], *args: Any, run_id: str | None = None,
          throttle_s: float | None = None, **kwargs: Any) -> Run:
    """Run ``action(*args, emit=..., control=..., **kwargs)`` on a worker thread.

    Parameters
    ----------
    action : an :mod:`engine.api` action (any callable taking ``emit`` and ``control``).
    run_id : the id stamped on the events (default: a fresh random one).
    throttle_s : coalesce high-rate events to one per kind per ``throttle_s`` seconds
        (:func:`throttle`); ``None`` delivers every event.
    kwargs : passed to the action; an ``emit`` given here also sees every event, unthrottled
        and stamped, on the worker thread (a log, a recorder), and a ``control`` given here
        becomes the run's.

    Examples
    --------
    >>> from engine import api, runs
    >>> ds = api.simulate(api.SimulationConfig(object="asym", n_positions=36, N=32, step=6))
    >>> run = runs.start(api.patch_stats, ds, api.GroupingConfig(gridsize=2))
    >>> run.result(timeout=60).records[-1]["batch"]
    'all'
    """
    return Run(action, args, dict(kwargs), run_id=run_id, throttle_s=throttle_s)


def iterate(action: Callable[..., Any], *args: Any, run_id: str | None = None,
            throttle_s: float | None = None, **kwargs: Any) -> Generator[Event, None, Any]:
    """:func:`start` as a generator: yields the events and returns the action's result.

    napari's ``thread_worker`` can run it directly (``yielded`` gets the events,
    ``returned`` the result). Closing the generator early stops the run.

    Examples
    --------
    >>> from engine import api, runs
    >>> ds = api.simulate(api.SimulationConfig(object="asym", n_positions=36, N=32, step=6))
    >>> gen = runs.iterate(api.stitch, ds)
    >>> kinds = []
    >>> try:
    ...     while True:
    ...         kinds.append(type(next(gen)).__name__)
    ... except StopIteration as end:
    ...     canvas = end.value
    >>> kinds[-1], canvas.canvas.ndim
    ('Finished', 2)
    """
    run = start(action, *args, run_id=run_id, throttle_s=throttle_s, **kwargs)
    finished = False
    try:
        yield from run.events()
        finished = True
    finally:
        if not finished:  # the consumer went away: the run must not go on unseen
            run.stop()
            run.wait(5.0)
    return run.result()


class _Throttle:
    def __init__(self, emit: Callback, every_s: float) -> None:
        self.emit, self.every_s = emit, float(every_s)
        self.last: dict[type, float] = {}
        self.pending: dict[type, Event] = {}  # insertion order = order of arrival
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        out: list[Event] = []
        with self.lock:
            if isinstance(event, PASS_THROUGH):
                # what waited was emitted before this event: it goes first, order kept
                out += self.pending.values()
                self.pending.clear()
                out.append(event)
            else:
                kind, now = type(event), time.monotonic()
                if now - self.last.get(kind, -float("inf")) >= self.every_s:
                    self.pending.pop(kind, None)
                    self.last[kind] = now
                    out.append(event)
                else:
                    self.pending.pop(kind, None)  # re-insert: keep arrival order
                    self.pending[kind] = event
        for e in out:
            self.emit(e)

    def flush(self) -> None:
        """Deliver the held-back latest event of each kind now."""
        with self.lock:
            out = list(self.pending.values())
            self.pending.clear()
        for e in out:
            self.emit(e)


def throttle(emit: Callback, every_s: float) -> Callable[[Event], None]:
    """Wrap ``emit`` so each kind of high-rate event passes at most once per ``every_s``.

    Progress, Step and the snapshots are coalesced per kind (the latest wins; a held-back
    one is delivered before the next event that passes, so order is kept);
    :data:`PASS_THROUGH` events (Finished, Stopped, Failed, Epoch, RunStarted, Validation)
    always pass. The wrapper's ``flush()`` delivers what is held back.

    Examples
    --------
    >>> from engine.events import Finished, Progress
    >>> seen = []
    >>> emit = throttle(seen.append, every_s=60)
    >>> for k in range(1000):
    ...     emit(Progress(task="x", done=k, total=1000))
    >>> emit(Finished(summary={}))
    >>> [(type(e).__name__, getattr(e, "done", None)) for e in seen]
    [('Progress', 0), ('Progress', 999), ('Finished', None)]
    """
    if every_s <= 0:
        return emit
    return _Throttle(emit, every_s)
