"""The engine's face: every action a GUI, a notebook or a script needs, one calling convention.

Each action takes the data first, then a typed options object, then the keywords
``backend``, ``device``, ``emit`` (a callback receiving :mod:`engine.events`) and ``control``
(a :class:`~engine.events.RunControl` for pause and stop). ``from engine import api`` is all a
script needs: the options classes are re-exported here.

Examples
--------
>>> from engine import api
>>> ds = api.simulate(api.SimulationConfig(object="asym", n_positions=36, N=32, step=6, seed=0))
>>> canvas = api.stitch(ds, api.StitchConfig(), grouping=api.GroupingConfig(gridsize=2))
>>> canvas.canvas.shape == canvas.coverage.shape
True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.backends import available_backends
from engine.data import Dataset, read_npz, write_npz
from engine.events import Callback, RunControl
from engine.iterative.options import EPIEOptions, LSQMLOptions, RPIEOptions, SolverOptions
from engine.iterative.result import ReconResult
from engine.network.config import TrainConfig
from engine.network.inference import InferConfig, InferenceResult
from engine.physics.grouping import GroupingConfig, Groups, make_groups
from engine.physics.scaling import ScalingConfig
from engine.physics.stats import StatsLog
from engine.physics.stitching import Canvas, StitchConfig
from engine.physics.workflows import stats_dataset, stitch_dataset
from engine.simulation.simulate import SimulationConfig

__all__ = [
    "Canvas", "Dataset", "EPIEOptions", "GroupingConfig", "Groups", "InferConfig",
    "InferenceResult", "LSQMLOptions", "RPIEOptions", "ReconResult", "RunControl",
    "ScalingConfig", "SimulationConfig", "SolverOptions", "StatsLog", "StitchConfig",
    "TrainConfig", "available_backends", "available_devices", "compare", "evaluate", "group",
    "infer", "load_canvas", "load_dataset", "patch_stats", "plan_training", "reconstruct",
    "save_dataset", "simulate", "stitch", "train",
]


def available_devices() -> list[str]:
    """The compute devices this machine offers: ``"cpu"`` and each ``"cuda:k"``.

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
    """Read a dataset NPZ (the project's layout or PtychoPINN's); see ``docs/conventions.md``."""
    return read_npz(path, require_diffraction=require_diffraction)


def save_dataset(path: str | os.PathLike[str], data: Dataset) -> Path:
    """Write ``data`` atomically in the project's NPZ layout."""
    return write_npz(path, data)


def load_canvas(path: str | os.PathLike[str]) -> Canvas:
    """Read a stitched canvas or a reconstruction (``recon.npz``)."""
    return Canvas.load(path)


def simulate(options: SimulationConfig, *, backend: str = "numpy", device: str = "auto",
             emit: Callback | None = None, control: RunControl | None = None,
             object_array: np.ndarray | None = None, probe_array: np.ndarray | None = None,
             positions: np.ndarray | None = None) -> Dataset:
    """Simulate a dataset (object, probe, scan, Poisson counts) from ``options``."""
    from engine.simulation.simulate import simulate as _simulate

    return _simulate(options, backend=backend, emit=emit, object_array=object_array,
                     probe_array=probe_array, positions=positions)


def group(data: Dataset, options: GroupingConfig | None = None) -> Groups:
    """Group the scan positions of ``data`` (C = gridsize² neighbours per group)."""
    return make_groups(data.positions, options or GroupingConfig())


def stitch(data: Dataset, options: StitchConfig | None = None, *,
           grouping: GroupingConfig | None = None, source: str = "truth",
           batch_size: int = 1024, backend: str = "numpy", device: str = "auto",
           emit: Callback | None = None, control: RunControl | None = None) -> Canvas:
    """Group the positions, take the patches of ``source`` and stitch them into a canvas."""
    return stitch_dataset(data, source=source, grouping=grouping, stitch_config=options,
                          backend=backend, device=device, batch_size=batch_size, emit=emit)


def patch_stats(data: Dataset, options: GroupingConfig | None = None, *,
                stitch_options: StitchConfig | None = None, source: str = "truth",
                batch_size: int = 1024, phase: str = "truth", limit: int | None = None,
                backend: str = "numpy", device: str = "auto", emit: Callback | None = None,
                control: RunControl | None = None) -> StatsLog:
    """The variance statistics of the patches of ``source``, batch by batch and pooled."""
    return stats_dataset(data, source=source, grouping=options, stitch_config=stitch_options,
                         backend=backend, device=device, batch_size=batch_size, phase=phase,
                         limit=limit, emit=emit)


def plan_training(data: Dataset, options: TrainConfig) -> dict[str, Any]:
    """What a training would do (data, scale, groups, model size, FLOPs) without training."""
    from engine.errors import InputError
    from engine.network.batches import prepare
    from engine.network.model import SUPPORTED_N, flops_per_pattern, parameter_count
    from engine.network.trainer import build_model

    if data.N not in SUPPORTED_N:
        raise InputError("data pattern size N", f"one of {SUPPORTED_N}", str(data.N))
    cfg = options
    prep = prepare(data, cfg.gridsize, cfg.neighbor_count, cfg.n_groups, cfg.val_fraction,
                   cfg.seed, cfg.loss == "supervised")
    model = build_model(data.N, cfg, prep.probe)
    return {
        "N": data.N, "gridsize": cfg.gridsize, "C": cfg.C, "object_big": cfg.use_object_big,
        "intensity_scale": prep.s, "probe_factor": prep.probe_factor,
        "train_groups": prep.train.n_groups,
        "val_groups": 0 if prep.val is None else prep.val.n_groups,
        "steps_per_epoch": -(-prep.train.n_groups // cfg.batch_size),
        "bottleneck": model.net.config.bottleneck, "depth": model.net.config.depth,
        "global_mixing": model.net.config.global_mixing,
        "parameters": parameter_count(model.net),
        "flops_per_pattern": flops_per_pattern(model.net),
    }


def train(data: Dataset, options: TrainConfig, *, out: str | os.PathLike[str],
          resume: bool = False, overwrite: bool = False, emit: Callback | None = None,
          control: RunControl | None = None):
    """Train the physics-informed network on ``data``; checkpoints and bundle go to ``out``.

    ``out`` is locked for the run; one that holds another run is refused unless ``resume``
    (continue it) or ``overwrite`` (replace it) is given (:func:`engine.rundir.open_run`).
    """
    from engine.network.trainer import train as _train

    return _train(data, options, out, emit=emit, control=control, resume=resume,
                  overwrite=overwrite)


def infer(data: Dataset, bundle: str | os.PathLike[str], options: InferConfig | None = None, *,
          out: str | os.PathLike[str] | None = None, emit: Callback | None = None,
          control: RunControl | None = None) -> InferenceResult:
    """Predict and stitch ``data`` with a trained bundle."""
    from engine.network.inference import infer as _infer

    return _infer(bundle, data, options or InferConfig(), emit=emit, out_dir=out)


def reconstruct(data: Dataset, options: SolverOptions, *, init: Any = "flat",
                backend: str = "numpy", device: str = "auto", emit: Callback | None = None,
                control: RunControl | None = None, **kwargs: Any) -> ReconResult:
    """Reconstruct object and probe with ePIE, rPIE or LSQ-ML (``options`` picks which)."""
    from engine.iterative.solver import reconstruct as _reconstruct

    return _reconstruct(data, options, backend=backend, device=device, init=init, emit=emit,
                        control=control, **kwargs)


def evaluate(canvas: Canvas, truth: np.ndarray, *, remove_ramp: bool = False) -> dict[str, Any]:
    """Amplitude and phase figures of ``canvas`` against the true object."""
    from engine.evaluation.metrics import evaluate_canvas

    return evaluate_canvas(canvas, truth, remove_ramp=remove_ramp)


def compare(baseline: Any, candidate: Any, *, rtol: float = 0.05,
            zero_tol: float = 0.0) -> dict[str, Any]:
    """Compare two statistics files/directories/records (or two canvases) figure by figure.

    Statistics: each figure's ``status`` (``ok`` within ``rtol`` of the baseline,
    ``differs``, ``*_zero`` at or below ``zero_tol``, ``missing``, ``undefined``, ``nan``)
    and an overall ``verdict`` (see :mod:`engine.evaluation.compare`).
    """
    if isinstance(baseline, Canvas) and isinstance(candidate, Canvas):
        from engine.evaluation.metrics import compare_canvases

        return compare_canvases(baseline, candidate)
    from engine.evaluation.compare import compare_stats

    return compare_stats(baseline, candidate, tol=zero_tol, rtol=rtol)
