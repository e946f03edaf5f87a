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
from engine.physics.badpixels import BadPixelOptions, BadPixelReport
from engine.physics.grouping import GroupingConfig, Groups, make_groups
from engine.physics.scaling import ScalingConfig
from engine.physics.stats import StatsLog
from engine.physics.stitching import Canvas, StitchConfig
from engine.physics.workflows import stats_dataset, stitch_dataset
from engine.prepare import PrepareOptions
from engine.preview import CompareView, Preview, PreviewOptions, compare_view, iter_preview, preview
from engine.simulation.simulate import SimulationConfig

if TYPE_CHECKING:
    from engine.iterative.resolution import ResolutionResult
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
    "compare", "convert", "evaluate", "events", "group", "infer", "initial_probe", "inspect",
    "load_canvas", "load_dataset", "load_reconstruction", "load_truth", "reconstruction_product",
    "run_product", "save_reconstruction",
    "network_then_refine", "resolution", "available_ranks",
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


def available_ranks(device: str = "cpu") -> int:
    """How many ranks :func:`reconstruct` can usefully run on here (its ``devices``): the
    GPUs for ``"cuda"``, the CPU cores for ``"cpu"``.

    Examples
    --------
    >>> available_ranks("cpu") >= 1
    True
    """
    if device.startswith("cuda"):
        return sum(1 for d in available_devices() if d.startswith("cuda"))
    return max(1, os.cpu_count() or 1)


def load_dataset(path: str | os.PathLike[str], *, require_diffraction: bool = True,
                 format: str | None = None, mapping: Any = None, lazy: bool | str = "auto",
                 energy_unit: str | None = None, translation_order: str = "xy",
                 probe_init: Any = None) -> Dataset:
    """Read a dataset: the project's (or PtychoPINN's) NPZ, a CXI, NeXus ``NXcxi_ptycho``
    or Ptychodus file, or any HDF5 layout through a ``mapping`` file (docs/formats.md).

    The reader is chosen by content (:func:`engine.io.detect.detect`), or by ``format``
    (``"npz"``, ``"cxi"``, ``"nexus"``, ``"ptychodus"``, ``"mapped"``). HDF5 patterns stay
    in the file (a lazy :class:`engine.data.DiffractionStack`) with ``lazy=True``, or above
    1 GiB with ``"auto"``; ``energy_unit`` and ``translation_order`` (``"xy"``/``"yx"``)
    settle what a file leaves open; ``probe_init`` replaces the mean-pattern probe start of
    files without a probe (:func:`engine.io.readers.read_dataset`).

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> path = save_dataset(tempfile.mkdtemp() + "/sim.npz", ds)
    >>> load_dataset(path).n
    16
    """
    from engine.io import h5util

    p = Path(path)
    other = (format not in (None, "npz") or mapping is not None
             or (p.is_file() and (h5util.is_hdf5(p) or _ptychodus_npz(p))))
    if not other:  # the NPZ path, with its own one-line errors
        return read_npz(path, require_diffraction=require_diffraction)
    from engine.io.readers import read_dataset

    return read_dataset(path, format=format, mapping=mapping, lazy=lazy,
                        energy_unit=energy_unit, translation_order=translation_order,
                        probe_init=probe_init, require_diffraction=require_diffraction)


def _ptychodus_npz(path: Path) -> bool:
    import zipfile

    from engine.io.detect import detect

    return zipfile.is_zipfile(path) and detect(path) == "ptychodus-npz"


def save_dataset(path: str | os.PathLike[str], data: Dataset, *, format: str | None = None,
                 geometry: Any = None) -> Path:
    """Write ``data`` atomically: the project's NPZ layout, or a CXI file for a ``.cxi``
    path (or ``format="cxi"``; ``geometry`` supplies the metres a dataset in pixel units
    lacks); returns the path.

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> save_dataset(tempfile.mkdtemp() + "/sim.npz", ds).suffix
    '.npz'
    """
    from engine.io.detect import format_from_name

    fmt = format or format_from_name(path) or "npz"
    if fmt == "cxi":
        from engine.io.cxi import write_cxi

        return write_cxi(path, data, geometry=geometry)
    if fmt != "npz":
        raise InputError(f"save_dataset {path}", "a .npz or .cxi path (or format 'npz'/'cxi'; "
                         "reconstructions: save_reconstruction)", repr(fmt))
    if geometry is not None:
        data = dataclasses.replace(data, geometry=geometry)
    return write_npz(path, data)


def inspect(path: str | os.PathLike[str], **read: Any) -> Any:
    """What a data file holds and what is wrong with it (format, shapes, energy, distance,
    pixel sizes, scan extent, step, overlap, photons per pattern, masked and saturated
    pixels, warnings): an :class:`engine.io.inspect.InspectReport`; its ``lines()`` are what
    ``ptycho inspect`` prints. Patterns are streamed, never loaded whole. ``read`` goes to
    :func:`load_dataset` (``mapping``, ``energy_unit``, ``translation_order``).

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> report = inspect(save_dataset(tempfile.mkdtemp() + "/sim.npz", ds))
    >>> report.n, report.N
    (16, 32)
    """
    from engine.io.inspect import inspect_file

    return inspect_file(path, **read)


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
            format: str | None = None, geometry: Any = None, **read: Any) -> Path:
    """Convert a data or reconstruction file between NPZ, CXI, NeXus (read), mapped HDF5
    (read) and Ptychodus products; the output format from ``format`` or ``dst``'s extension
    (:func:`engine.io.convert.convert`). Atomic.

    Examples
    --------
    >>> import tempfile
    >>> from engine.geometry import Geometry
    >>> d = tempfile.mkdtemp()
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> g = Geometry(wavelength=1.55e-10, distance=2.0, detector_pixel=(75e-6, 75e-6))
    >>> convert(save_dataset(d + "/a.npz", ds), d + "/a.cxi", geometry=g).name
    'a.cxi'
    """
    if Path(src).is_dir():  # a reconstruction run directory
        data = read.pop("data", None)
        if data is None:
            raise InputError("data", f"the dataset the run {src} reconstructed (its "
                             "positions and geometry)", "none")
        if not isinstance(data, Dataset):
            data = load_dataset(data, lazy=True, **read)
        from engine.io.convert import output_format, write_product

        fmt = output_format(dst, format)
        if geometry is not None:
            data = dataclasses.replace(data, geometry=geometry)
        return write_product(dst, run_product(src, data), fmt)
    read.pop("data", None)
    from engine.io.convert import convert as _convert

    return _convert(src, dst, format=format, geometry=geometry, **read)


def run_product(run: str | os.PathLike[str], data: Dataset) -> Any:
    """The reconstruction in a run directory (``ptycho reconstruct --out``) as a
    :class:`engine.io.product.Product`: the object grid of its checkpoint (else the canvas,
    unilluminated pixels 0), ``probe.npz``'s modes, ``history.json``'s errors,
    ``options.json``, and the positions of ``data`` on that grid."""
    import json

    from engine import __version__
    from engine.data import npz_array, open_npz
    from engine.io.product import Product

    run = Path(run)
    if not (run / "recon.npz").is_file():
        raise InputError(str(run), "a reconstruction run directory (recon.npz, probe.npz)",
                         "no recon.npz")
    ckpt = run / "checkpoint" / "checkpoint.npz"
    if ckpt.is_file():
        with open_npz(ckpt) as z:
            obj, origin = npz_array(z, "object", ckpt), npz_array(z, "origin", ckpt)
    else:
        c = Canvas.load(run / "recon.npz")
        obj, origin = np.nan_to_num(c.canvas, nan=0.0), np.asarray(c.origin)
    with open_npz(run / "probe.npz") as z:
        probe = npz_array(z, "probe", run / "probe.npz")
    history, settings = [], {}
    if (run / "history.json").is_file():
        history = json.loads((run / "history.json").read_text()).get("history", [])
    if (run / "options.json").is_file():
        settings = {"options": json.loads((run / "options.json").read_text())}
    g = data.geometry
    return Product(
        object=obj, probe=probe, positions=data.positions - np.asarray(origin, np.float64),
        object_pixel=data.pixel_size, wavelength=None if g is None else g.wavelength,
        distance=None if g is None else g.distance,
        losses=(np.array([int(r["epoch"]) for r in history], np.int64),
                np.array([float(r["error"]) for r in history])),
        settings=settings, software=f"ptycho-workbench {__version__}",
        name=settings.get("options", {}).get("method", run.name))


def reconstruction_product(result: ReconResult, data: Dataset) -> Any:
    """A finished reconstruction as an exchangeable :class:`engine.io.product.Product`:
    the solver's object grid, the probe modes, the positions on that grid (the corrected
    ones where the result carries them), the pixel size, the error history and the
    options."""
    from engine import __version__
    from engine.io.product import Product

    origin = np.asarray(result.canvas.origin, np.float64)
    corrected = getattr(result, "positions", None)
    if corrected is None:
        corrected = result.info.get("positions") if isinstance(result.info, dict) else None
    positions = data.positions if corrected is None else np.asarray(corrected, np.float64)
    g = data.geometry
    return Product(
        object=result.object, probe=result.probe, positions=positions - origin,
        object_pixel=data.pixel_size, wavelength=None if g is None else g.wavelength,
        distance=None if g is None else g.distance,
        losses=(np.array([int(r["epoch"]) for r in result.history], np.int64),
                np.array(result.errors, np.float64)),
        settings={"options": result.options.to_dict(), "summary": result.summary()},
        software=f"ptycho-workbench {__version__}", name=result.options.method,
        corrected_positions=corrected is not None)


def save_reconstruction(path: str | os.PathLike[str], result: ReconResult, data: Dataset, *,
                        format: str | None = None) -> Path:
    """Write a reconstruction as a CXI file (``.cxi``: object, probe, positions, settings
    and software version in ``/entry_1/process_1``) or a Ptychodus product (``.h5``, or
    ``.npz`` with ``format="ptychodus"``), atomically.

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="grf", n_positions=16, N=32, step=6))
    >>> res = reconstruct(ds, LSQMLOptions(iterations=1, batch_size=8))
    >>> save_reconstruction(tempfile.mkdtemp() + "/r.cxi", res, ds).suffix
    '.cxi'
    """
    from engine.io.convert import write_product
    from engine.io.detect import format_from_name

    fmt = format or format_from_name(path)
    if fmt not in ("cxi", "ptychodus"):
        raise InputError(f"save_reconstruction {path}", "a .cxi or .h5 path (or format 'cxi' "
                         "/ 'ptychodus')", repr(fmt))
    return write_product(path, reconstruction_product(result, data), fmt)


def load_reconstruction(path: str | os.PathLike[str]) -> Any:
    """Read a reconstruction written by :func:`save_reconstruction`, Ptychodus (HDF5/NPZ
    product) or another CXI writer: an :class:`engine.io.product.Product`.

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="grf", n_positions=16, N=32, step=6))
    >>> res = reconstruct(ds, LSQMLOptions(iterations=1, batch_size=8))
    >>> load_reconstruction(save_reconstruction(tempfile.mkdtemp() + "/r.cxi", res, ds)
    ...                     ).probe.shape[1:]
    (32, 32)
    """
    from engine.io.product import read_product

    return read_product(path)


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
                snapshot_every: int = 1, devices: int = 1,
                threads: int | None = None) -> ReconResult:
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
        CanvasSnapshot (NaN where unilluminated) and ProbeSnapshot (and, with position
        correction, PositionsSnapshot) every ``snapshot_every`` epochs, then Finished,
        Stopped or Failed.
    control : pause or stop between batches; a stopped run returns with ``stopped=True``.
    out : when given, a run directory (a previous run there is replaced only with
        ``overwrite``; resuming from its own checkpoint continues it) receiving the result
        (:meth:`ReconResult.save`) and checkpoints in ``<out>/checkpoint``.
    checkpoint_dir, checkpoint_every : where and how often checkpoints are written.
    resume : a checkpoint directory to continue from (``options.iterations`` is then the
        total).
    devices : ranks to run on (docs/iterative.md#several-devices): 1 (the default) runs
        here; N > 1 spawns N processes (gloo on ``device="cpu"``, NCCL on ``"cuda"``, one
        GPU each, ``threads`` torch threads each on CPU), each reading only its share of the
        positions; under ``torchrun`` (``WORLD_SIZE`` set) this process is one rank.
        :func:`available_ranks` says how many the machine offers.

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
        if devices != 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from engine.iterative.distributed import reconstruct_distributed

            return reconstruct_distributed(
                data, options, devices, backend=backend, device=device, init=init,
                emit=emit, control=control,
                checkpoint_dir=None if checkpoints is None else str(checkpoints),
                checkpoint_every=checkpoint_every,
                resume=None if resume is None else str(resume),
                snapshot_every=snapshot_every, previous=previous, load=load_dataset,
                threads=threads)
        return _reconstruct(data, options, backend=backend, device=device, init=init,
                            emit=emit, control=control,
                            checkpoint_dir=None if checkpoints is None else str(checkpoints),
                            checkpoint_every=checkpoint_every,
                            resume=None if resume is None else str(resume),
                            snapshot_every=snapshot_every, previous=previous,
                            load=load_dataset)

    if out is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1 \
            and int(os.environ.get("RANK", "0")) != 0:
        out = None  # a torchrun rank other than 0: rank 0 writes the run directory
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


def initial_probe(data: Dataset, spec: str = "data", *, propagation: str = "auto"
                  ) -> np.ndarray:
    """The probe a reconstruction with ``probe_init=spec`` starts from (N, N) complex128,
    normalised to Σ|P|² = (N/2)² (what the workbench shows before a run).

    Parameters
    ----------
    data : the dataset (its probe, diffraction and geometry).
    spec : ``"given"``, ``"data"`` (from the mean diffraction pattern), ``"disk"``,
        ``"gaussian"``, ``"zoneplate"`` (``model:radius=R,defocus=Z`` in metres with a
        geometry, else pixels) or ``"file:PATH"`` (a data or CXI file's illumination, a
        run directory's ``probe.npz``, a bundle); docs/iterative.md#starting-probe.
    propagation : ``"auto"`` (the data's geometry), ``"far"`` or ``"near"``.

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="grf", n_positions=16, N=32, step=6))
    >>> initial_probe(ds, "gaussian").shape
    (32, 32)
    """
    from engine.backends.propagation import Propagator
    from engine.iterative.probe_init import initial_probe as _initial_probe

    prop = Propagator.from_geometry(data.geometry, data.N, propagation)
    return _initial_probe(data, spec, prop, load=load_dataset)


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


def resolution(data: Dataset, options: SolverOptions, *, split: str = "checkerboard",
               backend: str = "numpy", device: str = "auto", init: Any = "flat",
               emit: Callback | None = None,
               out: str | os.PathLike[str] | None = None) -> ResolutionResult:
    """Resolution without ground truth: the half-split FRC at the half-bit threshold
    (docs/metrics.md#frc).

    The scan is split into two interleaved halves (``split``: ``"checkerboard"`` of the
    raster cells, or ``"alternate"`` positions along the scan path), each is reconstructed
    with ``options``, the second is registered onto the first and their Fourier ring
    correlation is read off at the half-bit threshold (van Heel & Schatz 2005). The
    resolution is in pixels, and in nm when the dataset has a pixel size (its geometry).

    Parameters
    ----------
    data : measured data (at least 4 positions).
    options : solver options of both half reconstructions (position correction included).
    split, backend, device, init, emit : the split scheme and the solver's settings.
    out : a directory receiving ``resolution.json`` (the curve and figures) and
        ``frc.png`` (the plot).

    Returns
    -------
    ResolutionResult : ``frequency``, ``frc``, ``threshold``, ``crossing`` (cycles/px),
    ``resolution_px``, ``resolution_nm`` (``None`` without a pixel size), the halves and
    their reconstructions.

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=64, N=32, step=4,
    ...                                nphotons=1e4))
    >>> res = resolution(ds, LSQMLOptions(iterations=5, batch_size=16))
    >>> 2.0 <= res.resolution_px and res.resolution_nm is None
    True
    """
    from engine.iterative.resolution import half_split_resolution

    if not isinstance(data, Dataset) or data.diffraction is None:
        raise InputError("data", "a Dataset with measured 'diffraction'", type(data).__name__)
    if not isinstance(options, SolverOptions):
        raise InputError("options", "EPIEOptions, RPIEOptions or LSQMLOptions",
                         type(options).__name__)
    directory = None
    if out is not None:  # refused before the two reconstructions, not after
        from engine.rundir import check_writable

        directory = check_writable(out, directory=True)
    result = half_split_resolution(data, options, split=split, backend=backend,
                                   device=device, init=init, emit=emit)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        result.save(directory / "resolution.json", directory / "frc.png")
    return result


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


def prepare(data: Dataset, options: PrepareOptions | None = None, *,
            dark: np.ndarray | None = None, flat: np.ndarray | None = None) -> Dataset:
    """Measured frames made ready for the methods: dark frame, flat field, negative counts,
    beam centre, crop and bin (docs/conventions.md#preparation); the mask, geometry,
    positions and probe follow, and each step is recorded in ``metadata["provenance"]``.
    A lazy stack stays lazy (each batch is transformed as it is read).

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=64, step=6))
    >>> prepare(ds, PrepareOptions(bin=2)).N
    32
    """
    from engine.prepare import prepare as _prepare

    return _prepare(data, options, dark=dark, flat=flat)


def find_bad_pixels(data: Dataset, options: BadPixelOptions | None = None
                    ) -> tuple[Dataset, BadPixelReport]:
    """Saturated, hot and cold detector pixels found in ``data`` (one streamed pass), merged
    into its ``pixel_mask`` and recorded in its provenance; returns the dataset and the
    report (counts per kind, :meth:`BadPixelReport.summary` for one line).

    Examples
    --------
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> D = ds.diffraction.copy(); D[:, 3, 3] = 10 * D.max()
    >>> masked, report = find_bad_pixels(ds.with_diffraction(D))
    >>> report.counts["saturated"], bool(masked.pixel_mask[3, 3])
    (1, False)
    """
    from engine.physics.badpixels import mask_bad_pixels

    return mask_bad_pixels(data, options)
