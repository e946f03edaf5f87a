"""The workbench's state, in one place: :class:`WorkbenchModel` (no Qt, no napari).

The model owns the dataset and its path, the settings (the preview options plus backend,
device and bundle), the runs root, the run history, and the last preview and comparison.
:meth:`WorkbenchModel.update` is the one way to change settings: it validates every value
once, changes nothing when one is invalid (raising one :class:`~engine.errors.PtychoError`
naming it) and emits ``settings_changed`` once. The model also remembers which settings a
user set explicitly: a run takes those over its preset (see :mod:`ptycho_gui.requests`).

Examples
--------
>>> m = WorkbenchModel()
>>> _ = m.update(gridsize=2)
>>> m.settings["gridsize"], m.settings["device"], sorted(m.explicit)
(2, 'auto', ['gridsize'])
>>> try:
...     m.update(gridsize=9, window="probe")
... except PtychoError as exc:
...     print(exc)
gridsize: expected an integer in [1, 4], got 9
>>> m.settings["gridsize"], m.settings["window"]
(2, 'uniform')
>>> _ = m.update(scaling="fixed")  # waits for its value, without snapping back
>>> m.settings["scaling"], m.ready()
('fixed', False)
>>> _ = m.update(scale_value=9.5)
>>> m.options.scaling, m.options.scale_value, m.pending
('fixed', 9.5, {})
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import Signal

from engine import api
from engine.errors import InputError, PtychoError

OPTION_NAMES = tuple(f.name for f in api.PreviewOptions.describe())
SETTINGS = (*OPTION_NAMES, "backend", "device", "bundle")
NO_DATA = "a dataset loaded first (load a sample or a file)"


def device_choices() -> list[str]:
    """``auto`` (the GPU when there is one) and the devices this machine offers."""
    return ["auto", *api.available_devices()]


@dataclass
class History:
    """Every run since the workbench opened, oldest first."""

    records: list[Any] = field(default_factory=list)

    def find(self, run: Any) -> Any:
        """A record by record, run id, name or run directory."""
        for rec in self.records:
            if run is rec or run in (rec.run_id, rec.name, str(rec.out), rec.out.name):
                return rec
        raise InputError("run", f"one of {[r.name for r in self.records]}", repr(run))

    def latest(self, predicate: Any) -> Any:
        return next((r for r in reversed(self.records) if predicate(r)), None)


class WorkbenchModel:
    """The state of one workbench (see the module docstring).

    Signals (psygnal): ``loaded(Dataset)``, ``settings_changed(dict)``,
    ``previewed(Preview)``, ``compared(CompareView)``, ``run_ended(RunRecord)``.
    """

    loaded = Signal(object)
    settings_changed = Signal(dict)
    previewed = Signal(object)
    compared = Signal(object)
    run_ended = Signal(object)

    def __init__(self, *, runs_root: str | os.PathLike[str] | None = None) -> None:
        self.data: api.Dataset | None = None
        self.name = ""
        self.data_path: str | None = None
        # the data file's geometry summary (api.inspect: the lines `ptycho inspect` prints)
        # and its warnings; empty for a sample or a Dataset given directly
        self.summary: list[str] = []
        self.summary_warnings: list[str] = []
        self.options = api.PreviewOptions()
        self.backend = "numpy"
        self.device = "auto"
        self.bundle: str | None = None
        self.explicit: set[str] = set()
        # settings given but not yet usable on their own: `fixed` scaling before its value
        self.pending: dict[str, Any] = {}
        self.runs_root: str | None = None if runs_root is None else str(runs_root)
        self.history = History()
        self._waiting = False
        self.preview: api.Preview | None = None
        self.comparison: api.CompareView | None = None

    # -- settings ----------------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        """Every setting by name: the preview options plus backend, device and bundle."""
        return {**self.options.to_dict(), **self.pending, "backend": self.backend,
                "device": self.device, "bundle": self.bundle}

    def validated(self, **settings: Any) -> tuple[api.PreviewOptions, str, str, str | None]:
        """The settings after ``settings`` are applied, checked; raises one
        :class:`PtychoError` naming the first bad value and changes nothing."""
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise InputError(unknown[0], f"one of the settings {list(SETTINGS)}",
                             repr(settings[unknown[0]]))
        opts = {k: v for k, v in settings.items() if k in OPTION_NAMES}
        merged = {**self.options.to_dict(), **self.pending, **opts}
        self._waiting = merged.get("scaling") == "fixed" and merged.get("scale_value") is None
        if self._waiting:
            # choosing `fixed` before typing its value waits for the value: no error, no
            # snap back to `data` (the preview waits too, see ready())
            merged["scaling"] = self.options.scaling if self.options.scaling != "fixed" \
                else "data"
        try:
            options = api.PreviewOptions(**merged)
        except TypeError as exc:  # a wrong type deep in a dataclass: one line, named
            raise InputError("settings", "values of the documented types", str(exc)) from None
        backend = settings.get("backend", self.backend)
        if backend not in list(api.available_backends()):
            raise InputError("backend", f"one of {list(api.available_backends())}",
                             repr(backend))
        device = settings.get("device", self.device)
        if device not in device_choices():
            raise InputError("device", f"one of {device_choices()}", repr(device))
        bundle = settings.get("bundle", self.bundle)
        if bundle in ("", None):
            bundle = None
        elif "bundle" in settings:
            try:
                bundle = str(api.check_bundle(bundle))
            except PtychoError as exc:  # named as the setting, the file's own words after
                raise InputError("bundle", "a model bundle (a bundle directory, a run "
                                 "holding bundle/, or a bundle .zip)",
                                 str(exc).split(": expected")[0] + " is not one") from None
        self._check_against_data(options, bundle)
        return options, backend, device, bundle

    def _check_against_data(self, options: api.PreviewOptions, bundle: str | None) -> None:
        """What only the dataset or the bundle can say is wrong, said before any work."""
        if options.scaling == "bundle" and bundle is None:
            raise InputError("scaling", "'data' or 'fixed' (no bundle is loaded to take "
                             "'bundle' from)", "'bundle'")
        ds = self.data
        if ds is None:
            return
        if options.crop is not None and options.crop > ds.N:
            raise InputError("crop", f"at most the patch size N = {ds.N}", str(options.crop))
        C, n = options.gridsize ** 2, ds.n
        if C > n:  # the engine's grouping rules (engine.physics.grouping), said up front
            raise InputError("gridsize", f"at most {int(n ** 0.5)} ({n} positions; C = "
                             "gridsize² per group)", str(options.gridsize))
        K = options.neighbor_count
        if C > 1 and K is not None and K > n - 1:
            raise InputError("neighbor_count", f"at most n - 1 = {n - 1}", str(K))
        if options.n_groups is not None and options.n_groups > n:
            raise InputError("n_groups", f"at most {n} (one group per position)",
                             str(options.n_groups))

    def update(self, **settings: Any) -> dict[str, Any]:
        """Change ``settings`` (any of :data:`SETTINGS`): validated once, all or nothing,
        ``settings_changed`` emitted once. Returns the settings now in force."""
        options, backend, device, bundle = self.validated(**settings)
        self.options, self.backend, self.device, self.bundle = options, backend, device, bundle
        self.pending = {"scaling": "fixed"} if self._waiting else {}
        self.explicit |= set(settings)
        now = self.settings
        self.settings_changed.emit(now)
        return now

    def ready(self) -> bool:
        """A preview can be computed: data loaded, and a ``fixed`` scale has its value."""
        return self.data is not None and not self.pending

    # -- data --------------------------------------------------------------------------------
    def set_data(self, ds: api.Dataset, name: str, path: str | None,
                 summary: Any = None) -> None:
        """A new dataset: settings it makes invalid go back to their defaults (named).
        ``summary``: the file's :func:`engine.api.inspect` report, if any."""
        self.data, self.name, self.data_path = ds, name, path
        self.summary = [] if summary is None else list(summary.lines())
        self.summary_warnings = [] if summary is None else list(summary.warnings)
        self.preview = None
        try:
            self._check_against_data(self.options, self.bundle)
        except PtychoError:
            keep = {k: v for k, v in self.options.to_dict().items()
                    if k not in ("crop", "n_groups", "gridsize")}
            self.options = api.PreviewOptions(**keep)
            self.explicit -= {"crop", "n_groups", "gridsize"}
            self.settings_changed.emit(self.settings)
        self.loaded.emit(ds)

    def run_directory_root(self) -> str | None:
        """Where run directories go: the runs root, else ``runs/`` beside the data file."""
        if self.runs_root is not None:
            return self.runs_root
        return None if self.data_path is None else str(Path(self.data_path).parent / "runs")


__all__ = ["SETTINGS", "OPTION_NAMES", "History", "WorkbenchModel", "device_choices"]
