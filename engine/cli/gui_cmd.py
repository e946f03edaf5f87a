"""``ptycho gui [DATA.npz | RUN_DIR]``: the napari workbench, or the headless demo.

The workbench is started as ``python -m ptycho_gui`` in a child process, so the engine
never imports the GUI (the import contracts keep it headless). Without a display (neither
``DISPLAY`` nor ``WAYLAND_DISPLAY`` set) it runs the headless demo instead, as ``make run``
does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from engine.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the napari workbench (headless: run the demo)")
    p.add_argument("data", nargs="?", default="lines",
                   help="dataset NPZ, run directory or sample name (default: the lines sample)")
    p.add_argument("--demo-out", default="runs/demo",
                   help="where the headless demo writes when there is no display")
    p.set_defaults(handler=run)


def have_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    if not have_display():
        print("ptycho gui: no display (DISPLAY / WAYLAND_DISPLAY unset): running the headless "
              "demo instead", file=sys.stderr)
        from engine.cli import main

        return main(["demo", "--out", args.demo_out])
    if args.data not in ("lines", "asym", "grf") and not os.path.exists(args.data):
        raise InputError("data", "a dataset NPZ, a run directory or a sample name", args.data)
    return subprocess.call([sys.executable, "-m", "ptycho_gui", args.data])
