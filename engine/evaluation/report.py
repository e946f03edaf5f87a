"""PNG figures of datasets and canvases (matplotlib's Agg canvas; never pyplot)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.atomic import atomic_open
from engine.data import Dataset
from engine.physics.stitching import Canvas


def _imshow(fig, pos, img, title, cmap="gray"):
    ax = fig.add_subplot(*pos)
    im = ax.imshow(img, cmap=cmap)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    return ax


def write_overview_png(path: str | os.PathLike[str], ds: Dataset, canvas: Canvas | None = None,
                       title: str = "", recon: Canvas | None = None) -> Path:
    """Object (truth) amplitude/phase, probe, one pattern, a stitched canvas and optionally a
    reconstruction's amplitude and phase."""
    from matplotlib.figure import Figure

    rows = 3 if recon is not None else 2
    fig = Figure(figsize=(13, 3.3 * rows), dpi=90)
    fig.suptitle(title or "ptycho-workbench", fontsize=10)
    if ds.object is not None:
        _imshow(fig, (rows, 4, 1), np.abs(ds.object), "truth amplitude")
        _imshow(fig, (rows, 4, 2), np.angle(ds.object), "truth phase", "twilight")
        ax = fig.axes[0]
        ax.plot(ds.xcoords, ds.ycoords, ".", ms=1.5, color="tab:orange")
    _imshow(fig, (rows, 4, 3), np.abs(ds.probe), "probe amplitude", "magma")
    if ds.diffraction is not None:
        _imshow(fig, (rows, 4, 4), np.log1p(ds.diffraction[0] ** 2), "pattern 0, log(1+counts)",
                "viridis")
    if canvas is not None:
        _imshow(fig, (rows, 4, 5), np.abs(canvas.canvas),
                f"stitched truth amplitude (origin {canvas.origin})")
        _imshow(fig, (rows, 4, 6), np.angle(canvas.canvas), "stitched truth phase", "twilight")
        _imshow(fig, (rows, 4, 7), canvas.weight, "stitch weight Σw", "cividis")
    if recon is not None:
        _imshow(fig, (rows, 4, 9), np.abs(recon.canvas), "reconstruction amplitude")
        _imshow(fig, (rows, 4, 10), np.angle(recon.canvas), "reconstruction phase", "twilight")
    return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike[str]) -> Path:
    """Render a matplotlib ``Figure`` to PNG through Agg (no pyplot), atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with atomic_open(path, "wb") as fh:
        FigureCanvasAgg(fig).print_png(fh)
    return Path(path)


def write_canvas_pngs(canvas: Canvas, out_dir: str | os.PathLike[str],
                      label: str = "") -> list[Path]:
    """``amplitude.png`` and ``phase.png`` of a canvas in ``out_dir`` (uncovered pixels blank)."""
    from matplotlib.figure import Figure

    c = canvas.canvas
    paths = []
    for name, img, cmap in (("amplitude", np.abs(c), "gray"), ("phase", np.angle(c), "twilight")):
        fig = Figure(figsize=(5, 5 * img.shape[0] / max(img.shape[1], 1) + 0.4), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
        im = ax.imshow(np.where(canvas.coverage, img, np.nan), cmap=cmap)
        fig.colorbar(im, ax=ax, fraction=0.046)
        title = f"{label} {name}" if label else name
        ax.set_title(f"{title}, origin {tuple(canvas.origin)}", fontsize=9)
        ax.set_axis_off()
        paths.append(save_figure(fig, Path(out_dir) / f"{name}.png"))
    return paths
