"""``ptycho gui [DATA.npz | RUN_DIR]``: the napari workbench, or the headless demo.

The workbench is started as ``python -m ptycho_gui`` in a child process, so the engine
never imports the GUI (the import contracts keep it headless). DATA is checked here first,
with the engine's own loaders, so a bad DATA is one line and exit status 2 whether or not
there is a display (never a traceback from the child). Without a display (neither
``DISPLAY`` nor ``WAYLAND_DISPLAY`` set) it says so and runs the headless demo instead, as
``make run`` does.
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


SAMPLES = ("lines", "asym", "grf")


def check_data(data: str) -> None:
    """Refuse a DATA the workbench could not open, with one :class:`InputError` line: a
    sample name, a dataset or canvas ``.npz``, or a run directory holding a canvas or a
    bundle (each read as the workbench reads it)."""
    from pathlib import Path

    if data in SAMPLES:
        return
    expected = f"a dataset NPZ, a run directory or a sample name ({', '.join(SAMPLES)})"
    p = Path(data)
    if not p.exists():
        raise InputError("data", expected, f"{data} (no such file or directory)")
    if p.is_dir():
        _check_run(p, expected)
    else:
        from engine.data import open_npz, read_npz
        from engine.physics.stitching import Canvas

        with open_npz(p, "a dataset or canvas .npz") as z:
            canvas = "canvas" in z.files
        if canvas:
            Canvas.load(p)
        else:
            read_npz(p, require_diffraction=False)


def _check_run(p: object, expected: str) -> None:
    from pathlib import Path

    from engine.physics.stitching import Canvas
    from engine.rundir import readable_run

    d = readable_run(Path(str(p)))
    canvases = [d / n for n in ("recon.npz", "canvas.npz", "stitched.npz") if (d / n).is_file()]
    canvases += sorted(d.glob("*canvas*.npz")) + sorted(d.glob("*/recon.npz"))
    if canvases:
        Canvas.load(canvases[0])
        return
    from engine.network.bundles import load_bundle, resolve_bundle_path

    try:
        resolve_bundle_path(d)
    except InputError:
        raise InputError("data", expected, f"{p}: a directory holding no canvas and no "
                         "model bundle") from None
    load_bundle(d)


def run(args: argparse.Namespace) -> int:
    check_data(args.data)
    if not have_display():
        shown = "" if args.data == "lines" else f" ({args.data} is not opened)"
        print("ptycho gui: no display found (DISPLAY and WAYLAND_DISPLAY unset): running the "
              f"headless demo instead, writing {args.demo_out}{shown}", file=sys.stderr)
        from engine.cli import main

        return main(["demo", "--out", args.demo_out])
    return subprocess.call([sys.executable, "-m", "ptycho_gui", args.data])
