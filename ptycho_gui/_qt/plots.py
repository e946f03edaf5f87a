"""The matplotlib plots of the workbench: the preview's patch statistics across batches and
a run's loss/error and statistics curves, themed like the viewer."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from ptycho_gui.live import STAT_KEYS

log = logging.getLogger(__name__)


def theme_colours(viewer: Any) -> tuple[str, str]:
    """Background and text colours of the viewer's theme."""
    try:
        from napari.utils.theme import get_system_theme, get_theme

        name = getattr(viewer, "theme", "dark") if viewer is not None else "dark"
        if name == "system":
            name = get_system_theme()
        th = get_theme(name)
        return th.canvas.as_hex(), th.text.as_hex()
    except Exception:  # noqa: BLE001 - a theme without these colours: matplotlib's own
        log.debug("theme colours unavailable", exc_info=True)
        return "#262930", "#f0f1f2"


class _Plot(FigureCanvasQTAgg):
    def __init__(self, viewer: Any, size: tuple[float, float] = (4.2, 2.0)) -> None:
        self.figure = Figure(figsize=size, layout="constrained")
        super().__init__(self.figure)
        self.viewer = viewer
        self.setMinimumHeight(120)
        if viewer is not None:
            viewer.events.theme.connect(lambda *_: self.redraw())

    def _axes(self, n: int = 2) -> list[Any]:
        bg, fg = theme_colours(self.viewer)
        self.figure.clear()
        self.figure.set_facecolor(bg)
        axes = list(np.atleast_1d(self.figure.subplots(1, n)))
        for ax in axes:
            ax.set_facecolor(bg)
            ax.tick_params(colors=fg, labelsize=7)
            for side in ax.spines.values():
                side.set_color(fg)
            ax.xaxis.label.set_color(fg)
            ax.title.set_color(fg)
        self._fg, self._bg = fg, bg
        return axes

    def _legend(self, ax: Any) -> None:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, labelcolor=self._fg, facecolor=self._bg, edgecolor=self._fg)

    def redraw(self) -> None:
        raise NotImplementedError


class StatsPlot(_Plot):
    """Mean/std and the variances of each statistics batch of the last preview."""

    def __init__(self, viewer: Any) -> None:
        super().__init__(viewer)
        self.preview: Any = None
        self.redraw()

    def show(self, preview: Any) -> None:  # noqa: D102 - a Qt name on purpose
        self.preview = preview
        self.redraw()

    def redraw(self) -> None:
        a0, a1 = self._axes()
        p = self.preview
        if p is not None and p.stats is not None:
            recs = p.stats["batches"]
            x = np.arange(len(recs))
            for key, marker in (("mean", "o"), ("std", "s")):
                a0.plot(x, [r[key] for r in recs], marker=marker, ms=3, label=key)
            a1.plot(x, [r["var_zero_mean"] for r in recs], marker="o", ms=3,
                    label="var zero mean")
            vag = [r["var_across_group"] for r in recs]
            if all(v is None for v in vag):
                a1.text(0.5, 0.5, "var across group undefined\n(gridsize 1)",
                        transform=a1.transAxes, ha="center", va="center", color=self._fg,
                        fontsize=7)
            else:
                a1.plot(x, [np.nan if v is None else v for v in vag], marker="s", ms=3,
                        label="var across group")
            a0.set_title(f"amplitude, gridsize {p.gridsize}", fontsize=8)
            a1.set_title("variances", fontsize=8)
            for ax in (a0, a1):
                ax.set_xlabel("batch", fontsize=7)
                self._legend(ax)
        self.draw_idle()


class CurvesPlot(_Plot):
    """Loss (train, validation) or solver error, and the statistics, against step; redrawn
    at most once a second while a run goes, and once when it ends."""

    REDRAW_S = 1.0

    def __init__(self, viewer: Any) -> None:
        super().__init__(viewer)
        self.state: Any = None
        self._last = 0.0
        self.redraw()

    def show_state(self, state: Any) -> None:
        self.state = state
        now = time.monotonic()
        # a matplotlib redraw costs the GUI thread 0.1-0.3 s on a loaded CPU: only when the
        # plot is on screen (its tab shown), and the latest state is drawn when it is shown
        if self.isVisible() and now - self._last >= self.REDRAW_S:
            self._last = now
            self.redraw()

    def show_end(self, record: Any) -> None:
        curves = getattr(record, "curves", {}) or {}
        # a half-split resolution run: its FRC curve and threshold, and the resolution
        # (shown until the next resolution run)
        if curves.get("frc"):
            self.frc = (curves["frc"], curves.get("frc_threshold", []), record.metrics,
                        record.name)
        if self.isVisible():
            self.redraw()

    frc: Any = None

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self.state is not None:
            self.redraw()

    def redraw(self) -> None:
        if self.frc is not None and not getattr(self.state, "stats", None):
            a0, a2 = self._axes()  # a solver run has no statistics: loss beside the FRC
            a1 = None
            self._draw_frc(a2)
        elif self.frc is not None:
            a0, a1, a2 = self._axes(3)
            self._draw_frc(a2)
        else:
            a0, a1 = self._axes()
        a0.set_title("loss / error", fontsize=8)
        if a1 is not None:
            a1.set_title("statistics", fontsize=8)
        s = self.state
        if s is not None:
            plotted = False
            for key, label, style in (("loss", "train loss", "-"),
                                      ("val_loss", "validation loss", "o-"),
                                      ("error", "solver error", "o-")):
                pts = [(x, y) for x, y in getattr(s, key)
                       if y is not None and math.isfinite(y) and y > 0]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    a0.plot(xs, ys, style, ms=3, lw=1, label=label)
                    plotted = True
            if plotted:
                a0.set_yscale("log")
            a0.set_xlabel("epoch" if s.error and not s.loss else "step", fontsize=7)
            for key in STAT_KEYS if a1 is not None else ():
                pts = [(x, r.get(key)) for x, r in s.stats]
                pts = [(x, y) for x, y in pts if isinstance(y, int | float) and math.isfinite(y)]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    a1.plot(xs, ys, "o-", ms=3, lw=1, label=key.replace("_", " "))
            self._legend(a0)
            if a1 is not None:
                a1.set_xlabel("step", fontsize=7)
                self._legend(a1)
        self.draw_idle()

    def _draw_frc(self, ax: Any) -> None:
        curve, threshold, metrics, name = self.frc
        ax.plot(*zip(*curve, strict=True), "o-", ms=3, lw=1, label="FRC of the halves")
        if threshold:
            ax.plot(*zip(*threshold, strict=True), "--", lw=1, label="half-bit threshold")
        crossing = metrics.get("crossing_cycles_per_px")
        if crossing is not None:
            ax.axvline(crossing, color="0.6", lw=0.8)
        nm = metrics.get("resolution_nm")
        res = (f"{nm:,.1f} nm" if nm is not None
               else f"{metrics.get('resolution_px', float('nan')):.2f} px")
        at = "≤ " if metrics.get("reached_nyquist") else ""  # never under the threshold
        ax.set_title(f"half-split FRC: {at}{res}", fontsize=8)
        ax.set_xlabel("spatial frequency (cycles/px)", fontsize=7)
        ax.set_ylim(-0.1, 1.05)
        self._legend(ax)
