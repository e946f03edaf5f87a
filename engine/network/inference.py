"""Inference with a trained bundle: scale, group, predict, stitch
(docs/conventions.md#intensity-scaling, #stitching).

The intensity scale comes from the bundle by default (``scaling`` mode ``bundle``); ``data``
recomputes it from the data at hand and ``fixed=<v>`` sets it. The log says which and its
value ("from bundle: 9.882118").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from engine.atomic import write_json
from engine.backends.torch_backend import resolve_device
from engine.data import Dataset
from engine.errors import InputError
from engine.evaluation.metrics import to_jsonable
from engine.evaluation.report import write_canvas_pngs
from engine.events import (
    CanvasSnapshot,
    Event,
    Failed,
    Finished,
    Progress,
    RunControl,
    RunStarted,
    StatsSnapshot,
    Stopped,
    StopRequested,
)
from engine.network.bundles import Bundle, load_bundle
from engine.network.model import NetworkConfig, PtychoNet
from engine.network.patch_stats import (
    NETWORK_STITCH,
    StatsCollector,
    check_collapse,
    stitch_groups,
)
from engine.network.patterns import input_patterns
from engine.network.physics import PhysicsModel
from engine.network.regime import check_far_field
from engine.options import Options, option, validate
from engine.physics.grouping import GroupingConfig, Groups, make_groups
from engine.physics.scaling import ScalingConfig, resolve_scale
from engine.physics.stitching import Canvas, StitchConfig

log = logging.getLogger(__name__)

InferPrecision = Literal["32", "bf16"]
INFER_PRECISIONS: tuple[str, ...] = get_args(InferPrecision)


@dataclass(frozen=True)
class InferConfig(Options):
    """Inference options.

    Parameters
    ----------
    scaling : where the intensity scale comes from (default: the bundle).
    batch_size : groups per forward pass.
    device : ``auto``, ``cpu`` or ``cuda[:k]``.
    gridsize : must equal the bundle's when given (a guard against mixing models).
    n_groups : groups to predict (default: one per position).
    seed : grouping seed (default: the training seed).
    stitch : crop and window of the reassembly (default
        :data:`~engine.network.patch_stats.NETWORK_STITCH`: the probe's |P|² window).
    log_patch_stats, patch_stats_limit : write statistics (docs/conventions.md#statistics) for the
        first K batches.
    debug_dump : keep every patch amplitude for :mod:`engine.evaluation.debug_dump`.
    precision : ``"32"`` or ``"bf16"``: the network's weights and activations in bfloat16
        (the physics and the stitching stay fp32), a GPU option: half the memory traffic of
        the network's passes, for a canvas 0.3 % (RMS) away from fp32's (measured at N = 64;
        `benchmarks/RESULTS.md`). CPUs without bf16 units run it slower.
    """

    scaling: ScalingConfig = option(help="where the intensity scale comes from",
                                    default_factory=ScalingConfig)
    batch_size: int = option(1024, "groups per forward pass", minimum=1)
    device: str = option("auto", "auto, cpu or cuda[:k]")
    gridsize: int | None = option(None, "must equal the bundle's when given (None: the bundle's)",
                                  minimum=1, advanced=True)
    n_groups: int | None = option(None, "groups to predict (None: one per position)",
                                  minimum=1)
    seed: int | None = option(None, "grouping seed (None: the training seed)", minimum=0,
                              advanced=True)
    stitch: StitchConfig = option(NETWORK_STITCH, "crop and window of the reassembly")
    log_patch_stats: bool = option(False, "statistics of the first batches (see conventions)")
    patch_stats_limit: int = option(2, "batches whose statistics are written", minimum=1,
                                    advanced=True)
    debug_dump: bool = option(False, "keep every patch amplitude for the debug figures",
                              advanced=True)
    precision: InferPrecision = option("32", "network in fp32 or bf16 (a GPU option)",
                                       advanced=True)

    def __post_init__(self) -> None:
        validate(self)


@dataclass
class InferenceResult:
    """The stitched canvas and how it was made."""

    canvas: Canvas
    scale: float
    scale_source: str
    stats: dict[str, Any]
    groups: Groups
    bundle: Bundle
    patches_amp: np.ndarray | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    collapse: dict[str, Any] = field(default_factory=dict)

    @property
    def collapsed(self) -> bool:
        """Whether the collapse guards fired on the whole-set statistics."""
        return bool(self.collapse.get("collapsed"))

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds: scale, whole-set statistics and the guards' verdict."""
        c = self.canvas
        return {"bundle": str(self.bundle.path), "intensity_scale": self.scale,
                "scale_source": self.scale_source, "n_groups": self.groups.n_groups,
                "gridsize": self.groups.gridsize, "canvas_shape": list(c.canvas.shape),
                "origin": list(c.origin), "stats": self.stats,
                "collapsed": self.collapsed, "collapse": self.collapse}


def load_model(bundle: Bundle, device: torch.device, precision: str = "32") -> PhysicsModel:
    """The network of ``bundle`` with its normalised probe, in eval mode on ``device``;
    ``precision="bf16"`` casts the network (not the probe) to bfloat16."""
    net = PtychoNet(NetworkConfig(**bundle.meta["network"]))
    net.load_state_dict(bundle.weights)
    if precision == "bf16":
        net = net.to(torch.bfloat16)
    model = PhysicsModel(net, bundle.probe, bundle.meta["object_big"]).to(device).eval()
    if device.type == "cpu":
        # oneDNN runs the convolutions ~1.7x faster with NHWC weights on this CPU
        # (`ptycho bench pinn --channels-last`); on a GPU that layout was slower (H200)
        model = model.to(memory_format=torch.channels_last)
    return model


def check_compatible(bundle: Bundle, ds: Dataset, config: InferConfig) -> None:
    """One-line errors for data or options a bundle cannot serve."""
    if ds.diffraction is None:
        raise InputError("inference data", "a 'diffraction' array")
    check_far_field(ds, "inference")
    if ds.N != bundle.N:
        raise InputError("data pattern size N", f"the bundle's N = {bundle.N}", f"N = {ds.N}")
    if config.gridsize is not None and config.gridsize != bundle.gridsize:
        raise InputError("gridsize", f"the bundle's gridsize {bundle.gridsize}",
                         str(config.gridsize))
    C = bundle.gridsize**2
    if ds.n < C:
        raise InputError("inference data", f"at least C = {C} positions for the bundle's "
                         f"gridsize {bundle.gridsize}", f"n = {ds.n}")


def infer(bundle: Bundle | str | os.PathLike[str], ds: Dataset,
          config: InferConfig | None = None, *, emit: Callable[[Event], None] | None = None,
          out_dir: str | os.PathLike[str] | None = None,
          control: RunControl | None = None) -> InferenceResult:
    """Reconstruct the object of ``ds`` with a trained bundle.

    ``out_dir`` receives ``analysis/stats_inference.json`` (and patch grids) when
    ``config.log_patch_stats``. ``control`` is checked before every batch: a stop raises
    :class:`~engine.events.StopRequested` (after a ``Stopped`` event) and writes nothing.
    """
    config = config or InferConfig()
    emit = emit or (lambda e: None)
    try:
        return _infer(bundle, ds, config, emit, out_dir, control)
    except StopRequested:
        emit(Stopped(summary={}))
        raise
    except Exception as exc:
        emit(Failed.from_exception(exc))
        raise


def _infer(bundle: Bundle | str | os.PathLike[str], ds: Dataset, config: InferConfig,
           emit: Callable[[Event], None], out_dir: str | os.PathLike[str] | None,
           control: RunControl | None) -> InferenceResult:
    device = resolve_device(config.device)
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle, device)
    check_compatible(bundle, ds, config)
    emit(RunStarted(kind="infer", config={"bundle": str(bundle.path),
                                          "scaling": config.scaling.mode,
                                          "precision": config.precision}))
    s, source = resolve_scale(config.scaling, ds.diffraction, bundle.intensity_scale,
                              ds.pixel_mask, config.batch_size)
    log.info("intensity scale %s", source)
    model = load_model(bundle, device, config.precision)
    # masked detector pixels enter as 0; a lazy stack is read a batch of groups at a time
    x = input_patterns(ds.diffraction, s, ds.pixel_mask, device)
    tcfg = bundle.meta.get("config", {})
    K = tcfg.get("neighbor_count")
    if K is not None:
        K = min(K, ds.n - 1)
    groups = make_groups(ds.positions, GroupingConfig(
        bundle.gridsize, K, config.n_groups,
        config.seed if config.seed is not None else int(tcfg.get("seed", 0))))
    collector = StatsCollector(groups, s, "inference", str(device), config.patch_stats_limit,
                               emit if config.log_patch_stats else None)
    kept: list[np.ndarray] = []
    n_batches = -(-groups.n_groups // config.batch_size)

    def on_batch(sl: slice, obj: torch.Tensor) -> None:
        if control is not None:
            control.checkpoint()
        collector.add(sl, obj)
        if config.debug_dump:
            kept.append(obj.abs().cpu().numpy())
        emit(Progress(task="infer", done=collector.batches, total=n_batches))

    canvas, first = stitch_groups(model, x, groups, config.batch_size, config=config.stitch,
                                  on_batch=on_batch)
    analysis = Path(out_dir) / "analysis" if (out_dir and config.log_patch_stats) else None
    stats = collector.finish(analysis, canvas)
    guard = check_collapse(stats, "inference, every group")
    emit(StatsSnapshot(phase="inference", record=stats, sample_patches=first.get("samples")))
    emit(CanvasSnapshot.of(canvas, "inference"))
    emit(Finished(summary={"intensity_scale": s, "scale_source": source, **{
        k: stats[k] for k in ("mean", "std", "var_zero_mean")},
        "collapsed": guard["collapsed"]}))
    return InferenceResult(canvas, s, source, stats, groups, bundle,
                           np.concatenate(kept) if kept else None, collector.log.records,
                           guard)


def infer_canvas(bundle_dir: str | os.PathLike[str], dataset: Dataset) -> Canvas:
    """The stitched canvas of ``dataset`` with the bundle's own scale (default options)."""
    return infer(bundle_dir, dataset).canvas


def write_outputs(result: InferenceResult, out_dir: str | os.PathLike[str],
                  debug_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """``recon.npz`` (Canvas.save layout), ``amplitude.png``, ``phase.png``,
    ``summary.json`` (:meth:`InferenceResult.summary`: scale, statistics, ``collapsed``)
    and, when the result kept its patches, the debug dump in ``debug_dir`` (default
    ``<out_dir>/debug``)."""
    d = Path(out_dir)
    paths = [result.canvas.save(d / "recon.npz")]
    paths += write_canvas_pngs(result.canvas, d)
    paths.append(write_json(d / "summary.json", to_jsonable(result.summary())))
    if result.patches_amp is not None:
        from engine.evaluation.debug_dump import write_debug_dump

        g = result.groups
        paths += write_debug_dump(d / "debug" if debug_dir is None else debug_dir,
                                  result.patches_amp, g.offsets, g.local_offsets,
                                  result.canvas)
    return paths
