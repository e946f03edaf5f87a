"""The docked matplotlib panel of the patch statistics across batches.

Themed to the viewer's light or dark theme and redrawn on each preview.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def theme_colours(viewer: Any) -> dict[str, str]:
    """Background, foreground and text colours of the viewer's current theme."""
    from napari.utils.theme import get_system_theme, get_theme

    name = getattr(viewer, "theme", "dark") if viewer is not None else "dark"
    if name == "system":
        name = get_system_theme()
    th = get_theme(name)
    return {"background": th.background.as_hex(), "foreground": th.foreground.as_hex(),
            "text": th.text.as_hex()}


class StatsPanel:
    """A matplotlib figure docked in the viewer (``viewer=None``: a figure only, for tests)."""

    def __init__(self, viewer: Any, dock: bool = True) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.viewer = viewer
        self.figure = Figure(figsize=(5, 2.4), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        self.dock = None
        if dock and viewer is not None and hasattr(viewer, "window"):
            self.dock = viewer.window.add_dock_widget(self.canvas, name="Ptycho statistics",
                                                      area="bottom")
            viewer.events.theme.connect(lambda e: self.redraw())
        self._last: Any = None
        self.redraw()

    def update(self, preview: Any) -> None:
        self._last = preview
        self.redraw()

    def redraw(self) -> None:
        c = theme_colours(self.viewer)
        fig = self.figure
        fig.clear()
        fig.set_facecolor(c["background"])
        axes = fig.subplots(1, 2)
        for ax in axes:
            ax.set_facecolor(c["background"])
            ax.tick_params(colors=c["text"], labelsize=8)
            for side in ax.spines.values():
                side.set_color(c["text"])
            ax.set_xlabel("batch", color=c["text"], fontsize=8)
        p = self._last
        if p is not None:
            recs = p.stats["batches"]
            x = np.arange(len(recs))
            for key, marker in (("mean", "o"), ("std", "s")):
                axes[0].plot(x, [r[key] for r in recs], marker=marker, label=key)
            axes[1].plot(x, [r["var_zero_mean"] for r in recs], marker="o",
                         label="var_zero_mean")
            vag = [r["var_across_group"] for r in recs]
            if all(v is None for v in vag):
                axes[1].text(0.5, 0.5, "var_across_group undefined\n(gridsize 1)",
                             transform=axes[1].transAxes, ha="center", va="center",
                             color=c["text"], fontsize=8)
            else:
                axes[1].plot(x, [np.nan if v is None else v for v in vag], marker="s",
                             label="var_across_group")
            axes[0].set_title(f"amplitude statistics, gridsize {p.gridsize}", color=c["text"],
                              fontsize=9)
            axes[1].set_title("variances", color=c["text"], fontsize=9)
            for ax in axes:
                leg = ax.legend(fontsize=7, facecolor=c["background"], edgecolor=c["text"])
                for t in leg.get_texts():
                    t.set_color(c["text"])
        self.canvas.draw_idle()
