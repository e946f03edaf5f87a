"""The work in flight: previews and runs. State lives in the model, not here.

:class:`PreviewService` computes the model's preview through the executor, with the
engine's cache and cancellation (a newer request stops an older one; a stale result is
dropped). :class:`RunService` starts a :class:`~ptycho_gui.requests.RunRequest` on an
:func:`engine.runs.start` worker, feeds its events through :mod:`ptycho_gui.live`, delivers
the latest state at most ten times a second (a ticker of the executor) and, when the run
ends, writes a :class:`RunRecord` into the model's history; pause, resume, stop and "more
iterations" go straight to the run.

Examples
--------
>>> import tempfile
>>> from engine import api
>>> from ptycho_gui.model import WorkbenchModel
>>> from ptycho_gui.requests import merge_request
>>> m = WorkbenchModel(runs_root=tempfile.mkdtemp())
>>> m.set_data(api.simulate(api.SimulationConfig(object="asym", n_positions=36, N=32,
...                                              step=6)), "asym", None)
>>> runs = RunService(m)
>>> rec = runs.start(merge_request("lsqml", {"iterations": 2, "batch_size": 16}, {}))
>>> runs.wait(120), rec.status, rec.metrics["epochs"]
(True, 'finished', 2)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import api, runs
from engine.errors import InputError
from engine.events import RunControl, StopRequested
from ptycho_gui.executors import Executor, SyncExecutor
from ptycho_gui.kinds import Outcome, get_kind, solve_job
from ptycho_gui.live import LiveFeed, LiveState
from ptycho_gui.model import NO_DATA, WorkbenchModel
from ptycho_gui.report import EngineWarnings, Reporter
from ptycho_gui.requests import RunRequest

log = logging.getLogger(__name__)
UPDATE_PERIOD_S = 0.1  # at most ten view updates a second


# -- previews ----------------------------------------------------------------------------------
class PreviewService:
    """The model's preview, recomputed on request (see the module docstring).

    ``on_layers(preview)`` gets the layers first (statistics ``None``), ``on_done(preview)``
    the preview with its statistics; errors go to the reporter.
    """

    def __init__(self, model: WorkbenchModel, executor: Executor | None = None,
                 reporter: Reporter | None = None) -> None:
        self.model = model
        self.executor = executor or SyncExecutor()
        self.reporter = reporter or Reporter()
        self.cache = api.preview_cache()
        self.on_layers: list[Callable[[api.Preview], None]] = []
        self.on_done: list[Callable[[api.Preview], None]] = []
        self.generation = 0
        self.in_flight = 0
        self.last_timing: dict[str, float] = {}
        self._control: RunControl | None = None
        model.loaded.connect(lambda _ds: self.reset())

    def reset(self) -> None:
        self.cancel()
        self.cache = api.preview_cache()

    def cancel(self) -> None:
        if self._control is not None:
            self._control.stop()
        self.generation += 1

    def request(self) -> None:
        """Recompute the preview (a newer request cancels this one)."""
        m = self.model
        if not m.ready():
            return
        self.cancel()
        gen, control = self.generation, RunControl()
        self._control = control
        t0 = time.perf_counter()
        data, options, bundle = m.data, m.options, m.bundle
        backend, device, cache = m.backend, m.device, self.cache

        def compute():
            with EngineWarnings() as w:
                try:
                    for p in api.iter_preview(data, options, bundle=bundle, backend=backend,
                                              device=device, control=control, cache=cache):
                        yield p, list(w.messages)
                except StopRequested:
                    return

        self.in_flight += 1

        def finished(_value: Any = None) -> None:
            self.in_flight -= 1

        def failed(exc: BaseException) -> None:
            self.in_flight -= 1
            if gen == self.generation and not isinstance(exc, StopRequested):
                self.reporter.error(exc, "preview")

        self.executor.submit(compute, on_yield=lambda item: self._deliver(item, gen, t0),
                             on_result=finished, on_error=failed)

    def _deliver(self, item: tuple[api.Preview, list[str]], gen: int, t0: float) -> None:
        p, warnings = item
        if gen != self.generation:
            return  # a newer setting arrived: this result is stale
        for text in warnings:
            self.reporter.warn(text)
        if p.scale is not None and p.scale.mismatch:
            self.reporter.warn(f"intensity scale: {p.scale.describe()}")
        self.model.preview = p
        self.reporter.clear()
        if p.stats is None:
            self.last_timing = {"layers_s": time.perf_counter() - t0}
            for cb in list(self.on_layers):
                cb(p)
            return
        self.last_timing["total_s"] = time.perf_counter() - t0
        if "layers_s" not in self.last_timing:  # a cached preview comes in one piece
            for cb in list(self.on_layers):
                cb(p)
        self.model.previewed.emit(p)
        for cb in list(self.on_done):
            cb(p)

    @property
    def busy(self) -> bool:
        return self.in_flight > 0


# -- runs --------------------------------------------------------------------------------------
@dataclass
class RunRecord:
    """One run in the history.

    Attributes
    ----------
    run_id, kind, name : which run and what it did; ``name`` labels its layers
        (``"<kind> #<k>"``).
    settings : the values given (panel and workbench); ``request`` the merged request.
    out : the run directory. status : ``running``, ``finished``, ``stopped``, ``failed``.
    duration : seconds from start to end. metrics : final figures and, with a truth,
        ``amplitude_ssim`` and ``phase_rms_rad`` as ``ptycho evaluate`` computes them.
    error, error_field : the failure and the option at fault. warnings : the engine's.
    canvas, probe, stats, patches, curves, bundle, recon : what the run produced.
    """

    run_id: str
    kind: str
    name: str
    settings: dict[str, Any]
    out: Path
    started: float
    request: RunRequest | None = None
    status: str = "running"
    duration: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_field: str | None = None
    warnings: list[str] = field(default_factory=list)
    canvas: Any = None
    probe: np.ndarray | None = None
    stats: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    patches: tuple[np.ndarray, np.ndarray | None, int] | None = None
    bundle: Path | None = None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    recon: Any = None
    answered: str = ""  # the engine's end event (stopped, finished, failed) once it came
    positions: np.ndarray | None = None  # a position-corrected run's corrected positions
    initial_positions: np.ndarray | None = None  # and the given ones (n, 2) (row, col)

    @property
    def options(self) -> Any:
        return None if self.request is None else self.request.options

    def row(self) -> str:
        """One line for the history list."""
        figs, m = [], self.metrics
        for key, label in (("amplitude_ssim", "SSIM"), ("phase_rms_rad", "phase RMS")):
            if m.get(key) is not None:
                figs.append(f"{label} {m[key]:.3f}")
        if m.get("resolution_px") is not None:  # a half-split FRC
            nm = m.get("resolution_nm")
            at = "≤ " if m.get("reached_nyquist") else ""  # the FRC never fell under
            figs.append(f"resolution {at}{nm:.1f} nm" if nm is not None
                        else f"resolution {at}{m['resolution_px']:.2f} px")
        for key, label in (("val_loss", "val"), ("train_loss", "loss"), ("final_error", "err")):
            if m.get(key) is not None:
                figs.append(f"{label} {m[key]:.3g}")
                break
        dur = f"{self.duration:.1f} s" if self.duration is not None else "…"
        keys = ", ".join(f"{k}={v}" for k, v in self.settings.items() if k != "out")
        return f"{self.name} [{self.status}, {dur}] {keys} | {'; '.join(figs)}"


def _field_of(exc: BaseException) -> str | None:
    """The option at fault: an InputError's ``what`` without a command-line dash."""
    what = getattr(exc, "what", None)
    if not what:
        return None
    return str(what).split()[0].lstrip("-").replace("-", "_")


def _release_device_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _run_job(job: Callable[..., Outcome], data: Any, request: RunRequest, kwargs: dict,
             *, emit: Any, control: Any) -> Outcome:
    with EngineWarnings() as w:
        outcome = job(data, request, emit=emit, control=control, **kwargs)
    outcome.warnings = [*outcome.warnings, *(m for m in w.messages
                                             if m not in outcome.warnings)]
    return outcome


class RunService:
    """Runs of the workbench (see the module docstring)."""

    def __init__(self, model: WorkbenchModel, executor: Executor | None = None,
                 reporter: Reporter | None = None) -> None:
        self.model = model
        self.executor = executor or SyncExecutor()
        self.reporter = reporter or Reporter()
        self.listeners_update: list[Callable[[LiveState], None]] = []
        self.listeners_start: list[Callable[[RunRecord], None]] = []
        self.listeners_end: list[Callable[[RunRecord], None]] = []
        # the engine's end event arrived (record.answered says which): the run has stopped
        # and answers at once; its outputs are still being written on the worker thread,
        # and listeners_end follows with the whole record
        self.listeners_answered: list[Callable[[RunRecord], None]] = []
        self.feed = LiveFeed()
        self._shown = self.feed.state.version  # nothing to deliver before a run
        self._run: runs.Run | None = None
        self._record: RunRecord | None = None
        self._consumer: threading.Thread | None = None
        self._ended = threading.Event()
        self._ended.set()
        self._counts: dict[str, int] = {}
        self._polling = False
        self._task: Any = None
        self._ticker = self.executor.every(UPDATE_PERIOD_S, self.poll)

    # -- state -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._record is not None

    @property
    def current(self) -> RunRecord | None:
        return self._record

    def state(self) -> LiveState:
        return self.feed.snapshot()

    def last_bundle(self) -> str | None:
        """The workbench's bundle setting, else the bundle of the latest run with one."""
        if self.model.bundle:
            return self.model.bundle
        rec = self.model.history.latest(lambda r: r.bundle is not None)
        return None if rec is None else str(rec.bundle)

    # -- actions -----------------------------------------------------------------------------
    def start(self, request: RunRequest) -> RunRecord:
        """Start ``request`` on the model's data; returns its record."""
        self._check_idle()
        data = self.model.data
        if data is None:
            raise InputError("data", NO_DATA, "none")
        spec = get_kind(request.kind)
        if "init" in spec.controls:
            request.init_source()  # a bad init fails here, not on the worker
        out = Path(request.out) if request.out else api.new_run_dir(
            request.kind, data_path=self.model.data_path, root=self.model.runs_root)
        out.mkdir(parents=True, exist_ok=True)
        self._counts[request.kind] = self._counts.get(request.kind, 0) + 1
        record = RunRecord(run_id="", kind=request.kind,
                           name=f"{request.kind} #{self._counts[request.kind]}",
                           settings=dict(request.given), out=out, started=time.time(),
                           request=request)
        feed = LiveFeed(request.kind, iterations=getattr(request.options, "iterations", 0),
                        patterns_per_step=spec.patterns_per_step(request.options))
        self._launch(record, feed, spec.job, request, {})
        return record

    def more(self, iterations: int, run: RunRecord | str | None = None) -> RunRecord:
        """Continue a solver run (default: the latest) for ``iterations`` more epochs, in
        memory from the state it ended with: 5 then 5 more equal 10 in one go. The
        continuation is a new run with its own directory."""
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise InputError("iterations", "an integer >= 1", repr(iterations))
        self._check_idle()
        hist = self.model.history
        rec = hist.find(run) if run is not None else hist.latest(lambda r: r.recon is not None)
        if rec is None or rec.recon is None:
            raise InputError("more iterations", "a finished ePIE, rPIE, LSQ-ML or refine run",
                             "none")
        method = rec.recon.options.method
        info = rec.recon.info or {}
        backend = info.get("backend", "numpy")
        device = str(info.get("device", "cpu"))
        request = RunRequest(kind=method, options=rec.recon.options.replace(
            iterations=iterations), device=device, resolved_device=device, backend=backend,
            sources={"more": "panel"}, given={"more": iterations, "from": rec.name})
        out = api.new_run_dir(method, data_path=self.model.data_path,
                              root=self.model.runs_root)
        record = RunRecord(run_id="", kind=method, name=f"{rec.name} +{iterations}",
                           settings={"more": iterations, "from": rec.name}, out=out,
                           started=time.time(), request=request)
        feed = LiveFeed(method, iterations=iterations, epoch0=rec.recon.epochs,
                        patterns_per_step=float(request.options.batch_size))
        self._launch(record, feed, solve_job, request, {"previous": rec.recon})
        return record

    def pause(self) -> None:
        """Park the run at its next step (the GUI stays live)."""
        if self._run is not None:
            self._run.pause()
            self.feed.set_paused(True)

    def resume(self) -> None:
        if self._run is not None:
            self._run.resume()
            self.feed.set_paused(False)

    def stop(self) -> None:
        """Stop at the next step (within a second); the last checkpoint and bundle stay.
        The engine's end event answers (``listeners_answered``); the run directory is
        written after it on the worker thread, and the record follows (``listeners_end``)."""
        if self._run is not None:
            self._run.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Deliver the run's updates until it has ended and been recorded (True), or
        ``timeout`` seconds passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.executor.process_events()
            self.poll()
            if self._record is None:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            # wake on the run's end, or in time for the next view update
            self._ended.wait(UPDATE_PERIOD_S if left is None else min(UPDATE_PERIOD_S, left))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the current run and wait for its thread (the viewer is closing)."""
        if self._run is not None:
            self._run.stop()
            self._run.wait(timeout)
        if self._consumer is not None:
            self._consumer.join(timeout)
        self._ticker.stop()

    # -- internals ---------------------------------------------------------------------------
    def _check_idle(self) -> None:
        if self._record is not None:
            raise InputError("start", "no run in progress (stop it or wait)",
                             f"{self._record.name} running")

    def _launch(self, record: RunRecord, feed: LiveFeed, job: Callable[..., Outcome],
                request: RunRequest, kwargs: dict[str, Any]) -> None:
        self.feed = feed
        self._shown = -1
        # the views get ready (live layers: adding a layer is napari's slow part, seconds
        # on a loaded machine) before the engine starts, so no early step goes unseen
        for cb in list(self.listeners_start):
            cb(record)
        self._record = record
        self.model.history.records.append(record)
        kwargs = {**kwargs, "out": record.out, "truth": self.model.data.object}
        run = runs.start(_run_job, job, self.model.data, request, kwargs,
                         throttle_s=UPDATE_PERIOD_S)
        record.run_id = run.run_id
        feed.state.run_id = run.run_id
        self._run = run
        self._ended.clear()
        self._consumer = threading.Thread(target=self._consume, args=(run, feed), daemon=True,
                                          name=f"workbench-events-{run.run_id}")
        self._consumer.start()
        self._task = self.executor.task_started(f"{record.name} running", self.close)
        self._ticker.start()

    def _consume(self, run: runs.Run, feed: LiveFeed) -> None:
        try:
            for event in run.events():
                try:
                    feed.apply(event)
                except Exception:  # a malformed event must not end the feed: logged
                    log.exception("live view: could not apply %s", type(event).__name__)
        finally:
            self._ended.set()

    def poll(self) -> bool:
        """Deliver a changed state to the listeners, and the record of an ended run; True
        when anything was delivered. Called by the executor's ticker or :meth:`wait`."""
        if self._polling:  # a listener that processes events must not re-enter
            return False
        self._polling = True
        try:
            delivered = False
            with self.feed.lock:
                changed = self.feed.state.version != self._shown
                snapshot = self.feed.state.copy() if changed else None
                if changed:
                    self._shown = self.feed.state.version
            if snapshot is not None:
                for cb in list(self.listeners_update):
                    cb(snapshot)
                delivered = True
            rec = self._record
            if rec is not None and not rec.answered and self.feed.state.ended:
                rec.answered = self.feed.state.ended
                for cb in list(self.listeners_answered):
                    cb(rec)
                delivered = True
            if self._record is not None and self._ended.is_set():
                record, self._record = self._record, None
                self._finish(record)
                self._ticker.stop()
                self.executor.task_ended(self._task, record.status != "failed", record.status)
                self._task = None
                self.model.run_ended.emit(record)
                for cb in list(self.listeners_end):
                    cb(record)
                delivered = True
            return delivered
        finally:
            self._polling = False

    def _finish(self, record: RunRecord) -> None:
        run, state = self._run, self.feed.snapshot()
        self._run = None
        record.duration = time.time() - record.started
        record.curves = {"loss": state.loss, "val_loss": state.val_loss, "error": state.error}
        record.stats, record.patches = state.stats, state.patches
        record.positions, record.initial_positions = state.positions, state.initial_positions
        try:
            outcome: Outcome = run.result(timeout=0)
        except StopRequested:
            record.status = "stopped"
            record.canvas, record.probe = state.canvas, state.probe
            return
        except Exception as exc:  # noqa: BLE001 - every failure becomes the record's error
            record.status = "failed"
            record.error = f"{type(exc).__name__}: {exc}"
            record.error_field = _field_of(exc)
            record.canvas, record.probe = state.canvas, state.probe
            return
        record.status = "stopped" if outcome.stopped else "finished"
        record.canvas = outcome.canvas if outcome.canvas is not None else state.canvas
        record.probe = outcome.probe if outcome.probe is not None else state.probe
        record.bundle, record.recon = outcome.bundle, outcome.recon
        recon = outcome.recon
        if getattr(recon, "positions", None) is not None:  # the final corrected positions
            record.positions = np.asarray(recon.positions, float)
            record.initial_positions = np.asarray(recon.initial_positions, float)
        record.metrics = dict(outcome.metrics)
        record.curves.update(outcome.curves)
        record.warnings = list(outcome.warnings)
        _release_device_memory()


__all__ = ["PreviewService", "RunRecord", "RunService"]
