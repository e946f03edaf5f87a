"""The training loop, driven by Lightning Fabric (accelerator, devices, strategy, precision).

Batch order derives from ``(seed, epoch)`` alone and the loop holds no other random state,
so a run resumed from the checkpoint of epoch k continues exactly as an uninterrupted one.
Events go to ``emit``; a :class:`~engine.events.RunControl` pauses or stops between steps.
A run changes no process-wide state beyond its own duration: its seed acts in a fork of torch's
generator (:func:`seeded_model`) and the deterministic/cuDNN flags are restored when it ends
(:func:`scoped_flags`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.backends.torch_backend import resolve_device
from engine.data import Dataset
from engine.errors import DivergedError, InputError
from engine.events import (
    CanvasSnapshot,
    Epoch,
    Event,
    Failed,
    Finished,
    PatchGridSnapshot,
    RunControl,
    RunStarted,
    StatsSnapshot,
    Step,
    Stopped,
    StopRequested,
    Validation,
)
from engine.network.augment import SymmetryAugmenter
from engine.network.batches import PreparedData, prepare
from engine.network.bundles import save_bundle
from engine.network.checkpoint import load_checkpoint, save_checkpoint
from engine.network.config import TrainConfig
from engine.network.flatness import output_flatness
from engine.network.graphs import StepGraph
from engine.network.losses import compute_loss
from engine.network.model import NetworkConfig, PtychoNet, default_bottleneck, default_global_mixing
from engine.network.patch_stats import check_collapse, collect_stats, stitch_groups
from engine.network.patterns import mask_tensor
from engine.network.physics import PhysicsModel, group_extent
from engine.network.predict import batch_slices, group_batch
from engine.network.regime import check_far_field
from engine.network.step import train_step
from engine.physics.grouping import Groups
from engine.physics.stitching import CanvasGeometry
from engine.rundir import check_writable, open_run

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run produced: paths, per-epoch history and the final metrics."""

    out: Path
    bundle: Path
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False
    rank: int = 0  # the process's rank in multi-process training; 0 writes and reports


def make_fabric(cfg: TrainConfig, device: str | None = None):
    """Lightning Fabric for ``cfg``; ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:k"``), when
    given, replaces ``cfg.accelerator`` and picks the one device to train on."""
    try:
        from lightning_fabric import Fabric
    except ImportError:  # the full ``lightning`` distribution carries it as lightning.fabric
        from lightning.fabric import Fabric

    precision = "32-true" if cfg.precision == "32" else cfg.precision
    accelerator, devices = cfg.accelerator, cfg.devices
    if device is not None and device != "auto":
        dev = resolve_device(device)
        accelerator = dev.type
        devices = [dev.index] if dev.index is not None else cfg.devices
    if accelerator in ("cuda", "gpu") and not torch.cuda.is_available():
        raise InputError("accelerator", "an accelerator this machine has (auto or cpu: no CUDA "
                         "device is visible)", repr(accelerator))
    try:
        fabric = Fabric(accelerator=accelerator, devices=devices, strategy=cfg.strategy,
                        precision=precision)
    except (ValueError, RuntimeError, TypeError) as exc:
        # Lightning's own refusal (an unknown strategy or accelerator, too many devices...)
        # in one line: its first sentence
        reason = str(exc).strip().split("\n")[0].split(". ")[0]
        raise InputError("accelerator/devices/strategy/precision", "a combination Lightning "
                         "Fabric accepts", reason) from None
    if cfg.devices > 1 or cfg.strategy not in ("auto", "single_device"):
        fabric.launch()
    return fabric


def network_config(N: int, cfg: TrainConfig) -> NetworkConfig:
    """The network ``cfg`` builds for patterns of size N, its defaults resolved."""
    bottleneck = cfg.bottleneck or default_bottleneck(N)
    mixing = default_global_mixing(N, bottleneck) if cfg.global_mixing is None \
        else cfg.global_mixing
    return NetworkConfig(N=N, C=cfg.C, base_channels=cfg.base_channels,
                         input_transform=cfg.input_transform, norm=cfg.norm, upsample=cfg.upsample,
                         downsample=cfg.downsample, bottleneck=bottleneck, global_mixing=mixing)


def build_model(N: int, cfg: TrainConfig, probe: np.ndarray) -> PhysicsModel:
    net = PtychoNet(network_config(N, cfg))
    return PhysicsModel(net, probe, cfg.use_object_big)


# model initialisation draws from torch's global generator: it runs under this lock in a
# fork of that generator seeded with the run's seed, so runs starting at once on two threads
# neither interleave their draws nor move the caller's generator
_INIT_LOCK = threading.Lock()
# the process-wide flags a run sets (deterministic algorithms, cuDNN benchmark, the cuBLAS
# workspace): saved when the first of the concurrent runs starts, restored when the last ends
_FLAGS_LOCK = threading.Lock()
_flag_users = 0
_saved_flags: tuple[bool, bool, bool, str | None] | None = None


def _cuda_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def seeded_model(N: int, cfg: TrainConfig, probe: np.ndarray) -> PhysicsModel:  # noqa: N803
    """The run's initial model: ``cfg.seed`` decides its weights, whatever else runs."""
    with _INIT_LOCK, torch.random.fork_rng(devices=_cuda_devices()):
        torch.manual_seed(cfg.seed)
        return build_model(N, cfg, probe)


@contextlib.contextmanager
def scoped_flags(cfg: TrainConfig) -> Iterator[None]:
    """The process-wide torch flags of a run, restored when it (and any run beside it) ends.

    Deterministic algorithms are switched on for ``cfg.deterministic``; the loop may switch
    cuDNN's benchmark mode on. On exit the caller's flags and ``CUBLAS_WORKSPACE_CONFIG``
    are back as they were, so a training beside a preview in one process leaves nothing
    behind.
    """
    global _flag_users, _saved_flags
    with _FLAGS_LOCK:
        if _flag_users == 0:
            _saved_flags = (torch.are_deterministic_algorithms_enabled(),
                            torch.is_deterministic_algorithms_warn_only_enabled(),
                            torch.backends.cudnn.benchmark,
                            os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
        _flag_users += 1
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        with _FLAGS_LOCK:
            _flag_users -= 1
            if _flag_users == 0 and _saved_flags is not None:
                det, warn_only, bench, cublas = _saved_flags
                torch.use_deterministic_algorithms(det, warn_only=warn_only)
                torch.backends.cudnn.benchmark = bench
                if cublas is None:
                    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
                else:
                    os.environ["CUBLAS_WORKSPACE_CONFIG"] = cublas


def bundle_meta(prep: PreparedData, N: int, cfg: TrainConfig, metrics: dict) -> dict[str, Any]:
    return {
        "intensity_scale": prep.s, "probe_factor": prep.probe_factor, "N": N,
        "gridsize": cfg.gridsize, "object_big": cfg.use_object_big,
        "network": network_config(N, cfg).to_dict(),
        "config": cfg.to_dict(), "data_digest": prep.digest,
        "target_factor": prep.target_factor, "metrics": metrics,
    }


def train(ds: Dataset, cfg: TrainConfig, out: str | os.PathLike[str], *,
          emit: Callable[[Event], None] | None = None, control: RunControl | None = None,
          resume: bool = False, overwrite: bool = False,
          device: str | None = None) -> TrainResult:
    """Train on ``ds``; write ``<out>/checkpoint`` and ``<out>/bundle`` after every epoch.

    ``out`` is held for the run (:func:`engine.rundir.open_run`): a directory that holds
    another run is refused unless ``resume`` (continue it) or ``overwrite`` (replace it).
    Returns the :class:`TrainResult`; a stop request ends the run after the current step
    with the last epoch's bundle intact (``stopped=True``). ``device`` (``"cpu"``,
    ``"cuda"``, ``"cuda:k"``; ``None`` or ``"auto"``: ``cfg.accelerator`` decides) is where
    it trains.
    """
    check_far_field(ds, "training")
    out = check_writable(out, directory=True)
    emit = emit or (lambda e: None)
    control = control or RunControl()
    emit(RunStarted(kind="train", config=cfg.to_dict()))
    try:
        with contextlib.ExitStack() as run_dir, scoped_flags(cfg):
            return _train(ds, cfg, out, emit, control, resume, overwrite, run_dir, device)
    except Exception as exc:
        emit(Failed.from_exception(exc))
        raise
    finally:
        if torch.cuda.is_available():
            # the run's model, optimiser and batches are unreferenced now: hand the cached
            # blocks back so a GUI's next action (or another process) can use them
            torch.cuda.empty_cache()


def _train(ds: Dataset, cfg: TrainConfig, out: Path, emit, control: RunControl,
           resume: bool, overwrite: bool, run_dir: contextlib.ExitStack,
           device: str | None = None) -> TrainResult:
    prep = prepare(ds, cfg.gridsize, cfg.neighbor_count, cfg.n_groups, cfg.val_fraction,
                   cfg.seed, cfg.loss == "supervised")
    fabric = make_fabric(cfg, device)
    if fabric.global_rank == 0:  # the writer holds the run directory; other ranks only train
        run_dir.enter_context(open_run(out, overwrite=overwrite, resume=resume))
    cuda = fabric.device.type == "cuda"
    if cuda and not cfg.deterministic:
        # batches share one shape: cuDNN's timed algorithm choice pays for itself at once
        torch.backends.cudnn.benchmark = True
    N = ds.N
    model = seeded_model(N, cfg, prep.probe)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # the fused kernel: one launch for all parameters instead of a handful per tensor;
    # capturable keeps its step count on the device, which a captured graph needs
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True if cuda else None,
                           capturable=cfg.cuda_graphs and cuda)
    start_epoch, step, history = 0, 0, []
    ckpt_dir, bundle_dir = out / "checkpoint", out / "bundle"
    if resume:
        state = load_checkpoint(ckpt_dir, model, opt,
                                check=lambda saved: _resumable(saved, cfg, prep.digest, N))
        start_epoch, step, history = state["epoch"], state["step"], state["history"]
    raw_model, raw_opt = model, opt
    if cfg.compile:
        # compile the bound forward, not the module: state_dict keys (checkpoints, bundles)
        # stay those of the plain network
        model.net.forward = torch.compile(model.net.forward)
    model, opt = fabric.setup(model, opt)
    dev = fabric.device
    # in memory: one tensor on the device; a lazy stack: read a batch of groups at a time
    x = prep.inputs(dev)
    mask = mask_tensor(prep.mask, dev)
    target = None if prep.target is None else torch.from_numpy(prep.target).to(dev)
    G = prep.train.n_groups
    metrics: dict[str, Any] = {}
    stopped = False
    rank, world = fabric.global_rank, fabric.world_size
    if rank != 0:
        # only rank 0 reports: the events of the other ranks would repeat its own
        emit = _silent
    # every rank takes the same number of groups (the last G mod world of an epoch's
    # permutation sit out): ranks with different step counts would desynchronise the
    # gradient all-reduce
    per_rank = G // world
    if per_rank == 0:
        raise InputError("devices", f"at most {G} processes for {G} training groups",
                         str(world))
    per_epoch = -(-per_rank // cfg.batch_size)
    total_steps = per_epoch * cfg.epochs
    augmenter = SymmetryAugmenter(prep.probe, cfg.seed) if cfg.augment == "symmetry" else None
    # the groups' local canvas, measured once on the host: no device sync per batch
    extent = _extent(prep, N, augmenter) if cfg.use_object_big and cfg.C > 1 else None
    clock = _Budget(cfg.time_limit, per_epoch, total_steps)
    graph = _step_graph(cfg, dev, raw_model, raw_opt, extent, mask=mask)
    # snapshots: canvases on the whole scan's geometry (object coordinates), whatever part
    # of it they cover
    geometry = CanvasGeometry.from_positions(ds.positions, N)
    scan = _whole_scan(prep) if cfg.snapshot_every else None
    # within-epoch snapshots (snapshot_seconds): the first after the first steps, then
    # throttled; each costs an inference of the scan, so the next waits 4× what it cost
    early = bool(cfg.snapshot_every and cfg.snapshot_seconds) and fabric.global_rank == 0
    next_snapshot = time.perf_counter() if early else float("inf")
    try:
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            perm = np.random.default_rng([cfg.seed, epoch]).permutation(G)
            perm = perm[:per_rank * world][rank::world]
            total, count, t0 = 0.0, 0, time.perf_counter()
            pending = None
            chosen = augmenter.choices(epoch, per_epoch) if augmenter else None
            for b, sl in enumerate(batch_slices(perm.size, cfg.batch_size)):
                control.checkpoint()
                idx = perm[sl]
                xb, off, tb = group_batch(x, prep.train, idx, target)
                if chosen is not None:
                    xb, off, tb = augmenter.apply(chosen[b], xb, off, tb)
                if cfg.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                lr = cfg.lr_at(step, total_steps)
                if graph is not None and graph.fits(xb):
                    loss = graph.step(xb, off, tb, lr)
                else:
                    # beside a graph, gradients are zeroed in place: it writes into them
                    loss = train_step(model, opt, cfg.loss, xb, off, extent, tb, lr=lr,
                                      zero_in_place=graph is not None,
                                      backward=fabric.backward, mask=mask)
                step += 1
                # the previous step's loss is read once this step is queued, so reading
                # it never leaves the GPU idle
                if pending is not None:
                    total, count = total + _report(emit, *pending), count + pending[2]
                pending = (loss.detach(), step, len(idx), epoch + 1, total_steps)
                now = time.perf_counter()
                if now >= next_snapshot and b + 1 < per_epoch:
                    canvas, _ = stitch_groups(raw_model, x, scan, max(cfg.batch_size, 64),
                                              geometry=geometry)
                    _emit_patch_grid(emit, raw_model, x, prep.train, idx, cfg, extent,
                                     epoch + 1)
                    raw_model.train()
                    emit(CanvasSnapshot.of(canvas, f"epoch {epoch + 1}, step {step}"))
                    cost = time.perf_counter() - now
                    next_snapshot = now + max(cfg.snapshot_seconds, 4 * cost)
            if pending is not None:
                total, count = total + _report(emit, *pending), count + pending[2]
            snapshot = bool(cfg.snapshot_every) and (epoch + 1) % cfg.snapshot_every == 0
            if snapshot:
                _emit_patch_grid(emit, raw_model, x, prep.train, perm[sl], cfg, extent,
                                 epoch + 1)
            if world > 1:  # the epoch's loss and pattern count over all ranks
                total, count = fabric.all_reduce(
                    torch.tensor([total, count], dtype=torch.float64, device=dev),
                    reduce_op="sum").tolist()
            elapsed = time.perf_counter() - t0
            record = {"epoch": epoch + 1, "loss": total / max(count, 1),
                      "patterns_per_s": count * cfg.C / elapsed if elapsed > 0 else float("nan")}
            emit(Epoch(epoch=epoch + 1, metrics=dict(record)))
            if prep.val is not None:
                record["val_loss"], canvas, stats = _validate(raw_model, x, target, prep, cfg,
                                                              geometry, mask)
                guard = check_collapse(stats["record"], f"validation, epoch {epoch + 1}")
                record["collapsed"] = guard["collapsed"]
                emit(Validation(epoch=epoch + 1, metrics={"loss": record["val_loss"],
                                                          "collapsed": guard["collapsed"]}))
                emit(StatsSnapshot(phase="validation", record=stats["record"],
                                   sample_patches=stats["samples"]))
                if not snapshot:  # the whole scan's canvas below includes this stripe
                    emit(CanvasSnapshot.of(canvas, f"validation, epoch {epoch + 1}"))
            if snapshot:
                canvas, _ = stitch_groups(raw_model, x, scan, max(cfg.batch_size, 64),
                                          geometry=geometry)
                raw_model.train()
                emit(CanvasSnapshot.of(canvas, f"epoch {epoch + 1}"))
            history.append(record)
            metrics = {"train_loss": record["loss"], "val_loss": record.get("val_loss"),
                       "epochs": epoch + 1, "steps": step}
            if "collapsed" in record:
                metrics["collapsed"] = record["collapsed"]
                metrics["collapse"] = guard
            if cfg.time_limit is not None:
                used = clock.elapsed()
                if world > 1:  # rank 0's clock decides for all: the ranks must stop together
                    used = fabric.broadcast(used, 0)
                total_steps = clock.replan(step, used)
            last = epoch + 1 == cfg.epochs or step >= total_steps
            if fabric.global_rank == 0 and (last or (epoch + 1) % cfg.checkpoint_every == 0):
                save_checkpoint(ckpt_dir, raw_model, raw_opt, {
                    "epoch": epoch + 1, "step": step, "history": history,
                    "config": cfg.to_dict(), "data_digest": prep.digest})
                save_bundle(bundle_dir, raw_model.net.state_dict(), prep.probe,
                            bundle_meta(prep, N, cfg, metrics))
            if last:
                break
    except StopRequested:
        stopped = True
    if not stopped and fabric.global_rank == 0:
        train_stats = collect_stats(raw_model, x, prep.train, cfg.batch_size, prep.s, "train",
                                    str(dev), out / "analysis" if cfg.log_patch_stats else None,
                                    cfg.patch_stats_limit,
                                    emit=emit if cfg.log_patch_stats else None)
        metrics["train_patch_stats"] = train_stats
        # the run's verdict: the trained network on its whole training set, and the last
        # validation when there was one
        guard = check_collapse(train_stats, "training set, end of run")
        metrics["collapsed"] = guard["collapsed"] or bool(metrics.get("collapsed"))
        if guard["collapsed"] or "collapse" not in metrics:
            metrics["collapse"] = guard
        # a run that ends normally can still hold a network that draws a flat canvas
        metrics["flat_output"] = output_flatness(raw_model, x, prep, ds, cfg.batch_size)
        save_bundle(bundle_dir, raw_model.net.state_dict(), prep.probe,
                    bundle_meta(prep, N, cfg, metrics))
    summary = {"stopped": stopped, "history": history, **metrics}
    emit(Stopped(summary=summary) if stopped else Finished(summary=summary))
    return TrainResult(out, bundle_dir, history, metrics, stopped, rank)


def _whole_scan(prep: PreparedData) -> Groups:
    """Every group of the run, training and validation: the whole scan's snapshot."""
    parts = [prep.train] + ([prep.val] if prep.val is not None and prep.val.n_groups else [])
    return Groups(np.concatenate([g.indices for g in parts]),
                  np.concatenate([g.positions for g in parts]), prep.train.gridsize)


@torch.no_grad()
def _emit_patch_grid(emit: Callable[[Event], None], model: PhysicsModel, x: torch.Tensor,
                     groups: Groups, idx: np.ndarray, cfg: TrainConfig,
                     extent: tuple[int, int] | None, epoch: int) -> None:
    """The predicted patches of the first ``cfg.snapshot_groups`` groups of the batch."""
    xb, off, _ = group_batch(x, groups, idx[:cfg.snapshot_groups])
    obj = model.patches(xb, off, extent).detach().to(torch.complex64).cpu().numpy()
    emit(PatchGridSnapshot(amplitude=np.abs(obj).astype(np.float32),
                           phase=np.angle(obj).astype(np.float32), gridsize=cfg.gridsize,
                           label=f"epoch {epoch}"))


def _step_graph(cfg: TrainConfig, device: torch.device, model: PhysicsModel,
                opt: torch.optim.Optimizer, extent: tuple[int, int] | None,
                graph_factory: Callable[[], Any] | None = None,
                mask: torch.Tensor | None = None) -> StepGraph | None:
    """The captured step of ``--cuda-graphs`` (``graph_factory``: a stand-in for tests)."""
    if not cfg.cuda_graphs:
        return None
    if device.type != "cuda" and graph_factory is None:
        raise InputError("cuda_graphs", "a CUDA device (accelerator cuda)", str(device))
    return StepGraph(model, opt, cfg.loss, extent, graph_factory, mask)


def _resumable(state: dict[str, Any], cfg: TrainConfig, digest: str, N: int) -> None:  # noqa: N803
    """Refuse a checkpoint of another configuration or other data (one-line error)."""
    # a key the checkpoint predates had the value the code used before it existed
    saved = TrainConfig.from_dict({**TrainConfig.KEYS_ADDED, **state["config"]})
    # network fields compared as built: "the default" and the value it stands for are one
    # network
    was = {**saved.to_dict(), **network_config(N, saved).to_dict()}
    now = {**cfg.to_dict(), **network_config(N, cfg).to_dict()}
    for key in TrainConfig.RESUME_KEYS:
        if was[key] != now[key]:
            raise InputError(f"resume ({key})", f"the checkpoint's {was[key]!r}",
                             repr(now[key]))
    if state["data_digest"] != digest:
        raise InputError("resume", "the data the checkpoint was trained on",
                         "different data (digest mismatch)")


def _report(emit: Callable[[Event], None], loss: torch.Tensor, step: int, groups: int,
            epoch: int, total_steps: int) -> float:
    """Emit one step's loss; return its sum over the step's groups. A NaN or infinite loss
    ends the run (:class:`~engine.errors.DivergedError`) before the epoch's checkpoint and
    bundle are written: what is on disk stays the last finite state."""
    value = float(loss)
    if not math.isfinite(value):
        raise DivergedError("training", step, value)
    emit(Step(step=step, total=total_steps, epoch=epoch, loss=value))
    return value * groups


def _extent(prep: PreparedData, N: int,  # noqa: N803
            augmenter: SymmetryAugmenter | None = None) -> tuple[int, int]:
    """The local canvas that holds every training and validation group (and every
    transformed copy of the training groups when augmenting)."""
    train = prep.train.local_offsets
    sets = [train if augmenter is None else augmenter.offsets_union(train)]
    if prep.val is not None and prep.val.n_groups:
        sets.append(prep.val.local_offsets)
    return group_extent(np.concatenate(sets), N)


class _Budget:
    """The step plan of a time-limited run (``time_limit``), re-made after each epoch.

    The mean wall time of the epochs so far (validation and saving included) predicts how
    many more whole epochs fit; the plan ends there, never beyond the configured epochs.
    The first epoch's warm-up makes the early plans cautious; later ones correct them.
    """

    def __init__(self, limit: float | None, per_epoch: int, total: int) -> None:
        self.limit, self.per_epoch, self.cap = limit, per_epoch, total
        self.t0, self.epochs = time.perf_counter(), 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def replan(self, step: int, used: float) -> int:
        """The total step count after ``step`` steps and ``used`` seconds."""
        if self.limit is None:
            return self.cap
        self.epochs += 1
        epochs_left = int(max(0.0, self.limit - used) // (used / self.epochs))
        return min(self.cap, step + epochs_left * self.per_epoch)


def _silent(event: Event) -> None:
    """The event sink of ranks other than 0."""


@torch.no_grad()
def _validate(model: PhysicsModel, x: torch.Tensor, target: torch.Tensor | None,
              prep: PreparedData, cfg: TrainConfig, geometry: CanvasGeometry | None = None,
              mask: torch.Tensor | None = None):
    """Validation loss, stitched canvas and a statistics record of the held-out region.

    One prediction pass gives all three; the loss stays on the device until the end.
    """
    val = prep.val
    sums: list[torch.Tensor] = []

    def add_loss(sl: slice, obj: torch.Tensor, pred: torch.Tensor, xb: torch.Tensor) -> None:
        tb = None if target is None else target[torch.as_tensor(val.indices[sl],
                                                                device=x.device)]
        sums.append(compute_loss(cfg.loss, obj, pred, xb, tb, mask) * xb.shape[0])

    canvas, stats = stitch_groups(model, x, val, max(cfg.batch_size, 64), geometry=geometry,
                                  on_prediction=add_loss)
    model.train()
    loss = float(torch.stack(sums).sum()) / max(val.n_groups, 1) if sums else float("nan")
    return loss, canvas, stats
