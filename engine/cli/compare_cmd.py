"""``ptycho compare``: figure-by-figure comparison of two stats files (SPEC §8)."""

from __future__ import annotations

import argparse

from ..atomic import write_json
from ..compare import compare_stats, format_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two statistics files or run directories")
    p.add_argument("baseline", help="stats JSON or run directory")
    p.add_argument("candidate", help="stats JSON or run directory")
    p.add_argument("--zero-tol", type=float, default=0.0, help="|figure| <= tol counts as zero")
    p.add_argument("--out", default=None, help="report JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = compare_stats(args.baseline, args.candidate, tol=args.zero_tol)
    print(format_report(report))
    if args.out:
        write_json(args.out, report)
    return 0
