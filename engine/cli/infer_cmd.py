"""``ptycho infer``: reconstruct with a trained bundle; writes ``recon.npz`` and PNGs."""

from __future__ import annotations

import argparse

from engine.cli.common import add_stitch_args, stitch_config_from
from engine.cli.progress import ProgressBar
from engine.cli.train_cmd import _int, one_line_errors
from engine.data import read_npz
from engine.physics.scaling import ScalingConfig
from engine.rundir import check_writable, open_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("infer", help="reconstruct with a trained model bundle")
    p.add_argument("run", help="run directory, bundle directory or bundle .zip")
    p.add_argument("data", help="dataset .npz")
    p.add_argument("--out", required=True, help="output directory (recon.npz, PNGs)")
    p.add_argument("--scaling", default="bundle", help="bundle (default), data or fixed=<v>")
    p.add_argument("--batch-size", type=_int, default=1024)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:k]")
    p.add_argument("--gridsize", type=_int, default=None,
                   help="must match the bundle's (default: the bundle's)")
    p.add_argument("--n-groups", type=_int, default=None, help="groups (default: n)")
    add_stitch_args(p, window="probe")
    p.add_argument("--precision", default="32",
                   help="32 (default) or bf16: the network in bfloat16, a GPU option "
                        "(physics and stitching stay fp32)")
    p.add_argument("--debug-dump", action="store_true", help="write debug/ (offsets, stats...)")
    p.add_argument("--log-patch-stats", action="store_true")
    p.add_argument("--patch-stats-limit", type=_int, default=2)
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs already in --out (refused without it)")
    p.set_defaults(handler=run)
    one_line_errors(p, "infer")


def run(args: argparse.Namespace) -> int:
    from engine.network.inference import InferConfig, infer, write_outputs

    config = InferConfig(
        scaling=ScalingConfig.parse(args.scaling), batch_size=args.batch_size,
        device=args.device, gridsize=args.gridsize, n_groups=args.n_groups,
        stitch=stitch_config_from(args), log_patch_stats=args.log_patch_stats,
        patch_stats_limit=args.patch_stats_limit, debug_dump=args.debug_dump,
        precision=args.precision)
    check_writable(args.out, directory=True)
    ds = read_npz(args.data)
    bar = ProgressBar()
    with open_run(args.out, overwrite=args.overwrite):
        result = infer(args.run, ds, config, emit=bar, out_dir=args.out)
        bar.close()
        write_outputs(result, args.out)
    h, w = result.canvas.canvas.shape
    print(f"wrote {args.out}/recon.npz: canvas {h}x{w} at origin {result.canvas.origin}, "
          f"coverage {result.canvas.coverage.mean():.1%}, intensity scale "
          f"{result.scale_source}")
    return 0
