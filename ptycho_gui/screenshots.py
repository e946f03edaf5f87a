"""``python -m ptycho_gui.screenshots [OUT_DIR]``: the README's pictures of the workbench.

Writes ``workbench-gridsize1.png`` and ``workbench-gridsize2.png`` (the ``lines`` sample,
every preview layer, the statistics panel) and ``workbench-compare.png`` (the truth's
stitched canvas against a 10-epoch rPIE reconstruction: A, B registered, A − B, and the
comparison table) and ``workbench-cxi.png`` (a CXI file with its geometry: the Data tab's
summary, every layer in nm, the scale bar). Needs a display: ``make screenshots`` runs it
under ``xvfb-run``.
"""

from __future__ import annotations

import sys
from pathlib import Path

SIZE = (1600, 1000)  # the README pictures; the window also fits 1366 × 768


def _grab(viewer, path: Path) -> Path:
    from qtpy.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()
    img = viewer.screenshot(canvas_only=False, flash=False)
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, img)
    return path


def cxi_view(viewer, widget, out: Path) -> Path:
    """The ``lines`` sample written as a CXI file (8 keV, 2 m, 75 µm pixels) and opened:
    the geometry summary in the Data tab, the canvas and positions in nm."""
    import tempfile

    from engine import api
    from ptycho_gui.samples import make_sample

    geometry = api.Geometry(wavelength=1.55e-10, distance=2.0, detector_pixel=(75e-6, 75e-6))
    path = api.save_dataset(Path(tempfile.mkdtemp()) / "lines.cxi", make_sample("lines"),
                            geometry=geometry)
    wb = widget.workbench
    for layer in list(viewer.layers):  # the earlier pictures' own layers
        if not layer.metadata.get("workbench"):
            viewer.layers.remove(layer)
    wb.set(gridsize=1)
    wb.load(path)
    wb.wait(120)
    viewer.layers.selection.active = viewer.layers["positions"]
    wb.focus()
    return _grab(viewer, out / "workbench-cxi.png")


def main(argv: list[str] | None = None) -> int:
    out = Path((argv if argv is not None else sys.argv[1:])[0] if (
        argv if argv is not None else sys.argv[1:]) else "docs/images")
    import napari

    from engine import api

    viewer = napari.Viewer(title="Ptycho Workbench", show=True)
    viewer.window.resize(*SIZE)
    _, widget = viewer.window.add_plugin_dock_widget("ptycho-workbench", "Ptycho Workbench")
    wb = widget.workbench
    wb.load("lines")
    written = []
    wb.wait(120)
    for g in (1, 2):
        wb.set(gridsize=g)
        wb.wait(120)
        viewer.layers.selection.active = viewer.layers["patch grid amplitude"]
        wb.focus()  # the window has its final size now
        written.append(_grab(viewer, out / f"workbench-gridsize{g}.png"))

    # compare: the stitched truth (A) against an rPIE reconstruction (B) of the same data
    recon = api.reconstruct(wb.data, api.RPIEOptions(iterations=10, update_probe=False))
    from ptycho_gui.layers import canvas_layers

    for data, kwargs, _ in canvas_layers(recon.canvas, "rPIE"):
        viewer.add_image(data, **{**kwargs, "visible": False})
    widget.compare_a.setCurrentText("canvas amplitude")
    widget.compare_b.setCurrentText("rPIE amplitude")
    widget.compare_button.click()
    wb.wait(120)  # the compare view is brought into view, its table in front
    written.append(_grab(viewer, out / "workbench-compare.png"))
    written.append(cxi_view(viewer, widget, out))
    for p in written:
        print(f"wrote {p}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
