"""The workbench's runs on a napari viewer: live layers, notifications, progress, history.

:class:`RunsController` puts a :class:`~ptycho_gui.run_manager.RunManager` on a viewer:
``start(kind, **options)``, ``pause()``, ``resume()``, ``stop()``, ``wait(timeout)``,
``more(n)``, ``save_bundle(path)``, ``load_bundle(path)`` and ``compare(a, b)`` are what the
run panel's buttons call, and what a notebook or a test calls. While a run goes a 100 ms
timer on the GUI thread moves the latest state into the live layers (at most ten updates
a second, the GUI never waits on the engine); when it ends the results become layers named
after the run, the history gains a record, and a failure becomes a notification naming
the option at fault. Closing the viewer stops a run cleanly. ``ptycho_gui.Workbench``
delegates its run methods here.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from engine.errors import InputError
from ptycho_gui.live_layers import LiveLayers, as_canvas
from ptycho_gui.run_manager import (
    UPDATE_PERIOD_S,
    LiveState,
    RunManager,
    RunRecord,
    build_options,
)

GUI_SWITCH_INTERVAL_S = 0.001


def _notify(kind: str, message: str) -> None:
    try:
        from napari.utils import notifications
    except ImportError:  # a script without napari: the exception itself is the message
        return
    (notifications.show_error if kind == "error" else notifications.show_info)(message)


class RunsController:
    """Runs of the workbench on ``viewer`` (see the module docstring).

    Parameters
    ----------
    viewer : the napari viewer (its layers; its window when there is one).
    data, data_path : the dataset and its file (run directories go to ``runs/`` beside it).
    runs_root : where run directories go instead.
    compare : called with two run records when a user compares runs (part 1's compare
        view); by default the two canvases are compared with the engine.
    """

    def __init__(self, viewer: Any, data: Any = None, *, data_path: str | None = None,
                 runs_root: str | os.PathLike[str] | None = None,
                 compare: Callable[[Any, Any], Any] | None = None) -> None:
        self.viewer = viewer
        self.manager = RunManager(data, data_path=data_path, runs_root=runs_root)
        self.layers = LiveLayers(viewer)
        self.manager.on_update.append(self._on_update)
        self.manager.on_end.append(self._on_end)
        self.listeners_update: list[Callable[[LiveState], None]] = []
        self.listeners_end: list[Callable[[RunRecord], None]] = []
        self._compare = compare
        self._timer: Any = None
        self._progress: Any = None
        self._task: Any = None
        self._closed = False
        self._hook_close()

    # -- the run API ------------------------------------------------------------------------
    @property
    def history(self) -> list[RunRecord]:
        return self.manager.history

    @property
    def running(self) -> bool:
        return self.manager.running

    def set_data(self, data: Any, data_path: str | None = None) -> None:
        self.manager.set_data(data, data_path)

    def start(self, kind: str, **options: Any) -> RunRecord:
        """Start a run (see :meth:`RunManager.start`); a bad option raises
        :class:`~engine.errors.InputError` naming it, and shows it as a notification."""
        try:
            # a bad option fails before anything is set up
            build_options(kind, options, None if self.manager.data is None
                          else self.manager.data.n)
            if kind in ("train", "refine", "infer"):
                _warm_up()
            self._prepare()
            record = self.manager.start(kind, **options)
        except InputError as exc:
            _notify("error", f"{kind}: {exc}")
            raise
        self._started(record)
        return record

    def more(self, iterations: int, run: RunRecord | str | None = None) -> RunRecord:
        """``iterations`` more epochs of the latest (or the given) solver run."""
        try:
            self._prepare()
            record = self.manager.more(iterations, run)
        except InputError as exc:
            _notify("error", str(exc))
            raise
        self._started(record)
        return record

    def pause(self) -> None:
        self.manager.pause()

    def resume(self) -> None:
        self.manager.resume()

    def stop(self) -> None:
        self.manager.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Process the run's updates until it has ended (True) or ``timeout`` passed."""
        return self.manager.wait(timeout, process_events=_process_events)

    def save_bundle(self, path: str | os.PathLike[str], run: Any = None):
        return self.manager.save_bundle(path, run)

    def load_bundle(self, path: str | os.PathLike[str]):
        try:
            return self.manager.load_bundle(path)
        except InputError as exc:
            _notify("error", str(exc))
            raise

    def compare(self, a: RunRecord | str, b: RunRecord | str) -> Any:
        """Compare two runs' canvases: part 1's compare view when the workbench gave one,
        else the engine's canvas comparison (A, B and A - B layers are the view's job)."""
        ra, rb = self.manager.find(a), self.manager.find(b)
        if ra.canvas is None or rb.canvas is None:
            raise InputError("compare", "two runs with a canvas",
                             f"{ra.name}: {ra.status}, {rb.name}: {rb.status}")
        if self._compare is not None:
            return self._compare(ra, rb)
        from engine import api

        return api.compare(as_canvas(ra.canvas), as_canvas(rb.canvas))

    def close(self) -> None:
        """Stop a run in progress and wait for it (the viewer is closing)."""
        if self._closed:
            return
        self._closed = True
        self.manager.close()
        self._stop_timer()
        self._end_progress()

    # -- the GUI side -----------------------------------------------------------------------
    def poll(self) -> None:
        """One tick of the GUI timer: deliver the latest state, set the next queued image."""
        if self._closed:
            return
        if not self.manager.poll() and self.layers.pending:
            self.layers.flush()

    def _prepare(self) -> None:
        """Create the live layers before the run starts (adding a layer is the slow part of
        napari: done here, it never holds up the updates of a running run)."""
        if self.manager.running:
            return  # the manager refuses a second run with its own message
        try:
            self.layers.prepare()
        except Exception:  # noqa: BLE001 - a viewer without layers: the run still goes
            pass

    def _started(self, record: RunRecord) -> None:
        # the GUI thread waits for the interpreter lock at most this long when the worker
        # runs Python between its tensor operations (default 5 ms, paid at every release
        # the drawing code makes): a GUI setting, set once, harmless to the engine
        if sys.getswitchinterval() > GUI_SWITCH_INTERVAL_S:
            sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
        self._start_timer()
        self._begin_progress(record)
        window = getattr(self.viewer, "window", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            register = getattr(window, "_register_task_status", None)
        if register is not None:
            try:
                from napari.utils.task_status import Status

                self._task = register("ptycho-workbench", Status.BUSY, f"{record.name} running",
                                      cancel_callback=self._cancel)
            except Exception:  # noqa: BLE001 - the close hook below still stops the run
                self._task = None

    def _cancel(self) -> bool:
        self.manager.close()
        return True

    def _on_update(self, state: LiveState) -> None:
        try:
            self.layers.update(state)
            self.layers.flush()
        except Exception:  # noqa: BLE001 - a closing viewer must not break the run's feed
            pass
        self._update_progress(state)
        for cb in list(self.listeners_update):
            cb(state)

    def _on_end(self, record: RunRecord) -> None:
        self._end_progress()
        if self._task is not None:
            window = getattr(self.viewer, "window", None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                update = getattr(window, "_update_task_status", None)
            if update is not None:
                from napari.utils.task_status import Status

                update(self._task, Status.COMPLETED if record.status != "failed"
                       else Status.FAILED, record.status)
            self._task = None
        try:
            self.layers.finish(record)
        except Exception:  # noqa: BLE001 - the viewer went away mid-run
            pass
        if record.status == "failed":
            where = f" (option '{record.error_field}')" if record.error_field else ""
            _notify("error", f"{record.name} failed{where}: {record.error}")
        else:
            _notify("info", f"{record.name} {record.status} in {record.duration:.1f} s; "
                    f"outputs in {record.out}")
        if not self.manager.running:
            self._stop_timer()
        for cb in list(self.listeners_end):
            cb(record)

    def _begin_progress(self, record: RunRecord) -> None:
        try:
            from napari.utils import progress
        except ImportError:
            return
        self._end_progress()
        self._progress = progress(total=1000, desc=record.name)

    def _update_progress(self, state: LiveState) -> None:
        bar = self._progress
        if bar is None:
            return
        current = self.manager.current
        target = int(1000 * max(0.0, min(1.0, state.fraction)))
        if target != bar.n:
            # update() (not assigning n) emits the value event napari's activity dock shows
            bar.update(target - bar.n)
        bar.set_description(f"{current.name if current else ''} {state.phase} "
                            f"{describe_rate(state)}".strip())

    def _end_progress(self) -> None:
        if self._progress is not None:
            try:
                self._progress.close()
            except Exception:  # noqa: BLE001
                pass
            self._progress = None

    def _start_timer(self) -> None:
        if self._timer is not None:
            self._timer.start()
            return
        try:
            from qtpy.QtCore import QCoreApplication, QTimer
        except ImportError:
            return
        if QCoreApplication.instance() is None:
            return
        self._timer = QTimer()
        self._timer.setInterval(int(UPDATE_PERIOD_S * 1000))
        self._timer.timeout.connect(self.poll)
        self._timer.start()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            try:
                self._timer.stop()
            except RuntimeError:  # Qt already deleted it (the application is going down)
                self._timer = None

    def _hook_close(self) -> None:
        # napari offers no public "viewer closing" event: the main window's destroyed signal
        # (and the task-status registry, see _started) are how a run learns of it
        window = getattr(self.viewer, "window", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            qt_window = getattr(window, "_qt_window", None)
        if qt_window is not None:
            qt_window.destroyed.connect(lambda *_: self.close())


def describe_rate(state: LiveState) -> str:
    """``"1234 patterns/s, 0:42 left"`` (what the progress bars show)."""
    parts = []
    if state.rate == state.rate and math.isfinite(state.rate):
        parts.append(f"{state.rate:,.0f} patterns/s")
    if state.eta_s == state.eta_s and math.isfinite(state.eta_s):
        m, s = divmod(int(round(state.eta_s)), 60)
        parts.append(f"{m}:{s:02d} left")
    if state.paused:
        parts.append("paused")
    return ", ".join(parts)


def _warm_up() -> None:
    """Import the network's modules on the GUI thread before the first training starts.

    Importing torch's and Lightning's extension modules on the worker holds the
    interpreter lock for a second or more at a time, which froze the GUI mid-run; done
    here it is a one-time pause when Start is pressed (nothing when already imported).
    """
    import importlib

    for module in ("torch", "lightning_fabric", "engine.network.trainer",
                   "engine.network.inference", "engine.evaluation.report",
                   "engine.evaluation.metrics", "matplotlib.figure",
                   "matplotlib.backends.backend_agg"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def _process_events() -> None:
    try:
        from qtpy.QtCore import QCoreApplication
    except ImportError:
        return
    app = QCoreApplication.instance()
    if app is not None:
        app.processEvents()
