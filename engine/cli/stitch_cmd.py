"""``ptycho stitch``: stitch patches of a source into a canvas NPZ
(docs/conventions.md#stitching)."""

from __future__ import annotations

import argparse

from engine.cli.common import add_source_args, grouping_from, stitch_config_from
from engine.cli.progress import ProgressBar
from engine.data import read_npz
from engine.physics.workflows import stitch_dataset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stitch", help="stitch patches into a canvas (canvas, coverage, origin)")
    add_source_args(p)
    p.add_argument("--out", required=True, help="output canvas .npz")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    ds = read_npz(args.data, require_diffraction=False)
    bar = ProgressBar()
    canvas = stitch_dataset(ds, source=args.source, grouping=grouping_from(args),
                            stitch_config=stitch_config_from(args), backend=args.backend,
                            device=args.device, batch_size=args.batch_size, emit=bar)
    bar.close()
    canvas.save(args.out)
    h, w = canvas.canvas.shape
    print(f"wrote {args.out}: canvas {h}x{w} at origin {canvas.origin}, "
          f"coverage {canvas.coverage.mean():.1%}")
    return 0
