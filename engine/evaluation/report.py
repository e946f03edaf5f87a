"""PNG figures of datasets and canvases (matplotlib's Agg canvas; never pyplot)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.atomic import atomic_open
from engine.data import Dataset
from engine.physics.stitching import Canvas

# phases in these figures are unwrapped values (an object's phase, small next to 2π): a
# cyclic map would paint −a and +a alike, so phase uses a sequential map
PHASE_CMAP = "viridis"
ERROR_CMAP = "RdBu_r"
TITLE_SIZE, TICK_SIZE, TEXT_SIZE = 11, 9, 10


def _imshow(fig, pos, img, title, cmap="gray", vmin=None, vmax=None, label=""):
    ax = fig.add_subplot(*pos)
    im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.set_axis_off()
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    cb.ax.tick_params(labelsize=TICK_SIZE)
    if label:
        cb.set_label(label, fontsize=TICK_SIZE)
    return ax


def _text(fig, pos, title, lines):
    ax = fig.add_subplot(*pos)
    ax.set_axis_off()
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace",
            fontsize=TEXT_SIZE, transform=ax.transAxes)
    return ax


def _fmt(v, digits=4):
    if v is None:
        return "-"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def _metrics_lines(ev: dict) -> list[str]:
    amp, ph = ev.get("amplitude") or {}, ev.get("phase") or {}
    reg = ev.get("alignment", {}).get("registration", {})
    dy, dx = reg.get("shift_px", [0.0, 0.0])
    lines = [f"{'':<10}{'amplitude':>10}{'phase':>10}"]
    for name, key in (("SSIM", "ssim"), ("PSNR dB", "psnr"), ("MAE", "mae"),
                      ("Pearson r", "pearson_r")):
        lines.append(f"{name:<10}{_fmt(amp.get(key)):>10}{_fmt(ph.get(key)):>10}")
    lines += [f"phase RMS {_fmt(ph.get('rms_error_rad'))} rad",
              f"amp. scale {_fmt(amp.get('scale'))}",
              f"shift {dy:+.2f}, {dx:+.2f} px",
              f"coverage {ev.get('coverage_fraction', float('nan')):.1%}"]
    if reg.get("ok") is False:
        lines.append("REGISTRATION FAILED")
    return lines


def write_overview_png(path: str | os.PathLike[str], ds: Dataset, canvas: Canvas | None = None,
                       title: str = "", recon: Canvas | None = None,
                       evaluation: dict | None = None) -> Path:
    """``report.png``: the :func:`overview_figure` of its arguments."""
    return save_figure(overview_figure(ds, canvas, title, recon, evaluation), path)


def overview_figure(ds: Dataset, canvas: Canvas | None = None, title: str = "",
                    recon: Canvas | None = None, evaluation: dict | None = None):
    """Object (truth) amplitude/phase, probe, one pattern, a stitched canvas and optionally a
    reconstruction with its figures of merit (a matplotlib ``Figure``, four panels a row).

    Truth, stitched truth and reconstruction amplitudes share one colour scale (the
    reconstruction scaled by the evaluation's amplitude ``scale`` and placed on the truth's
    grid, registered, its global phase removed), as do their phases; phases use a
    sequential (non-cyclic) map. ``evaluation`` (an
    :func:`~engine.evaluation.metrics.evaluate_canvas` result) is computed when a
    reconstruction and a truth are given without one.
    """
    from matplotlib.figure import Figure

    from engine.evaluation.metrics import evaluate_canvas

    truth = ds.object
    if recon is not None and truth is not None and evaluation is None:
        evaluation = evaluate_canvas(recon, truth)
    rows = 1 + (canvas is not None) + (recon is not None)
    fig = Figure(figsize=(17, 3.9 * rows + 0.6), dpi=90)
    fig.suptitle(title or "ptycho-workbench", fontsize=13)
    amp_lim = ph_lim = (None, None)
    if truth is not None:
        amp_t, ph_t = np.abs(truth), np.angle(truth)
        amp_lim = (float(amp_t.min()), float(amp_t.max()))
        ph_lim = (float(ph_t.min()), float(ph_t.max()))
    k = 0

    def pos() -> tuple[int, int, int]:
        nonlocal k
        k += 1
        return (rows, 4, k)

    if truth is not None:
        ax = _imshow(fig, pos(), amp_t, "truth amplitude, scan positions", "gray", *amp_lim)
        ax.plot(ds.xcoords, ds.ycoords, ".", ms=2, color="tab:orange")
        _imshow(fig, pos(), ph_t, "truth phase", PHASE_CMAP, *ph_lim, label="rad")
    else:
        _text(fig, pos(), "truth", ["no ground-truth object"])
        _text(fig, pos(), "", [f"{ds.n} positions", f"N = {ds.N}"])
    _imshow(fig, pos(), np.abs(ds.probe), "probe amplitude |P|", "magma")
    if ds.diffraction is not None:
        pattern = np.log1p(np.asarray(ds.diffraction[0], dtype=np.float64) ** 2)
        title = "pattern 0"
        if ds.pixel_mask is not None:  # a hot pixel would set the colour scale: left blank
            pattern = np.where(ds.pixel_mask, pattern, np.nan)
            title = "pattern 0 (masked pixels blank)"
        _imshow(fig, pos(), pattern, title, "viridis", label="log(1 + counts)")
    else:
        _text(fig, pos(), "pattern", ["no diffraction data"])
    if canvas is not None:
        # the stitched truth on the truth's grid, so all amplitude panels share one frame
        shape = truth.shape if truth is not None else canvas.canvas.shape
        st = canvas.crop_object(shape) if truth is not None else canvas.canvas
        _imshow(fig, pos(), np.abs(st), "stitched truth amplitude", "gray", *amp_lim)
        _imshow(fig, pos(), np.angle(st), "stitched truth phase", PHASE_CMAP, *ph_lim,
                label="rad")
        _imshow(fig, pos(), canvas.weight, f"stitch weight Σw (origin {tuple(canvas.origin)})",
                "cividis")
        cov = canvas.coverage
        vals = np.abs(canvas.canvas[cov]) if cov.any() else np.array([np.nan])
        _text(fig, pos(), "stitched canvas", [
            f"shape   {canvas.canvas.shape[0]} x {canvas.canvas.shape[1]}",
            f"origin  {tuple(canvas.origin)}",
            f"covered {cov.mean():.1%}",
            f"|O| mean {np.mean(vals):.4g}", f"|O| std  {np.std(vals):.4g}",
            f"|O| min  {np.min(vals):.4g}", f"|O| max  {np.max(vals):.4g}"])
    if recon is not None:
        if truth is not None and evaluation is not None:
            from engine.evaluation.registration import shift_image

            est = recon.crop_object(truth.shape)
            cov = recon.crop_coverage(truth.shape) & np.isfinite(est)
            al = evaluation["alignment"]
            shifted, valid = shift_image(np.where(cov, est, 0), tuple(
                al["registration"]["shift_px"]), cov)
            aligned = np.where(valid, shifted * np.exp(-1j * al["phase_offset_rad"]), np.nan)
            scale = (evaluation.get("amplitude") or {}).get("scale", 1.0)
            _imshow(fig, pos(), np.abs(aligned) * scale,
                    f"reconstruction amplitude (x {scale:.3g})", "gray", *amp_lim)
            _imshow(fig, pos(), np.angle(aligned), "reconstruction phase (offset removed)",
                    PHASE_CMAP, *ph_lim, label="rad")
            err = np.angle(aligned * np.conj(truth))
            lim = float(np.nanmax(np.abs(err))) if np.isfinite(err).any() else 1.0
            _imshow(fig, pos(), err, "phase error (recon − truth)", ERROR_CMAP, -lim, lim,
                    label="rad")
            _text(fig, pos(), "figures of merit", _metrics_lines(evaluation))
        else:
            c = np.where(recon.coverage, recon.canvas, np.nan)
            _imshow(fig, pos(), np.abs(c), "reconstruction amplitude", "gray")
            _imshow(fig, pos(), np.angle(c), "reconstruction phase", PHASE_CMAP, label="rad")
            _imshow(fig, pos(), recon.weight, "reconstruction weight", "cividis")
            _text(fig, pos(), "figures of merit", ["no ground truth to compare with"])
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


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


def patch_figure(path: str | os.PathLike[str], amplitudes: np.ndarray, normalise: bool,
                 title: str, gap: int = 1) -> Path:
    """A figure of amplitude patches: one row per group, one column per channel, with a
    title, axis labels and a colour bar (the debug dump's patch grids).

    ``normalise=False`` shares one amplitude scale (0 … max, the colour bar's units are
    amplitude in X units); ``True`` stretches each patch to its own range (the colour bar
    reads the fraction of that patch's min … max). Gaps between patches are blue.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    a = np.abs(np.asarray(amplitudes, dtype=np.float64))
    if a.ndim == 3:
        a = a[:, None]
    b, C, M = a.shape[0], a.shape[1], a.shape[-1]
    if normalise:
        lo = a.min(axis=(-2, -1), keepdims=True)
        span = a.max(axis=(-2, -1), keepdims=True) - lo
        a = np.where(span > 0, (a - lo) / np.where(span > 0, span, 1.0), 0.0)
    # one channel: the groups wrap into rows of up to 4 (group = row label + column label)
    wrap = C == 1 and b > 4
    cols = min(b, 4) if wrap else C
    rows = -(-b // cols) if wrap else b
    cells = a[:, 0] if wrap else a.reshape(b * C, M, M)
    mosaic = np.full((rows * (M + gap) - gap, cols * (M + gap) - gap), np.nan)
    for k in range(cells.shape[0]):
        i, c = divmod(k, cols)
        mosaic[i * (M + gap):i * (M + gap) + M, c * (M + gap):c * (M + gap) + M] = cells[k]
    cmap = colormaps["gray"].with_extremes(bad=(0.15, 0.25, 0.55))
    fig = Figure(figsize=(max(1.3 * cols + 2.4, 6.5), 1.3 * rows + 1.8), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    top = float(np.nanmax(mosaic))
    vmax = 1.0 if normalise else (top if top > 0 else 1.0)
    im = ax.imshow(mosaic, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    centres = [k * (M + gap) + (M - 1) / 2 for k in range(max(rows, cols))]
    if wrap:
        ax.set_xticks(centres[:cols], [f"+{c}" for c in range(cols)], fontsize=9)
        ax.set_yticks(centres[:rows], [str(i * cols) for i in range(rows)], fontsize=9)
        ax.set_xlabel(f"group = row + column (C = 1; {M}x{M} px each)", fontsize=10)
        ax.set_ylabel("group (first of the row)", fontsize=10)
    else:
        ax.set_xticks(centres[:C], [str(c) for c in range(C)], fontsize=9)
        ax.set_yticks(centres[:b], [str(i) for i in range(b)], fontsize=9)
        ax.set_xlabel(f"channel (C = {C}; {M}x{M} px each)", fontsize=10)
        ax.set_ylabel("group", fontsize=10)
    ax.set_title(title, fontsize=10)
    cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03)
    cb.set_label("fraction of each patch's range" if normalise else "amplitude (X units)",
                 fontsize=9)
    cb.ax.tick_params(labelsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
