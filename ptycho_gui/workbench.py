"""The workbench controller: state and actions, scriptable, no widgets.

:class:`Workbench` holds the dataset, the settings and the last preview, and turns them into
napari layers. The Qt widget (:mod:`ptycho_gui.widget`) is a thin view: each of its buttons
calls a public method here, so a notebook or a test drives the workbench exactly as a user
does.

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
"""

from __future__ import annotations

import inspect
import logging
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from psygnal import Signal

from engine import api
from engine.errors import InputError, PtychoError
from engine.events import RunControl, StopRequested
from engine.preview import PreviewCache
from ptycho_gui.layers import canvas_layers, dataset_layers, finite_limits, group_colours
from ptycho_gui.samples import SAMPLES, make_sample

log = logging.getLogger(__name__)

OPTION_NAMES = tuple(f.name for f in api.PreviewOptions.describe())
SETTINGS = (*OPTION_NAMES, "backend", "device", "bundle")

# preview layers, created on the first preview and updated in place afterwards
GRID_LAYERS = {
    "amplitude": "patch grid amplitude",
    "amplitude_normalised": "patch grid amplitude (normalised)",
    "phase": "patch grid phase",
    "inputs": "patch grid inputs D/s",
}
BORDERS = "group borders"
PREVIEW_LABELS = "preview labels"
COMPARE_LABELS = "compare labels"
# differences: blue (negative), black (zero), red (positive), readable on the dark canvas
DIVERGING = {"name": "blue-black-red", "colors": [[0.2, 0.6, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0],
                                                   [1.0, 0.35, 0.2, 1.0]]}
CANVAS = "canvas"
STAT_FIGURES = ("mean", "std", "var_zero_mean", "var_across_group")


def format_figure(name: str, value: Any) -> str:
    """A statistic as the table shows it: ``undefined`` for ``None`` (never 0)."""
    if value is None:
        return "undefined"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Workbench:
    """The workbench: load data, change settings, preview, compare.

    Parameters
    ----------
    viewer : a napari viewer whose layers the workbench owns (``None``: compute only,
        synchronously, for scripts without a GUI).
    auto_preview : recompute the preview after each :meth:`set` and :meth:`load`.

    Signals (psygnal): ``loaded(Dataset)``, ``settings_changed(dict)``, ``previewed(Preview)``,
    ``compared(CompareView)``, ``errored(str)``, ``busy_changed(bool)``.

    Part 2 (runs) extends this class with ``start``, ``pause``, ``resume``, ``stop``; its
    work goes through :meth:`submit` like the preview's, so :meth:`wait` and :attr:`busy`
    cover it.
    """

    loaded = Signal(object)
    settings_changed = Signal(dict)
    previewed = Signal(object)
    compared = Signal(object)
    errored = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, viewer: Any = None, *, auto_preview: bool = True) -> None:
        self.viewer = viewer
        self.auto_preview = auto_preview
        self.data: api.Dataset | None = None
        self.name = ""
        self.options = api.PreviewOptions()
        self.backend = "numpy"
        self.device = "cpu"
        self.bundle: str | None = None
        self.result: api.Preview | None = None
        self.comparison: api.CompareView | None = None
        self.last_error: str | None = None
        self.last_duration: float | None = None
        self.last_timing: dict[str, float] = {}
        self._cache = PreviewCache()
        self._generation = 0
        self._control: RunControl | None = None
        self._workers: set[Any] = set()
        self._placed = False

    # ----------------------------------------------------------------- state
    def settings(self) -> dict[str, Any]:
        """Every setting by name: the preview options plus backend, device and bundle."""
        return {**self.options.to_dict(), "backend": self.backend, "device": self.device,
                "bundle": self.bundle}

    @property
    def busy(self) -> bool:
        """A preview or a run is being computed."""
        return bool(self._workers) or (self._runs is not None and self._runs.running)

    # ----------------------------------------------------------------- actions
    def load(self, source: str | os.PathLike[str] | api.Dataset, **sample_options: Any
             ) -> api.Dataset:
        """Load a sample by name (``lines``, ``asym``, ``grf``), a dataset NPZ or a Dataset.

        The dataset's layers (diffraction, positions, probe, truth) replace the previous
        dataset's; the preview is recomputed.
        """
        if isinstance(source, api.Dataset):
            ds, name = source, str(source.metadata.get("name", "data"))
        elif str(source) in SAMPLES:
            ds, name = make_sample(str(source), **sample_options), str(source)
        else:
            p = Path(source)
            ds, name = api.load_dataset(p), p.stem
        self.data, self.name = ds, name
        self.data_path = None if isinstance(source, api.Dataset) or str(source) in SAMPLES \
            else str(source)
        if self._runs is not None:
            self._runs.set_data(ds, self.data_path)
        self._cache = PreviewCache()
        self.result = None
        if self.viewer is not None:
            self._clear_layers()
            for data, kwargs, kind in dataset_layers(ds):
                kwargs["metadata"] = {**kwargs.get("metadata", {}), "workbench": True}
                getattr(self.viewer, f"add_{kind}")(data, **kwargs)
            self._placed = False
        self.loaded.emit(ds)
        if self.auto_preview:
            self.preview()
        return ds

    def set(self, **settings: Any) -> bool:
        """Change settings (any of :data:`SETTINGS`) and recompute the preview.

        An invalid value leaves the settings as they were, shows a notification naming the
        setting and returns ``False``.
        """
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            return self._fail(f"{unknown[0]}: expected one of the settings {list(SETTINGS)}")
        opts = {k: v for k, v in settings.items() if k in OPTION_NAMES}
        try:
            options = api.PreviewOptions(**{**self.options.to_dict(), **opts})
            backend = settings.get("backend", self.backend)
            if backend not in list(api.available_backends()):
                raise InputError("backend", f"one of {list(api.available_backends())}",
                                     repr(backend))
            device = settings.get("device", self.device)
            if device not in api.available_devices():
                raise InputError("device", f"one of {api.available_devices()}",
                                     repr(device))
        except (PtychoError, TypeError, ValueError) as exc:
            return self._fail(str(exc))
        self.options, self.backend, self.device = options, backend, device
        if "bundle" in settings:
            b = settings["bundle"]
            self.bundle = str(b) if b not in (None, "") else None
        self.settings_changed.emit(self.settings())
        if self.auto_preview and self.data is not None:
            self.preview()
        return True

    def compute_preview(self, control: RunControl | None = None) -> api.Preview:
        """The preview of the current data and settings, computed in the calling thread
        (nothing is shown)."""
        if self.data is None:
            raise InputError("data", "a dataset loaded first (load a sample or a file)",
                                 "none")
        return api.preview(self.data, self.options, bundle=self.bundle, backend=self.backend,
                           device=self.device, control=control, cache=self._cache)

    def _iter_quietly(self, control: RunControl) -> Iterator[api.Preview]:
        # layers first, then the statistics; a cancelled preview ends quietly
        if self.data is None:
            raise InputError("data", "a dataset loaded first (load a sample or a file)", "none")
        try:
            yield from api.iter_preview(self.data, self.options, bundle=self.bundle,
                                        backend=self.backend, device=self.device,
                                        control=control, cache=self._cache)
        except StopRequested:
            return

    def preview(self) -> None:
        """Recompute the preview off the GUI thread; a newer call cancels an older one.

        Without a viewer the preview is computed at once (for scripts).
        """
        if self.data is None:
            return
        if self._control is not None:
            self._control.stop()
        self._generation += 1
        gen, control = self._generation, RunControl()
        self._control = control
        t0 = time.perf_counter()
        self.submit(self._iter_quietly, control, on_yield=lambda p: self._finish(p, gen, t0),
                    on_result=lambda _: None, on_error=lambda exc: self._on_error(exc, gen))

    def submit(self, func: Any, *args: Any, on_result: Any, on_error: Any = None,
               on_yield: Any = None, **kwargs: Any) -> Any:
        """Run ``func(*args, **kwargs)`` on a worker thread; ``on_result(value)``,
        ``on_yield(value)`` (a generator function's values) and ``on_error(exc)`` are called
        on the GUI thread. Returns the worker (``None``, and a synchronous call, without a
        viewer)."""
        on_error = on_error or (lambda exc: self._fail(str(exc)))
        if self.viewer is None:
            try:
                value = func(*args, **kwargs)
                if inspect.isgenerator(value):
                    for item in value:
                        if on_yield is not None:
                            on_yield(item)
                    value = None
            except Exception as exc:  # noqa: BLE001 - reported, never raised into the GUI
                on_error(exc)
                return None
            on_result(value)
            return None
        from napari.qt.threading import create_worker

        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True,
                               **kwargs)
        worker.returned.connect(on_result)
        worker.errored.connect(on_error)
        if on_yield is not None and hasattr(worker, "yielded"):
            worker.yielded.connect(on_yield)
        worker.finished.connect(lambda: self._done(worker))
        self._workers.add(worker)
        self.busy_changed.emit(True)
        worker.start()
        return worker

    def compare(self, a: Any, b: Any) -> None:
        """Compare A and B: canvas layer names, canvases, canvas files, run directories or
        statistics files. Canvases give the layers ``compare A``, ``compare B (registered)``,
        ``compare A - B`` and ``compare phase A - B``; both give :attr:`comparison` (the table
        of ``ptycho compare`` with its statuses), off the GUI thread."""
        try:
            left, right = self._comparable(a, "A"), self._comparable(b, "B")
        except PtychoError as exc:
            self._fail(str(exc))
            return
        self.submit(api.compare_view, left, right, on_result=self._show_comparison,
                    on_error=lambda exc: self._fail(f"compare: {exc}"))

    def _comparable(self, x: Any, side: str) -> Any:
        if isinstance(x, str) and self.viewer is not None and x in self.viewer.layers:
            from ptycho_gui.io import canvas_of

            layer = self.viewer.layers[x]
            return canvas_of(layer.data, {"metadata": layer.metadata,
                                          "translate": tuple(layer.translate)})
        if isinstance(x, api.Canvas | list | dict):
            return x
        p = Path(str(x))
        if not p.exists():
            raise InputError(f"compare {side}", "a canvas layer, a canvas .npz, a run "
                             "directory or a statistics file", repr(str(x)))
        return p

    def _show_comparison(self, view: api.CompareView) -> None:
        self.comparison = view
        if self.viewer is not None and view.images is not None:
            im = view.images
            A, B = im["baseline"], im["candidate"]
            h, w = A.shape
            y0 = float(self.viewer.layers.extent.world[1][-2]) + h // 8 if len(
                self.viewer.layers) else 0.0
            x0 = float(im["origin"][1])
            gap = max(4, w // 16)
            amp_a, amp_b = np.abs(A).astype(np.float32), np.abs(B).astype(np.float32)
            lim = finite_limits(np.concatenate([amp_a.ravel(), amp_b.ravel()]))
            from napari.utils.colormaps import Colormap

            diverging = Colormap(**DIVERGING)
            items = []
            for i, (name, data, cmap) in enumerate((
                    ("compare A", amp_a, "gray"), ("compare B (registered)", amp_b, "gray"),
                    ("compare A - B", im["difference"], diverging),
                    ("compare phase A - B", im["phase_difference"], diverging))):
                if data is None:
                    continue
                place = (y0, x0 + i * (w + gap))
                layer = self._put_image(name, np.asarray(data, np.float32), place,
                                        colormap=cmap)
                if i >= 2:  # symmetric about 0; a few edge pixels must not wash it out
                    finite = np.abs(data[np.isfinite(data)])
                    m = float(np.percentile(finite, 99)) if finite.size else 1.0
                    layer.contrast_limits_range = (-(m or 1.0), m or 1.0)
                    layer.contrast_limits = (-(m or 1.0), m or 1.0)
                else:
                    layer.contrast_limits_range = lim
                    layer.contrast_limits = lim
                items.append((place, name.replace("compare ", "")))
            self._label(COMPARE_LABELS, items, size=9)
        self.compared.emit(view)

    def wait(self, timeout: float = 60.0) -> bool:
        """Process GUI events until no computation is pending; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        app = None
        if self.viewer is not None:
            from qtpy.QtWidgets import QApplication

            app = QApplication.instance()
        while self.busy:
            if time.monotonic() > deadline:
                return False
            if self._runs is not None:
                self._runs.poll()  # a run's updates also without a Qt timer (no viewer)
            if app is not None:
                app.processEvents()
            time.sleep(0.005)
        if app is not None:
            app.processEvents()
        return True

    # ----------------------------------------------------------------- results
    def stats_rows(self) -> list[tuple[str, str]]:
        """The pooled statistics as (figure, text) rows; ``undefined`` where not defined."""
        if self.result is None:
            return []
        rec = self.result.stats["all"]
        rows = [(k, format_figure(k, rec.get(k))) for k in STAT_FIGURES]
        rows.append(("patches", str(rec["n_patches"])))
        rows.append(("groups", str(self.result.groups.n_groups)))
        return rows

    def scale_text(self) -> str:
        """The intensity scale in use, its source and the data's own (with any warning)."""
        if self.result is None or self.result.scale is None:
            return "no diffraction data: no intensity scale"
        return self.result.scale.describe()

    def focus(self, *names: str, only: bool = False) -> None:
        """Fit the view to the layers ``names`` (``only``: hide every other layer)."""
        layers = [self.viewer.layers[n] for n in names]
        if only:
            for layer in self.viewer.layers:
                layer.visible = layer in layers
        ext = np.array([layer.extent.world[:, -2:] for layer in layers])
        lo, hi = ext[:, 0].min(axis=0), ext[:, 1].max(axis=0)
        self.viewer.dims.ndisplay = 2
        self.viewer.camera.center = tuple((lo + hi) / 2)
        with warnings.catch_warnings():  # the canvas size is napari-private, read only here
            warnings.simplefilter("ignore")
            size = getattr(self.viewer, "_canvas_size", None) or (600, 600)
        span = np.maximum(hi - lo, 1)
        self.viewer.camera.zoom = 0.95 * float(min(np.asarray(size[::-1]) / span[::-1]))

    def layer(self, name: str) -> Any:
        """The viewer's layer called ``name``."""
        return self.viewer.layers[name]

    # ----------------------------------------------------------------- internals
    def _fail(self, message: str) -> bool:
        self.last_error = message
        log.warning("%s", message)
        if self.viewer is not None:
            from napari.utils.notifications import show_error

            show_error(message)
        self.errored.emit(message)
        return False

    def _on_error(self, exc: BaseException, gen: int) -> None:
        if isinstance(exc, StopRequested) or gen != self._generation:
            return
        if isinstance(exc, PtychoError):
            self._fail(str(exc))
        else:
            self._fail(f"preview failed with {self._describe_settings()}: "
                       f"{type(exc).__name__}: {exc}")

    def _describe_settings(self) -> str:
        s = self.settings()
        return ", ".join(f"{k}={s[k]}" for k in ("gridsize", "scaling", "backend", "crop"))

    def _done(self, worker: Any) -> None:
        self._workers.discard(worker)
        if not self._workers:
            self.busy_changed.emit(False)

    def _finish(self, result: api.Preview | None, gen: int, t0: float) -> None:
        if result is None or gen != self._generation:
            return  # a newer setting arrived; this result is stale
        self.result = result
        self.last_error = None
        if result.stats is None:  # the layers, before the statistics
            if self.viewer is not None:
                self._show(result)
            self.last_timing = {"layers_s": time.perf_counter() - t0}
            return
        self.last_timing["total_s"] = self.last_duration = time.perf_counter() - t0
        if result.scale is not None and result.scale.mismatch and self.viewer is not None:
            from napari.utils.notifications import show_warning

            show_warning(f"intensity scale: {result.scale.describe()}")
        self.previewed.emit(result)

    def _clear_layers(self) -> None:
        for layer in list(self.viewer.layers):
            if layer.metadata.get("workbench"):
                self.viewer.layers.remove(layer)

    def _put_image(self, name: str, data: np.ndarray, translate: tuple[float, float],
                   **kwargs: Any) -> Any:
        limits = finite_limits(data)
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = data
            layer.translate = translate
            layer.contrast_limits_range = limits
            layer.contrast_limits = limits
            return layer
        return self.viewer.add_image(data, name=name, translate=translate,
                                     contrast_limits=limits,
                                     metadata={"workbench": True}, **kwargs)

    def _show(self, p: api.Preview) -> None:
        ds = self.data
        # canvas amplitude at its origin (object coordinates, under the positions), phase below
        (amp, akw, _), *rest = canvas_layers(p.canvas, CANVAS)
        h = amp.shape[0]
        self._put_image(akw["name"], amp, tuple(p.canvas.origin), colormap="gray")
        if rest:
            ph, pkw, _ = rest[0]
            o = p.canvas.origin
            self._put_image(pkw["name"], ph, (o[0] + h + ds.N // 4, o[1]), colormap="twilight")
        for name in (f"{CANVAS} amplitude", f"{CANVAS} phase"):
            if name in self.viewer.layers:
                self.viewer.layers[name].metadata["canvas"] = p.canvas
        # patch grids in a 2 × 2 block to the right of the canvas
        gap = ds.N
        x0 = p.canvas.origin[1] + amp.shape[1] + gap
        y0 = p.canvas.origin[0]
        gh, gw = p.grid["amplitude"].shape
        places = {"amplitude": (y0, x0), "amplitude_normalised": (y0, x0 + gw + gap),
                  "phase": (y0 + gh + gap, x0), "inputs": (y0 + gh + gap, x0 + gw + gap)}
        cmaps = {"phase": "twilight", "inputs": "magma"}
        for key, name in GRID_LAYERS.items():
            if key in p.grid:
                self._put_image(name, p.grid[key], places[key], colormap=cmaps.get(key, "gray"))
            elif name in self.viewer.layers:
                self.viewer.layers.remove(name)
        self._show_borders(p, [places[k] for k in p.grid])
        self._colour_positions(p)
        o = p.canvas.origin
        titles = {"amplitude": "amplitude", "amplitude_normalised": "normalised",
                  "phase": "phase", "inputs": "inputs D/s"}
        self._label(PREVIEW_LABELS, [
            ((o[0], o[1]), f"canvas ({p.source})"),
            ((o[0] + h + ds.N // 4, o[1]), "canvas phase"),
            *[(places[k], titles[k]) for k in p.grid]], size=8)
        if not self._placed:
            self.viewer.reset_view()
            self._placed = True

    def _label(self, name: str, items: list[tuple[tuple[float, float], str]],
               size: float = 10) -> None:
        """A text-only Points layer: each text just above its (row, col) corner."""
        coords = np.array([[y - 2, x] for (y, x), _ in items], dtype=float).reshape(-1, 2)
        texts = [t for _, t in items]
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        self.viewer.add_points(coords, name=name, size=0.01, face_color="transparent",
                               border_width=0, features={"label": texts},
                               text={"string": "{label}", "color": "white", "size": size,
                                     "anchor": "lower_left"},
                               metadata={"workbench": True})

    def _show_borders(self, p: api.Preview, places: list[tuple[float, float]]) -> None:
        rects, colours = [], []
        rgba = group_colours(np.arange(len(p.grid_boxes)))
        for y, x in places:
            for (r0, c0, r1, c1), colour in zip(p.grid_boxes, rgba, strict=True):
                rects.append(np.array([[y + r0 - 0.5, x + c0 - 0.5], [y + r1 - 0.5, x + c1 - 0.5]]))
                colours.append(colour)
        if BORDERS not in self.viewer.layers:
            self.viewer.add_shapes(name=BORDERS, face_color="transparent", edge_width=1.5,
                                   metadata={"workbench": True})
        layer = self.viewer.layers[BORDERS]
        layer.data = []
        if rects:
            layer.add_rectangles(rects, edge_color=np.array(colours), edge_width=1.5,
                                 face_color="transparent")

    def _colour_positions(self, p: api.Preview) -> None:
        name = "positions"
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.face_color = group_colours(p.position_group)
            layer.features = {"group": p.position_group}
            self.viewer.layers.move(self.viewer.layers.index(layer), len(self.viewer.layers) - 1)

    # ----------------------------------------------------------------- runs (part 2)
    # Runs go through a RunsController (ptycho_gui.runs_controller): live layers, history,
    # notifications; these methods are what the run panel's buttons call.
    _runs: Any = None
    data_path: str | None = None
    runs_root: str | None = None  # where run directories go (None: runs/ beside the data)

    @property
    def runs(self) -> Any:
        """The :class:`~ptycho_gui.runs_controller.RunsController` of this workbench."""
        if self._runs is None:
            from ptycho_gui.runs_controller import RunsController

            self._runs = RunsController(self.viewer, self.data, data_path=self.data_path,
                                        runs_root=self.runs_root, compare=self._compare_runs)
        return self._runs

    @property
    def history(self) -> list[Any]:
        """Every run since the workbench opened (:class:`~ptycho_gui.run_manager.RunRecord`:
        kind, settings, duration, final metrics, run directory)."""
        return self.runs.history

    def start(self, kind: str, **options: Any) -> Any:
        """Start a run: ``train``, ``infer``, ``epie``, ``rpie``, ``lsqml`` or ``refine``
        (the network, then LSQ-ML). The workbench's settings (gridsize, neighbour count,
        scaling, backend, device, bundle) apply where the kind takes them; ``options`` (the
        kind's typed options, see :meth:`RunManager.start
        <ptycho_gui.run_manager.RunManager.start>`) override them. Returns the run's record;
        :meth:`wait` waits for it. A bad option raises ``InputError`` naming it."""
        if self.data is None:
            raise InputError("data", "a dataset (load a sample or a file first)", "none")
        self.runs.set_data(self.data, self.data_path)
        if self.runs_root is not None:
            self.runs.manager.runs_root = self.runs_root
        return self.runs.start(kind, **{**self._run_defaults(kind), **options})

    def pause(self) -> None:
        """Park the running run at its next step."""
        self.runs.pause()

    def resume(self) -> None:
        self.runs.resume()

    def stop(self) -> None:
        """Stop the running run within a second; its last checkpoint and bundle stay."""
        self.runs.stop()

    def more(self, iterations: int = 5, run: Any = None) -> Any:
        """Continue the last solver run for ``iterations`` more epochs, in memory."""
        return self.runs.more(iterations, run)

    def save_bundle(self, path: str | os.PathLike[str], run: Any = None) -> Path:
        """Copy the bundle of the last (or the given) network run to ``path``."""
        return self.runs.save_bundle(path, run)

    def load_bundle(self, path: str | os.PathLike[str]) -> Path:
        """Check a bundle and use it for ``infer``, ``refine`` and the preview."""
        loaded = self.runs.load_bundle(path)
        self.set(bundle=str(loaded))
        return loaded

    def _run_defaults(self, kind: str) -> dict[str, Any]:
        o, out = self.options, {}
        if kind in ("train", "refine"):
            prefix = "train_" if kind == "refine" else ""
            if o.gridsize != 1:
                out[prefix + "gridsize"] = o.gridsize
            if o.neighbor_count is not None:
                out[prefix + "neighbor_count"] = o.neighbor_count
        if kind == "infer" and o.scaling != "bundle":
            out["scaling"] = (f"fixed={o.scale_value}" if o.scaling == "fixed"
                              else o.scaling)
        if kind in ("epie", "rpie", "lsqml", "refine") and self.backend != "numpy":
            out["backend"] = self.backend
        if kind in ("infer", "refine") and self.bundle:
            out["bundle"] = self.bundle
        if self.device not in ("", "auto"):
            out["device"] = self.device
        return out

    def _compare_runs(self, a: Any, b: Any) -> None:
        from ptycho_gui.live_layers import as_canvas

        self.compare(as_canvas(a.canvas), as_canvas(b.canvas))
