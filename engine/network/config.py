"""The one options class of network training, validated and JSON-serialisable."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from engine.errors import InputError
from engine.network.choices import Downsample, InputTransform, LossName, Upsample
from engine.options import Options, option, validate

Accelerator = Literal["auto", "cpu", "cuda", "gpu", "mps"]
Precision = Literal["32", "32-true", "bf16-mixed", "bf16-true", "16-mixed"]
LrSchedule = Literal["constant", "cosine"]
Augment = Literal["none", "symmetry"]
ACCELERATORS: tuple[str, ...] = get_args(Accelerator)
PRECISIONS: tuple[str, ...] = get_args(Precision)
LR_SCHEDULES: tuple[str, ...] = get_args(LrSchedule)
AUGMENTS: tuple[str, ...] = get_args(Augment)
# the command line's words for TrainConfig.global_mixing
GLOBAL_MIXING = {"auto": None, "on": True, "off": False}


@dataclass(frozen=True)
class TrainConfig(Options):
    """Everything that defines a training run; same config and data ⇒ same model (CPU).

    Parameters
    ----------
    gridsize, neighbor_count, n_groups : grouping (docs/conventions.md#grouping); ``n_groups``
        caps the groups of the training region (``None``: one per position).
    batch_size : groups per optimiser step.
    epochs : passes over the training groups.
    checkpoint_every : epochs between checkpoint and bundle writes (the last epoch is always
        written). Writing costs a device-to-host copy, two files and their digests; with
        epochs of a few GPU steps that is most of the run, so short epochs want a larger
        value. A stop or a crash falls back to the last written epoch.
    time_limit : wall-clock budget of the training loop, in seconds (``None``: none). The
        run ends after the last epoch that fits, and the learning-rate schedule is re-planned
        after each epoch to end there; a time-limited run is therefore not reproducible
        step for step.
    lr : Adam learning rate (the peak of the schedule). 5e-4: at N = 64 with the default
        network, 1e-3 made gridsize 1 reach r 0.79 instead of 0.89-0.91 at 4,000 steps, and
        a long gridsize-2 run at 1e-3 diverged for a while (``benchmarks/RESULTS.md``).
    lr_schedule : ``constant`` or ``cosine`` (linear warm-up over ``warmup_fraction`` of the
        steps, then a cosine decay to ``lr / 100`` at the last step). The rate is a function
        of the step alone, so a resumed run follows the same schedule.
    warmup_fraction : share of the steps spent warming up (cosine schedule).
    loss : ``poisson``, ``mae`` or ``supervised`` (needs ``Y`` in the data).
    object_big : merge/re-extract within a group (``None``: on for gridsize > 1).
    base_channels : width of the first network level.
    input_transform : fixed map of X before the first convolution (sqrt, log1p, none).
    norm : GroupNorm after each convolution.
    upsample, downsample : how the decoder and encoder change resolution (see
        ``NetworkConfig``); the learned ``shuffle`` and ``strided`` are the defaults because
        the fixed ``nearest`` and ``avg`` cap the detail the network can reconstruct.
    bottleneck : side of the network's coarsest level (a power of two, 4 to N/2); sets the
        depth, log2(N / bottleneck). ``None``: :func:`~engine.network.model.default_bottleneck`
        of the data's N.
    global_mixing : a learned map across all bottleneck cells
        (:class:`~engine.network.model.GlobalMixing`). ``None``:
        :func:`~engine.network.model.default_global_mixing` (on where a cell sees less than
        the whole pattern: N = 64 and beyond at the default depth).
    augment : ``none`` or ``symmetry``: each training batch transformed by a random mirror
        or transposition that leaves the probe unchanged, which makes the transformed
        patterns exact measurements of unseen object regions (:mod:`engine.network.augment`;
        an error for a probe without such a symmetry).
    val_fraction : share of the scan (the highest-x stripe) held out for validation.
    seed : grouping, initialisation and batch order.
    deterministic : deterministic algorithms (bit-identical CPU losses across runs).
    accelerator, devices, strategy, precision : passed to Lightning Fabric.
    channels_last, compile : GPU levers (memory format, ``torch.compile``).
    cuda_graphs : GPU lever: each full batch's step (forward, loss, backward, Adam) replayed
        as one captured CUDA graph (:mod:`engine.network.graphs`); one CUDA device, fp32,
        without ``compile``. A partial last batch runs eagerly.
    log_patch_stats, patch_stats_limit : statistics (docs/conventions.md#statistics) of the
        first K batches.
    snapshot_every : every this many epochs, emit a ``CanvasSnapshot`` of the whole scan and
        a ``PatchGridSnapshot`` of the last batch (live views; 0: none, and the canvas
        snapshot covers only the validation stripe, which validation stitches anyway).
    snapshot_groups : groups of the batch a ``PatchGridSnapshot`` shows.
    snapshot_seconds : with ``snapshot_every``, also within an epoch: a whole-scan
        ``CanvasSnapshot`` and a ``PatchGridSnapshot`` after the first steps, then at most
        one every this many seconds (and never more than a fifth of the time: each costs an
        inference of the scan); 0: at epoch ends only.
    """

    gridsize: int = option(1, "g: C = g^2 patterns per network input", minimum=1)
    neighbor_count: int | None = option(
        None, "K nearest neighbours a group draws from (None: C - 1 + 3)", minimum=0,
        advanced=True)
    n_groups: int | None = option(None, "training groups (None: one per position)", minimum=1)
    batch_size: int = option(16, "groups per optimiser step", minimum=1)
    epochs: int = option(20, "passes over the training groups", minimum=1)
    checkpoint_every: int = option(1, "epochs between checkpoint and bundle writes",
                                   minimum=1, advanced=True)
    time_limit: float | None = option(None, "wall-clock budget of the loop, seconds (None: none)",
                                      minimum=0, exclusive_minimum=True, advanced=True)
    lr: float = option(5e-4, "Adam learning rate (the schedule's peak)", minimum=0,
                       exclusive_minimum=True)
    lr_schedule: LrSchedule = option("constant", "constant, or warm-up then cosine decay")
    warmup_fraction: float = option(0.05, "share of the steps spent warming up (cosine)",
                                    minimum=0, maximum=1, exclusive_maximum=True,
                                    advanced=True)
    loss: LossName = option("poisson", "poisson NLL, MAE, or supervised (needs Y)")
    object_big: bool | None = option(None, "merge patches within a group (None: gridsize > 1)",
                                     advanced=True)
    base_channels: int = option(32, "width of the first network level", minimum=1)
    input_transform: InputTransform = option("none", "fixed map of X before the network",
                                             advanced=True)
    norm: bool = option(True, "GroupNorm after each convolution", advanced=True)
    upsample: Upsample = option("shuffle", "decoder resampling (learned: shuffle)",
                                advanced=True)
    downsample: Downsample = option("strided", "encoder resampling (learned: strided)",
                                    advanced=True)
    bottleneck: int | None = option(None, "side of the coarsest level, a power of two 4..N/2 "
                                    "(None: by N)", minimum=4, advanced=True)
    global_mixing: bool | None = option(None, "learned map across all bottleneck cells "
                                        "(None: where a cell sees less than the pattern)",
                                        advanced=True)
    augment: Augment = option("none", "random probe-preserving mirrors of each batch")
    val_fraction: float = option(0.2, "share of the scan held out for validation", minimum=0,
                                 maximum=1, exclusive_maximum=True)
    seed: int = option(0, "grouping, initialisation and batch order", minimum=0)
    deterministic: bool = option(False, "deterministic algorithms (bit-identical CPU runs)",
                                 advanced=True)
    accelerator: Accelerator = option("auto", "device kind (Lightning Fabric)")
    devices: int = option(1, "processes / GPUs", minimum=1, advanced=True)
    strategy: str = option("auto", "Lightning Fabric strategy", advanced=True)
    precision: Precision = option("32", "numeric precision (Lightning Fabric)", advanced=True)
    channels_last: bool = option(False, "GPU lever: NHWC memory format", advanced=True)
    compile: bool = option(False, "GPU lever: torch.compile", advanced=True)
    cuda_graphs: bool = option(False, "GPU lever: replay each step as one CUDA graph",
                               advanced=True)
    log_patch_stats: bool = option(False, "statistics of the first batches (see conventions)")
    patch_stats_limit: int = option(2, "batches whose statistics are written", minimum=1,
                                    advanced=True)
    snapshot_every: int = option(0, "epochs between whole-scan canvas and patch-grid "
                                 "snapshots (0: none)", minimum=0, advanced=True)
    snapshot_groups: int = option(4, "groups a patch-grid snapshot shows", minimum=1,
                                  advanced=True)
    snapshot_seconds: float = option(0.0, "seconds between snapshots within an epoch (the "
                                     "first after the first steps; 0: epoch ends only)",
                                     minimum=0, advanced=True)

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, expected: str) -> None:
            if not ok:
                raise InputError(name, expected, repr(getattr(self, name)))

        validate(self)
        b = self.bottleneck
        need(b is None or not b & (b - 1), "bottleneck", "a power of two >= 4 (and at most N/2)")
        need(not self.cuda_graphs or self.precision in ("32", "32-true"), "cuda_graphs",
             "precision 32 (a captured step does not replay autocast's casts)")
        need(not (self.cuda_graphs and self.compile), "cuda_graphs",
             "either cuda_graphs or compile, not both")
        need(not self.cuda_graphs or self.devices == 1, "cuda_graphs", "devices 1")
        C = self.gridsize**2
        need(self.neighbor_count is None or self.neighbor_count >= C - 1, "neighbor_count",
             f"K >= C - 1 = {C - 1} for gridsize {self.gridsize}")

    @property
    def C(self) -> int:  # noqa: N802
        return self.gridsize**2

    @property
    def use_object_big(self) -> bool:
        return self.gridsize > 1 if self.object_big is None else bool(self.object_big)

    # fields added after checkpoints were first written, with the value the code used before
    KEYS_ADDED = {"bottleneck": 8, "augment": "none", "global_mixing": False}

    # fields whose change makes a checkpoint unusable for resuming
    RESUME_KEYS = ("gridsize", "neighbor_count", "n_groups", "batch_size", "lr", "lr_schedule",
                   "warmup_fraction", "loss", "object_big", "base_channels", "input_transform",
                   "norm", "upsample", "downsample", "bottleneck", "global_mixing", "augment",
                   "val_fraction", "seed")

    def lr_at(self, step: int, total_steps: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based) of ``total_steps``."""
        if self.lr_schedule == "constant":
            return self.lr
        warm = int(round(self.warmup_fraction * total_steps))
        if step < warm:
            return self.lr * (step + 1) / warm
        t = (step - warm) / max(1, total_steps - 1 - warm)
        return self.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))
