"""``ptycho infer``: reconstruct with a trained bundle; writes ``recon.npz`` and PNGs."""

from __future__ import annotations

import argparse
import sys

from engine.cli.common import (
    add_bad_pixel_flag,
    add_stitch_args,
    bad_pixels_from,
    integer,
    one_line_errors,
    stitch_config_from,
)

# the exit status of --strict when the collapse guards fire (2 is bad input)
EXIT_COLLAPSED = 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("infer", help="reconstruct with a trained model bundle")
    p.add_argument("run", help="run directory, bundle directory or bundle .zip")
    p.add_argument("data", help="dataset .npz")
    add_bad_pixel_flag(p)
    p.add_argument("--out", required=True, help="output directory (recon.npz, PNGs)")
    p.add_argument("--scaling", default="bundle",
                   help="intensity scale: bundle (the model's), data (recomputed) or fixed=<v> "
                        "(docs/conventions.md#intensity-scaling)")
    p.add_argument("--batch-size", type=integer, default=1024, help="groups per batch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:k]")
    p.add_argument("--gridsize", type=integer, default=None,
                   help="must match the bundle's (default: the bundle's)")
    p.add_argument("--n-groups", type=integer, default=None, help="groups (default: n)")
    add_stitch_args(p, window="probe")
    p.add_argument("--precision", default="32",
                   help="32 (default) or bf16: the network in bfloat16, a GPU option "
                        "(physics and stitching stay fp32)")
    p.add_argument("--debug-dump", nargs="?", const="", default=None, metavar="DIR",
                   help="write the debug dump (offsets, stats, patch grids) to DIR "
                        "(default <out>/debug; without DIR, give it after RUN and DATA or "
                        "as --debug-dump=DIR)")
    p.add_argument("--log-patch-stats", action="store_true",
                   help="write analysis/stats_inference.json and print one line per logged "
                        "batch")
    p.add_argument("--patch-stats-limit", type=integer, default=2,
                   help="batches whose statistics records are kept")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs already in --out (refused without it)")
    p.add_argument("--strict", action="store_true",
                   help=f"exit with status {EXIT_COLLAPSED} when the collapse guards fire "
                        "(var_zero_mean <= 1e-6 or |mean| <= 1e-9: the network's output is "
                        "flat or zero); outputs are written either way")
    p.set_defaults(handler=run)
    one_line_errors(p, "infer")


def run(args: argparse.Namespace) -> int:
    from engine import api
    from engine.cli.progress import ProgressBar, stats_line
    from engine.events import Event
    from engine.physics.scaling import ScalingConfig
    from engine.rundir import check_writable

    config = api.InferConfig(
        scaling=ScalingConfig.parse(args.scaling), batch_size=args.batch_size,
        device=args.device, gridsize=args.gridsize, n_groups=args.n_groups,
        stitch=stitch_config_from(args), log_patch_stats=args.log_patch_stats,
        patch_stats_limit=args.patch_stats_limit, debug_dump=args.debug_dump is not None,
        precision=args.precision)
    check_writable(args.out, directory=True)
    if args.debug_dump:
        check_writable(args.debug_dump, directory=True)
    ds = api.load_dataset(args.data, bad_pixels=bad_pixels_from(args))
    bar = ProgressBar()

    def on_event(event: Event) -> None:
        bar(event)
        line = stats_line(event) if args.log_patch_stats else None
        if line:
            bar.close()
            print(line)

    result = api.infer(ds, args.run, config, out=args.out, overwrite=args.overwrite,
                       debug_dir=args.debug_dump or None, emit=on_event)
    bar.close()
    h, w = result.canvas.canvas.shape
    print(f"wrote {args.out}/recon.npz: canvas {h}x{w} at origin {result.canvas.origin}, "
          f"coverage {result.canvas.coverage.mean():.1%}, intensity scale "
          f"{result.scale_source}")
    if result.collapsed and args.strict:
        print(f"ptycho infer: error: the network's output collapsed "
              f"({'; '.join(result.collapse['reasons'])}); --strict", file=sys.stderr)
        return EXIT_COLLAPSED
    return 0
