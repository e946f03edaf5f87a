"""``python -m ptycho_gui [DATA | RUN_DIR | SAMPLE]``: napari with the workbench docked.

DATA: a dataset NPZ, or a CXI, NeXus or Ptychodus file (``.cxi``/``.h5``/``.nxs``).

Without an argument the ``lines`` sample is loaded. ``ptycho gui`` runs this module in a
subprocess so the engine never imports the GUI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ptycho gui", description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="lines",
                        help="dataset NPZ, CXI/NeXus/HDF5 file, run directory, or a sample name "
                        "(lines, asym, grf)")
    args = parser.parse_args(argv)

    import napari

    from engine import api
    from ptycho_gui.samples import SAMPLES

    viewer = napari.Viewer(title="Ptycho Workbench")
    _, widget = viewer.window.add_plugin_dock_widget("ptycho-workbench", "Ptycho Workbench")
    wb = widget.workbench
    p = Path(args.data)
    if args.data in SAMPLES:
        wb.load(args.data)
    elif p.is_file() and api.is_hdf5(p):  # CXI, NeXus, Ptychodus: the workbench's dataset
        wb.load(p)
    elif p.is_dir() or "canvas" in _keys(p):
        viewer.open(str(p), plugin="ptycho-workbench")
    else:
        wb.load(p)
    napari.run()
    return 0


def _keys(p: Path) -> list[str]:
    import numpy as np

    with np.load(p, allow_pickle=False) as z:
        return list(z.files)


if __name__ == "__main__":
    sys.exit(main())
