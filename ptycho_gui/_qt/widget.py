"""The "Ptycho Workbench" dock: one tabbed panel beside the canvas (a thin view).

Tabs: **Preview** (data, settings, statistics), **Run** (the run panel), **Compare** (A/B
and its table, where every comparison lands) and **Plots** (the preview's statistics and a
run's curves), **Data** (the loaded file's geometry summary, the lines ``ptycho inspect``
prints; shown when a file opens). One status line under the tabs shows the last result or
error. Nothing has a fixed minimum height that adds up: the dock scrolls, so the window
fits a 1366×768 screen and the canvas stays the largest thing on it.
"""

from __future__ import annotations

import logging
from typing import Any

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine import api
from engine.errors import PtychoError
from ptycho_gui._qt.executor import QtExecutor, canvas_size, warm_up
from ptycho_gui._qt.forms import OptionsForm
from ptycho_gui._qt.plots import CurvesPlot, StatsPlot
from ptycho_gui._qt.run_panel import RunPanel
from ptycho_gui.model import device_choices
from ptycho_gui.samples import SAMPLES
from ptycho_gui.workbench import Workbench

log = logging.getLogger(__name__)
DOCK_WIDTH = 380


def _scrolled(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(widget)
    return area


class _Table(QTableWidget):
    def show_rows(self, index: list[str], columns: list[str], rows: list[list[Any]]) -> None:
        self.clear()
        self.setRowCount(len(index))
        self.setColumnCount(len(columns))
        self.setVerticalHeaderLabels(index)
        self.setHorizontalHeaderLabels(columns)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                self.setItem(i, j, QTableWidgetItem(str(value)))
        self.resizeColumnsToContents()

    def cell(self, i: int, j: int) -> str:
        item = self.item(i, j)
        return "" if item is None else item.text()


class WorkbenchWidget(QWidget):
    """The dock widget. ``widget.workbench`` is the :class:`Workbench` it views."""

    def __init__(self, napari_viewer: Any, workbench: Workbench | None = None) -> None:
        super().__init__()
        viewer = self.viewer = napari_viewer
        self.workbench = wb = workbench or Workbench(
            viewer, executor=QtExecutor(viewer), canvas_size=canvas_size(viewer))
        warm_up()
        self._syncing = False
        self.tabs = QTabWidget()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(2, 2, 2, 2)
        outer.addWidget(self.tabs, 1)
        self.status = QLabel("load a sample or a file")
        self.status.setWordWrap(True)
        outer.addWidget(self.status)
        self.setMinimumWidth(DOCK_WIDTH)

        self.tabs.addTab(_scrolled(self._preview_tab()), "Preview")
        self.run_panel = RunPanel(wb, on_compare=self.show_compare)
        self.tabs.addTab(_scrolled(self.run_panel), "Run")
        self.tabs.addTab(_scrolled(self._compare_tab()), "Compare")
        plots = QWidget()
        lay = QVBoxLayout(plots)
        self.stats_plot, self.run_curves = StatsPlot(viewer), CurvesPlot(viewer)
        lay.addWidget(QLabel("preview statistics per batch"))
        lay.addWidget(self.stats_plot, 1)
        lay.addWidget(QLabel("the current run"))
        lay.addWidget(self.run_curves, 1)
        self.tabs.addTab(plots, "Plots")
        self.tabs.addTab(self._data_tab(), "Data")

        wb.settings_changed.connect(self._sync)
        wb.previewed.connect(self._show_result)
        wb.compared.connect(self._show_comparison)
        wb.loaded.connect(self._show_summary)
        wb.errored.connect(lambda text: self._say(f"error: {text}"))
        wb.warned.connect(lambda text: self._say(f"warning: {text}"))
        wb.runs.listeners_update.append(self.run_curves.show_state)
        wb.runs.listeners_end.append(self.run_curves.show_end)
        wb.runs.listeners_start.append(
            lambda _r: self.status.setText(f"running… ({wb.propagation_text()})"))
        viewer.layers.events.inserted.connect(self._refresh_choices)
        viewer.layers.events.inserted.connect(self._adopt_opened)
        viewer.layers.events.removed.connect(self._refresh_choices)
        self._sync(wb.settings())

    # -- tabs --------------------------------------------------------------------------------
    def _preview_tab(self) -> QWidget:
        wb = self.workbench
        tab = QWidget()
        layout = QVBoxLayout(tab)
        data = QFormLayout()
        self.sample = QComboBox()
        self.sample.addItems(list(SAMPLES))
        self.sample.setToolTip("a simulated dataset (nothing is downloaded)")
        self.open_sample = QPushButton("Open sample")
        self.open_sample.clicked.connect(lambda: wb.open(self.sample.currentText()))
        row = QHBoxLayout()
        row.addWidget(self.sample, 1)
        row.addWidget(self.open_sample)
        data.addRow("sample", row)
        self.open_file = QPushButton("Open data file…")
        self.open_file.clicked.connect(self._open_file)
        data.addRow("", self.open_file)
        layout.addLayout(data)
        # the settings, from the engine's typed options; the advanced ones folded
        self.form = OptionsForm(api.PreviewOptions.describe(), on_change=self._changed)
        layout.addWidget(self.form)
        extra = QFormLayout()
        self.backend = QComboBox()
        self.backend.addItems(list(api.available_backends()))
        self.backend.setToolTip("array library for the preview and the solvers")
        self.device = QComboBox()
        self.device.addItems(device_choices())
        self.device.setToolTip("where torch computes (auto: the GPU when there is one)")
        self.backend.activated.connect(lambda *_: self._set(backend=self.backend.currentText()))
        self.device.activated.connect(lambda *_: self._set(device=self.device.currentText()))
        self.bundle = QLineEdit()
        self.bundle.setPlaceholderText("none: the truth")
        self.bundle.setToolTip("a trained model bundle: its prediction replaces the truth")
        self.bundle.editingFinished.connect(
            lambda: self._set(bundle=self.bundle.text().strip() or None))
        extra.addRow("backend", self.backend)
        extra.addRow("device", self.device)
        extra.addRow("bundle", self.bundle)
        layout.addLayout(extra)
        self.scale = QLabel("")
        self.scale.setWordWrap(True)
        self.scale.setToolTip("the intensity scale s in use, its source and the data's own; "
                              "red when they differ by more than 2x")
        layout.addWidget(self.scale)
        self.table = _Table()
        self.table.setMaximumHeight(190)
        layout.addWidget(self.table)
        layout.addStretch(1)
        return tab

    def _data_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addWidget(QLabel("the loaded data (as `ptycho inspect` prints it)"))
        self.summary = QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setPlaceholderText("load a sample or a data file (.cxi, .h5, .nxs, .npz)")
        font = self.summary.font()
        font.setFamily("monospace")
        font.setStyleHint(font.StyleHint.Monospace)
        self.summary.setFont(font)
        layout.addWidget(self.summary, 1)
        return tab

    def _compare_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        form = QFormLayout()
        self.compare_a, self.compare_b = QComboBox(), QComboBox()
        self.compare_a.setToolTip("baseline: a canvas layer")
        self.compare_b.setToolTip("candidate: registered onto A before comparing")
        self.compare_a_file, self.compare_b_file = QLineEdit(), QLineEdit()
        for w in (self.compare_a_file, self.compare_b_file):
            w.setPlaceholderText("or a canvas .npz, run directory or statistics JSON")
        form.addRow("A", self.compare_a)
        form.addRow("or A file", self.compare_a_file)
        form.addRow("B", self.compare_b)
        form.addRow("or B file", self.compare_b_file)
        layout.addLayout(form)
        self.compare_button = QPushButton("Compare A and B")
        self.compare_button.clicked.connect(self._compare)
        layout.addWidget(self.compare_button)
        self.compare_table = _Table()
        layout.addWidget(self.compare_table, 1)
        return tab

    # -- controls -> workbench ---------------------------------------------------------------
    def _act(self, action: Any, *args: Any) -> Any:
        """The one adapter: a PtychoError becomes a notification and the status line."""
        try:
            return action(*args)
        except PtychoError as exc:
            self.workbench.reporter.error(exc)
            return None

    def _open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset", "",
                                              "Data (*.npz *.h5 *.hdf5 *.cxi *.nxs);;All (*)")
        if path:
            self.workbench.open(path)  # read off the GUI thread; errors reported

    def _changed(self, key: str) -> None:
        try:
            value = self.form.value(key)
        except PtychoError as exc:
            self.workbench.reporter.error(exc)
            return
        self._set(**{key: value})

    def _set(self, **settings: Any) -> None:
        if not self._syncing:
            self.workbench.set(**settings)  # reports a bad value itself

    def _canvas_layers(self) -> list[str]:
        return [layer.name for layer in self.viewer.layers
                if "canvas" in layer.metadata and layer.name.endswith("amplitude")]

    def _refresh_choices(self, _event: Any = None) -> None:
        names = self._canvas_layers()
        for i, w in enumerate((self.compare_a, self.compare_b)):
            current = w.currentText()
            w.blockSignals(True)
            w.clear()
            w.addItems(names)
            if current in names:
                w.setCurrentText(current)
            elif len(names) > i:  # A and B default to different layers
                w.setCurrentIndex(min(i, len(names) - 1) if i == 0 else len(names) - 1)
            w.blockSignals(False)

    def _compare(self) -> None:
        a = self.compare_a_file.text().strip() or self.compare_a.currentText()
        b = self.compare_b_file.text().strip() or self.compare_b.currentText()
        if not a or not b:
            self.workbench.reporter.error(f"compare: expected two canvases (layers or files), "
                                          f"got A = {a or 'none'}, B = {b or 'none'}")
            return
        self._act(self.workbench.compare, a, b)

    def show_compare(self) -> None:
        self.tabs.setCurrentIndex(2)

    # -- workbench -> view -------------------------------------------------------------------
    def _sync(self, settings: dict[str, Any]) -> None:
        self._syncing = True
        try:
            self.form.show_values({k: v for k, v in settings.items() if k in self.form.fields})
            self.backend.setCurrentText(settings["backend"])
            self.device.setCurrentText(settings["device"])
            self.bundle.setText(settings["bundle"] or "")
        finally:
            self._syncing = False

    def _show_result(self, p: api.Preview) -> None:
        rows = dict(self.workbench.stats_rows())
        self.table.show_rows([k.replace("_", " ") for k in rows], ["pooled"],
                             [[v] for v in rows.values()])
        self.scale.setText(f"scale: {self.workbench.scale_text()}")
        warn = p.scale is not None and p.scale.mismatch
        self.scale.setStyleSheet("color: #e04040; font-weight: bold;" if warn else "")
        t = p.timings  # the engine's own time (drawing and event-loop waits not included)
        layers = sum(v for k, v in t.items() if k != "statistics")
        self._say(f"{p.source}, {p.groups.n_groups} groups of {p.groups.C}; computed in "
                  f"{layers:.2f} s + statistics {t.get('statistics', 0.0):.2f} s; "
                  f"{self.workbench.propagation_text()}")
        self.stats_plot.show(p)

    def _show_comparison(self, view: Any) -> None:
        self.compare_table.show_rows([str(r[0]) for r in view.rows], list(view.columns[1:]),
                                     [list(r[1:]) for r in view.rows])
        self.show_compare()
        self._say(f"compared A and B ({view.kind})")

    def _adopt_opened(self, event: Any) -> None:
        """A dataset file opened through File › Open (the reader's layers name their file)
        becomes the workbench's dataset: read off the GUI thread, with its summary."""
        meta = getattr(event.value, "metadata", {})
        info = meta.get("ptycho") if isinstance(meta, dict) else None
        if (not isinstance(info, dict) or info.get("kind") != "dataset"
                or meta.get("workbench") or "dataset" not in meta):
            return
        path = info.get("path")
        if path and path != self.workbench.data_path:
            self.workbench.open(path)

    def _show_summary(self, _ds: Any = None) -> None:
        """The geometry summary of what was loaded; a file's brings its tab forward."""
        self.summary.setPlainText("\n".join(self.workbench.summary()))
        if self.workbench.model.summary:
            self.tabs.setCurrentIndex(self.tabs.count() - 1)

    def _say(self, text: str) -> None:
        self.status.setText(text)
