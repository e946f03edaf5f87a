"""The one options class of network training, validated and JSON-serialisable."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from engine.errors import InputError
from engine.network.losses import LOSSES
from engine.network.model import DOWNSAMPLES, INPUT_TRANSFORMS, UPSAMPLES

ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps")
PRECISIONS = ("32", "32-true", "bf16-mixed", "bf16-true", "16-mixed")
LR_SCHEDULES = ("constant", "cosine")
AUGMENTS = ("none", "symmetry")
# the command line's words for TrainConfig.global_mixing
GLOBAL_MIXING = {"auto": None, "on": True, "off": False}


@dataclass(frozen=True)
class TrainConfig:
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
    """

    gridsize: int = 1
    neighbor_count: int | None = None
    n_groups: int | None = None
    batch_size: int = 16
    epochs: int = 20
    checkpoint_every: int = 1
    time_limit: float | None = None
    lr: float = 5e-4
    lr_schedule: str = "constant"
    warmup_fraction: float = 0.05
    loss: str = "poisson"
    object_big: bool | None = None
    base_channels: int = 32
    input_transform: str = "none"
    norm: bool = True
    upsample: str = "shuffle"
    downsample: str = "strided"
    bottleneck: int | None = None
    global_mixing: bool | None = None
    augment: str = "none"
    val_fraction: float = 0.2
    seed: int = 0
    deterministic: bool = False
    accelerator: str = "auto"
    devices: int = 1
    strategy: str = "auto"
    precision: str = "32"
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    log_patch_stats: bool = False
    patch_stats_limit: int = 2

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, expected: str) -> None:
            if not ok:
                raise InputError(f"--{name.replace('_', '-')}", expected,
                                 repr(getattr(self, name)))

        need(isinstance(self.gridsize, int) and self.gridsize >= 1, "gridsize", "an integer >= 1")
        need(self.n_groups is None or self.n_groups >= 1, "n_groups", "an integer >= 1")
        need(self.batch_size >= 1, "batch_size", "an integer >= 1")
        need(self.epochs >= 1, "epochs", "an integer >= 1")
        need(isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 1,
             "checkpoint_every", "an integer >= 1")
        need(self.time_limit is None
             or (math.isfinite(self.time_limit) and self.time_limit > 0),
             "time_limit", "a number of seconds > 0")
        need(math.isfinite(self.lr) and self.lr > 0, "lr", "a finite learning rate > 0")
        need(self.lr_schedule in LR_SCHEDULES, "lr_schedule",
             f"one of {', '.join(LR_SCHEDULES)}")
        need(0 <= self.warmup_fraction < 1, "warmup_fraction", "a fraction in [0, 1)")
        need(self.upsample in UPSAMPLES, "upsample", f"one of {', '.join(UPSAMPLES)}")
        need(self.downsample in DOWNSAMPLES, "downsample", f"one of {', '.join(DOWNSAMPLES)}")
        b = self.bottleneck
        need(b is None or (isinstance(b, int) and b >= 4 and not b & (b - 1)), "bottleneck",
             "a power of two >= 4 (and at most N/2)")
        need(self.global_mixing in (None, True, False), "global_mixing",
             "on, off or auto (None)")
        need(self.augment in AUGMENTS, "augment", f"one of {', '.join(AUGMENTS)}")
        need(self.loss in LOSSES, "loss", f"one of {', '.join(LOSSES)}")
        need(self.base_channels >= 1, "base_channels", "an integer >= 1")
        need(self.input_transform in INPUT_TRANSFORMS, "input_transform",
             f"one of {', '.join(INPUT_TRANSFORMS)}")
        need(0 <= self.val_fraction < 1, "val_fraction", "a fraction in [0, 1)")
        need(self.accelerator in ACCELERATORS, "accelerator", f"one of {', '.join(ACCELERATORS)}")
        need(self.devices >= 1, "devices", "an integer >= 1")
        need(self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}")
        need(not self.cuda_graphs or self.precision in ("32", "32-true"), "cuda_graphs",
             "--precision 32 (a captured step does not replay autocast's casts)")
        need(not (self.cuda_graphs and self.compile), "cuda_graphs",
             "either --cuda-graphs or --compile, not both")
        need(not self.cuda_graphs or self.devices == 1, "cuda_graphs", "--devices 1")
        need(self.patch_stats_limit >= 1, "patch_stats_limit", "an integer >= 1")
        C = self.gridsize**2
        need(self.neighbor_count is None or self.neighbor_count >= C - 1, "neighbor_count",
             f"K >= C - 1 = {C - 1} for gridsize {self.gridsize}")

    @property
    def C(self) -> int:  # noqa: N802
        return self.gridsize**2

    @property
    def use_object_big(self) -> bool:
        return self.gridsize > 1 if self.object_big is None else bool(self.object_big)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError("training config", f"keys among {sorted(known)}", str(unknown))
        return cls(**d)

    # fields added after checkpoints were first written, with the value the code used before
    KEYS_ADDED = {"bottleneck": 8, "augment": "none", "global_mixing": False}

    # fields whose change makes a checkpoint unusable for --resume
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
