"""``ptycho stitch``: stitch patches of a source into a canvas NPZ
(docs/conventions.md#stitching)."""

from __future__ import annotations

import argparse

from engine.cli.common import add_source_args, grouping_from, stitch_config_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stitch", help="stitch patches into a canvas (canvas, coverage, origin)")
    add_source_args(p)
    p.add_argument("--out", required=True, help="output canvas .npz")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine import api
    from engine.cli.progress import ProgressBar

    ds = api.load_dataset(args.data, require_diffraction=False)
    bar = ProgressBar()
    canvas = api.stitch(ds, stitch_config_from(args), grouping=grouping_from(args),
                        source=args.source, batch_size=args.batch_size, backend=args.backend,
                        device=args.device, emit=bar)
    bar.close()
    canvas.save(args.out)
    h, w = canvas.canvas.shape
    print(f"wrote {args.out}: canvas {h}x{w} at origin {canvas.origin}, "
          f"coverage {canvas.coverage.mean():.1%}")
    return 0
