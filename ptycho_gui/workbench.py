"""The scriptable face of the workbench: :class:`Workbench`.

A workbench is the model (:class:`~ptycho_gui.model.WorkbenchModel`, every piece of state),
the services (:class:`~ptycho_gui.services.PreviewService` and
:class:`~ptycho_gui.services.RunService`, the work in flight), an executor (synchronous
without a viewer; the Qt one, :mod:`ptycho_gui._qt.executor`, with one) and, with a viewer,
the layer painter. The dock widgets call the same public methods a notebook does.

Errors: actions raise :class:`~engine.errors.PtychoError` (an ``InputError`` names the
input); the widget's one adapter turns them into a notification and the status line.
:meth:`Workbench.set` is the exception the docstring promises: it reports and returns
``False``, leaving every setting as it was.

Examples
--------
A notebook without a viewer gets the same computation synchronously:

>>> wb = Workbench()
>>> _ = wb.load("lines", n_positions=36, N=32)
>>> wb.set(gridsize=2)
True
>>> wb.result.groups.C
4
>>> wb.set(gridsize=1), wb.stats_rows()[3]
(True, ('var_across_group', 'undefined'))
>>> wb.set(crop=40), wb.options.crop, wb.last_error
(False, None, 'crop: expected at most the patch size N = 32, got 40')
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from psygnal import Signal

from engine import api
from engine.errors import InputError, PtychoError
from ptycho_gui.executors import Executor, SyncExecutor
from ptycho_gui.model import NO_DATA, OPTION_NAMES, SETTINGS, WorkbenchModel
from ptycho_gui.painter import LayerPainter, as_canvas
from ptycho_gui.report import Reporter, napari_notifier
from ptycho_gui.requests import RunRequest, merge_request
from ptycho_gui.samples import SAMPLES, make_sample
from ptycho_gui.services import PreviewService, RunRecord, RunService

log = logging.getLogger(__name__)
STAT_FIGURES = ("mean", "std", "var_zero_mean", "var_across_group")


def format_figure(name: str, value: Any) -> str:
    """A statistic as the table shows it: ``undefined`` for ``None`` (never 0)."""
    if value is None:
        return "undefined"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Workbench:
    """The workbench: load data, change settings, preview, compare, run.

    Parameters
    ----------
    viewer : a napari viewer whose layers the workbench paints (``None``: compute only,
        synchronously, for scripts).
    auto_preview : recompute the preview after each :meth:`set` and :meth:`load`.
    executor : where work runs (default: synchronous; the widget passes the Qt one).
    runs_root : where run directories go (default: ``runs/`` beside the data file, or
        ``./runs`` for a sample).

    Signals (psygnal): ``loaded(Dataset)``, ``settings_changed(dict)``,
    ``previewed(Preview)``, ``compared(CompareView)`` (the model's), ``errored(str)`` and
    ``warned(str)`` (the reporter's), ``busy_changed(bool)``.
    """

    busy_changed = Signal(bool)

    def __init__(self, viewer: Any = None, *, auto_preview: bool = True,
                 executor: Executor | None = None,
                 runs_root: str | os.PathLike[str] | None = None,
                 canvas_size: Any = None) -> None:
        self.viewer = viewer
        self.auto_preview = auto_preview
        self.model = WorkbenchModel(runs_root=runs_root)
        self.executor = executor or SyncExecutor()
        self.reporter = Reporter(napari_notifier if viewer is not None else None)
        self.previews = PreviewService(self.model, self.executor, self.reporter)
        self.runs = RunService(self.model, self.executor, self.reporter)
        self.painter = None if viewer is None else LayerPainter(viewer, canvas_size)
        if self.painter is not None:
            self.previews.on_layers.append(
                lambda p: self.painter.show_preview(p, self.model.data))
            self.runs.listeners_start.append(lambda _r: self.painter.prepare_live())
            self.runs.listeners_update.append(self._paint_live)
            self.runs.listeners_end.append(self._paint_final)
        self.runs.listeners_end.append(self._report_end)
        self.executor.on_close(self.close)
        self._was_busy = False
        self.probe_init = "given"  # the starting probe choice (the solvers' probe_init)
        self.starting_probe: Any = None  # the probe it gives on the current data
        self._probe_gen = 0

    # -- the model's state, as attributes --------------------------------------------------
    loaded = property(lambda self: self.model.loaded)
    settings_changed = property(lambda self: self.model.settings_changed)
    previewed = property(lambda self: self.model.previewed)
    compared = property(lambda self: self.model.compared)
    errored = property(lambda self: self.reporter.errored)
    warned = property(lambda self: self.reporter.warned)
    data = property(lambda self: self.model.data)
    name = property(lambda self: self.model.name)
    data_path = property(lambda self: self.model.data_path)
    options = property(lambda self: self.model.options)
    backend = property(lambda self: self.model.backend)
    device = property(lambda self: self.model.device)
    bundle = property(lambda self: self.model.bundle)
    result = property(lambda self: self.model.preview)
    comparison = property(lambda self: self.model.comparison)
    last_error = property(lambda self: self.reporter.last_error)
    last_timing = property(lambda self: self.previews.last_timing)

    @property
    def runs_root(self) -> str | None:
        return self.model.runs_root

    @runs_root.setter
    def runs_root(self, value: str | os.PathLike[str] | None) -> None:
        self.model.runs_root = None if value is None else str(value)

    @property
    def last_duration(self) -> float | None:
        return self.previews.last_timing.get("total_s")

    @property
    def history(self) -> list[RunRecord]:
        """Every run since the workbench opened (kind, settings, duration, final metrics,
        run directory), oldest first."""
        return self.model.history.records

    def settings(self) -> dict[str, Any]:
        """Every setting by name: the preview options plus backend, device and bundle."""
        return self.model.settings

    @property
    def busy(self) -> bool:
        """A preview or a run is being computed."""
        return (self.previews.busy or self.runs.running or self.executor.busy()
                or self._opening or self._probing)

    # -- actions -----------------------------------------------------------------------------
    def load(self, source: str | os.PathLike[str] | api.Dataset, **sample_options: Any
             ) -> api.Dataset:
        """Load a sample by name (``lines``, ``asym``, ``grf``), a dataset file or a Dataset.

        The dataset's layers replace the previous dataset's; the preview is recomputed.
        Keywords (``n_positions``, ``N``, ``seed``) are for samples only. Raises
        :class:`PtychoError` (one line naming the input) for anything it cannot load.
        """
        item = self._read(source, **sample_options)
        self._adopt(*item)
        return item[0]

    def open(self, source: str | os.PathLike[str] | api.Dataset, **sample_options: Any
             ) -> None:
        """:meth:`load` with the reading (simulating a sample, reading a file) off the GUI
        thread: what the widget's Open buttons call. Errors are reported, not raised."""
        self._opening = True

        def done(item: tuple[api.Dataset, str, str | None, Any]) -> None:
            self._opening = False
            self._adopt(*item)

        def failed(exc: BaseException) -> None:
            self._opening = False
            self.reporter.error(exc, "open")

        self.executor.submit(self._read, source, on_result=done, on_error=failed,
                             **sample_options)
        self._busy_check()

    _opening = False

    def _read(self, source: Any, **sample_options: Any
              ) -> tuple[api.Dataset, str, str | None, Any]:
        if isinstance(source, api.Dataset):
            if sample_options:
                raise InputError(sorted(sample_options)[0], "no keywords with a Dataset",
                                 repr(sample_options))
            return source, str(source.metadata.get("name", "data")), None, None
        if isinstance(source, str | os.PathLike) and str(source) in SAMPLES:
            return make_sample(str(source), **_sample_options(sample_options)), \
                str(source), None, None
        if isinstance(source, str | os.PathLike):
            if sample_options:
                raise InputError(sorted(sample_options)[0],
                                 f"keywords only with a sample ({', '.join(SAMPLES)})",
                                 repr(str(source)))
            p = Path(source)
            if not p.exists() and p.suffix == "" and os.sep not in str(source):
                raise InputError("source", f"a sample ({', '.join(SAMPLES)}) or a data file",
                                 repr(str(source)))
            try:
                # HDF5 patterns above 1 GiB stay in the file (a lazy stack: the views and
                # every run kind stream it a batch at a time)
                ds = api.load_dataset(p)
            except MemoryError:
                raise InputError(str(p), "a dataset that fits in memory",
                                 "a file declaring more") from None
            # the geometry summary `ptycho inspect` prints (patterns streamed, here, off
            # the GUI thread)
            return ds, p.stem, str(p), api.inspect(p)
        raise InputError("source", f"a sample name ({', '.join(SAMPLES)}), a dataset "
                         "path or a Dataset", type(source).__name__)

    def _adopt(self, ds: api.Dataset, name: str, path: str | None,
               summary: Any = None) -> None:
        self.model.set_data(ds, name, path, summary)
        for text in self.model.summary_warnings:  # once, when the file is loaded
            self.reporter.warn(f"{name}: {text}")
        if self.painter is not None:
            self.painter.show_dataset(ds)
        if self.auto_preview:
            self.preview()
            self.show_starting_probe()
        self._busy_check()

    def show_starting_probe(self, spec: str | None = None) -> None:
        """Compute the probe a solver run would start from (``spec``: the ``probe_init``
        choice, ``given``, ``data``, ``disk``, ``gaussian``, ``zoneplate`` or
        ``file:PATH``; default the last chosen) off the GUI thread, keep it in
        :attr:`starting_probe` and, with a viewer, show its amplitude and phase. A bad
        choice raises ``InputError`` naming ``probe_init``; a newer call supersedes."""
        if spec is not None:
            api.LSQMLOptions(probe_init=spec)  # refuses a bad choice, naming probe_init
            self.probe_init = spec
        data = self.model.data
        if data is None:
            return
        self._probe_gen += 1
        gen, chosen = self._probe_gen, self.probe_init
        self._probing = True

        def done(probe: Any) -> None:
            if gen != self._probe_gen:
                return  # a newer choice or dataset: this probe is stale
            self._probing = False
            self.starting_probe = probe
            if self.painter is not None:
                self.painter.show_starting_probe(probe, chosen)
            self._busy_check()

        def failed(exc: BaseException) -> None:
            if gen == self._probe_gen:
                self._probing = False
                self.reporter.error(exc, "starting probe")
                self._busy_check()

        self.executor.submit(api.initial_probe, data, chosen, on_result=done, on_error=failed)
        self._busy_check()

    _probing = False

    def propagation_text(self) -> str:
        """``far field`` or ``near field (z = 0.2 m, Fresnel number 0.05)``: the forward
        model the preview and the solvers take from the dataset's geometry."""
        data = self.model.data
        g = None if data is None else data.geometry
        if g is None or getattr(g, "propagation", "far") != "near":
            return "far field"
        z = float(g.effective_distance)  # z2 / M for a divergent beam (Fresnel scaling)
        parts = [f"z = {_si(z, 'm')}"]
        if g.focus_distance:
            parts.append(f"magnification {g.magnification:.3g}")
        pixel = float(g.detector_pixel[0]) / float(g.magnification)
        parts.append(f"Fresnel number {pixel ** 2 / (g.wavelength * z):.3g}")
        return f"near field ({', '.join(parts)})"

    def set(self, **settings: Any) -> bool:
        """Change settings (any of :data:`SETTINGS`) and recompute the preview.

        An invalid value leaves every setting as it was, reports one line naming the
        setting (a notification with a viewer; :attr:`last_error`) and returns ``False``.
        """
        try:
            self.model.update(**settings)
        except PtychoError as exc:
            self.reporter.error(exc)
            return False
        self.reporter.clear()
        if self.auto_preview and self.model.data is not None:
            self.preview()
        return True

    def preview(self) -> None:
        """Recompute the preview (off the GUI thread with a viewer; a newer call cancels an
        older one). A ``fixed`` scaling waits for its value."""
        self.previews.request()
        self._busy_check()

    def compute_preview(self, control: Any = None) -> api.Preview:
        """The preview of the current data and settings, computed in the calling thread."""
        m = self.model
        if m.data is None:
            raise InputError("data", NO_DATA, "none")
        return api.preview(m.data, m.options, bundle=m.bundle, backend=m.backend,
                           device=m.device, control=control, cache=self.previews.cache)

    def compare(self, a: Any, b: Any) -> api.CompareView:
        """Compare A and B: canvas layer names, canvases, canvas files, run directories,
        run names or statistics files. Canvases give the layers ``compare A``,
        ``compare B (registered)``, ``compare A - B`` and ``compare phase A - B`` in one
        view; both give :attr:`comparison` (the table of ``ptycho compare``).

        The comparison runs on the executor; :meth:`wait` waits for it. Bad inputs raise
        :class:`PtychoError`."""
        left, right = self._comparable(a, "A"), self._comparable(b, "B")
        self._comparing = True

        def done(view: api.CompareView) -> None:
            self._comparing = False
            self.model.comparison = view
            if self.painter is not None:
                self.painter.show_comparison(view)
            self.model.compared.emit(view)

        def failed(exc: BaseException) -> None:
            self._comparing = False
            self.reporter.error(exc, "compare")

        self.executor.submit(api.compare_view, left, right, on_result=done, on_error=failed)
        self._busy_check()
        return self.model.comparison

    _comparing = False

    def _comparable(self, x: Any, side: str) -> Any:
        if isinstance(x, RunRecord):
            x = x.canvas
            if x is None:
                raise InputError(f"compare {side}", "a run with a canvas", "none")
            return as_canvas(x)
        if isinstance(x, str) and self.viewer is not None and x in self.viewer.layers:
            layer = self.viewer.layers[x]
            if isinstance(layer.metadata.get("canvas"), api.Canvas):
                return layer.metadata["canvas"]
            raise InputError(f"compare {side}", "a canvas layer", repr(x))
        if isinstance(x, str):
            try:
                rec = self.model.history.find(x)
            except InputError:
                rec = None
            if rec is not None and rec.canvas is not None:
                return as_canvas(rec.canvas)
        if isinstance(x, api.Canvas | list | dict):
            return x
        if hasattr(x, "canvas") and hasattr(x, "coverage"):
            return as_canvas(x)
        if not isinstance(x, str | os.PathLike) or not Path(x).exists():
            raise InputError(f"compare {side}", "a canvas layer, a canvas .npz, a run "
                             "directory or a statistics file", repr(str(x)))
        return Path(x)

    # -- runs --------------------------------------------------------------------------------
    def request(self, kind: str, **options: Any) -> RunRequest:
        """The merged request a ``start(kind, **options)`` would run (nothing starts)."""
        m = self.model
        return merge_request(kind, options, m.settings, m.explicit,
                             n_positions=None if m.data is None else m.data.n,
                             bundle=self.runs.last_bundle())

    def start(self, kind: str, **options: Any) -> RunRecord:
        """Start a run: ``train``, ``infer``, ``epie``, ``rpie``, ``lsqml``, ``refine`` (the
        network, then LSQ-ML), ``resolution`` (the half-split FRC with LSQ-ML options: the
        curve in the record's ``curves["frc"]``, the figures in its ``metrics``) or any
        registered kind (:mod:`ptycho_gui.kinds`). A solver run with
        ``position_correction`` moves the live positions (the live state's ``positions``)
        and leaves the corrected ones in the record's ``positions``.

        ``options`` (the kind's typed options, and ``device``, ``backend``, ``init``,
        ``bundle``, ``preset``, ``out``) override the workbench settings a user set
        (gridsize, neighbour count, scaling, backend, device, bundle), which override the
        preset (:func:`~ptycho_gui.requests.merge_request`). Returns the run's record;
        :meth:`wait` waits for it. A bad option raises ``InputError`` naming it."""
        if self.model.data is None:
            raise InputError("data", NO_DATA, "none")
        record = self.runs.start(self.request(kind, **options))
        self._busy_check()
        return record

    def pause(self) -> None:
        """Park the running run at its next step."""
        self.runs.pause()

    def resume(self) -> None:
        self.runs.resume()

    def stop(self) -> None:
        """Stop the running run within a second; its last checkpoint and bundle stay."""
        self.runs.stop()

    def more(self, iterations: int = 5, run: Any = None) -> RunRecord:
        """Continue the last (or the given) solver run for ``iterations`` more epochs."""
        return self.runs.more(iterations, run)

    def save_bundle(self, path: str | os.PathLike[str], run: Any = None) -> Path:
        """Copy the bundle of the last (or the given) network run to ``path``."""
        hist = self.model.history
        rec = hist.find(run) if run is not None else hist.latest(
            lambda r: r.bundle is not None)
        if rec is None or rec.bundle is None:
            raise InputError("bundle", "a run that trained or used a network", "none yet")
        return api.copy_bundle(rec.bundle, path)

    def load_bundle(self, path: str | os.PathLike[str]) -> Path:
        """Check a bundle and use it for ``infer``, ``refine`` and the preview."""
        loaded = api.check_bundle(path)
        if not self.set(bundle=str(loaded)):
            raise InputError("bundle", "a bundle the workbench can use", self.last_error)
        return loaded

    def wait(self, timeout: float = 60.0) -> bool:
        """Deliver pending results (previews, comparisons, run updates) until nothing is
        in flight; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.executor.process_events()
            self.runs.poll()
            if not self.busy:
                self.executor.process_events()
                self._busy_check()
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.runs.running:
                self.runs.wait(min(left, 0.05))
            else:
                time.sleep(0.005)  # a Qt worker's result arrives through the event loop

    def close(self) -> None:
        """Stop a run in progress and restore what the executor changed (viewer closing)."""
        self.previews.cancel()
        self.runs.close()
        self.executor.close()

    # -- results -----------------------------------------------------------------------------
    def stats_rows(self) -> list[tuple[str, str]]:
        """The pooled statistics as (figure, text) rows; ``undefined`` where not defined."""
        p = self.model.preview
        if p is None or p.stats is None:
            return []
        rec = p.stats["all"]
        rows = [(k, format_figure(k, rec.get(k))) for k in STAT_FIGURES]
        rows.append(("patches", str(rec["n_patches"])))
        rows.append(("groups", str(p.groups.n_groups)))
        return rows

    def scale_text(self) -> str:
        """The intensity scale in use, its source and the data's own (with any warning)."""
        p = self.model.preview
        if p is None or p.scale is None:
            return "no diffraction data: no intensity scale"
        return p.scale.describe()

    def focus(self, *names: str, only: bool = False) -> None:
        """Fit the view to the layers ``names`` (default: the preview's canvases and grids;
        ``only``: hide every other layer)."""
        if self.painter is None:
            return
        if not names:
            names = tuple(n for n in self.painter.preview_names() if n in self.viewer.layers)
        self.painter.fit(list(names), only=only)

    def summary(self) -> list[str]:
        """The loaded file's geometry summary (format, energy and wavelength, distance,
        detector and object pixel, scan extent, step and overlap, photons per pattern,
        masked and saturated pixels, provenance, warnings): the lines ``ptycho inspect``
        prints; for a sample or a Dataset, its size and pixel size."""
        m = self.model
        if m.data is None:
            return []
        if m.summary:
            lines = list(m.summary)
        else:
            ps = m.data.pixel_size
            lines = [f"{m.name}: {m.data.n} patterns x {m.data.N}x{m.data.N} (no file)",
                     "  geometry        " + ("none (pixel units)" if ps is None else
                                             f"object pixel {ps[0]:.4g} m x {ps[1]:.4g} m")]
        prov = m.data.metadata.get("provenance")
        if prov:
            for step in prov if isinstance(prov, list) else [prov]:
                text = step if not isinstance(step, dict) else f"{step.get('step', '?')}: " \
                    + ", ".join(f"{k}={v}" for k, v in step.items() if k != "step")
                lines.append(f"  provenance      {text}")
        return lines

    def layer(self, name: str) -> Any:
        """The viewer's layer called ``name``."""
        return self.viewer.layers[name]

    # -- internals ---------------------------------------------------------------------------
    def _busy_check(self) -> None:
        busy = self.busy
        if busy != self._was_busy:
            self._was_busy = busy
            self.busy_changed.emit(busy)

    def _paint_live(self, state: Any) -> None:
        self.painter.queue_live(state)
        self.painter.flush_live()

    def _paint_final(self, record: RunRecord) -> None:
        self.painter.flush_live(None)
        self.painter.finish_live(record)

    def _report_end(self, record: RunRecord) -> None:
        for text in record.warnings:
            self.reporter.warn(f"{record.name}: {text}")
        if record.status == "failed":
            where = f" (option '{record.error_field}')" if record.error_field else ""
            self.reporter.error(f"{record.name} failed{where}: {record.error}")
        else:
            self.reporter.info(f"{record.name} {record.status} in {record.duration:.1f} s; "
                               f"outputs in {record.out}")
        self._busy_check()


def _si(value: float, unit: str) -> str:
    """``0.2 m``, ``350 µm``: a length with an SI prefix (metres down to 1 cm)."""
    for at, factor, prefix in ((1e-2, 1.0, ""), (1e-3, 1e-3, "m"), (1e-6, 1e-6, "µ")):
        if abs(value) >= at:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value / 1e-9:.3g} n{unit}"


def _sample_options(options: dict[str, Any]) -> dict[str, Any]:
    allowed = ("n_positions", "N", "seed")
    for key, value in options.items():
        if key not in allowed:
            raise InputError(key, f"a sample option ({', '.join(allowed)})", repr(value))
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 and key != "seed":
            raise InputError(key, "a positive integer", repr(value))
    return options


__all__ = ["OPTION_NAMES", "SETTINGS", "STAT_FIGURES", "Workbench", "format_figure"]
