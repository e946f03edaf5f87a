"""The engine's face: every action a GUI, a notebook or a script needs, one calling convention.

Each action takes the data first, then a typed options object, then the keywords
``backend``, ``device``, ``emit`` (a callback receiving :mod:`engine.events`) and ``control``
(a :class:`~engine.events.RunControl` for pause and stop). ``from engine import api`` is all a
script needs: the options classes are re-exported here. :func:`engine.runs.start` runs any of
these actions on a worker thread and streams its events.

Stopping: every action that can take more than a second checks ``control`` between batches
(steps, epochs) and ends within about a second of ``control.stop()``. :func:`train` and
:func:`reconstruct` then return their result with ``stopped=True`` (train keeps the last
written bundle intact); :func:`simulate`, :func:`stitch`, :func:`patch_stats` and
:func:`infer` raise :class:`~engine.events.StopRequested` and write nothing.

Devices: the ``device`` keyword is the one way to choose one (``"auto"``, ``"cpu"``,
``"cuda"``, ``"cuda:k"``; :func:`available_devices` lists them). It overrides
``TrainConfig.accelerator`` and ``InferConfig.device``, which remain for the command line.

Examples
--------
>>> from engine import api
>>> ds = api.simulate(api.SimulationConfig(object="asym", n_positions=36, N=32, step=6, seed=0))
>>> canvas = api.stitch(ds, api.StitchConfig(), grouping=api.GroupingConfig(gridsize=2))
>>> canvas.canvas.shape == canvas.coverage.shape
True
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import events
from engine.backends import available_backends
from engine.data import Dataset, read_npz, write_npz
from engine.errors import InputError, PtychoError
from engine.events import Callback, RunControl, StopRequested
from engine.iterative.options import EPIEOptions, LSQMLOptions, RPIEOptions, SolverOptions
from engine.iterative.result import ReconResult
from engine.physics.grouping import GroupingConfig, Groups, make_groups
from engine.physics.scaling import ScalingConfig
from engine.physics.stats import StatsLog
from engine.physics.stitching import Canvas, StitchConfig
from engine.physics.workflows import stats_dataset, stitch_dataset
from engine.preview import CompareView, Preview, PreviewOptions, compare_view, iter_preview, preview
from engine.simulation.simulate import SimulationConfig

if TYPE_CHECKING:
    from engine.network.config import TrainConfig
    from engine.network.inference import InferConfig, InferenceResult
    from engine.network.trainer import TrainResult

# the network's names load torch: they are imported when first used (module __getattr__),
# so a script or a command that only simulates, stitches or reconstructs starts without it


def __getattr__(name: str) -> Any:
    if name == "TrainConfig":
        from engine.network.config import TrainConfig as value
    elif name == "TrainResult":
        from engine.network.trainer import TrainResult as value
    elif name in ("InferConfig", "InferenceResult"):
        from engine.network import inference

        value = getattr(inference, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value

__all__ = [
    "Canvas", "Dataset", "EPIEOptions", "GroupingConfig", "Groups", "InferConfig",
    "InferenceResult", "InputError", "LSQMLOptions", "PtychoError", "Preview", "PreviewOptions",
    "preview", "CompareView", "compare_view", "iter_preview", "RPIEOptions", "ReconResult",
    "RunControl",
    "ScalingConfig", "SimulationConfig", "SolverOptions", "StatsLog", "StitchConfig",
    "StopRequested", "TrainConfig", "TrainResult", "available_backends", "available_devices",
    "compare", "evaluate", "events", "group", "infer", "load_canvas", "load_dataset", "load_truth",
    "network_then_refine",
    "patch_stats", "plan_training", "reconstruct", "save_dataset", "simulate", "stitch", "train",
]


def available_devices() -> list[str]:
    """The compute devices this machine offers: ``"cpu"`` and each ``"cuda:k"``.

    Examples
    --------
    >>> "cpu" in available_devices()
    True
    """
    out = ["cpu"]
    try:
        import torch
    except ImportError:  # the NumPy reference needs no torch
        return out
    if torch.cuda.is_available():
        out += [f"cuda:{k}" for k in range(torch.cuda.device_count())]
    return out


def load_dataset(path: str | os.PathLike[str], *, require_diffraction: bool = True) -> Dataset:
    """Read a dataset NPZ (the project's layout or PtychoPINN's); see ``docs/conventions.md``.

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> path = save_dataset(tempfile.mkdtemp() + "/sim.npz", ds)
    >>> load_dataset(path).n
    16
    """
    return read_npz(path, require_diffraction=require_diffraction)


def save_dataset(path: str | os.PathLike[str], data: Dataset) -> Path:
    """Write ``data`` atomically in the project's NPZ layout; returns the path.

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> save_dataset(tempfile.mkdtemp() + "/sim.npz", ds).suffix
    '.npz'
    """
    return write_npz(path, data)


def load_canvas(path: str | os.PathLike[str]) -> Canvas:
    """Read a stitched canvas or a reconstruction (``recon.npz``).

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> path = stitch(ds).save(tempfile.mkdtemp() + "/canvas.npz")
    >>> load_canvas(path).canvas.ndim
    2
    """
    return Canvas.load(path)


def simulate(options: SimulationConfig, *, backend: str = "numpy", device: str = "auto",
             emit: Callback | None = None, control: RunControl | None = None,
             object_array: np.ndarray | None = None, probe_array: np.ndarray | None = None,
             positions: np.ndarray | None = None) -> Dataset:
    """Simulate a dataset (object, probe, scan, Poisson counts) from ``options``.

    Parameters
    ----------
    options : what to simulate; it comes first because there is no input data.
    backend, device : the forward model's backend (``"numpy"`` reference, ``"torch"``).
    emit : receives ``Progress`` per batch of patterns.
    control : a stop raises :class:`StopRequested`.
    object_array, probe_array, positions : replace the generated object, probe, scan.

    Returns
    -------
    Dataset : diffraction amplitudes, positions, probe, true object and patches.

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="grf", n_positions=16, N=32, step=6, seed=1))
    >>> ds.diffraction.shape
    (16, 32, 32)
    """
    from engine.simulation.simulate import simulate as _simulate

    return _simulate(options, backend=backend, device=device, emit=emit, control=control,
                     object_array=object_array, probe_array=probe_array, positions=positions)


def group(data: Dataset, options: GroupingConfig | None = None) -> Groups:
    """Group the scan positions of ``data``: C = gridsize² neighbours per group
    (docs/conventions.md#grouping).

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> group(ds, GroupingConfig(gridsize=2)).indices.shape
    (16, 4)
    """
    return make_groups(data.positions, options or GroupingConfig())


def stitch(data: Dataset, options: StitchConfig | None = None, *,
           grouping: GroupingConfig | None = None, source: str = "truth",
           batch_size: int = 1024, backend: str = "numpy", device: str = "auto",
           emit: Callback | None = None, control: RunControl | None = None) -> Canvas:
    """Group the positions, take the patches of ``source`` and stitch them into a canvas.

    Parameters
    ----------
    data : the dataset.
    options : crop and window of the reassembly (default: central N/2, uniform).
    grouping : how positions are grouped (default gridsize 1).
    source : where the patches come from (``"truth"``: the simulated patches, ...).
    batch_size : groups per batch (a stop is honoured between batches).
    backend, device, emit, control : as every action (``Progress`` per batch).

    Returns
    -------
    Canvas : spanning every position of ``data`` in object coordinates, whatever the
        grouping; NaN where uncovered, with ``coverage`` and ``origin``.

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> c = stitch(ds, StitchConfig(window="probe"), grouping=GroupingConfig(gridsize=2))
    >>> bool(c.coverage.any())
    True
    """
    return stitch_dataset(data, source=source, grouping=grouping, stitch_config=options,
                          backend=backend, device=device, batch_size=batch_size, emit=emit,
                          control=control)


def patch_stats(data: Dataset, options: GroupingConfig | None = None, *,
                stitch_options: StitchConfig | None = None, source: str = "truth",
                batch_size: int = 1024, phase: str = "truth", limit: int | None = None,
                backend: str = "numpy", device: str = "auto", emit: Callback | None = None,
                control: RunControl | None = None) -> StatsLog:
    """The variance statistics of the patches of ``source``, batch by batch and pooled
    (docs/conventions.md#statistics).

    Parameters
    ----------
    data : the dataset.
    options : the grouping (``gridsize`` decides C and whether ``var_across_group`` exists).
    stitch_options : the reassembly of the canvas the pooled record describes.
    source, batch_size, phase, limit : patch source, groups per batch, the records' phase
        label, how many batches keep a record (all count in the pooled one).
    backend, device, emit, control : as every action (``Progress`` per batch).

    Returns
    -------
    StatsLog : one record per kept batch, then the pooled ``batch == "all"`` record;
        ``StatsLog.write_grid(path)`` writes the sample patches as PNG grids.

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> log = patch_stats(ds, GroupingConfig(gridsize=2), batch_size=4, limit=1)
    >>> [r["batch"] for r in log.records]
    [0, 'all']
    """
    return stats_dataset(data, source=source, grouping=options, stitch_config=stitch_options,
                         backend=backend, device=device, batch_size=batch_size, phase=phase,
                         limit=limit, emit=emit, control=control)


def plan_training(data: Dataset, options: TrainConfig, *,
                  measure_time: bool = False) -> dict[str, Any]:
    """What a training would do, without training: data scale, groups, steps, model size.

    Returns ``N``, ``gridsize``, ``C``, ``object_big``, ``intensity_scale``,
    ``probe_factor``, ``train_groups``, ``val_groups``, ``steps_per_epoch``, ``total_steps``,
    ``bottleneck``, ``depth``, ``global_mixing``, ``parameters``, ``flops_per_pattern`` and
    ``memory_estimate_bytes``: fp32 weights, gradients and Adam's two moments (16 bytes per
    parameter) plus every layer's output for a batch, twice (kept for the backward pass and
    its gradient); an upper estimate for one device, without the physics model's FFTs.
    ``measure_time`` adds ``seconds_per_step`` (a few real steps timed on this machine now),
    ``expected_s`` and ``bounded_by_time_limit``
    (:func:`engine.network.estimate.estimate_training`).

    Examples
    --------
    >>> from engine.api import TrainConfig
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=36, N=32, step=6))
    >>> plan = plan_training(ds, TrainConfig(epochs=3, batch_size=8, base_channels=4))
    >>> plan["total_steps"] == 3 * plan["steps_per_epoch"]
    True
    """
    from engine.network.batches import prepare
    from engine.network.model import (
        SUPPORTED_N,
        activation_bytes,
        flops_per_pattern,
        parameter_count,
    )
    from engine.network.trainer import build_model

    if data.N not in SUPPORTED_N:
        raise InputError("data pattern size N", f"one of {SUPPORTED_N}", str(data.N))
    cfg = options
    prep = prepare(data, cfg.gridsize, cfg.neighbor_count, cfg.n_groups, cfg.val_fraction,
                   cfg.seed, cfg.loss == "supervised")
    import torch

    with torch.random.fork_rng(devices=[]):  # initialising weights must not move the
        model = build_model(data.N, cfg, prep.probe)  # caller's generator
    params = parameter_count(model.net)
    steps = -(-prep.train.n_groups // cfg.batch_size)
    plan = {
        "N": data.N, "gridsize": cfg.gridsize, "C": cfg.C, "object_big": cfg.use_object_big,
        "intensity_scale": prep.s, "probe_factor": prep.probe_factor,
        "train_groups": prep.train.n_groups,
        "val_groups": 0 if prep.val is None else prep.val.n_groups,
        "steps_per_epoch": steps, "total_steps": steps * cfg.epochs,
        "bottleneck": model.net.config.bottleneck, "depth": model.net.config.depth,
        "global_mixing": model.net.config.global_mixing,
        "parameters": params, "flops_per_pattern": flops_per_pattern(model.net),
        "memory_estimate_bytes": 16 * params
        + 2 * cfg.batch_size * activation_bytes(model.net),
    }
    if measure_time:
        from engine.network.estimate import estimate_training

        timing = estimate_training(data, cfg)
        plan.update({k: timing[k] for k in ("seconds_per_step", "expected_s",
                                            "bounded_by_time_limit")})
    return plan


def train(data: Dataset, options: TrainConfig, *, out: str | os.PathLike[str],
          resume: bool = False, overwrite: bool = False, device: str | None = None,
          emit: Callback | None = None, control: RunControl | None = None) -> TrainResult:
    """Train the physics-informed network on ``data``; checkpoints and bundle go to ``out``.

    Parameters
    ----------
    data : the training dataset (diffraction, positions, probe).
    options : the training configuration (``TrainConfig.describe()`` lists its fields).
    out : the run directory, held for the run; one holding another run is refused unless
        ``resume`` (continue from its checkpoint) or ``overwrite`` (replace it).
    device : ``"cpu"``, ``"cuda"``, ``"cuda:k"``; overrides ``options.accelerator``.
    emit : receives RunStarted, Step (per optimiser step), Epoch, Validation,
        StatsSnapshot, CanvasSnapshot (the validation stripe each epoch; the whole scan and
        a PatchGridSnapshot every ``options.snapshot_every`` epochs), then Finished,
        Stopped or Failed.
    control : pause or stop between steps; a stopped run keeps the last written bundle.

    Returns
    -------
    TrainResult : the bundle path, per-epoch history, final metrics, ``stopped``.

    The run's seed and torch flags are scoped to it: torch's generator state and the
    deterministic/cuDNN flags are as before once it ends, and its memory is released.

    Examples
    --------
    >>> import tempfile
    >>> from engine.api import TrainConfig
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=36, N=32, step=6))
    >>> cfg = TrainConfig(epochs=1, batch_size=8, base_channels=4)
    >>> result = train(ds, cfg, out=tempfile.mkdtemp(), device="cpu")
    >>> result.bundle.name, result.stopped
    ('bundle', False)
    """
    from engine.network.trainer import train as _train

    return _train(data, options, out, emit=emit, control=control, resume=resume,
                  overwrite=overwrite, device=device)


def infer(data: Dataset, bundle: Any, options: InferConfig | None = None, *,
          out: str | os.PathLike[str] | None = None, overwrite: bool = False,
          debug_dir: str | os.PathLike[str] | None = None, device: str | None = None,
          emit: Callback | None = None, control: RunControl | None = None) -> InferenceResult:
    """Predict and stitch ``data`` with a trained bundle.

    Parameters
    ----------
    data : the dataset to reconstruct (same N as the bundle).
    bundle : a run, bundle or ``.zip`` path, or a loaded
        :class:`~engine.network.bundles.Bundle`.
    options : scaling, batch size, stitching, statistics (default :class:`InferConfig`).
    out : when given, a run directory (a previous run there is replaced only with
        ``overwrite``) receiving ``recon.npz`` (canvas layout), ``amplitude.png``,
        ``phase.png``, ``summary.json`` and, as ``options`` asks, ``analysis/`` statistics
        and the debug dump (in ``debug_dir``, default ``<out>/debug``).
    device : overrides ``options.device``.
    emit : receives RunStarted, Progress per batch, StatsSnapshot, CanvasSnapshot, then
        Finished, Stopped or Failed.
    control : a stop raises :class:`StopRequested`; nothing is written.

    Returns
    -------
    InferenceResult : the canvas, the intensity scale and where it came from, statistics.

    Examples
    --------
    >>> import tempfile
    >>> from engine.api import InferConfig, TrainConfig
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=36, N=32, step=6))
    >>> run = train(ds, TrainConfig(epochs=1, batch_size=8, base_channels=4),
    ...             out=tempfile.mkdtemp())
    >>> res = infer(ds, run.bundle, InferConfig(batch_size=16), device="cpu")
    >>> res.canvas.canvas.dtype.name
    'complex64'
    """
    from engine.network.inference import InferConfig, write_outputs
    from engine.network.inference import infer as _infer
    from engine.rundir import open_run

    options = options or InferConfig()
    if device is not None:
        options = dataclasses.replace(options, device=device)
    if out is None:
        return _infer(bundle, data, options, emit=emit, control=control)
    with open_run(out, overwrite=overwrite):
        result = _infer(bundle, data, options, emit=emit, out_dir=out, control=control)
        write_outputs(result, out, debug_dir=debug_dir)
    return result


def reconstruct(data: Dataset, options: SolverOptions, *, init: Any = "flat",
                previous: ReconResult | None = None, backend: str = "numpy",
                device: str = "auto", emit: Callback | None = None,
                control: RunControl | None = None, out: str | os.PathLike[str] | None = None,
                overwrite: bool = False, checkpoint_dir: str | os.PathLike[str] | None = None,
                checkpoint_every: int = 1, resume: str | os.PathLike[str] | None = None,
                snapshot_every: int = 1) -> ReconResult:
    """Reconstruct object and probe with ePIE, rPIE or LSQ-ML (``options`` picks which).

    Parameters
    ----------
    data : measured diffraction, positions and the initial probe.
    options : :class:`EPIEOptions`, :class:`RPIEOptions` or :class:`LSQMLOptions`.
    init : ``"flat"``, a canvas, an array, a canvas ``.npz`` or a model bundle (network
        initialisation).
    previous : a result to continue from in memory, for ``options.iterations`` more
        epochs (5 then 5 more equal 10 in one go; a setting may be flipped in between).
    backend, device : ``"numpy"`` (reference) or ``"torch"`` on ``"cpu"``/``"cuda[:k]"``.
    emit : receives RunStarted, Progress per batch, Step and Epoch per epoch,
        CanvasSnapshot (NaN where unilluminated) and ProbeSnapshot every
        ``snapshot_every`` epochs, then Finished, Stopped or Failed.
    control : pause or stop between batches; a stopped run returns with ``stopped=True``.
    out : when given, a run directory (a previous run there is replaced only with
        ``overwrite``; resuming from its own checkpoint continues it) receiving the result
        (:meth:`ReconResult.save`) and checkpoints in ``<out>/checkpoint``.
    checkpoint_dir, checkpoint_every : where and how often checkpoints are written.
    resume : a checkpoint directory to continue from (``options.iterations`` is then the
        total).

    Returns
    -------
    ReconResult : the canvas, the full object grid, probe modes, history, ``stopped``.

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="grf", n_positions=16, N=32, step=6))
    >>> first = reconstruct(ds, LSQMLOptions(iterations=2, batch_size=8))
    >>> more = reconstruct(ds, LSQMLOptions(iterations=3, batch_size=8), previous=first)
    >>> more.epochs, len(more.history)
    (5, 5)
    """
    from engine.iterative.solver import reconstruct as _reconstruct
    from engine.rundir import check_writable, open_run

    def run(checkpoints: str | os.PathLike[str] | None) -> ReconResult:
        return _reconstruct(data, options, backend=backend, device=device, init=init,
                            emit=emit, control=control,
                            checkpoint_dir=None if checkpoints is None else str(checkpoints),
                            checkpoint_every=checkpoint_every,
                            resume=None if resume is None else str(resume),
                            snapshot_every=snapshot_every, previous=previous)

    if out is None:
        return run(checkpoint_dir)
    out = check_writable(out, directory=True)
    # resuming from this run's own checkpoint continues it: its earlier outputs (recon.npz,
    # PNGs...) are superseded and go at once, so a kill cannot leave them beside the newer
    # checkpoint
    own = resume is not None and Path(resume).resolve().is_relative_to(out.resolve())
    with open_run(out, overwrite=overwrite, resume=own, keep=("checkpoint",)):
        result = run(out / "checkpoint" if checkpoint_dir is None else checkpoint_dir)
        result.save(out)
    return result


def load_truth(path: str | os.PathLike[str]) -> np.ndarray:
    """The true object (``objectGuess``) of a data file, complex128; the file need not hold
    diffraction data.

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> load_truth(save_dataset(tempfile.mkdtemp() + "/sim.npz", ds)).shape == ds.object.shape
    True
    """
    from engine.evaluation.metrics import read_truth

    return read_truth(path)


def network_then_refine(data: Dataset, options: SolverOptions | None = None, *,
                        bundle: str | os.PathLike[str] | None = None,
                        train_options: TrainConfig | None = None,
                        infer_options: InferConfig | None = None,
                        out: str | os.PathLike[str] | None = None, backend: str = "numpy",
                        device: str = "auto", emit: Callback | None = None,
                        control: RunControl | None = None, checkpoint_every: int = 10):
    """Train a network (or take ``bundle``), infer the canvas, refine it with LSQ-ML.

    See :func:`engine.iterative.refine.network_then_refine` (run-directory layout and a
    runnable example there).

    Examples
    --------
    ``network_then_refine(data, LSQMLOptions(iterations=5), bundle="runs/a", out="runs/b")``
    refines the canvas of the bundle in ``runs/a``; without ``bundle`` it trains one first
    (``train_options``) into ``runs/b``.
    """
    from engine.iterative.refine import network_then_refine as _chain

    return _chain(data, options, bundle=bundle, train_options=train_options,
                  infer_options=infer_options, out=out, backend=backend, device=device,
                  emit=emit, control=control, checkpoint_every=checkpoint_every)


def evaluate(canvas: Canvas, truth: np.ndarray, *, remove_ramp: bool = False,
             min_weight: float = 0.0) -> dict[str, Any]:
    """Amplitude and phase figures of ``canvas`` against the true object
    (docs/conventions.md#evaluation-metrics).

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=36, N=32, step=6))
    >>> figures = evaluate(stitch(ds), ds.object)
    >>> figures["amplitude"]["ssim"] > 0.99
    True
    """
    from engine.evaluation.metrics import evaluate_canvas

    return evaluate_canvas(canvas, truth, remove_ramp=remove_ramp, min_weight=min_weight)


def compare(baseline: Any, candidate: Any, *, rtol: float = 0.05,
            zero_tol: float = 0.0) -> dict[str, Any]:
    """Compare two statistics files/directories/records (or two canvases) figure by figure
    (docs/conventions.md#comparison).

    Statistics: each figure's ``status`` (``ok`` within ``rtol`` of the baseline,
    ``differs``, ``*_zero`` at or below ``zero_tol``, ``missing``, ``undefined``, ``nan``)
    and an overall ``verdict`` (see :mod:`engine.evaluation.compare`).

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=36, N=32, step=6))
    >>> a = patch_stats(ds, GroupingConfig(gridsize=1))
    >>> b = patch_stats(ds, GroupingConfig(gridsize=1), batch_size=8)
    >>> compare(a.records, b.records)["figures"]["mean"]["status"]
    'ok'
    """
    if isinstance(baseline, Canvas) and isinstance(candidate, Canvas):
        from engine.evaluation.metrics import compare_canvases

        return compare_canvases(baseline, candidate)
    from engine.evaluation.compare import compare_stats

    return compare_stats(baseline, candidate, tol=zero_tol, rtol=rtol)


# -- recipes the workbench and the command line share ----------------------------------------
# (one code path: `ptycho train` then `ptycho infer <run> --out <run>/network`, and the
# evaluation JSON of `ptycho evaluate`, are these functions wherever they run)

NETWORK_FOLDER = "network"  # where a training's whole-scan canvas goes inside its run


def resolve_device(device: str | None = "auto") -> str:
    """The device ``device`` names: ``"auto"`` (or ``None``) is ``"cuda"`` when torch sees
    a GPU, else ``"cpu"``; anything else is returned as given.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    if device in (None, "", "auto"):
        from engine.network.presets import resolve_device as _resolve

        return _resolve("auto")
    return str(device)


def training_config(preset: str | None = None, device: str = "auto", *,
                    n_positions: int | None = None, **explicit: Any) -> TrainConfig:
    """The :class:`TrainConfig` ``ptycho train`` builds: ``preset`` (``None``: ``quick`` on a
    CPU, ``standard`` on a GPU, from ``device`` resolved) with the ``explicit`` fields over
    it (``None`` values count as not given).

    Examples
    --------
    >>> training_config(None, "cpu", n_positions=64).base_channels
    8
    >>> training_config("standard", "cpu", lr_schedule="cosine").lr_schedule
    'cosine'
    """
    from engine.network.presets import preset_config

    return preset_config(preset, resolve_device(device), n_positions=n_positions, **explicit)


def default_preset(device: str = "auto") -> str:
    """The preset a training without one takes on ``device`` (``quick`` on a CPU,
    ``standard`` on a GPU).

    Examples
    --------
    >>> default_preset("cuda:0"), default_preset("cpu")
    ('standard', 'quick')
    """
    from engine.network.presets import default_preset as _default

    return _default(resolve_device(device))


def presets() -> tuple[str, ...]:
    """The training presets' names.

    Examples
    --------
    >>> presets()
    ('quick', 'standard', 'quality')
    """
    from engine.network.presets import PRESETS

    return tuple(PRESETS)


def new_run_dir(kind: str, *, data_path: str | os.PathLike[str] | None = None,
                root: str | os.PathLike[str] | None = None) -> Path:
    """A fresh ``<root>/<timestamp>-<kind>`` run directory (``root`` default: ``runs/``
    beside ``data_path``); see :func:`engine.rundir.new_run_dir`.

    Examples
    --------
    >>> import tempfile
    >>> new_run_dir("lsqml", root=tempfile.mkdtemp()).name.endswith("-lsqml")
    True
    """
    from engine.rundir import new_run_dir as _new

    return _new(kind, data_path=data_path, root=root)


def check_bundle(path: str | os.PathLike[str]) -> Path:
    """Verify the bundle at ``path`` (a bundle, a run holding one, or a ``.zip``) and return
    its resolved path; a missing or damaged bundle is an :class:`InputError`.

    Examples
    --------
    >>> import tempfile
    >>> try:
    ...     check_bundle(tempfile.mkdtemp())
    ... except InputError as exc:
    ...     print("expected a model bundle" in str(exc))
    True
    """
    from engine.network.bundles import load_bundle, resolve_bundle_path

    load_bundle(path)  # every digest checked: a bad bundle fails here, not mid-run
    return resolve_bundle_path(path)


def copy_bundle(bundle: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy a bundle directory to ``target``: a directory, or a ``.zip`` (written atomically).

    Examples
    --------
    ``copy_bundle("runs/a/bundle", "model.zip")``
    """
    import shutil

    from engine.atomic import atomic_directory, atomic_open
    from engine.network.bundles import bundle_bytes

    source, target = check_bundle(bundle), Path(target)
    if target.suffix == ".zip":
        with atomic_open(target, "wb") as fh:
            fh.write(bundle_bytes(source).getvalue())
        return target
    with atomic_directory(target) as tmp:
        for item in Path(source).iterdir():
            shutil.copy2(item, tmp / item.name)
    return target


def write_evaluation(canvas: Canvas, truth: np.ndarray, out: str | os.PathLike[str], *,
                     recon: str = "", truth_label: str = "", remove_ramp: bool = False,
                     min_weight: float = 0.0) -> dict[str, Any]:
    """:func:`evaluate` ``canvas`` against ``truth`` and write the JSON ``ptycho evaluate``
    writes (``recon`` and ``truth`` name the inputs); returns the figures.

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=36, N=32, step=6))
    >>> out = Path(tempfile.mkdtemp()) / "evaluation.json"
    >>> write_evaluation(stitch(ds), ds.object, out)["amplitude"]["ssim"] > 0.99
    True
    """
    from engine.atomic import write_json
    from engine.evaluation.metrics import to_jsonable

    result = evaluate(canvas, truth, remove_ramp=remove_ramp, min_weight=min_weight)
    write_json(Path(out), to_jsonable({"recon": str(recon), "truth": str(truth_label),
                                       "remove_ramp": bool(remove_ramp), **result}))
    return result


@dataclasses.dataclass
class TrainInferResult:
    """What :func:`train_then_infer` produced: the training, and (unless it stopped) the
    whole-scan inference and its evaluation against the truth (``None`` without one)."""

    trained: Any
    inference: Any = None
    evaluation: dict[str, Any] | None = None

    @property
    def stopped(self) -> bool:
        return bool(self.trained.stopped)


def train_then_infer(data: Dataset, options: TrainConfig, *, out: str | os.PathLike[str],
                     device: str | None = None, truth: np.ndarray | None = None,
                     truth_label: str = "objectGuess of the data",
                     emit: Callback | None = None,
                     control: RunControl | None = None) -> TrainInferResult:
    """Train into ``out``, then infer the whole scan into ``out/network`` (what
    ``ptycho train --out RUN`` then ``ptycho infer RUN DATA --out RUN/network`` do) and,
    with a ``truth``, write ``out/network/evaluation.json`` as ``ptycho evaluate`` does.

    A stopped training infers nothing (its last bundle stays as written).

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=36, N=32, step=6))
    >>> cfg = training_config("quick", "cpu", epochs=1, batch_size=8, base_channels=4)
    >>> res = train_then_infer(ds, cfg, out=tempfile.mkdtemp(), device="cpu", truth=ds.object)
    >>> res.evaluation["amplitude"]["ssim"] > -1
    True
    """
    from engine.network.inference import InferConfig

    trained = train(data, options, out=out, device=device, emit=emit, control=control)
    if trained.stopped:
        return TrainInferResult(trained)
    net = Path(out) / NETWORK_FOLDER
    inference = infer(data, trained.bundle, InferConfig(), out=net, device=device or "auto",
                      emit=emit, control=control)
    evaluation = None
    if truth is not None:
        evaluation = write_evaluation(inference.canvas, truth, net / "evaluation.json",
                                      recon=str(net / "recon.npz"), truth_label=truth_label)
    return TrainInferResult(trained, inference, evaluation)


def preview_cache() -> Any:
    """A fresh :class:`~engine.preview.PreviewCache` (what stays valid across flips of one
    dataset's preview settings).

    Examples
    --------
    >>> cache = preview_cache()
    """
    from engine.preview import PreviewCache

    return PreviewCache()


def tile_patches(values: np.ndarray, gridsize: int | None = None, groups_per_row: int = 1,
                 gap: int = 1, group_gap: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Patches (b, C, M, M) tiled into one image with each group's box, the layout the
    preview's patch grids use (see :func:`engine.physics.stats.tile_patches`).

    Examples
    --------
    >>> img, boxes = tile_patches(np.ones((3, 4, 8, 8)), gridsize=2, groups_per_row=2)
    >>> img.shape, len(boxes)
    ((37, 37), 3)
    """
    from engine.physics.stats import tile_patches as _tile

    return _tile(values, gridsize, groups_per_row, gap, group_gap)


def normalise_patches(amplitudes: np.ndarray) -> np.ndarray:
    """Each patch stretched to its own range [0, 1]: the one meaning of "normalised"
    patches (see :func:`engine.physics.stats.normalise_patches`).

    Examples
    --------
    >>> float(normalise_patches(np.arange(4.0).reshape(1, 2, 2)).max())
    1.0
    """
    from engine.physics.stats import normalise_patches as _normalise

    return _normalise(amplitudes)
