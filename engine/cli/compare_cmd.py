"""``ptycho compare``: two stats files / runs figure by figure, or two canvases
(docs/conventions.md#comparison)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.atomic import write_json
from engine.evaluation.compare import compare_stats, format_report
from engine.evaluation.metrics import compare_canvases, to_jsonable
from engine.physics.stitching import Canvas


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two stats files, run directories or canvases")
    p.add_argument("baseline", help="stats JSON, run directory, or canvas .npz")
    p.add_argument("candidate", help="stats JSON, run directory, or canvas .npz")
    p.add_argument("--zero-tol", type=float, default=0.0, help="|figure| <= tol counts as zero")
    p.add_argument("--out", default=None, help="report JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if Path(args.baseline).suffix == ".npz" or Path(args.candidate).suffix == ".npz":
        # canvases: MAE, PSNR, SSIM, FRC after registration and global phase alignment
        report = to_jsonable(compare_canvases(Canvas.load(args.baseline),
                                              Canvas.load(args.candidate)))
        print(json.dumps(report, indent=2))
    else:
        report = compare_stats(args.baseline, args.candidate, tol=args.zero_tol)
        print(format_report(report))
    if args.out:
        write_json(args.out, report)
    return 0
