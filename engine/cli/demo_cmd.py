"""``ptycho demo``: the headless demo (what ``make run`` runs without a display)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="simulate, reconstruct and write a PNG/JSON report")
    p.add_argument("--out", default="runs/demo", help="output directory")
    p.add_argument("--backend", default="torch",
                   help="backend of the forward model and the solver (numpy, torch or a "
                        "plugged-in one)")
    p.add_argument("--n-positions", type=int, default=256, help="scan positions")
    p.add_argument("--gridsize", type=int, default=2, help="g: C = g² patterns per group")
    p.add_argument("--iterations", type=int, default=15, help="rPIE iterations")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    report = run_demo(args.out, backend=args.backend, n_positions=args.n_positions,
                      gridsize=args.gridsize, iterations=args.iterations)
    keys = ("parseval", "stitch_round_trip_max_error", "patch_stats", "reconstruction", "timings")
    print(json.dumps({k: report[k] for k in keys}, indent=2))
    print(f"report: {Path(args.out) / 'report.png'} and {Path(args.out) / 'report.json'}")
    return 0
