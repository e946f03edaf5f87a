"""``ptycho train``: train the physics-informed network; writes ``<out>/bundle``."""

from __future__ import annotations

import argparse
import logging

from engine.cli.common import integer, one_line_errors
from engine.cli.progress import ProgressBar, stats_line
from engine.events import Epoch, Event, Validation
from engine.network.config import GLOBAL_MIXING, TrainConfig

log = logging.getLogger("ptycho.train")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the physics-informed network (writes a bundle)")
    p.add_argument("data", help="training dataset .npz")
    p.add_argument("--out", required=True, help="run directory (bundle/, checkpoint/, analysis/)")
    p.add_argument("--gridsize", type=integer, default=1)
    p.add_argument("--neighbor-count", type=integer, default=None)
    p.add_argument("--n-groups", type=integer, default=None)
    p.add_argument("--batch-size", type=integer, default=16)
    p.add_argument("--epochs", type=integer, default=20)
    p.add_argument("--checkpoint-every", type=integer, default=1, metavar="EPOCHS",
                   help="epochs between checkpoint/bundle writes (the last is always written)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="wall-clock budget: end after the last epoch that fits (epochs "
                        "stays the upper bound; the learning-rate schedule is re-planned)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--lr-schedule", default=None, help="constant or cosine (warm-up, decay)")
    p.add_argument("--warmup-fraction", type=float, default=None,
                   help="share of the steps spent warming up (cosine)")
    p.add_argument("--loss", default="poisson", help="poisson, mae or supervised")
    p.add_argument("--object-big", action=argparse.BooleanOptionalAction, default=None,
                   help="merge/re-extract within a group (default: on for gridsize > 1)")
    p.add_argument("--base-channels", type=integer, default=None)
    p.add_argument("--upsample", default=None,
                   help="decoder upsampling: shuffle (learned sub-pixels) or nearest")
    p.add_argument("--downsample", default=None,
                   help="encoder downsampling: strided (learned) or avg")
    p.add_argument("--bottleneck", type=integer, default=None,
                   help="side of the coarsest level, a power of two 4..N/2 (sets the depth)")
    p.add_argument("--global-mixing", choices=tuple(GLOBAL_MIXING), default="auto",
                   help="a learned map across all bottleneck cells (auto: on where a cell "
                        "sees less than the whole pattern, N >= 64)")
    p.add_argument("--augment", default=None,
                   help="none, or symmetry: mirror/transpose batches the probe is symmetric under")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of the scan (highest-x stripe) held out")
    p.add_argument("--seed", type=integer, default=0)
    p.add_argument("--deterministic", action="store_true", help="bit-identical CPU losses")
    p.add_argument("--accelerator", default="auto", help="auto, cpu, cuda (Lightning)")
    p.add_argument("--devices", type=integer, default=1)
    p.add_argument("--strategy", default="auto", help="auto, ddp, ... (Lightning)")
    p.add_argument("--precision", default="32", help="32 or bf16-mixed")
    p.add_argument("--channels-last", action="store_true", help="GPU lever: NHWC convolutions")
    p.add_argument("--compile", action="store_true", help="GPU lever: torch.compile the network")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="GPU lever: replay each step as one captured CUDA graph (fp32, 1 GPU)")
    p.add_argument("--log-patch-stats", action="store_true",
                   help="write analysis/stats_train.json and print one line per logged batch")
    p.add_argument("--patch-stats-limit", type=integer, default=2)
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (refused without it)")
    p.add_argument("--zip", action="store_true", help="also write <out>/bundle.zip")
    p.add_argument("--dry-run", action="store_true",
                   help="check data and options, print model size and FLOPs, train nothing")
    p.set_defaults(handler=run)
    one_line_errors(p, "train")


def config_from(args: argparse.Namespace) -> TrainConfig:
    # options left unset take TrainConfig's defaults, so the two cannot drift apart
    optional = {k: getattr(args, k) for k in ("lr", "lr_schedule", "warmup_fraction",
                                              "base_channels", "upsample", "downsample",
                                              "bottleneck", "augment", "time_limit")
                if getattr(args, k) is not None}
    return TrainConfig(
        gridsize=args.gridsize, neighbor_count=args.neighbor_count, n_groups=args.n_groups,
        batch_size=args.batch_size, epochs=args.epochs, loss=args.loss,
        object_big=args.object_big, val_fraction=args.val_fraction, seed=args.seed,
        deterministic=args.deterministic, accelerator=args.accelerator, devices=args.devices,
        strategy=args.strategy, precision=args.precision, channels_last=args.channels_last,
        compile=args.compile, log_patch_stats=args.log_patch_stats,
        checkpoint_every=args.checkpoint_every, cuda_graphs=args.cuda_graphs,
        patch_stats_limit=args.patch_stats_limit,
        global_mixing=GLOBAL_MIXING[args.global_mixing], **optional)


def run(args: argparse.Namespace) -> int:
    from engine import api

    cfg = config_from(args)
    ds = api.load_dataset(args.data)
    if args.dry_run:
        info = api.plan_training(ds, cfg)
        for key, value in info.items():
            print(f"{key:>18}: {value:.6g}" if isinstance(value, float) else
                  f"{key:>18}: {value:,}" if isinstance(value, int) and not isinstance(value, bool)
                  else f"{key:>18}: {value}")
        return 0
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
    print(f"wrote {result.bundle} after {result.metrics.get('epochs', 0)} epochs, train loss "
          f"{result.metrics.get('train_loss', float('nan')):.6g}"
          + ("" if result.metrics.get("val_loss") is None
             else f", validation loss {result.metrics['val_loss']:.6g}")
          + ("; the network's output COLLAPSED (see the warnings)"
             if result.metrics.get("collapsed") else ""))
    return 0
