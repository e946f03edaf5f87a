"""The run panel: what to run, its options, Start / Pause / Stop / more, bundles, progress
and the history. A thin view over :class:`~ptycho_gui.workbench.Workbench`.

The settings a kind inherits from the workbench (gridsize, neighbour count, backend,
device, scaling, bundle) are shown on one line, not edited here: each has one place. The
form's greyed values are the preset that will run on this machine (``auto`` device); only
fields a user edits are sent, and they override the preset even when equal to a default.
"""

from __future__ import annotations

import logging
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
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

from engine import api
from engine.errors import PtychoError
from ptycho_gui._qt.forms import OptionsForm, words
from ptycho_gui.kinds import KINDS, get_kind
from ptycho_gui.live import LiveState, describe_rate
from ptycho_gui.requests import preset_defaults
from ptycho_gui.services import RunRecord

log = logging.getLogger(__name__)
# options the workbench settings carry, or that have no place in a form
HIDDEN = {"device", "accelerator", "devices", "strategy", "stitch", "scaling", "gridsize",
          "neighbor_count", "probe_init"}
# the starting probe choices (the solvers' probe_init; "file:PATH" can be typed)
PROBE_STARTS = ("given", "data", "disk", "gaussian", "zoneplate")


def form_fields(cls: type) -> list[Any]:
    return [f for f in cls.describe() if f.name not in HIDDEN and not f.is_options]


class RunPanel(QWidget):
    """Kind, options, Start / Pause / Stop / more / bundles, progress and history."""

    def __init__(self, workbench: Any, parent: QWidget | None = None,
                 on_compare: Any = None) -> None:
        super().__init__(parent)
        self.workbench = wb = workbench
        self._on_compare = on_compare
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.kind = QComboBox()
        for key, spec in KINDS.items():
            self.kind.addItem(spec.label, key)
        self.kind.setToolTip("what to run")
        row.addWidget(QLabel("Run"))
        row.addWidget(self.kind, 1)
        layout.addLayout(row)
        self.inherited = QLabel("")
        self.inherited.setWordWrap(True)
        self.inherited.setToolTip("settings the run takes from the Preview tab (change them "
                                  "there)")
        layout.addWidget(self.inherited)
        extras = QFormLayout()
        self.init = QComboBox()
        self.init.addItems(["flat", "network"])
        self.init.setToolTip("the solvers' first object: flat, or the bundle's canvas")
        self.bundle = QLineEdit()
        self.bundle.setPlaceholderText("the workbench's bundle, or the last trained")
        self.preset = QComboBox()
        self.preset.addItems(["auto", *api.presets()])
        self.preset.setToolTip("the training recipe, as ptycho train --preset (auto: quick on "
                               "a CPU, standard on a GPU); fields edited below override it")
        self.probe_start = QComboBox()
        self.probe_start.setEditable(True)  # file:PATH is typed
        self.probe_start.addItems(list(PROBE_STARTS))
        self.probe_start.setToolTip(
            "the probe the solver starts from: the data file's (given), from the mean "
            "diffraction pattern (data), a model (disk, gaussian, zoneplate) or file:PATH; "
            "shown in the viewer before the run")
        self.devices = QSpinBox()
        self.devices.setRange(1, max(1, api.available_ranks("cuda")))
        self.devices.setToolTip("GPUs to run the solver on, one rank each, the positions "
                                "split between them (docs/iterative.md#several-devices)")
        extras.addRow("first object", self.init)
        extras.addRow("starting probe", self.probe_start)
        extras.addRow("bundle", self.bundle)
        extras.addRow("preset", self.preset)
        extras.addRow("GPUs", self.devices)
        self._extras = extras
        self._controls = {"init": self.init, "probe": self.probe_start, "bundle": self.bundle,
                          "preset": self.preset, "devices": self.devices}
        layout.addLayout(extras)
        self.form_holder = QVBoxLayout()
        layout.addLayout(self.form_holder)
        self.form: OptionsForm | None = None
        self.train_form: OptionsForm | None = None
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
        self.rate.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.rate)
        layout.addWidget(QLabel("History (select two runs to compare)"))
        self.history = QListWidget()
        self.history.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.history.setMinimumHeight(60)
        layout.addWidget(self.history, 1)
        self.compare_button = QPushButton("Compare selected")
        layout.addWidget(self.compare_button)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.preset.currentIndexChanged.connect(lambda *_: self._show_defaults())
        self.probe_start.activated.connect(lambda *_: self.on_probe_start())
        self.probe_start.lineEdit().editingFinished.connect(self.on_probe_start)
        self.start_button.clicked.connect(self.on_start)
        self.pause_button.clicked.connect(self.on_pause)
        self.stop_button.clicked.connect(wb.stop)
        self.more_button.clicked.connect(self.on_more)
        self.save_button.clicked.connect(self.on_save_bundle)
        self.load_button.clicked.connect(self.on_load_bundle)
        self.compare_button.clicked.connect(self.on_compare)
        self.history.itemSelectionChanged.connect(self._selection_changed)
        wb.runs.listeners_update.append(self.show_state)
        wb.runs.listeners_end.append(self.show_end)
        wb.runs.listeners_answered.append(self.show_answered)
        wb.settings_changed.connect(lambda *_: self._show_inherited())
        wb.loaded.connect(lambda *_: self._kind_changed())
        self._kind_changed()
        self._set_running(False)
        self._selection_changed()
        for rec in wb.history:
            self._add_history(rec)

    # -- the kind and its form ---------------------------------------------------------------
    def kind_key(self) -> str:
        return self.kind.currentData()

    def set_kind(self, kind: str) -> None:
        self.kind.setCurrentIndex(list(KINDS).index(kind))

    def _kind_changed(self) -> None:
        kind = self.kind_key()
        spec = get_kind(kind)
        for form in (self.form, self.train_form):
            if form is not None:
                self.form_holder.removeWidget(form)
                form.hide()  # gone at once, not when the event loop gets to deleteLater
                form.setParent(None)
                form.deleteLater()
        self.form = OptionsForm(form_fields(spec.options()))
        self.form_holder.addWidget(self.form)
        self.train_form = None
        if kind == "refine":
            self.train_form = OptionsForm(form_fields(api.TrainConfig), prefix="train_",
                                          title="training (when no bundle is given)")
            self.form_holder.addWidget(self.train_form)
        for name, widget in self._controls.items():
            show = name in spec.controls
            if name == "devices":  # only where there is more than one GPU to choose
                show = show and self.devices.maximum() > 1
            widget.setVisible(show)
            label = self._extras.labelForField(widget)
            if label is not None:
                label.setVisible(show)
        self._show_defaults()
        self._show_inherited()

    def _show_defaults(self) -> None:
        """Grey values = what will run: the preset on this machine's device."""
        kind, wb = self.kind_key(), self.workbench
        n = None if wb.data is None else wb.data.n
        try:
            if kind in ("train", "refine"):
                preset = None if self.preset.currentText() == "auto" else \
                    self.preset.currentText()
                cfg = api.training_config(preset, wb.device, n_positions=n)
                target = self.form if kind == "train" else self.train_form
                target.set_defaults({("train_" if kind == "refine" else "") + k: v
                                     for k, v in cfg.to_dict().items()})
            if kind != "train":
                self.form.set_defaults(preset_defaults(kind))
        except PtychoError as exc:
            log.warning("run panel defaults: %s", exc)

    def _show_inherited(self) -> None:
        wb, spec = self.workbench, get_kind(self.kind_key())
        s = wb.settings()
        parts = []
        for setting in spec.takes:
            if setting == "scale_value":
                continue
            value = s.get(setting)
            if setting == "scaling":
                explicit = "scaling" in wb.model.explicit
                value = (f"{value}" + (f" {s['scale_value']}" if value == "fixed" else "")
                         if explicit else "bundle (the bundle's own, as ptycho infer)")
            elif setting == "device" and value == "auto":
                value = f"auto → {api.resolve_device('auto')}"
            elif setting == "bundle" and value is None:
                value = wb.runs.last_bundle() or "none"
            elif value is None:
                value = "auto"
            parts.append(f"{words(setting)} {value}")
        self.inherited.setText("from the Preview tab: " + " · ".join(parts))

    def options(self) -> dict[str, Any]:
        """What Start passes: the edited fields, and the extra controls when not auto."""
        spec = get_kind(self.kind_key())
        out = dict(self.form.values()) if self.form is not None else {}
        if self.train_form is not None:
            out.update(self.train_form.values())
        if "init" in spec.controls and self.init.currentText() != "flat":
            out["init"] = self.init.currentText()
        if "probe" in spec.controls and self.probe_start.currentText().strip() != "given":
            out["probe_init"] = self.probe_start.currentText().strip()
        if "preset" in spec.controls and self.preset.currentText() != "auto":
            out["preset"] = self.preset.currentText()
        if "bundle" in spec.controls and self.bundle.text().strip():
            out["bundle"] = self.bundle.text().strip()
        if "devices" in spec.controls and self.devices.value() > 1:
            out["devices"] = self.devices.value()
        return out

    # -- buttons -----------------------------------------------------------------------------
    def on_start(self) -> None:
        try:
            request = self.workbench.request(self.kind_key(), **self.options())
            self.workbench.runs.start(request)
        except PtychoError as exc:  # one line in the status, one notification
            self.workbench.reporter.error(exc, self.kind_key())
            self.status.setText(f"not started: {exc}")
            return
        self.status.setText(request.describe())
        self._set_running(True)

    def on_probe_start(self) -> None:
        """Show the starting probe of the chosen ``probe_init`` (computed off the GUI
        thread); a bad choice goes to the status line."""
        spec = self.probe_start.currentText().strip()
        if spec == self.workbench.probe_init and self.workbench.starting_probe is not None:
            return
        try:
            self.workbench.show_starting_probe(spec)
        except PtychoError as exc:
            self.status.setText(str(exc))

    def on_pause(self) -> None:
        if self.pause_button.text() == "Pause":
            self.workbench.pause()
            self.pause_button.setText("Resume")
        else:
            self.workbench.resume()
            self.pause_button.setText("Pause")

    def on_more(self) -> None:
        try:
            self.workbench.more(int(self.more_count.value()))
        except PtychoError as exc:
            self.status.setText(str(exc))
            return
        self._set_running(True)

    def on_save_bundle(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save bundle", "bundle.zip",
                                              "Bundle (*.zip);;Directory (*)")
        if path:
            try:
                self.status.setText(f"saved {self.workbench.save_bundle(path)}")
            except PtychoError as exc:
                self.status.setText(str(exc))

    def on_load_bundle(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Load bundle (a bundle or run folder)")
        if path:
            try:
                loaded = self.workbench.load_bundle(path)
            except PtychoError as exc:
                self.status.setText(str(exc))
                return
            self.status.setText(f"loaded {loaded}")

    def selected_runs(self) -> list[RunRecord]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self.history.selectedItems()]

    def _selection_changed(self) -> None:
        self.compare_button.setEnabled(len(self.selected_runs()) == 2)

    def on_compare(self) -> None:
        runs = self.selected_runs()
        if len(runs) != 2:
            return
        try:
            self.workbench.compare(runs[0], runs[1])
        except PtychoError as exc:
            self.status.setText(str(exc))
            return
        if self._on_compare is not None:
            self._on_compare()

    # -- what the runs report ----------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.more_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        if not running:
            self.pause_button.setText("Pause")

    def show_state(self, state: LiveState) -> None:
        current = self.workbench.runs.current
        if current is not None and current.answered:
            return  # stopped: show_answered said so; the record comes next
        self._set_running(self.workbench.runs.running)
        self.progress.setValue(int(1000 * max(0.0, min(1.0, state.fraction))))
        name = current.name if current else ""
        rate = describe_rate(state)
        self.rate.setText(f"{name} {state.phase}: step {state.step}"
                          + (f"/{state.total}" if state.total > 0 else "")
                          + (f", {rate}" if rate else ""))

    def show_answered(self, record: RunRecord) -> None:
        """The engine stopped (its end event): say so at once; Start waits for the run
        directory to be written (the record, :meth:`show_end`)."""
        self.pause_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        self.rate.setText(f"{record.name} {record.answered}; writing {record.out.name}…")

    def show_end(self, record: RunRecord) -> None:
        self._set_running(False)
        self.progress.setValue(1000 if record.status == "finished" else self.progress.value())
        self._add_history(record)
        self.rate.setText(f"{record.name} {record.status}")
        if record.status == "failed":
            self.status.setText(record.error or "failed")
        elif record.warnings:
            self.status.setText("; ".join(record.warnings))

    def _add_history(self, record: RunRecord) -> None:
        if record.status == "running":
            return
        item = QListWidgetItem(record.row())
        item.setData(Qt.ItemDataRole.UserRole, record)
        item.setToolTip(str(record.out))
        self.history.addItem(item)
