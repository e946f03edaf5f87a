"""The "Ptycho Workbench" dock widget: a thin magicgui view over :class:`Workbench`.

Every control calls a public method of the controller (``load``, ``set``, ``preview``); the
widget only mirrors the controller's state (settings, statistics, scale, errors). The
settings' widgets are built from the engine's typed options
(``PreviewOptions.describe()``: type, default, choices, bounds, help, advanced).
"""

from __future__ import annotations

from typing import Any

import napari
from magicgui import widgets as mw

from engine import api
from engine.errors import PtychoError
from ptycho_gui.samples import SAMPLES
from ptycho_gui.stats_panel import StatsPanel
from ptycho_gui.workbench import STAT_FIGURES, Workbench

AUTO = "auto"  # what an optional integer shows at 0 ("None": the engine's default)


def option_widget(info: Any) -> mw.Widget:
    """A magicgui widget for one options field (:class:`engine.options.FieldInfo`): a choice
    becomes a drop-down, a number a spin box within the field's bounds (0 shows ``auto`` for
    an optional field, meaning ``None``, the engine's automatic value)."""
    label = info.name.replace("_", " ")
    common = {"name": info.name, "label": label, "tooltip": info.help}
    if info.choices is not None:
        return mw.ComboBox(choices=list(info.choices), value=info.default, **common)
    hi = info.maximum if info.maximum is not None else 10**6
    if info.base is int:
        lo = 0 if info.optional else int(info.minimum or 0)
        w = mw.SpinBox(min=lo, max=int(hi), value=info.default or 0, **common)
        if info.optional:
            w.native.setSpecialValueText(AUTO)
        return w
    if info.base is float:
        w = mw.FloatSpinBox(min=0.0, max=float(hi), step=0.1, value=info.default or 0.0,
                            **common)
        w.native.setDecimals(6)
        if info.optional:
            w.native.setSpecialValueText("none")
        return w
    return mw.LineEdit(value=str(info.default), **common)


def _value(info: Any, w: mw.Widget) -> Any:
    v = w.value
    if info.optional and info.base in (int, float) and v == 0:
        return None
    return v


class WorkbenchWidget(mw.Container):
    """The dock widget. ``widget.workbench`` is the controller it views."""

    def __init__(self, napari_viewer: napari.viewer.Viewer,
                 workbench: Workbench | None = None) -> None:
        super().__init__(labels=True)
        viewer = napari_viewer
        self.viewer = viewer
        self.workbench = wb = workbench or Workbench(viewer)
        self._syncing = False

        # data
        self.sample = mw.ComboBox(label="sample", choices=list(SAMPLES), value="lines",
                                  tooltip="a simulated dataset (nothing is downloaded)")
        self.open_sample = mw.PushButton(text="Open sample")
        self.file = mw.FileEdit(label="dataset file", filter="*.npz", mode="r",
                                tooltip="a dataset NPZ (this project's or PtychoPINN's layout)")
        self.open_file = mw.PushButton(text="Open file")
        self.open_sample.changed.connect(lambda: wb.load(self.sample.value))
        self.open_file.changed.connect(self._open_file)

        # settings from the engine's typed options; advanced ones folded
        self.specs = {f.name: f for f in api.PreviewOptions.describe()}
        self.option_widgets: dict[str, mw.Widget] = {}
        basic, advanced = [], []
        for name, spec in self.specs.items():
            w = option_widget(spec)
            w.changed.connect(lambda _=None, n=name: self._changed(n))
            self.option_widgets[name] = w
            (advanced if spec.advanced else basic).append(w)
        self.backend = mw.ComboBox(label="backend", choices=list(api.available_backends()),
                                   value=wb.backend, tooltip="array library for the preview")
        self.device = mw.ComboBox(label="device", choices=api.available_devices(),
                                  value=wb.device, tooltip="where the torch backend runs")
        self.backend.changed.connect(lambda v: self._set(backend=v))
        self.device.changed.connect(lambda v: self._set(device=v))
        self.bundle = mw.FileEdit(label="bundle", mode="d", tooltip="a trained model bundle: "
                                  "its prediction replaces the truth in the preview")
        self.clear_bundle = mw.PushButton(text="No bundle (truth)")
        self.bundle.changed.connect(lambda v: self._set(bundle=str(v) if str(v) not in
                                                        ("", ".") else None))
        self.clear_bundle.changed.connect(lambda: self._set(bundle=None))
        self.show_advanced = mw.CheckBox(text="show advanced settings", value=False)
        self.advanced = mw.Container(widgets=advanced, labels=True, visible=False)
        self.show_advanced.changed.connect(lambda v: setattr(self.advanced, "visible", v))

        # results
        self.scale = mw.Label(label="scale", value="",
                              tooltip="the intensity scale s in use, its source and the "
                                      "data's own; red when they differ by more than 2x")
        self.table = mw.Table(value={"value": [""] * len(STAT_FIGURES)},
                              name="statistics")
        self.table.row_headers = STAT_FIGURES
        self.table.native.setMinimumHeight(150)
        self.status = mw.Label(label="status", value="load a sample or a file")

        # compare: two canvas layers, or files / run directories
        self.compare_a = mw.ComboBox(label="compare A", choices=self._canvas_layers,
                                     tooltip="baseline: a canvas layer (or pick a file below)")
        self.compare_b = mw.ComboBox(label="compare B", choices=self._canvas_layers,
                                     tooltip="candidate: registered onto A before comparing")
        self.compare_a_file = mw.FileEdit(label="or A file", mode="r", tooltip="a canvas "
                                          ".npz, a run directory's recon.npz or a stats JSON")
        self.compare_b_file = mw.FileEdit(label="or B file", mode="r")
        self.compare_button = mw.PushButton(text="Compare A and B")
        self.compare_button.changed.connect(self._compare)
        self.compare_table = mw.Table(name="comparison")
        self.compare_table.native.setMinimumHeight(200)

        self.extend([self.sample, self.open_sample, self.file, self.open_file, *basic,
                     self.backend, self.device, self.bundle, self.clear_bundle,
                     self.show_advanced, self.advanced, self.scale, self.table, self.status,
                     self.compare_a, self.compare_b, self.compare_a_file, self.compare_b_file,
                     self.compare_button, self.compare_table])
        viewer.layers.events.inserted.connect(self._refresh_choices)
        viewer.layers.events.removed.connect(self._refresh_choices)
        wb.compared.connect(self._show_comparison)
        self.panel = StatsPanel(viewer)
        from ptycho_gui._qt_runs import add_run_views

        self.run_panel, self.run_curves = add_run_views(viewer, wb.runs, start=wb.start)
        wb.settings_changed.connect(self._sync)
        wb.previewed.connect(self._show_result)
        wb.errored.connect(self._show_error)
        self._status_text = self.status.value
        wb.busy_changed.connect(self._busy)

    def _canvas_layers(self, _widget: Any = None) -> list[str]:
        return [layer.name for layer in self.viewer.layers
                if "canvas" in layer.metadata and layer.name.endswith("amplitude")]

    def _refresh_choices(self, _event: Any = None) -> None:
        for w in (self.compare_a, self.compare_b):
            w.reset_choices()

    def _compare(self) -> None:
        def side(combo: mw.ComboBox, file: mw.FileEdit) -> Any:
            f = str(file.value)
            return f if f not in ("", ".") else combo.value

        a, b = side(self.compare_a, self.compare_a_file), side(self.compare_b, self.compare_b_file)
        if a is None or b is None:
            self.workbench._fail("compare: expected two canvases (layers or files), got "
                                 f"A = {a}, B = {b}")
            return
        self.workbench.compare(a, b)

    def _show_comparison(self, view: Any) -> None:
        self.compare_table.value = {"data": [r[1:] for r in view.rows],
                                    "index": [r[0] for r in view.rows],
                                    "columns": view.columns[1:]}
        self.compare_table.native.resizeColumnsToContents()
        self._say(f"compared A and B ({view.kind})")

    # controls -> controller
    def _open_file(self) -> None:
        path = str(self.file.value)
        if path in ("", "."):
            self.workbench._fail("dataset file: expected a .npz file, got none")
            return
        try:
            self.workbench.load(path)
        except PtychoError as exc:
            self.workbench._fail(str(exc))

    def _changed(self, name: str) -> None:
        if not self._syncing:
            self._set(**{name: _value(self.specs[name], self.option_widgets[name])})

    def _set(self, **settings: Any) -> None:
        if not self._syncing:
            self.workbench.set(**settings)

    # controller -> view
    def _sync(self, settings: dict[str, Any]) -> None:
        self._syncing = True
        try:
            for name, w in self.option_widgets.items():
                v = settings[name]
                w.value = (0 if v is None else v) if not isinstance(w, mw.ComboBox) else v
            self.backend.value = settings["backend"]
            self.device.value = settings["device"]
        finally:
            self._syncing = False

    def _show_result(self, p: api.Preview) -> None:
        rows = dict(self.workbench.stats_rows())
        self.table.value = {"data": [[rows[k]] for k in STAT_FIGURES],
                            "index": list(STAT_FIGURES), "columns": ["pooled"]}
        self.scale.value = self.workbench.scale_text()
        warn = p.scale is not None and p.scale.mismatch
        self.scale.native.setStyleSheet("color: #e04040; font-weight: bold;" if warn else "")
        t = p.timings  # the engine's own time (drawing and event-loop waits not included)
        layers = sum(v for k, v in t.items() if k != "statistics")
        self._say(f"{p.source}, {p.groups.n_groups} groups of {p.groups.C}; computed in "
                  f"{layers:.2f} s + statistics {t.get('statistics', 0.0):.2f} s")
        self.panel.update(p)

    def _say(self, text: str) -> None:
        self._status_text = text
        self.status.value = text

    def _busy(self, busy: bool) -> None:
        self.status.value = "computing…" if busy else self._status_text

    def _show_error(self, message: str) -> None:
        self._say(f"error: {message}")
