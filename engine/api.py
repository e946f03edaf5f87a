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

from engine import checks, events
from engine.backends import available_backends
from engine.data import Dataset, read_npz, write_npz
from engine.errors import InputError, PtychoError
from engine.events import Callback, RunControl, StopRequested
from engine.geometry import Geometry
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
    "prepare", "find_bad_pixels", "PrepareOptions", "BadPixelOptions",
    # recipes the workbench and the command line share
    "resolve_device", "training_config", "default_preset", "presets", "new_run_dir",
    "check_bundle", "copy_bundle", "write_evaluation", "TrainInferResult", "train_then_infer",
    # file helpers for readers outside the engine
    "npz_keys", "is_run_dir", "readable_run", "find_bundle", "load_bundle", "write_bytes",
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
                 probe_init: Any = None,
                 bad_pixels: bool | BadPixelOptions | None = None) -> Dataset:
    """Read a dataset: the project's (or PtychoPINN's) NPZ, a CXI, NeXus ``NXcxi_ptycho``
    or Ptychodus file, or any HDF5 layout through a ``mapping`` file (docs/formats.md).

    The reader is chosen by content (:func:`engine.io.detect.detect`), or by ``format``
    (``"npz"``, ``"cxi"``, ``"nexus"``, ``"ptychodus"``, ``"mapped"``). HDF5 patterns stay
    in the file (a lazy :class:`engine.data.DiffractionStack`) with ``lazy=True``, or above
    1 GiB with ``"auto"``; ``energy_unit`` and ``translation_order`` (``"xy"``/``"yx"``)
    settle what a file leaves open; ``probe_init`` replaces the mean-pattern probe start of
    files without a probe (:func:`engine.io.readers.read_dataset`).

    Bad pixels: a file from a detector (CXI, NeXus, mapped HDF5) has its saturated, hot and
    dead pixels found on load (one streamed pass, the file's saturation value where it
    states one) and merged into ``pixel_mask``, with their counts in
    ``metadata["bad_pixels"]`` and the step in ``metadata["provenance"]``
    (:func:`engine.physics.badpixels.mask_on_load`). ``bad_pixels=False`` turns that off;
    ``True`` or a :class:`BadPixelOptions` asks for it on any file (an NPZ in this
    project's layout is otherwise read as it is).

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> path = save_dataset(tempfile.mkdtemp() + "/sim.npz", ds)
    >>> load_dataset(path).n
    16
    """
    path = checks.path(path, "path", required=True)
    checks.flag(require_diffraction, "require_diffraction")
    from engine.io import h5util

    if bad_pixels is not None and not isinstance(bad_pixels, bool | BadPixelOptions):
        raise InputError("bad_pixels", "True, False, None or a BadPixelOptions",
                         repr(bad_pixels))
    p = Path(path)
    other = (format not in (None, "npz") or mapping is not None
             or (p.is_file() and (h5util.is_hdf5(p) or _ptychodus_npz(p))))
    if not other:  # the NPZ path, with its own one-line errors
        ds = read_npz(path, require_diffraction=require_diffraction)
        if bad_pixels is None:  # as it is, unless asked
            bad_pixels = False
    else:
        from engine.io.readers import read_dataset

        ds = read_dataset(path, format=format, mapping=mapping, lazy=lazy,
                          energy_unit=energy_unit, translation_order=translation_order,
                          probe_init=probe_init, require_diffraction=require_diffraction)
    return _bad_pixels_on_load(ds, bad_pixels, reestimate_probe=probe_init is None)


def _bad_pixels_on_load(ds: Dataset, bad_pixels: bool | BadPixelOptions | None, *,
                        reestimate_probe: bool) -> Dataset:
    """``ds`` with its bad pixels masked where ``bad_pixels`` asks (None: files from a
    detector only, see :func:`load_dataset`)."""
    from engine.physics.badpixels import DETECTOR_FORMATS, mask_on_load

    if bad_pixels is False or ds.diffraction is None:
        return ds
    if bad_pixels is None and ds.metadata.get("format") not in DETECTOR_FORMATS:
        return ds
    if bad_pixels is None and any(s.get("step") == "bad_pixels"
                                  for s in ds.metadata.get("provenance", [])):
        return ds  # a file written here after its bad pixels were masked
    options = bad_pixels if isinstance(bad_pixels, BadPixelOptions) else None
    return mask_on_load(ds, options, reestimate_probe=reestimate_probe)


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
    path, data = checks.path(path, "path", required=True), checks.dataset(data)
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


def inspect(path: str | os.PathLike[str], *, bad_pixels: bool | BadPixelOptions | None = None,
            **read: Any) -> Any:
    """What a data file holds and what is wrong with it (format, shapes, energy, distance,
    pixel sizes, scan extent, step, overlap, photons per pattern, masked and saturated
    pixels, warnings): an :class:`engine.io.inspect.InspectReport`; its ``lines()`` are what
    ``ptycho inspect`` prints. Patterns are streamed, never loaded whole. ``read`` goes to
    :func:`load_dataset` (``mapping``, ``energy_unit``, ``translation_order``), and so does
    ``bad_pixels``: a detector's file has its bad pixels found and reported (with counts)
    unless it is False; the report lists the dataset's provenance steps.

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> report = inspect(save_dataset(tempfile.mkdtemp() + "/sim.npz", ds))
    >>> report.n, report.N
    (16, 32)
    """
    path = checks.path(path, "path", required=True)
    import functools

    from engine.io.inspect import inspect_file

    return inspect_file(path, load=functools.partial(load_dataset, bad_pixels=bad_pixels),
                        **read)


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
            format: str | None = None, geometry: Any = None,
            bad_pixels: bool | BadPixelOptions | None = None, **read: Any) -> Path:
    """Convert a data or reconstruction file between NPZ, CXI, NeXus (read), mapped HDF5
    (read) and Ptychodus products; the output format from ``format`` or ``dst``'s extension
    (:func:`engine.io.convert.convert`). Atomic. A data file is read by
    :func:`load_dataset` (``bad_pixels`` as there: a detector's bad pixels are found and
    written into the output's mask and provenance unless it is False).

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
    src = checks.path(src, "src", required=True)
    dst = checks.path(dst, "dst", required=True)
    checks.optional(format, str, "format", "a format name or None")
    if Path(src).is_dir():  # a reconstruction run directory
        data = read.pop("data", None)
        if data is None:
            raise InputError("data", f"the dataset the run {src} reconstructed (its "
                             "positions and geometry)", "none")
        if not isinstance(data, Dataset):
            data = load_dataset(data, lazy=True, bad_pixels=bad_pixels, **read)
        from engine.io.convert import output_format, write_product

        fmt = output_format(dst, format)
        if geometry is not None:
            data = dataclasses.replace(data, geometry=geometry)
        return write_product(dst, run_product(src, data), fmt)
    read.pop("data", None)
    import functools

    from engine.io.convert import convert as _convert

    return _convert(src, dst, format=format, geometry=geometry,
                    load=functools.partial(load_dataset, bad_pixels=bad_pixels), **read)


def run_product(run: str | os.PathLike[str], data: Dataset) -> Any:
    """The reconstruction in a run directory (``ptycho reconstruct --out``) as a
    :class:`engine.io.product.Product`: the object grid of its checkpoint (else the canvas,
    unilluminated pixels 0), ``probe.npz``'s modes, ``history.json``'s errors,
    ``options.json``, and the positions on that grid: the corrected ones a
    position-corrected run saved in ``recon.npz``, else those of ``data``."""
    import json

    from engine import __version__
    from engine.data import npz_array, open_npz
    from engine.io.product import Product

    run = checks.path(run, "run", required=True)
    data = checks.dataset(data)
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
    positions = data.positions
    with open_npz(run / "recon.npz") as z:  # a position-corrected run saved its positions
        corrected = "positions" in z.files
        if corrected:
            positions = npz_array(z, "positions", run / "recon.npz").astype(np.float64)
    if positions.shape != data.positions.shape:
        raise InputError(f"data for {run}", f"the dataset the run reconstructed "
                         f"({positions.shape[0]} positions)", f"{data.n} positions")
    g = data.geometry
    return Product(
        object=obj, probe=probe, positions=positions - np.asarray(origin, np.float64),
        object_pixel=data.pixel_size, wavelength=None if g is None else g.wavelength,
        distance=None if g is None else g.distance,
        losses=(np.array([int(r["epoch"]) for r in history], np.int64),
                np.array([float(r["error"]) for r in history])),
        settings=settings, software=f"ptycho-workbench {__version__}",
        name=settings.get("options", {}).get("method", run.name),
        corrected_positions=corrected)


def reconstruction_product(result: ReconResult, data: Dataset) -> Any:
    """A finished reconstruction as an exchangeable :class:`engine.io.product.Product`:
    the solver's object grid, the probe modes, the positions on that grid (the corrected
    ones where the result carries them), the pixel size, the error history and the
    options."""
    result = checks.optional(result, ReconResult, "result", "a ReconResult (api.reconstruct)")
    if result is None:
        raise InputError("result", "a ReconResult (api.reconstruct)", "None")
    data = checks.dataset(data)
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
    path = checks.path(path, "path", required=True)
    checks.optional(format, str, "format", "'cxi', 'ptychodus' or None")
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
    path = checks.path(path, "path", required=True)
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
    path = checks.path(path, "path", required=True)
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
    options = checks.options(options, SimulationConfig, required=True)
    checks.run_keywords(backend=backend, device=device, emit=emit, control=control)
    for name, a in (("object_array", object_array), ("probe_array", probe_array),
                    ("positions", positions)):
        checks.optional(a, np.ndarray, name, "a NumPy array or None")
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
    data, options = checks.dataset(data), checks.options(options, GroupingConfig)
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
    data, options = checks.dataset(data), checks.options(options, StitchConfig)
    grouping = checks.options(grouping, GroupingConfig, "grouping")
    checks.text(source, "source"), checks.integer(batch_size, "batch_size", minimum=1)
    checks.run_keywords(backend=backend, device=device, emit=emit, control=control)
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
    data, options = checks.dataset(data), checks.options(options, GroupingConfig)
    stitch_options = checks.options(stitch_options, StitchConfig, "stitch_options")
    checks.text(source, "source"), checks.text(phase, "phase")
    checks.integer(batch_size, "batch_size", minimum=1)
    checks.integer(limit, "limit", minimum=0, optional_=True)
    checks.run_keywords(backend=backend, device=device, emit=emit, control=control)
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
    from engine.network.config import TrainConfig

    data, options = checks.dataset(data), checks.options(options, TrainConfig, required=True)
    checks.flag(measure_time, "measure_time")
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
    from engine.network.config import TrainConfig

    data, options = checks.dataset(data), checks.options(options, TrainConfig, required=True)
    out = checks.path(out, "out", required=True)
    checks.flag(resume, "resume"), checks.flag(overwrite, "overwrite")
    checks.run_keywords(device=device, emit=emit, control=control)
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
    from engine.network.inference import InferConfig as _InferConfig

    data, bundle = checks.dataset(data), checks.bundle(bundle)
    options = checks.options(options, _InferConfig)
    out, debug_dir = checks.path(out, "out"), checks.path(debug_dir, "debug_dir")
    checks.flag(overwrite, "overwrite")
    checks.run_keywords(device=device, emit=emit, control=control)
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
                snapshot_every: int = 1, snapshot_seconds: float = 0.0, devices: int = 1,
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
    snapshot_seconds : also within an epoch, a CanvasSnapshot and ProbeSnapshot after the
        first batch, then at most one every this many seconds (0: at epoch ends only): a
        live view's first canvas long before the first epoch ends (one rank: several ranks
        snapshot at epoch ends).

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
    data = checks.dataset(data)
    options = checks.options(options, SolverOptions, required=True)
    checks.optional(previous, ReconResult, "previous", "a ReconResult or None")
    checks.run_keywords(backend=backend, device=device, emit=emit, control=control)
    out, checkpoint_dir = checks.path(out, "out"), checks.path(checkpoint_dir, "checkpoint_dir")
    resume = checks.path(resume, "resume")
    checks.flag(overwrite, "overwrite")
    checks.integer(checkpoint_every, "checkpoint_every", minimum=1)
    checks.integer(snapshot_every, "snapshot_every", minimum=0)
    checks.number(snapshot_seconds, "snapshot_seconds", minimum=0)
    checks.integer(devices, "devices", minimum=1)
    if threads is not None:
        checks.integer(threads, "threads", minimum=1)
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
                            load=load_dataset, snapshot_seconds=snapshot_seconds)

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
    data = checks.dataset(data)
    spec = checks.text(spec, "spec")
    propagation = checks.text(propagation, "propagation", ("auto", "far", "near"))
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
    path = checks.path(path, "path", required=True)
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
    from engine.network.config import TrainConfig as _TrainConfig
    from engine.network.inference import InferConfig as _InferConfig

    data = checks.dataset(data)
    checks.optional(options, SolverOptions, "options", "a SolverOptions (e.g. LSQMLOptions) "
                    "or None")
    bundle = checks.bundle(bundle, required=False)
    checks.optional(train_options, _TrainConfig, "train_options", "a TrainConfig or None")
    checks.optional(infer_options, _InferConfig, "infer_options", "an InferConfig or None")
    out = checks.path(out, "out")
    checks.integer(checkpoint_every, "checkpoint_every", minimum=1)
    checks.run_keywords(backend=backend, device=device, emit=emit, control=control)
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
    canvas, truth = checks.canvas(canvas), checks.truth(truth)
    checks.flag(remove_ramp, "remove_ramp"), checks.number(min_weight, "min_weight", minimum=0)
    from engine.evaluation.metrics import evaluate_canvas

    return evaluate_canvas(canvas, truth, remove_ramp=remove_ramp, min_weight=min_weight)


def resolution(data: Dataset, options: SolverOptions, *, split: str = "checkerboard",
               backend: str = "numpy", device: str = "auto", init: Any = "flat",
               emit: Callback | None = None,
               out: str | os.PathLike[str] | None = None,
               control: RunControl | None = None) -> ResolutionResult:
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
    control : pause or stop between batches; a stop raises
        :class:`~engine.events.StopRequested`.

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

    data = checks.dataset(data)
    split = checks.text(split, "split", ("checkerboard", "alternate"))
    checks.run_keywords(backend=backend, device=device, emit=emit, control=control)
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
                                   device=device, init=init, emit=emit, control=control)
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
    baseline = checks.stats_source(baseline, "baseline")
    candidate = checks.stats_source(candidate, "candidate")
    if isinstance(baseline, Canvas) != isinstance(candidate, Canvas):
        raise InputError("candidate", "the same kind as the baseline (two canvases, or two "
                         "statistics sources)", type(candidate).__name__)
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
    data = checks.dataset(data)
    options = checks.options(options, PrepareOptions)
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
    data = checks.dataset(data)
    options = checks.options(options, BadPixelOptions)
    from engine.physics.badpixels import mask_bad_pixels

    return mask_bad_pixels(data, options)


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

    out = checks.path(out, "out", required=True)
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

    if truth is not None:  # refused before the training, not after it
        truth = checks.truth(truth)
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


# -- file helpers for readers outside the engine (the napari plugin) -----------------------


def npz_keys(path: str | os.PathLike[str]) -> list[str]:
    """The member names of an NPZ archive, opened the engine's way (never unpickled; an
    empty, truncated, pickled or non-archive file is a one-line :class:`InputError`).

    Examples
    --------
    >>> import tempfile
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> "diffraction" in npz_keys(save_dataset(tempfile.mkdtemp() + "/d.npz", ds))
    True
    """
    from engine.data import open_npz

    path = checks.path(path, "path", required=True)
    with open_npz(path) as z:
        return list(z.files)


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a run directory written by this project (complete or not: its
    state marker is there). Reads nothing else.

    Examples
    --------
    >>> import tempfile
    >>> is_run_dir(tempfile.mkdtemp())
    False
    """
    from engine.rundir import MARKER

    return (Path(checks.path(path, "path", required=True)) / MARKER).is_file()


def readable_run(path: str | os.PathLike[str]) -> Path:
    """The run a reader should open at ``path``: ``path`` itself when complete, the previous
    complete run while an ``overwrite`` replaces it (or after a killed replacement); an
    incomplete run with nothing before it is an :class:`InputError` ("incomplete run").

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> readable_run(d) == Path(d)
    True
    """
    from engine.rundir import readable_run as _readable

    return _readable(checks.path(path, "path", required=True))


def find_bundle(path: str | os.PathLike[str]) -> Path | None:
    """The model bundle at ``path`` (a bundle directory, a run holding ``bundle/``, a bundle
    ``.zip``) without loading or verifying it, or ``None`` when there is none.

    Examples
    --------
    >>> import tempfile
    >>> find_bundle(tempfile.mkdtemp()) is None
    True
    """
    from engine.network.bundles import resolve_bundle_path

    try:
        return resolve_bundle_path(checks.path(path, "path", required=True))
    except InputError:
        return None


def load_bundle(path: str | os.PathLike[str], device: str = "cpu") -> Any:
    """Load and verify the bundle at ``path`` (every digest and field checked); a missing,
    damaged or forged bundle is a one-line :class:`InputError`.

    Examples
    --------
    ``load_bundle("runs/a/bundle").meta["N"]``
    """
    from engine.network.bundles import load_bundle as _load

    return _load(checks.path(path, "path", required=True), device)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (a kill leaves the old file or the new one).

    Examples
    --------
    >>> import tempfile
    >>> write_bytes(tempfile.mkdtemp() + "/x.bin", b"abc").read_bytes()
    b'abc'
    """
    from engine.atomic import atomic_open

    path = checks.path(path, "path", required=True)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputError("data", "bytes", type(data).__name__)
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def is_hdf5(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file starting with the HDF5 signature (at offset 0 or after a
    user block): what a reader asks before claiming a ``.cxi``/``.h5``/``.nxs`` file. Reads
    at most a few bytes per candidate offset, never the file's datasets.

    Examples
    --------
    >>> import tempfile
    >>> is_hdf5(write_bytes(tempfile.mkdtemp() + "/x.cxi", b"not hdf5"))
    False
    """
    from engine.io import h5util

    p = checks.path(path, "path", required=True)
    return p.is_file() and h5util.is_hdf5(p)


def file_kind(path: str | os.PathLike[str]) -> str:
    """What a data file is, from its content (the HDF5 layout's groups or the NPZ's keys;
    no pattern is read): ``"npz"``, ``"ptychodus-npz"``, ``"ptychodus-h5"``, ``"cxi"``,
    ``"cxi-product"`` (a reconstruction), ``"nexus"`` or ``"hdf5"`` (another layout: read it
    through a mapping). Anything else is one :class:`InputError` line.

    Examples
    --------
    >>> import tempfile
    >>> from engine.geometry import Geometry
    >>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    >>> g = Geometry(wavelength=1.55e-10, distance=2.0, detector_pixel=(75e-6, 75e-6))
    >>> file_kind(save_dataset(tempfile.mkdtemp() + "/sim.cxi", ds, geometry=g))
    'cxi'
    """
    from engine.io.detect import detect

    return detect(checks.path(path, "path", required=True))


__all__ += ["is_hdf5", "file_kind", "Geometry"]  # Geometry: the physical frame of a dataset
