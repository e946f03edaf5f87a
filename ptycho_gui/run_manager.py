"""Runs of the workbench: start, watch, pause, stop and keep the history (no Qt here).

A :class:`RunManager` turns ``start(kind, **options)`` into typed engine options, a run
directory (``runs/<timestamp>-<kind>`` beside the data by default) and an
:func:`engine.runs.start` run on a worker thread. A consumer thread drains the run's
events into one :class:`LiveState` (the latest canvas, patch grid, probe, the loss and
statistics curves, progress, rate and time left); the GUI thread calls :meth:`poll`
(a 100 ms timer in the workbench, or :meth:`wait` in a script), which hands the state to
the listeners only when it changed, so views update at most ten times a second and the
latest state wins however fast the engine runs. Everything heavy (training, solving,
writing the run directory, the final evaluation against the truth) happens on the worker.

Examples
--------
>>> from engine import api
>>> import tempfile
>>> ds = api.simulate(api.SimulationConfig(object="asym", n_positions=36, N=32, step=6))
>>> rm = RunManager(ds, runs_root=tempfile.mkdtemp())
>>> rec = rm.start("lsqml", iterations=3, batch_size=16)
>>> rm.wait(120)
True
>>> rec.status, rec.metrics["epochs"], rec.metrics["amplitude_ssim"] > 0
('finished', 3, True)
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import Dataset
from engine.errors import InputError
from engine.iterative.refine import NETWORK_FOLDER
from engine.rundir import new_run_dir

# what the kind drop-down offers, in order, with the label a user reads
KINDS: dict[str, str] = {
    "train": "train network",
    "infer": "infer with a bundle",
    "epie": "ePIE",
    "rpie": "rPIE",
    "lsqml": "LSQ-ML",
    "refine": "network then refine",
}
SOLVERS = ("epie", "rpie", "lsqml")
# options every kind takes besides its typed options
COMMON = ("device", "out")
UPDATE_PERIOD_S = 0.1  # at most ten view updates a second
STAT_KEYS = ("mean", "std", "var_zero_mean", "var_across_group")


def options_class(kind: str) -> type:
    """The engine's typed options class of ``kind`` (for forms and validation)."""
    from engine import api

    if kind == "train":
        return api.TrainConfig
    if kind == "infer":
        return api.InferConfig
    if kind in ("lsqml", "refine"):
        return api.LSQMLOptions
    if kind == "epie":
        return api.EPIEOptions
    if kind == "rpie":
        return api.RPIEOptions
    raise InputError("kind", f"one of {', '.join(KINDS)}", repr(kind))


def extra_options(kind: str) -> dict[str, Any]:
    """The options of ``kind`` that are not fields of its options class, with defaults."""
    out: dict[str, Any] = {"device": "auto"}
    if kind in SOLVERS or kind == "refine":
        out.update(backend="numpy", checkpoint_every=10)
    if kind in SOLVERS:
        out["init"] = "flat"
    if kind in ("infer", "refine"):
        out["bundle"] = None
    if kind in ("train", "refine"):
        out["preset"] = None  # quick, standard or quality; None: ptycho train's choice
    return out


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _coerce(cls: type, name: str, value: Any) -> Any:
    """A form's text or number as the field's type (``scaling="fixed=9.8"`` and the like)."""
    from engine.physics.scaling import ScalingConfig

    if name == "scaling" and isinstance(value, str):
        return ScalingConfig.parse(value)
    if name == "stitch" and isinstance(value, dict):
        from engine.physics.stitching import StitchConfig

        return StitchConfig(**value)
    hint = typing.get_type_hints(cls).get(name)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _training(values: dict[str, Any], preset: str | None, device: str,
              n_positions: int | None) -> Any:
    """The TrainConfig ``ptycho train`` builds: the preset (from the device when not given)
    with the explicitly given fields over it, so a run from the workbench and the same run
    from the command line train the same network."""
    from engine.network.presets import preset_config, resolve_device

    values = dict(values)
    # the live views show the whole scan's canvas and the current batch's patches every
    # epoch (the engine's default, 0, emits only the validation stripe: cheaper for the CLI)
    values.setdefault("snapshot_every", 1)
    accelerator = values.get("accelerator", "auto")
    if accelerator == "auto":
        accelerator = _device_settings(device)[0]
        if accelerator != "auto":
            values["accelerator"] = accelerator
    return preset_config(preset, resolve_device(accelerator), n_positions=n_positions,
                         **values)


def build_options(kind: str, options: dict[str, Any], n_positions: int | None = None
                  ) -> tuple[Any, dict[str, Any], Any]:
    """Split ``options`` into the typed options of ``kind``, the extra keywords and (for
    ``refine``) the training options given as ``train_<field>``.

    Unknown names and bad values raise :class:`InputError` naming the option.

    >>> opts, extra, _ = build_options("lsqml", {"iterations": 3, "backend": "torch"})
    >>> opts.iterations, extra["backend"]
    (3, 'torch')
    """
    cls = options_class(kind)
    names = _field_names(cls)
    extra = extra_options(kind)
    typed: dict[str, Any] = {}
    train: dict[str, Any] = {}
    for key, value in options.items():
        if key in names:
            typed[key] = _coerce(cls, key, value)
        elif key in extra or key == "out":
            extra[key] = value
        elif kind == "refine" and key.startswith("train_"):
            train[key[len("train_"):]] = value
        elif kind == "refine" and key == "train_options":
            train.update(value.to_dict() if hasattr(value, "to_dict") else dict(value))
        else:
            raise InputError(key, f"an option of '{kind}' (one of "
                             f"{', '.join(sorted(names | set(extra)))})", repr(value))
    device = extra.get("device", "auto")
    if kind == "train":
        opts = _training(typed, extra.get("preset"), device, n_positions)
    else:
        opts = cls(**typed)
    train_cfg = None
    if kind == "refine":
        from engine.network.config import TrainConfig

        unknown = sorted(set(train) - _field_names(TrainConfig))
        if unknown:
            raise InputError(f"train_{unknown[0]}", "a training option (train_<field> of "
                             "TrainConfig)", repr(train[unknown[0]]))
        train_cfg = _training(train, extra.get("preset"), device, n_positions)
    return opts, extra, train_cfg


def _device_settings(device: str) -> tuple[str, str]:
    """(Lightning accelerator, torch device) of a workbench device choice."""
    if device in (None, "", "auto"):
        return "auto", "auto"
    if str(device).startswith("cuda"):
        return "cuda", str(device)
    return "cpu", "cpu"


@dataclass
class LiveState:
    """The latest state of the current run, as the views show it.

    Curves are lists of ``(step, value)``; ``stats`` of ``(step, record)``; arrays are the
    latest snapshot (or ``None`` before the first).
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
    canvas: Any = None  # object with canvas, coverage, origin (complex, NaN outside)
    canvas_label: str = ""
    patches: tuple[np.ndarray, np.ndarray | None, int] | None = None  # amp, phase, gridsize
    probe: np.ndarray | None = None
    version: int = 0

    def copy(self) -> LiveState:
        out = dataclasses.replace(self)
        for name in ("loss", "val_loss", "error", "stats"):
            setattr(out, name, list(getattr(self, name)))
        return out


@dataclass
class RunRecord:
    """One run in the history.

    Attributes
    ----------
    run_id, kind : which run and what it did; ``name`` labels its layers
        (``"<kind> #<k>"``).
    settings : the options as given (and the resolved typed options under ``options``).
    out : the run directory.
    status : ``running``, ``finished``, ``stopped`` or ``failed``.
    duration : seconds from start to end.
    metrics : final figures (loss or error, epochs) and, when the data has a truth,
        ``amplitude_ssim`` and ``phase_rms_rad`` as ``ptycho evaluate`` computes them.
    error, error_field : the failure and the option at fault.
    canvas, probe, stats, patches : what the run produced (for layers and comparisons).
    bundle : the bundle it trained or used.
    """

    run_id: str
    kind: str
    name: str
    settings: dict[str, Any]
    out: Path
    started: float
    status: str = "running"
    duration: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_field: str | None = None
    canvas: Any = None
    probe: np.ndarray | None = None
    stats: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    patches: tuple[np.ndarray, np.ndarray | None, int] | None = None
    bundle: Path | None = None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    options: Any = None
    recon: Any = None

    def row(self) -> str:
        """One line for the history list."""
        figs = []
        m = self.metrics
        for key, label in (("amplitude_ssim", "SSIM"), ("phase_rms_rad", "phase RMS")):
            if m.get(key) is not None:
                figs.append(f"{label} {m[key]:.3f}")
        for key, label in (("val_loss", "val"), ("train_loss", "loss"), ("final_error", "err")):
            if m.get(key) is not None:
                figs.append(f"{label} {m[key]:.3g}")
                break
        dur = f"{self.duration:.1f} s" if self.duration is not None else "…"
        keys = ", ".join(f"{k}={v}" for k, v in self.settings.items() if k != "out")
        return f"{self.name} [{self.status}, {dur}] {keys} | {'; '.join(figs)}"


@dataclass
class _Outcome:
    """What a worker returns: numpy results only (device memory is released at return)."""

    canvas: Any
    probe: np.ndarray | None
    bundle: Path | None
    metrics: dict[str, Any]
    stopped: bool
    recon: Any = None  # the solver's ReconResult (numpy), what "more iterations" continues
    options: Any = None


def _evaluate(canvas: Any, truth: np.ndarray | None, out: Path | None) -> dict[str, Any]:
    """Amplitude SSIM and phase RMS against the truth, written as ``ptycho evaluate`` does."""
    if truth is None or canvas is None:
        return {}
    from engine.atomic import write_json
    from engine.evaluation.metrics import evaluate_canvas, to_jsonable

    result = evaluate_canvas(canvas, truth)
    if out is not None:
        write_json(out / "evaluation.json", to_jsonable({
            "recon": str(out / "recon.npz"), "truth": "objectGuess of the workbench data",
            "remove_ramp": False, **result}))
    phase = result.get("phase") or {}
    return {"amplitude_ssim": float(result["amplitude"]["ssim"]),
            "phase_rms_rad": None if not phase else float(phase["rms_error_rad"])}


def _release_device_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class RunManager:
    """Start engine runs on a worker thread, watch them and keep their history.

    Parameters
    ----------
    data : the dataset runs work on (:meth:`set_data` changes it).
    data_path : its file; ``runs/`` beside it holds the run directories.
    runs_root : where run directories go instead (``None``: beside the data, or ``./runs``).
    on_update : called on the polling thread with a :class:`LiveState` copy when it changed.
    on_end : called on the polling thread with the :class:`RunRecord` of an ended run.
    """

    def __init__(self, data: Dataset | None = None, *, data_path: str | None = None,
                 runs_root: str | os.PathLike[str] | None = None,
                 on_update: Callable[[LiveState], None] | None = None,
                 on_end: Callable[[RunRecord], None] | None = None) -> None:
        self.data = data
        self.data_path = data_path
        self.runs_root = runs_root
        self.bundle: Path | None = None
        self.history: list[RunRecord] = []
        self.on_update: list[Callable[[LiveState], None]] = [on_update] if on_update else []
        self.on_end: list[Callable[[RunRecord], None]] = [on_end] if on_end else []
        self._lock = threading.Lock()
        self._state = LiveState()
        self._shown_version = -1
        self._run: Any = None
        self._record: RunRecord | None = None
        self._consumer: threading.Thread | None = None
        self._ended = threading.Event()
        self._ended.set()
        self._counts: dict[str, int] = {}
        self._rate_mark: tuple[float, int] | None = None
        self._patterns_per_step = 1.0
        self._polling = False
        self._epoch0 = 0

    # -- set-up -----------------------------------------------------------------------------
    def set_data(self, data: Dataset, data_path: str | None = None) -> None:
        """The dataset the next runs use."""
        self.data, self.data_path = data, data_path

    def load_bundle(self, path: str | os.PathLike[str]) -> Path:
        """Check and remember a bundle for ``infer``, ``refine`` and ``init="network"``."""
        from engine.network.bundles import load_bundle, resolve_bundle_path

        load_bundle(path)  # verifies every digest: a bad bundle fails here, not mid-run
        self.bundle = resolve_bundle_path(path)
        return self.bundle

    def save_bundle(self, path: str | os.PathLike[str], run: RunRecord | str | None = None
                    ) -> Path:
        """Copy the bundle of ``run`` (default: the latest run with one) to ``path``
        (a directory, or a ``.zip``)."""
        rec = self._find(run) if run is not None else next(
            (r for r in reversed(self.history) if r.bundle is not None), None)
        if rec is None or rec.bundle is None:
            raise InputError("bundle", "a run that trained or used a network", "none yet")
        from engine.atomic import atomic_directory, atomic_open
        from engine.network.bundles import bundle_bytes

        target = Path(path)
        if target.suffix == ".zip":
            with atomic_open(target, "wb") as fh:
                fh.write(bundle_bytes(rec.bundle).getvalue())
            return target
        with atomic_directory(target) as tmp:
            for item in Path(rec.bundle).iterdir():
                shutil.copy2(item, tmp / item.name)
        return target

    # -- runs -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self._ended.is_set() or self._record is not None

    @property
    def current(self) -> RunRecord | None:
        return self._record

    def state(self) -> LiveState:
        with self._lock:
            return self._state.copy()

    def start(self, kind: str, **options: Any) -> RunRecord:
        """Start a run of ``kind`` (see :data:`KINDS`) with ``options``; returns its record.

        Options are the fields of the kind's typed options (``TrainConfig``,
        ``InferConfig``, the solver options; ``refine`` takes the training's as
        ``train_<field>``) plus ``device``, ``out`` (the run directory), ``backend``,
        ``init`` (``flat``, ``network``, a path) and ``bundle`` where they apply. Bad
        options raise :class:`InputError` at once, naming the option.
        """
        if self.running:
            raise InputError("start", "no run in progress (stop it or wait)",
                             f"{self._record.name if self._record else 'a run'} running")
        if self.data is None:
            raise InputError("data", "a dataset loaded before a run", "none")
        typed, extra, train_cfg = build_options(kind, options, self.data.n)
        action, args, kwargs = self._plan(kind, typed, extra, train_cfg)
        out = Path(extra["out"]) if extra.get("out") else new_run_dir(
            kind, data_path=self.data_path, root=self.runs_root)
        out.mkdir(parents=True, exist_ok=True)
        self._counts[kind] = self._counts.get(kind, 0) + 1
        record = RunRecord(run_id="", kind=kind, name=f"{kind} #{self._counts[kind]}",
                           settings=dict(options), out=out, started=time.time(),
                           options=typed)
        self._begin(record, typed, train_cfg)
        self._launch(record, action, args, kwargs)
        return record

    def _launch(self, record: RunRecord, action: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> None:
        from engine import runs

        run = runs.start(self._worker, action, args, {**kwargs, "out": record.out},
                         throttle_s=UPDATE_PERIOD_S)
        record.run_id = run.run_id
        with self._lock:
            self._state.run_id = run.run_id
        self._run = run
        self._ended.clear()
        self._consumer = threading.Thread(target=self._consume, args=(run,), daemon=True,
                                          name=f"workbench-events-{run.run_id}")
        self._consumer.start()

    def more(self, iterations: int, run: RunRecord | str | None = None) -> RunRecord:
        """Continue a solver run (default: the latest) for ``iterations`` more epochs, in
        memory from the state it ended with (object, probe, batch order): 5 then 5 more
        equal 10 in one go. The continuation is a new run with its own directory."""
        if not (isinstance(iterations, int) and iterations >= 1):
            raise InputError("iterations", "an integer >= 1", repr(iterations))
        if self.running:
            raise InputError("more iterations", "no run in progress", "a run running")
        rec = self._find(run) if run is not None else next(
            (r for r in reversed(self.history) if r.recon is not None), None)
        if rec is None or rec.recon is None:
            raise InputError("more iterations", "a finished ePIE, rPIE, LSQ-ML or refine run",
                             "none")
        method = rec.recon.options.method
        typed = rec.recon.options.replace(iterations=iterations)
        out = new_run_dir(method, data_path=self.data_path, root=self.runs_root)
        record = RunRecord(run_id="", kind=method, name=f"{rec.name} +{iterations}",
                           settings={"more": iterations, "from": rec.name}, out=out,
                           started=time.time(), options=typed)
        self._begin(record, typed, None)
        self._epoch0 = rec.recon.epochs
        with self._lock:
            self._state.epoch = rec.recon.epochs
        info = rec.recon.info or {}
        kwargs = {"backend": info.get("backend", "numpy"),
                  "device": info.get("device", "auto"), "init": "flat",
                  "checkpoint_every": 10, "truth": self.data.object, "previous": rec.recon}
        self._patterns_per_step = typed.batch_size
        self._launch(record, _solve_job, (self.data, typed), kwargs)
        return record

    def pause(self) -> None:
        """Park the run at its next step (the GUI stays live)."""
        if self._run is not None:
            self._run.pause()
            with self._lock:
                self._state.paused = True
                self._state.version += 1

    def resume(self) -> None:
        if self._run is not None:
            self._run.resume()
            with self._lock:
                self._state.paused = False
                self._state.version += 1

    def stop(self) -> None:
        """Ask the run to stop at its next step (within a second); the last checkpoint and
        bundle stay as the run last wrote them."""
        if self._run is not None:
            self._run.stop()

    def wait(self, timeout: float | None = None,
             process_events: Callable[[], None] | None = None) -> bool:
        """Poll until the current run has ended and been recorded; True if it has."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.poll()
            if self._record is None:
                return True
            if process_events is not None:
                process_events()
            if deadline is not None and time.monotonic() > deadline:
                return False
            self._ended.wait(0.02)

    def poll(self) -> bool:
        """Deliver a changed state to the views, and the record of an ended run.

        Called on the GUI thread (a timer) or by :meth:`wait`; returns True when anything
        was delivered.
        """
        if self._polling:  # a view that processes Qt events must not re-enter
            return False
        self._polling = True
        try:
            return self._poll()
        finally:
            self._polling = False

    def _poll(self) -> bool:
        delivered = False
        with self._lock:
            changed = self._state.version != self._shown_version
            snapshot = self._state.copy() if changed else None
            if changed:
                self._shown_version = self._state.version
        if snapshot is not None:
            for cb in list(self.on_update):
                cb(snapshot)
            delivered = True
        if self._record is not None and self._ended.is_set():
            record, self._record = self._record, None
            self._finish(record)
            for cb in list(self.on_end):
                cb(record)
            delivered = True
        return delivered

    def find(self, run: RunRecord | str) -> RunRecord:
        """A history record by record, run id or name."""
        return self._find(run)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the current run and wait for its thread (the viewer is closing)."""
        if self._run is not None:
            self._run.stop()
            self._run.wait(timeout)
        if self._consumer is not None:
            self._consumer.join(timeout)

    # -- internals --------------------------------------------------------------------------
    def _find(self, run: RunRecord | str) -> RunRecord:
        if isinstance(run, RunRecord):
            return run
        for rec in self.history:
            if run in (rec.run_id, rec.name, str(rec.out), rec.out.name):
                return rec
        raise InputError("run", f"one of {[r.name for r in self.history]}", repr(run))

    def _plan(self, kind: str, typed: Any, extra: dict[str, Any], train_cfg: Any
              ) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:

        accelerator, device = _device_settings(extra.get("device", "auto"))
        truth = self.data.object
        if kind == "train":
            if typed.accelerator == "auto" and accelerator != "auto":
                typed = dataclasses.replace(typed, accelerator=accelerator)
            self._patterns_per_step = typed.batch_size * typed.C
            return _train_job, (self.data, typed), {"device": device, "truth": truth}
        if kind == "infer":
            bundle = extra.get("bundle") or self.bundle
            if bundle is None:
                raise InputError("bundle", "a trained bundle (Load bundle, or a train run)",
                                 "none")
            if typed.device == "auto" and device != "auto":
                typed = dataclasses.replace(typed, device=device)
            return _infer_job, (self.data, Path(bundle), typed), {"truth": truth}
        if kind in SOLVERS:
            init = extra.get("init", "flat")
            if init == "network":
                if self.bundle is None:
                    raise InputError("init", "a loaded bundle for init='network'", "none")
                init = str(self.bundle)
            self._patterns_per_step = typed.batch_size
            return _solve_job, (self.data, typed), {
                "backend": extra["backend"], "device": device, "init": init,
                "checkpoint_every": extra["checkpoint_every"], "truth": truth}
        bundle = extra.get("bundle")
        if train_cfg is not None and train_cfg.accelerator == "auto" and accelerator != "auto":
            train_cfg = dataclasses.replace(train_cfg, accelerator=accelerator)
        self._patterns_per_step = typed.batch_size
        return _refine_job, (self.data, typed), {
            "bundle": bundle, "train_options": train_cfg, "backend": extra["backend"],
            "device": device, "checkpoint_every": extra["checkpoint_every"], "truth": truth}

    def _begin(self, record: RunRecord, typed: Any, train_cfg: Any) -> None:
        with self._lock:
            self._state = LiveState(kind=record.kind, version=self._state.version + 1)
        self._rate_mark = None
        self._epoch0 = 0
        self._record = record
        self.history.append(record)

    @staticmethod
    def _worker(action: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
                emit: Callable[[Any], None], control: Any) -> _Outcome:
        return action(*args, emit=emit, control=control, **kwargs)

    def _consume(self, run: Any) -> None:
        try:
            for event in run.events():
                try:
                    self._apply(event)
                except Exception:  # noqa: BLE001 - a malformed event must not kill the feed
                    continue
        finally:
            self._ended.set()

    def _apply(self, event: Any) -> None:
        name = type(event).__name__
        with self._lock:
            s = self._state
            if name == "RunStarted":
                s.phase = getattr(event, "kind", "")
                s.total, s.fraction = -1, 0.0  # steps keep counting: one x-axis per run
                self._rate_mark = None
            elif name == "Step":
                metrics = getattr(event, "metrics", {}) or {}
                loss = _first(getattr(event, "loss", None), metrics.get("loss"))
                total = _first(getattr(event, "total", None), metrics.get("total_steps"), -1,
                               invalid=-1)
                epoch = _first(getattr(event, "epoch", None), metrics.get("epoch"), s.epoch,
                               invalid=0)
                s.epoch, s.step, s.total = int(epoch), int(event.step), int(total)
                if s.phase in ("train", ""):
                    if loss is not None and np.isfinite(loss):
                        s.loss.append((s.step, float(loss)))
                self._progress(s, s.step, s.total)
            elif name == "Progress":
                if s.phase == "reconstruct":
                    iters = getattr(self._record_options(), "iterations", 0) or 0
                    done = (s.epoch - self._epoch0) * event.total + event.done
                    total = iters * event.total if iters else -1
                    self._progress(s, done, total)
                elif event.total > 0:
                    s.fraction = event.done / event.total
            elif name == "Epoch":
                m = event.metrics
                s.epoch = int(event.epoch)
                if "error" in m:
                    s.error.append((int(event.epoch), float(m["error"])))
                if m.get("patterns_per_s") is not None and np.isfinite(m["patterns_per_s"]):
                    s.rate = float(m["patterns_per_s"])
            elif name == "Validation":
                s.val_loss.append((s.step, float(event.metrics.get("loss", float("nan")))))
            elif name == "StatsSnapshot":
                rec = {k: event.record.get(k) for k in STAT_KEYS}
                s.stats.append((s.step if s.phase == "train" else s.epoch, rec))
                samples = getattr(event, "sample_patches", None)
                if samples is not None and s.patches is None or (
                        samples is not None and s.patches is not None
                        and s.patches[1] is None):
                    amp = np.asarray(samples, dtype=np.float32)
                    g = int(round(np.sqrt(amp.shape[1]))) if amp.ndim == 4 else 1
                    s.patches = (amp, None, g)
            elif name == "PatchGridSnapshot":
                s.patches = (np.asarray(event.amplitude, np.float32),
                             np.asarray(event.phase, np.float32), int(event.gridsize))
            elif name == "CanvasSnapshot":
                s.canvas = _CanvasView.of(event)
                s.canvas_label = getattr(event, "label", "")
            elif name == "ProbeSnapshot":
                s.probe = np.asarray(event.probe)
            elif name in ("Finished", "Stopped", "Failed"):
                s.fraction = 1.0 if name == "Finished" else s.fraction
            else:
                return
            s.version += 1

    def _record_options(self) -> Any:
        return None if self._record is None else self._record.options

    def _progress(self, s: LiveState, done: int, total: int) -> None:
        now = time.monotonic()
        if total > 0:
            s.fraction = min(1.0, done / total)
        if self._rate_mark is None:
            self._rate_mark = (now, done)
            return
        t0, d0 = self._rate_mark
        if now - t0 >= 0.5 and done > d0:
            steps_per_s = (done - d0) / (now - t0)
            s.rate = steps_per_s * self._patterns_per_step
            s.eta_s = (total - done) / steps_per_s if total > 0 else float("nan")
            self._rate_mark = (now, done)

    def _finish(self, record: RunRecord) -> None:
        run = self._run
        record.duration = time.time() - record.started
        state = self.state()
        record.curves = {"loss": state.loss, "val_loss": state.val_loss, "error": state.error}
        record.stats = state.stats
        record.patches = state.patches
        try:
            outcome: _Outcome = run.result(timeout=0)
        except Exception as exc:  # noqa: BLE001 - every failure becomes the record's error
            from engine.events import StopRequested

            if isinstance(exc, StopRequested):
                record.status = "stopped"
            else:
                record.status = "failed"
                record.error = f"{type(exc).__name__}: {exc}"
                record.error_field = _field_of(exc)
            record.canvas = state.canvas
            record.probe = state.probe
            self._run = None
            return
        record.status = "stopped" if outcome.stopped else "finished"
        record.canvas = outcome.canvas if outcome.canvas is not None else state.canvas
        record.probe = outcome.probe if outcome.probe is not None else state.probe
        record.bundle = outcome.bundle
        record.recon = outcome.recon
        record.metrics = dict(outcome.metrics)
        if outcome.bundle is not None and record.kind in ("train", "refine"):
            self.bundle = outcome.bundle
        self._run = None
        _release_device_memory()


def _first(*values: Any, invalid: Any = None) -> Any:
    """The first value that is set (not None, not NaN, not ``invalid``): events of the new
    form carry ``loss``/``total``/``epoch`` as fields, older ones in ``metrics``."""
    for k, v in enumerate(values):
        last = k == len(values) - 1
        if v is None or (isinstance(v, float) and v != v) or (v == invalid and not last):
            continue
        return v
    return None


def _field_of(exc: BaseException) -> str | None:
    """The option at fault: an InputError's ``what`` without a command-line dash."""
    what = getattr(exc, "what", None)
    if not what:
        return None
    word = str(what).split()[0]
    return word.lstrip("-").replace("-", "_")


class _CanvasView:
    """A canvas snapshot as the views need it (canvas, coverage, origin)."""

    def __init__(self, canvas: np.ndarray, coverage: np.ndarray, origin: tuple[int, int]):
        self.canvas, self.coverage, self.origin = canvas, coverage, origin

    @classmethod
    def of(cls, event: Any) -> _CanvasView:
        c = np.asarray(event.canvas)
        cov = getattr(event, "coverage", None)
        cov = np.isfinite(c) if cov is None else np.asarray(cov, bool)
        return cls(c, cov, tuple(int(v) for v in event.origin))


# -- the jobs (worker thread): run the engine, write the run directory, evaluate -----------
def _train_job(data: Dataset, cfg: Any, *, out: Path, device: str, truth: Any, emit: Any,
               control: Any) -> _Outcome:
    from engine import api

    trained = api.train(data, cfg, out=out, emit=emit, control=control)
    metrics = dict(trained.metrics)
    metrics.pop("train_patch_stats", None)
    if trained.stopped:
        return _Outcome(None, None, trained.bundle if trained.bundle.is_dir() else None,
                        metrics, True)
    # the canvas of the whole scan, as `ptycho infer <run> <data> --out <run>/network`
    # writes it (the training's own directory holds a run: the CLI writes beside it)
    net = out / NETWORK_FOLDER
    inference = api.infer(data, trained.bundle, api.InferConfig(device=device), out=net,
                          emit=emit, control=control)  # writes recon.npz and the PNGs
    canvas = inference.canvas
    probe = np.asarray(inference.bundle.probe)
    del inference
    metrics.update(_evaluate(canvas, truth, net))
    return _Outcome(canvas, probe, trained.bundle, metrics, False)


def _infer_job(data: Dataset, bundle: Path, cfg: Any, *, out: Path, truth: Any, emit: Any,
               control: Any) -> _Outcome:
    from engine import api

    inference = api.infer(data, bundle, cfg, out=out, emit=emit, control=control)
    canvas = inference.canvas
    metrics = {"intensity_scale": inference.scale, "scale_source": inference.scale_source}
    probe = np.asarray(inference.bundle.probe)
    del inference
    metrics.update(_evaluate(canvas, truth, out))
    return _Outcome(canvas, probe, bundle, metrics, False)


def _solve_job(data: Dataset, options: Any, *, out: Path, backend: str, device: str,
               init: Any, checkpoint_every: int, truth: Any, emit: Any, control: Any,
               previous: Any = None) -> _Outcome:
    from engine import api

    kwargs: dict[str, Any] = {"checkpoint_dir": str(out / "checkpoint"),
                              "checkpoint_every": checkpoint_every}
    if previous is not None:
        kwargs["previous"] = previous
    result = api.reconstruct(data, options, init=init, backend=backend, device=device,
                             emit=emit, control=control, **kwargs)
    result.save(out)
    metrics = {k: v for k, v in result.summary().items() if k in (
        "epochs", "final_error", "stopped", "method", "backend", "device")}
    metrics.update(_evaluate(result.canvas, truth, out))
    return _Outcome(result.canvas, result.probe, None, metrics, result.stopped,
                    recon=result, options=options)


def _refine_job(data: Dataset, options: Any, *, out: Path, bundle: Any, train_options: Any,
                backend: str, device: str, checkpoint_every: int, truth: Any, emit: Any,
                control: Any) -> _Outcome:
    from engine import api

    res = api.network_then_refine(data, options, bundle=bundle, train_options=train_options,
                                  out=out, backend=backend, device=device, emit=emit,
                                  control=control, checkpoint_every=checkpoint_every)
    metrics = {k: v for k, v in res.summary().items() if k != "bundle"}
    if res.recon is not None:
        metrics["epochs"] = res.recon.epochs
        metrics["final_error"] = res.recon.errors[-1] if res.recon.history else None
    if res.network_canvas is not None and truth is not None:
        net = _evaluate(res.network_canvas, truth, out / NETWORK_FOLDER)
        metrics.update({f"network_{k}": v for k, v in net.items()})
    metrics.update(_evaluate(res.canvas, truth, out if res.recon is not None else None))
    probe = None if res.recon is None else res.recon.probe
    return _Outcome(res.canvas, probe, res.bundle, metrics, res.stopped, recon=res.recon)
