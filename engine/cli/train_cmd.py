"""``ptycho train``: train the physics-informed network; writes ``<out>/bundle``."""

from __future__ import annotations

import argparse
import logging
import sys

from engine.cli.common import add_bad_pixel_flag, bad_pixels_from
from engine.cli.common import integer as _int
from engine.network.choices import DOWNSAMPLES, LOSSES, UPSAMPLES
from engine.network.config import ACCELERATORS, AUGMENTS, GLOBAL_MIXING, LR_SCHEDULES, PRECISIONS
from engine.network.presets import PRESETS

log = logging.getLogger("ptycho.train")

PRESET = "(default: from the preset)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train the physics-informed network (writes a bundle)",
        description="Train the physics-informed network on a dataset without ground truth "
                    "(docs/conventions.md). A preset sizes the run for the machine: quick "
                    "(the CPU default: width 8, about 1,000 steps), standard (the GPU "
                    "default), quality (longer, cosine schedule); any option given "
                    "explicitly overrides it. --dry-run prints the plan and the expected "
                    "time on this machine.")
    p.add_argument("data", help="training dataset .npz (docs/conventions.md#data-format)")
    add_bad_pixel_flag(p)
    p.add_argument("--out", required=True, help="run directory (bundle/, checkpoint/, analysis/)")
    p.add_argument("--preset", choices=PRESETS, default=None,
                   help="training recipe (default: quick on a CPU, standard on a GPU)")
    p.add_argument("--gridsize", type=_int, default=1, help="g: C = g² patterns per group")
    p.add_argument("--neighbor-count", type=_int, default=None,
                   help="K nearest neighbours a group draws from (default: C - 1 + 3)")
    p.add_argument("--n-groups", type=_int, default=None,
                   help="training groups (default: one per training position)")
    p.add_argument("--batch-size", type=_int, default=None, help=f"groups per step {PRESET}")
    p.add_argument("--epochs", type=_int, default=None,
                   help=f"passes over the training groups {PRESET}")
    p.add_argument("--checkpoint-every", type=_int, default=None, metavar="EPOCHS",
                   help="epochs between checkpoint/bundle writes; the last is always written "
                        "(default: 1, 5 on a GPU)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="wall-clock budget: end after the last epoch that fits (epochs "
                        "stays the upper bound; the learning-rate schedule is re-planned) "
                        "(default: none)")
    p.add_argument("--lr", type=float, default=None, help=f"peak learning rate {PRESET}")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=None,
                   help=f"constant, or cosine (warm-up, then decay to lr/100) {PRESET}")
    p.add_argument("--warmup-fraction", type=float, default=None,
                   help="share of the steps spent warming up, cosine schedule (default: 0.05)")
    p.add_argument("--loss", choices=LOSSES, default="poisson",
                   help="Poisson NLL of the counts, MAE of amplitudes, or supervised on 'Y'")
    p.add_argument("--object-big", action=argparse.BooleanOptionalAction, default=None,
                   help="merge/re-extract within a group (default: on for gridsize > 1)")
    p.add_argument("--base-channels", type=_int, default=None,
                   help=f"width of the network's first level {PRESET}")
    p.add_argument("--upsample", choices=UPSAMPLES, default=None,
                   help="decoder upsampling: shuffle (learned sub-pixels) or nearest "
                        "(default: shuffle)")
    p.add_argument("--downsample", choices=DOWNSAMPLES, default=None,
                   help="encoder downsampling: strided (learned) or avg (default: strided)")
    p.add_argument("--bottleneck", type=_int, default=None,
                   help="side of the coarsest level, a power of two 4..N/2 (sets the depth; "
                        "default: 8 at N = 32, 16 above)")
    p.add_argument("--global-mixing", choices=tuple(GLOBAL_MIXING), default="auto",
                   help="a learned map across all bottleneck cells (auto: on where a cell "
                        "sees less than the whole pattern, N >= 64)")
    p.add_argument("--augment", choices=AUGMENTS, default=None,
                   help="symmetry: mirror/transpose batches the probe is symmetric under "
                        "(default: none)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of the scan (the highest-x stripe) held out for validation")
    p.add_argument("--seed", type=_int, default=0,
                   help="grouping, initialisation and batch order")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms: bit-identical CPU losses across runs")
    p.add_argument("--accelerator", default="auto",
                   help=f"where to train (Lightning Fabric): {', '.join(ACCELERATORS)}; auto: "
                        "a GPU when there is one")
    p.add_argument("--devices", type=_int, default=1, help="processes/devices (Lightning)")
    p.add_argument("--strategy", default="auto", help="auto, ddp, ... (Lightning)")
    p.add_argument("--precision", choices=PRECISIONS, default="32",
                   help="training precision (Lightning)")
    p.add_argument("--channels-last", action="store_true", help="GPU lever: NHWC convolutions")
    p.add_argument("--compile", action="store_true", help="GPU lever: torch.compile the network")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="GPU lever: replay each step as one captured CUDA graph (fp32, 1 GPU)")
    p.add_argument("--log-patch-stats", action="store_true",
                   help="write analysis/stats_train.json and print one line per logged batch "
                        "(docs/conventions.md#statistics)")
    p.add_argument("--patch-stats-limit", type=_int, default=2,
                   help="batches whose statistics records are kept")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (refused without it)")
    p.add_argument("--zip", action="store_true", help="also write <out>/bundle.zip")
    p.add_argument("--dry-run", action="store_true",
                   help="check data and options, print the plan, model size and the expected "
                        "time on this machine (a few timed steps), train nothing")
    p.set_defaults(handler=run)


def config_from(args: argparse.Namespace, n_positions: int | None = None):
    """The run's :class:`TrainConfig`: the preset (chosen from the device when not given),
    overridden by every option given explicitly."""
    from engine.network.presets import preset_config, resolve_device

    # options left unset take the preset's or TrainConfig's defaults, so they cannot drift
    optional = {k: getattr(args, k) for k in ("lr", "lr_schedule", "warmup_fraction",
                                              "base_channels", "upsample", "downsample",
                                              "bottleneck", "augment", "time_limit",
                                              "batch_size", "epochs", "checkpoint_every")}
    return preset_config(
        args.preset, resolve_device(args.accelerator), n_positions=n_positions,
        gridsize=args.gridsize, neighbor_count=args.neighbor_count, n_groups=args.n_groups,
        loss=args.loss, object_big=args.object_big, val_fraction=args.val_fraction,
        seed=args.seed, deterministic=args.deterministic, accelerator=args.accelerator,
        devices=args.devices, strategy=args.strategy, precision=args.precision,
        channels_last=args.channels_last, compile=args.compile,
        log_patch_stats=args.log_patch_stats, cuda_graphs=args.cuda_graphs,
        patch_stats_limit=args.patch_stats_limit,
        global_mixing=GLOBAL_MIXING[args.global_mixing], **optional)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def run(args: argparse.Namespace) -> int:
    from engine import api
    from engine.network.presets import default_preset, resolve_device

    ds = api.load_dataset(args.data, bad_pixels=bad_pixels_from(args))
    cfg = config_from(args, ds.n)
    preset = args.preset or default_preset(resolve_device(args.accelerator))
    if args.dry_run:
        info = {"preset": preset, "base_channels": cfg.base_channels,
                "batch_size": cfg.batch_size, "lr": cfg.lr, "epochs": cfg.epochs,
                **api.plan_training(ds, cfg, measure_time=True)}
        expected = info.pop("expected_s")
        info["expected_time"] = _duration(expected) + (
            " (the --time-limit)" if info.pop("bounded_by_time_limit") else "")
        for key, value in info.items():
            print(f"{key:>21}: {value:.6g}" if isinstance(value, float) else
                  f"{key:>21}: {value:,}" if isinstance(value, int) and not isinstance(value, bool)
                  else f"{key:>21}: {value}")
        return 0
    from engine.cli.progress import ProgressBar, stats_line
    from engine.events import Epoch, Event, Validation

    bar = ProgressBar()

    def on_event(event: Event) -> None:
        bar(event)
        if isinstance(event, Epoch):
            bar.close()
            log.info("epoch %d/%d: loss %.6g, %.1f patterns/s", event.epoch, cfg.epochs,
                     event.metrics["loss"], event.metrics["patterns_per_s"])
        elif isinstance(event, Validation):
            log.info("epoch %d: validation loss %.6g", event.epoch, event.metrics["loss"])
        elif (line := stats_line(event)) is not None:
            bar.close()
            print(line)

    result = api.train(ds, cfg, out=args.out, emit=on_event, resume=args.resume,
                       overwrite=args.overwrite)
    bar.close()
    if result.rank != 0:  # rank 0 writes the bundle and reports it
        return 0
    if args.zip:
        from engine.atomic import atomic_open
        from engine.network.bundles import bundle_bytes

        with atomic_open(result.out / "bundle.zip", "wb") as fh:
            fh.write(bundle_bytes(result.bundle).getvalue())
    print(f"wrote {result.bundle} after {result.metrics.get('epochs', 0)} epochs (preset "
          f"{preset}: width {cfg.base_channels}, batch {cfg.batch_size}, lr {cfg.lr:g}), "
          f"train loss "
          f"{result.metrics.get('train_loss', float('nan')):.6g}"
          + ("" if result.metrics.get("val_loss") is None
             else f", validation loss {result.metrics['val_loss']:.6g}")
          + ("; the network's output COLLAPSED (see the warnings)"
             if result.metrics.get("collapsed") else ""))
    if (result.metrics.get("flat_output") or {}).get("flat"):
        print("the network's output is nearly flat (see the warning above; bundle.json: "
              "metrics.flat_output): train longer or with --preset standard or quality",
              file=sys.stderr)
    return 0
