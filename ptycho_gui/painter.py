"""The one layer painter: preview, compare, live and final layers on a napari viewer.

One tiling (the engine's :func:`~engine.api.tile_patches`), one meaning of "normalised"
(each patch stretched to its own range, :func:`~engine.api.normalise_patches`), one
contrast rule (:func:`limits`: 1st to 99th percentile of the finite pixels), one canvas
adapter (:func:`canvas_images`). Amplitude and phase sit side by side, the patch grids to
their right, the probe to their left; labels sit above the images, never on them. The
painter uses the viewer's public layer API only (no Qt); how large the canvas widget is
comes from the view (``canvas_size``), so the Qt side can say it.

Examples
--------
>>> img = tile(np.ones((3, 4, 8, 8)), gridsize=2, per_row=2)
>>> img.shape
(46, 46)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine import api
from ptycho_gui.layers import Frame, dataset_layers, group_colours, limits

GRID_LAYERS = {
    "amplitude": "patch grid amplitude",
    "amplitude_normalised": "patch grid amplitude (normalised)",
    "phase": "patch grid phase",
    "inputs": "patch grid inputs D/s",
}
GRID_TITLES = {"amplitude": "amplitude", "amplitude_normalised": "normalised",
               "phase": "phase", "inputs": "inputs D/s"}
CANVAS = "canvas"
STARTING_PROBE = "starting probe"
PROBE_LABELS = "starting probe labels"
BORDERS = "group borders"
PREVIEW_LABELS = "preview labels"
COMPARE_LABELS = "compare labels"
LIVE = "live"
# the live layers (created when a run starts: adding a layer is napari's slow part) and
# their colormaps
LIVE_LAYERS = {
    "canvas amplitude": "gray",
    "canvas phase": "twilight",
    "patch grid": "viridis",
    "patch grid (normalised)": "viridis",
    "probe": "magma",
}
# the live positions of a position-corrected run (points) and their displacement from the
# given positions (vectors, drawn this many times longer than they are: corrections are a
# fraction of a pixel, invisible at true length)
POSITIONS = "positions"
DISPLACEMENT_GAIN = 10
DISPLACEMENT = f"displacement (×{DISPLACEMENT_GAIN})"
# differences: blue (negative), black (zero), red (positive), readable on the dark canvas
DIVERGING = {"name": "blue-black-red", "colors": [[0.2, 0.6, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0],
                                                   [1.0, 0.35, 0.2, 1.0]]}


def canvas_images(canvas: Any) -> tuple[np.ndarray, np.ndarray]:
    """The one canvas adapter: amplitude and phase of anything with ``canvas`` and
    ``coverage`` (an engine Canvas, a live snapshot), NaN outside the coverage."""
    c = np.asarray(canvas.canvas)
    cov = np.asarray(canvas.coverage, bool) & np.isfinite(c)
    amp = np.where(cov, np.abs(c), np.nan).astype(np.float32)
    phase = np.where(cov, np.angle(c), np.nan).astype(np.float32)
    return amp, phase


def as_canvas(c: Any) -> api.Canvas:
    """An engine :class:`~engine.api.Canvas` of a canvas-like object."""
    if isinstance(c, api.Canvas):
        return c
    cov = np.asarray(c.coverage, bool)
    return api.Canvas(np.asarray(c.canvas), cov, tuple(int(v) for v in c.origin),
                      cov.astype(np.float32))


def tile(patches: np.ndarray, gridsize: int, per_row: int = 4, gap: int = 1,
         group_gap: int = 4) -> np.ndarray:
    """Patches (b, C, N, N) as the preview tiles them (the engine's tiling)."""
    p = np.asarray(patches, dtype=np.float32)
    if p.ndim == 3:
        p = p[:, None]
    g: int | None = int(gridsize)
    if g * g != p.shape[1]:  # a snapshot without its gridsize: square when it can be
        g = int(round(np.sqrt(p.shape[1])))
        g = g if g * g == p.shape[1] else None
    return api.tile_patches(p, g, per_row, gap, group_gap)[0]


def _probe_image(probe: np.ndarray) -> np.ndarray:
    p = np.asarray(probe)
    return np.abs(p[0] if p.ndim == 3 else p).astype(np.float32)


UNIT_NAMES = {"nm": "nanometer", "µm": "micrometer", "pixel": "pixel"}


def _units_differ(layer: Any, units: tuple[str, ...]) -> bool:
    """Whether a layer's units (pint units, as napari keeps them) are not ``units``."""
    return [str(u) for u in layer.units] != [UNIT_NAMES.get(u, u) for u in units]


def _jsonable_metrics(m: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m.items() if isinstance(v, str | int | float | bool | type(None))}


class LayerPainter:
    """Every layer the workbench shows (see the module docstring).

    Parameters
    ----------
    viewer : a napari viewer (its public layer API).
    canvas_size : returns the canvas widget's (height, width) in pixels, for fitting the
        view; the Qt side provides it.
    """

    def __init__(self, viewer: Any,
                 canvas_size: Callable[[], tuple[int, int]] | None = None) -> None:
        self.viewer = viewer
        self.canvas_size = canvas_size or (lambda: (600, 600))
        self._placed_layout: Any = None
        self._pending: dict[str, tuple[np.ndarray, tuple[float, float], dict]] = {}
        self._shown: dict[str, int] = {}
        self._moved: tuple[np.ndarray, np.ndarray] | None = None  # queued live positions
        # the loaded dataset's physical frame: painters place layers in object pixels,
        # the frame turns them into nm/µm (scale, translate, units) for napari
        self.frame = Frame()

    # -- basic layer operations --------------------------------------------------------------
    @property
    def layers(self) -> Any:
        return self.viewer.layers

    def put_image(self, name: str, data: np.ndarray, translate: tuple[float, float], *,
                  symmetric: bool = False, meta: dict[str, Any] | None = None,
                  k: float = 1.0, **kwargs: Any) -> Any:
        """Create or update the image layer ``name`` (in place when the shape holds);
        ``translate`` in object pixels, each pixel drawn ``k`` object pixels wide, both in
        the dataset's physical frame (:attr:`frame`)."""
        lo, hi = limits(data, symmetric)
        translate = tuple(float(v) for v in self.frame.world(translate))
        placed = self.frame.kwargs(k=k)
        if name in self.layers:
            layer = self.layers[name]
            current = layer.data
            if isinstance(current, np.ndarray) and current.shape == data.shape \
                    and current.dtype == data.dtype and current.flags.writeable:
                # in place and a refresh: a third of the cost of a new array (no new
                # extent, no dims update), which keeps a live tick short
                current[...] = data
                layer.refresh()
            else:
                layer.data = data
            if tuple(layer.translate) != translate:
                layer.translate = translate
            if _units_differ(layer, placed["units"]):
                layer.units = placed["units"]
            if tuple(layer.scale) != placed["scale"]:
                layer.scale = placed["scale"]
            layer.contrast_limits_range = (lo, hi)
            layer.contrast_limits = (lo, hi)
            if meta:
                layer.metadata.update(meta)
            return layer
        if isinstance(kwargs.get("colormap"), dict):
            from napari.utils.colormaps import Colormap

            kwargs["colormap"] = Colormap(**kwargs["colormap"])
        return self.viewer.add_image(data, name=name, translate=translate,
                                     contrast_limits=(lo, hi), **placed,
                                     metadata={"workbench": True, **(meta or {})}, **kwargs)

    def label(self, name: str, items: list[tuple[tuple[float, float], str]],
              size: float = 9) -> None:
        """Texts just above each (row, col) corner (a text-only Points layer)."""
        coords = np.array([[y - 2, x] for (y, x), _ in items], dtype=float).reshape(-1, 2)
        if name in self.layers:
            self.layers.remove(name)
        self.viewer.add_points(coords, name=name, **self.frame.kwargs(),
                               size=0.01, face_color="transparent",
                               border_width=0, features={"label": [t for _, t in items]},
                               text={"string": "{label}", "color": "white", "size": size,
                                     "anchor": "lower_left"},
                               metadata={"workbench": True})

    def remove(self, predicate: Callable[[Any], bool]) -> None:
        for layer in list(self.layers):
            if predicate(layer):
                self.layers.remove(layer)

    def fit(self, names: list[str] | None = None, only: bool = False) -> None:
        """Fit the view to the layers ``names`` (all visible ones by default);
        ``only``: hide every other layer."""
        layers = [self.layers[n] for n in names] if names else [
            layer for layer in self.layers if layer.visible]
        if not layers:
            return
        if only:
            for layer in self.layers:
                layer.visible = layer in layers
        self.viewer.dims.ndisplay = 2
        # (napari's fit_to_view trips over a 3-D layer beside 2-D ones: the diffraction)
        ext = np.array([layer.extent.world[:, -2:] for layer in layers])
        lo, hi = ext[:, 0].min(axis=0), ext[:, 1].max(axis=0)
        self.viewer.camera.center = tuple((lo + hi) / 2)
        canvas = getattr(self.viewer, "canvas", None)  # the viewer model's canvas (public)
        size = np.asarray(getattr(canvas, "size", None) or self.canvas_size(), float)
        span = np.maximum(hi - lo, 1)
        self.viewer.camera.zoom = 0.95 * float(min(size / span))

    @staticmethod
    def preview_names() -> list[str]:
        return [f"{CANVAS} amplitude", f"{CANVAS} phase", *GRID_LAYERS.values()]

    # -- dataset -----------------------------------------------------------------------------
    def show_dataset(self, ds: api.Dataset) -> None:
        self.remove(lambda layer: layer.metadata.get("workbench"))
        self.frame = Frame.of(ds)
        self._unit_scale_bar()
        for data, kwargs, kind in dataset_layers(ds):
            kwargs["metadata"] = {**kwargs.get("metadata", {}), "workbench": True}
            getattr(self.viewer, f"add_{kind}")(data, **kwargs)
        self._placed_layout = None

    def _unit_scale_bar(self) -> None:
        """The scale bar reads the frame's unit (nm/µm) when the dataset has a pixel size."""
        bar = getattr(self.viewer, "scale_bar", None)
        if bar is not None and self.frame.pixel_size is not None:
            bar.visible = True

    # -- preview -----------------------------------------------------------------------------
    def show_preview(self, p: api.Preview, ds: api.Dataset) -> None:
        """Canvas amplitude and phase side by side, the patch grids in a 2 × 2 block to
        their right; the view is refit when the layout changes (a new gridsize)."""
        amp, phase = canvas_images(p.canvas)
        o = tuple(float(v) for v in p.canvas.origin)
        h, w = amp.shape
        gap = max(4, ds.N // 4)
        self.put_image(f"{CANVAS} amplitude", amp, o, colormap="gray",
                       meta={"canvas": p.canvas})
        phase_at = (o[0], o[1] + w + gap)
        self.put_image(f"{CANVAS} phase", phase, phase_at, colormap="twilight",
                       meta={"canvas": p.canvas})
        x0, y0 = phase_at[1] + w + 2 * gap, o[0]
        gh, gw = p.grid["amplitude"].shape
        # the canvas is the largest thing on screen: the 2 × 2 block of grids is scaled to
        # the canvas's height when it is taller (never enlarged)
        k = min(1.0, h / float(2 * gh + gap)) if gh else 1.0
        places = {"amplitude": (y0, x0), "amplitude_normalised": (y0, x0 + k * (gw + gap)),
                  "phase": (y0 + k * (gh + gap), x0),
                  "inputs": (y0 + k * (gh + gap), x0 + k * (gw + gap))}
        cmaps = {"phase": "twilight", "inputs": "magma"}
        for key, name in GRID_LAYERS.items():
            if key in p.grid:
                self.put_image(name, p.grid[key], places[key], k=k,
                               colormap=cmaps.get(key, "gray"))
            elif name in self.layers:
                self.layers.remove(name)
        self._borders(p, [places[k_] for k_ in p.grid], k)
        self._colour_positions(p)
        self.label(PREVIEW_LABELS, [
            (o, f"amplitude ({p.source})"), (phase_at, "phase"),
            *[(places[k_], GRID_TITLES[k_]) for k_ in p.grid]])
        layout = (amp.shape, p.grid["amplitude"].shape)
        if layout != self._placed_layout:
            self._placed_layout = layout
            self.fit([n for n in self.preview_names() if n in self.layers])

    def _borders(self, p: api.Preview, places: list[tuple[float, float]],
                 k: float = 1.0) -> None:
        rects, colours = [], []
        rgba = group_colours(np.arange(len(p.grid_boxes)))
        for y, x in places:
            for (r0, c0, r1, c1), colour in zip(p.grid_boxes, rgba, strict=True):
                rects.append(np.array([[y + k * (r0 - 0.5), x + k * (c0 - 0.5)],
                                       [y + k * (r1 - 0.5), x + k * (c1 - 0.5)]]))
                colours.append(colour)
        # rectangles in object pixels, the layer in the frame (edge widths stay in pixels)
        placed = self.frame.kwargs()
        if BORDERS not in self.layers:
            self.viewer.add_shapes(name=BORDERS, face_color="transparent", edge_width=1.5,
                                   metadata={"workbench": True}, **placed)
        layer = self.layers[BORDERS]
        if _units_differ(layer, placed["units"]):
            layer.units = placed["units"]
        if tuple(layer.scale) != placed["scale"]:
            layer.scale = placed["scale"]
        layer.data = []
        if rects:
            layer.add_rectangles(rects, edge_color=np.array(colours), edge_width=1.5,
                                 face_color="transparent")

    def _colour_positions(self, p: api.Preview) -> None:
        if "positions" in self.layers:
            layer = self.layers["positions"]
            layer.face_color = group_colours(p.position_group)
            layer.features = {"group": p.position_group}
            self.layers.move(self.layers.index(layer), len(self.layers) - 1)

    # -- the starting probe ------------------------------------------------------------------
    def show_starting_probe(self, probe: np.ndarray, spec: str) -> list[str]:
        """Amplitude and phase of the probe a solver run starts from (``spec``: the
        ``probe_init`` choice), left of the preview canvas; hidden with the other preview
        layers when a run starts (the live probe replaces it)."""
        p = np.asarray(probe)
        p = p[0] if p.ndim == 3 else p
        amp = np.abs(p).astype(np.float32)
        phase = np.where(amp > 1e-3 * amp.max(), np.angle(p), np.nan).astype(np.float32)
        h, w = amp.shape
        y0, x0 = 0.0, -float(w) - 8.0
        if f"{CANVAS} amplitude" in self.layers:
            t = self.layers[f"{CANVAS} amplitude"].translate
            y0, x0 = float(t[-2]), float(t[-1]) - w - 8.0
        meta = {"starting_probe": spec}
        names = [f"{STARTING_PROBE} amplitude", f"{STARTING_PROBE} phase"]
        self.put_image(names[0], amp, (y0, x0), colormap="magma", meta=meta)
        self.put_image(names[1], phase, (y0 + h + 8.0, x0), colormap="twilight",
                       symmetric=True, meta=meta)
        for name in names:
            self.layers[name].visible = True
            self.layers[name].metadata.update({"workbench": True, **meta})
        self.label(PROBE_LABELS, [((y0, x0), f"starting probe ({spec})"),
                                  ((y0 + h + 8.0, x0), "its phase")])
        return names

    # -- compare -----------------------------------------------------------------------------
    def show_comparison(self, view: api.CompareView) -> list[str]:
        """A, B (registered), A − B and the phase difference in a row below everything,
        then the view brought to them (the other layers hidden; the layer list shows them
        again with a click)."""
        if view.images is None:
            return []
        im = view.images
        A, B = im["baseline"], im["candidate"]
        h, w = A.shape
        self.remove(lambda layer: layer.metadata.get("compare"))
        # below everything (the extent is in the frame's unit; places are object pixels)
        y0 = (float(self.layers.extent.world[1][-2]) / self.frame.scale[0] + h // 8
              if len(self.layers) else 0.0)
        x0 = float(im["origin"][1])
        gap = max(4, w // 16)
        amp_a, amp_b = np.abs(A).astype(np.float32), np.abs(B).astype(np.float32)
        shared = limits(np.concatenate([amp_a.ravel(), amp_b.ravel()]))
        names, items = [], []
        for i, (name, data, cmap) in enumerate((
                ("compare A", amp_a, "gray"), ("compare B (registered)", amp_b, "gray"),
                ("compare A - B", im["difference"], DIVERGING),
                ("compare phase A - B", im["phase_difference"], DIVERGING))):
            if data is None:
                continue
            place = (y0, x0 + i * (w + gap))
            layer = self.put_image(name, np.asarray(data, np.float32), place, colormap=cmap,
                                   symmetric=i >= 2, meta={"compare": True})
            if i < 2:  # A and B on one scale, so a dimmer B looks dimmer
                layer.contrast_limits_range = shared
                layer.contrast_limits = shared
            names.append(name)
            items.append((place, name.replace("compare ", "")))
        self.label(COMPARE_LABELS, items)
        self.layers[COMPARE_LABELS].metadata["compare"] = True
        self.fit([*names, COMPARE_LABELS], only=True)
        return names

    # -- live runs ---------------------------------------------------------------------------
    @staticmethod
    def live_name(key: str) -> str:
        return f"{LIVE} {key}"

    def prepare_live(self) -> None:
        """Create the live layers; earlier runs' and the preview's layers are hidden."""
        self._pending.clear()
        self._moved = None
        for name in (f"{LIVE} {POSITIONS}", f"{LIVE} {DISPLACEMENT}"):
            if name in self.layers:  # an earlier run's that did not end here
                self.layers.remove(name)
        self._shown.clear()
        for layer in self.layers:
            if layer.visible and (layer.metadata.get("ptycho_run") is not None
                                  or layer.metadata.get("workbench")
                                  or layer.metadata.get("compare")):
                layer.visible = False
        for key, cmap in LIVE_LAYERS.items():
            name = self.live_name(key)
            if name not in self.layers:
                self.viewer.add_image(np.zeros((2, 2), np.float32), name=name, colormap=cmap,
                                      contrast_limits=(0.0, 1.0), visible=key != "probe",
                                      **self.frame.kwargs())
        self._placed_layout = None

    def queue_live(self, state: Any) -> None:
        """Queue the latest canvas, patch grids and probe of a live state (latest wins)."""
        if state.canvas is not None and self._changed("canvas", state.canvas.canvas):
            amp, phase = canvas_images(state.canvas)
            o = tuple(float(x) for x in state.canvas.origin)
            gap = max(4.0, amp.shape[1] / 16)
            meta = {"label": state.canvas_label, "run_id": state.run_id}
            self._pending["canvas amplitude"] = (amp, o, meta)
            self._pending["canvas phase"] = (phase, (o[0], o[1] + amp.shape[1] + gap), meta)
            self._beside = (o[0], o[1] + 2 * (amp.shape[1] + gap))
        if state.patches is not None and self._changed("patches", state.patches):
            amp, _phase, g = state.patches
            meta = {"gridsize": g, "run_id": state.run_id}
            beside = getattr(self, "_beside", (0.0, 0.0))
            grid = tile(amp, g)
            self._pending["patch grid"] = (grid, beside, meta)
            below = (beside[0] + grid.shape[0] + 4, beside[1])
            self._pending["patch grid (normalised)"] = (
                tile(api.normalise_patches(amp).astype(np.float32), g), below, meta)
        if state.probe is not None and self._changed("probe", state.probe):
            img = _probe_image(state.probe)
            o = state.canvas.origin if state.canvas is not None else (0, 0)
            self._pending["probe"] = (img, (float(o[0]), float(o[1]) - img.shape[1] - 4), {})

        if state.positions is not None and self._changed("positions", state.positions):
            self._moved = (np.asarray(state.positions, float),
                           np.asarray(state.initial_positions, float))

    def show_positions(self, current: np.ndarray, initial: np.ndarray,
                       prefix: str = LIVE) -> list[str]:
        """Scan positions ``current`` (points, ``<prefix> positions``) and the displacement
        from ``initial`` (vectors ``<prefix> displacement (×10)``, scaled up to be seen),
        both in object coordinates over the canvas; created on first use."""
        current, initial = np.asarray(current, float), np.asarray(initial, float)
        names = [f"{prefix} {POSITIONS}", f"{prefix} {DISPLACEMENT}"]
        size = max(1.0, float(np.ptp(initial[:, 0]) + 1) / 60)
        if names[0] in self.layers:
            self.layers[names[0]].data = current
        else:
            self.viewer.add_points(current, name=names[0], size=size, face_color="yellow",
                                   border_width=0, opacity=0.9, **self.frame.kwargs(),
                                   metadata={"positions": "current"})
        vectors = np.stack([initial, DISPLACEMENT_GAIN * (current - initial)], axis=1)
        if names[1] in self.layers:
            self.layers[names[1]].data = vectors
        else:
            self.viewer.add_vectors(vectors, name=names[1], edge_width=max(0.5, size / 2),
                                    edge_color="orange", length=1.0, **self.frame.kwargs(),
                                    metadata={"positions": "displacement",
                                              "gain": DISPLACEMENT_GAIN})
        return names

    def _changed(self, key: str, obj: Any) -> bool:
        if self._shown.get(key) == id(obj):
            return False
        self._shown[key] = id(obj)
        return True

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def flush_live(self, budget_s: float | None = 0.03) -> None:
        """Set queued images (all with ``budget_s=None``, else as many as fit, at least
        one), refitting the view when the live layout changed."""
        import time

        t0 = time.perf_counter()
        while self._pending:
            key = next(iter(self._pending))
            data, translate, meta = self._pending.pop(key)
            name = self.live_name(key)
            if name in self.layers:
                self.put_image(name, data, translate, meta=meta)
            if budget_s is not None and time.perf_counter() - t0 > budget_s:
                break
        moved, self._moved = self._moved, None
        if moved is not None:
            self.show_positions(*moved)
        names = [self.live_name(k) for k in ("canvas amplitude", "canvas phase",
                                             "patch grid", "patch grid (normalised)")]
        present = [n for n in names if n in self.layers and self.layers[n].data.size > 4]
        layout = tuple(self.layers[n].data.shape for n in present)
        if present and layout != self._placed_layout:
            self._placed_layout = layout
            self.fit(present)

    def finish_live(self, record: Any) -> list[str]:
        """The live layers become ordinary layers named after the run, holding its final
        canvas, probe and patch grids (the statistics records in ``metadata``)."""
        self._pending.clear()
        meta = {"ptycho_run": record.run_id, "run_dir": str(record.out), "kind": record.kind,
                "metrics": _jsonable_metrics(record.metrics),
                "settings": {k: str(v) for k, v in record.settings.items()}}
        canvas_meta: dict[str, Any] = {}
        if record.canvas is not None:
            canvas = as_canvas(record.canvas)
            canvas_meta = {"canvas": canvas, "ptycho": {"kind": "canvas",
                                                        "origin": tuple(canvas.origin),
                                                        "run": record.name}}
            amp, phase = canvas_images(canvas)
            o = tuple(float(x) for x in canvas.origin)
            gap = max(4.0, amp.shape[1] / 16)
            if self.live_name("canvas amplitude") in self.layers:
                self.put_image(self.live_name("canvas amplitude"), amp, o)
                self.put_image(self.live_name("canvas phase"), phase,
                               (o[0], o[1] + amp.shape[1] + gap))
        if record.probe is not None and self.live_name("probe") in self.layers:
            img = _probe_image(record.probe)
            layer = self.layers[self.live_name("probe")]
            self.put_image(layer.name, img, tuple(self.frame.pixels(layer.translate)))
        have = {"canvas amplitude": record.canvas is not None,
                "canvas phase": record.canvas is not None,
                "patch grid": record.patches is not None,
                "patch grid (normalised)": record.patches is not None,
                "probe": record.probe is not None}
        stats = [{"step": s, **r} for s, r in record.stats]
        added = []
        for key in LIVE_LAYERS:
            name = self.live_name(key)
            if name not in self.layers:
                continue
            layer = self.layers[name]
            if not have[key]:
                self.layers.remove(layer)
                continue
            final = f"{record.name} {key.replace('canvas ', '')}"
            if final in self.layers:  # a name taken by hand: the run's gets its id
                final = f"{final} ({record.run_id})"
            layer.name = final
            layer.metadata.update(meta)
            if key.startswith("canvas"):
                layer.metadata.update(canvas_meta)
            if key == "patch grid":
                layer.metadata["statistics"] = stats
            added.append(layer.name)
        added += self._finish_positions(record, meta)
        self._shown.clear()
        return added

    def _finish_positions(self, record: Any, meta: dict[str, Any]) -> list[str]:
        """The run's corrected positions and displacement become layers named after it."""
        self._moved = None
        live = [f"{LIVE} {POSITIONS}", f"{LIVE} {DISPLACEMENT}"]
        current = getattr(record, "positions", None)
        initial = getattr(record, "initial_positions", None)
        if current is not None and initial is not None:
            self.show_positions(current, initial)
        out = []
        for name in live:
            if name not in self.layers:
                continue
            layer = self.layers[name]
            final = f"{record.name}{name[len(LIVE):]}"
            if final in self.layers:
                final = f"{final} ({record.run_id})"
            layer.name = final
            layer.metadata.update(meta)
            out.append(layer.name)
        return out


__all__ = ["LayerPainter", "as_canvas", "canvas_images", "limits", "tile"]
