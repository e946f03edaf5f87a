"""Qt views of the workbench's runs: the run panel and the docked curves (thin views).

Every control calls a public method of :class:`~ptycho_gui.runs_controller.RunsController`
(``start``, ``pause``, ``resume``, ``stop``, ``more``, ``save_bundle``, ``load_bundle``,
``compare``); the views hold no state of their own beyond what they display. The options
form is built from the engine's typed options (:func:`engine.options.describe`): defaults
shown, rarely-changed options folded under "Advanced".
"""

from __future__ import annotations

import math
import time
from dataclasses import MISSING
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import InputError
from ptycho_gui.run_manager import KINDS, SOLVERS, STAT_KEYS, LiveState, RunRecord, options_class
from ptycho_gui.runs_controller import RunsController, describe_rate

# options the run panel sets itself (device drop-down) or that have no place in a form
HIDDEN = {"device", "accelerator", "devices", "strategy", "stitch"}


def _fields(cls: type) -> list[Any]:
    from engine.options import describe

    return [f for f in describe(cls) if f.name not in HIDDEN and not f.is_options
            or f.name == "scaling"]


class _Field:
    """One option's editor: reads back the value, or None when left at its default."""

    def __init__(self, info: Any, prefix: str = "") -> None:
        self.info, self.key = info, prefix + info.name
        d = info.default
        self.default = None if d is MISSING else d
        base = info.base
        if info.choices is not None:
            w = QComboBox()
            w.addItems([str(c) for c in info.choices])
            w.setCurrentText(str(d))
        elif base is bool and not info.optional:
            w = QCheckBox()
            w.setChecked(bool(d))
        else:
            w = QLineEdit()
            w.setPlaceholderText("auto" if d is None else str(d))
            if info.name == "scaling":
                w.setPlaceholderText("bundle (or data, fixed=<value>)")
        w.setToolTip(info.help or info.name)
        self.widget = w

    def value(self) -> Any:
        w, info = self.widget, self.info
        if isinstance(w, QComboBox):
            text = w.currentText()
            value = next((c for c in info.choices if str(c) == text), text)
            return None if value == self.default else value
        if isinstance(w, QCheckBox):
            return None if w.isChecked() == self.default else w.isChecked()
        text = w.text().strip()
        if not text:
            return None
        if info.name == "scaling":
            return text
        base = info.base
        if base is bool:
            return text.lower() in ("1", "true", "yes", "on")
        try:
            if base is int:
                return int(text)
            if base is float:
                return float(text)
        except ValueError:
            noun = "an integer" if base is int else "a number"
            raise InputError(info.name, noun, repr(text)) from None
        return text


class OptionsForm(QWidget):
    """The options of one kind of run, built from its typed options class."""

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.fields: list[_Field] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._section(layout, options_class(kind), "", "Advanced options")
        if kind == "refine":
            from engine.network.config import TrainConfig

            layout.addWidget(QLabel("Training (when no bundle is given)"))
            self._section(layout, TrainConfig, "train_", "Advanced training options")

    def _section(self, layout: QVBoxLayout, cls: type, prefix: str, fold: str) -> None:
        from superqt import QCollapsible

        basic, advanced = QFormLayout(), QFormLayout()
        for info in _fields(cls):
            f = _Field(info, prefix)
            self.fields.append(f)
            (advanced if info.advanced else basic).addRow(info.name, f.widget)
        holder = QWidget()
        holder.setLayout(basic)
        layout.addWidget(holder)
        if advanced.rowCount():
            box = QCollapsible(fold)
            inner = QWidget()
            inner.setLayout(advanced)
            box.addWidget(inner)
            layout.addWidget(box)

    def values(self) -> dict[str, Any]:
        """The options that differ from their defaults (bad text: InputError naming it)."""
        out = {}
        for f in self.fields:
            v = f.value()
            if v is not None:
                out[f.key] = v
        return out

    def set_value(self, key: str, value: Any) -> None:
        """Put ``value`` into the editor of ``key`` (for scripts and screenshots)."""
        for f in self.fields:
            if f.key == key:
                w = f.widget
                if isinstance(w, QComboBox):
                    w.setCurrentText(str(value))
                elif isinstance(w, QCheckBox):
                    w.setChecked(bool(value))
                else:
                    w.setText(str(value))
                return
        raise InputError(key, f"an option of '{self.kind}'", repr(value))


class RunPanel(QWidget):
    """Kind, options, device, Start / Pause / Stop / more / bundles, progress and history."""

    def __init__(self, controller: RunsController, parent: QWidget | None = None, *,
                 start: Any = None) -> None:
        super().__init__(parent)
        from engine.api import available_devices

        self.controller = controller
        # the workbench's start applies its settings (gridsize, scaling, backend...) first
        self._start = start or controller.start
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.kind = QComboBox()
        for key, label in KINDS.items():
            self.kind.addItem(label, key)
        self.kind.setToolTip("what to run")
        row.addWidget(QLabel("Run"))
        row.addWidget(self.kind, 1)
        layout.addLayout(row)
        extras = QFormLayout()
        self.device = QComboBox()
        self.device.addItems(["auto", *available_devices()])
        self.device.setToolTip("where the run computes (auto: the GPU when there is one)")
        self.backend = QComboBox()
        self.backend.addItems(["numpy", "torch"])
        self.backend.setToolTip("the solvers' compute backend")
        self.init = QComboBox()
        self.init.addItems(["flat", "network"])
        self.init.setToolTip("the solvers' first object: flat, or the loaded bundle's canvas")
        self.bundle = QLineEdit()
        self.bundle.setPlaceholderText("the loaded bundle / train a new one")
        from engine.network.presets import PRESETS

        self.preset = QComboBox()
        self.preset.addItems(["auto", *PRESETS])
        self.preset.setToolTip("the training recipe, as ptycho train --preset (auto: quick on "
                               "a CPU, standard on a GPU); options set below override it")
        extras.addRow("device", self.device)
        extras.addRow("backend", self.backend)
        extras.addRow("init", self.init)
        extras.addRow("bundle", self.bundle)
        extras.addRow("preset", self.preset)
        self._extras = extras
        layout.addLayout(extras)
        self.form_holder = QVBoxLayout()
        layout.addLayout(self.form_holder)
        self.form: OptionsForm | None = None
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        for b in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        more = QHBoxLayout()
        self.more_count = QSpinBox()
        self.more_count.setRange(1, 100_000)
        self.more_count.setValue(5)
        self.more_button = QPushButton("more iterations")
        self.more_button.setToolTip("continue the last solver run from where it ended")
        self.save_button = QPushButton("Save bundle…")
        self.load_button = QPushButton("Load bundle…")
        for w in (self.more_count, self.more_button, self.save_button, self.load_button):
            more.addWidget(w)
        layout.addLayout(more)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.rate = QLabel("")
        layout.addWidget(self.progress)
        layout.addWidget(self.rate)
        layout.addWidget(QLabel("History (select two runs to compare)"))
        self.history = QListWidget()
        self.history.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        layout.addWidget(self.history, 1)
        self.compare_button = QPushButton("Compare selected")
        layout.addWidget(self.compare_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.start_button.clicked.connect(self.on_start)
        self.pause_button.clicked.connect(self.on_pause)
        self.stop_button.clicked.connect(controller.stop)
        self.more_button.clicked.connect(self.on_more)
        self.save_button.clicked.connect(self.on_save_bundle)
        self.load_button.clicked.connect(self.on_load_bundle)
        self.compare_button.clicked.connect(self.on_compare)
        self.history.itemSelectionChanged.connect(self._selection_changed)
        controller.listeners_update.append(self.show_state)
        controller.listeners_end.append(self.show_end)
        self._kind_changed()
        self._set_running(False)
        for rec in controller.history:
            self._add_history(rec)

    # -- the kind and its form ---------------------------------------------------------------
    def kind_key(self) -> str:
        return self.kind.currentData()

    def set_kind(self, kind: str) -> None:
        self.kind.setCurrentIndex(list(KINDS).index(kind))

    def _kind_changed(self) -> None:
        kind = self.kind_key()
        if self.form is not None:
            self.form_holder.removeWidget(self.form)
            self.form.hide()  # gone at once, not when the event loop gets to deleteLater
            self.form.setParent(None)
            self.form.deleteLater()
        self.form = OptionsForm(kind)
        self.form_holder.addWidget(self.form)
        solver = kind in SOLVERS or kind == "refine"
        for widget, show in ((self.backend, solver), (self.init, kind in SOLVERS),
                             (self.bundle, kind in ("infer", "refine")),
                             (self.preset, kind in ("train", "refine"))):
            widget.setVisible(show)
            label = self._extras.labelForField(widget)
            if label is not None:
                label.setVisible(show)

    def options(self) -> dict[str, Any]:
        """The options the Start button passes (form values that differ from defaults)."""
        kind = self.kind_key()
        out = dict(self.form.values()) if self.form is not None else {}
        if self.device.currentText() != "auto":
            out["device"] = self.device.currentText()
        if kind in SOLVERS or kind == "refine":
            if self.backend.currentText() != "numpy":
                out["backend"] = self.backend.currentText()
        if kind in SOLVERS and self.init.currentText() != "flat":
            out["init"] = self.init.currentText()
        if kind in ("train", "refine") and self.preset.currentText() != "auto":
            out["preset"] = self.preset.currentText()
        if kind in ("infer", "refine") and self.bundle.text().strip():
            out["bundle"] = self.bundle.text().strip()
        return out

    # -- buttons -----------------------------------------------------------------------------
    def on_start(self) -> None:
        try:
            self._start(self.kind_key(), **self.options())
        except InputError as exc:  # the controller has shown it; the panel stays usable
            self.status.setText(f"not started: {exc}")
            return
        self.status.setText("")
        self._set_running(True)

    def on_pause(self) -> None:
        if self.pause_button.text() == "Pause":
            self.controller.pause()
            self.pause_button.setText("Resume")
        else:
            self.controller.resume()
            self.pause_button.setText("Pause")

    def on_more(self) -> None:
        try:
            self.controller.more(int(self.more_count.value()))
        except InputError as exc:
            self.status.setText(str(exc))
            return
        self._set_running(True)

    def on_save_bundle(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save bundle", "bundle.zip",
                                              "Bundle (*.zip);;Directory (*)")
        if path:
            try:
                self.status.setText(f"saved {self.controller.save_bundle(path)}")
            except InputError as exc:
                self.status.setText(str(exc))

    def on_load_bundle(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Load bundle (a bundle or run folder)")
        if path:
            try:
                loaded = self.controller.load_bundle(path)
            except InputError as exc:
                self.status.setText(str(exc))
                return
            self.bundle.setText(str(loaded))
            self.status.setText(f"loaded {loaded}")

    def selected_runs(self) -> list[RunRecord]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self.history.selectedItems()]

    def _selection_changed(self) -> None:
        self.compare_button.setEnabled(len(self.selected_runs()) == 2)

    def on_compare(self) -> Any:
        runs = self.selected_runs()
        if len(runs) != 2:
            return None
        try:
            return self.controller.compare(runs[0], runs[1])
        except InputError as exc:
            self.status.setText(str(exc))
            return None

    # -- what the controller reports ---------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.more_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        if not running:
            self.pause_button.setText("Pause")

    def show_state(self, state: LiveState) -> None:
        self.progress.setValue(int(1000 * max(0.0, min(1.0, state.fraction))))
        current = self.controller.manager.current
        name = current.name if current else ""
        self.rate.setText(f"{name} {state.phase}: step {state.step}"
                          + (f"/{state.total}" if state.total > 0 else "")
                          + (f", {describe_rate(state)}" if describe_rate(state) else ""))

    def show_end(self, record: RunRecord) -> None:
        self._set_running(False)
        self.progress.setValue(1000 if record.status == "finished" else self.progress.value())
        self._add_history(record)
        self.rate.setText(f"{record.name} {record.status}")
        if record.status == "failed":
            self.status.setText(record.error or "failed")

    def _add_history(self, record: RunRecord) -> None:
        if record.status == "running":
            return
        item = QListWidgetItem(record.row())
        item.setData(Qt.ItemDataRole.UserRole, record)
        item.setToolTip(str(record.out))
        self.history.addItem(item)


class CurvesPanel(QWidget):
    """Loss (train, validation) or solver error against step, and the variance statistics
    against step: a matplotlib figure themed like the viewer, redrawn at most once a
    second while a run goes (and once when it ends)."""

    REDRAW_S = 1.0

    def __init__(self, controller: RunsController, viewer: Any = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(7, 2.6), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.ax_loss = self.figure.add_subplot(1, 2, 1)
        self.ax_stats = self.figure.add_subplot(1, 2, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        self.viewer = viewer
        self._last = 0.0
        self._state: LiveState | None = None
        controller.listeners_update.append(self.show_state)
        controller.listeners_end.append(self.show_end)
        if viewer is not None:
            viewer.events.theme.connect(lambda *_: self.redraw())
        self.redraw()

    def _colors(self) -> tuple[str, str]:
        try:
            from napari.utils.theme import get_theme

            theme = get_theme(self.viewer.theme if self.viewer is not None else "dark")
            return theme.canvas.as_hex(), theme.text.as_hex()
        except Exception:  # noqa: BLE001 - a theme without these colours: matplotlib's own
            return "#262930", "#f0f1f2"

    def show_state(self, state: LiveState) -> None:
        self._state = state
        now = time.monotonic()
        if now - self._last >= self.REDRAW_S:
            self._last = now
            self.redraw()

    def show_end(self, record: RunRecord) -> None:
        self.redraw()

    def redraw(self) -> None:
        bg, fg = self._colors()
        self.figure.set_facecolor(bg)
        s = self._state
        for ax in (self.ax_loss, self.ax_stats):
            ax.clear()
            ax.set_facecolor(bg)
            ax.tick_params(colors=fg, labelsize=7)
            for spine in ax.spines.values():
                spine.set_color(fg)
            ax.xaxis.label.set_color(fg)
            ax.yaxis.label.set_color(fg)
            ax.title.set_color(fg)
        self.ax_loss.set_title("loss / error", fontsize=8)
        self.ax_stats.set_title("variance statistics", fontsize=8)
        if s is not None:
            plotted = False
            for key, label, style in (("loss", "train loss", "-"),
                                      ("val_loss", "validation loss", "o-"),
                                      ("error", "solver error", "o-")):
                pts = getattr(s, key)
                pts = [(x, y) for x, y in pts if y is not None and math.isfinite(y) and y > 0]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    self.ax_loss.plot(xs, ys, style, ms=3, lw=1, label=label)
                    plotted = True
            if plotted:
                self.ax_loss.set_yscale("log")
                self.ax_loss.legend(fontsize=7, labelcolor=fg, facecolor=bg, edgecolor=fg)
            self.ax_loss.set_xlabel("epoch" if s.error and not s.loss else "step", fontsize=7)
            for key in STAT_KEYS:
                pts = [(x, r.get(key)) for x, r in s.stats]
                pts = [(x, y) for x, y in pts if isinstance(y, int | float) and math.isfinite(y)]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    self.ax_stats.plot(xs, ys, "o-", ms=3, lw=1, label=key)
            if s.stats:
                self.ax_stats.legend(fontsize=7, labelcolor=fg, facecolor=bg, edgecolor=fg)
            self.ax_stats.set_xlabel("step", fontsize=7)
        self.canvas.draw_idle()


def add_run_views(viewer: Any, controller: RunsController, *, start: Any = None
                  ) -> tuple[RunPanel, CurvesPanel]:
    """Dock the run panel (right) and the curves (bottom) on ``viewer``'s window;
    ``start`` is what the Start button calls (default: the controller's)."""
    panel = RunPanel(controller, start=start)
    curves = CurvesPanel(controller, viewer)
    viewer.window.add_dock_widget(panel, name="Ptycho runs", area="right")
    viewer.window.add_dock_widget(curves, name="Run curves", area="bottom")
    return panel, curves


__all__ = ["CurvesPanel", "OptionsForm", "RunPanel", "add_run_views"]
