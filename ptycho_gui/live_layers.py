"""Images of a run as napari layers: the stitched canvas, the patch grid, the probe.

Live layers are updated in place (``layer.data = ...``) so a view keeps its zoom and a user's
colormap while a run goes; contrast limits follow the data (robust percentiles of the
covered pixels). When a run ends its results become ordinary layers named after the run.
No Qt here: only the viewer's layer API.

Examples
--------
>>> import numpy as np
>>> tiles = tile_groups(np.ones((3, 4, 8, 8)), gridsize=2, per_row=2)
>>> tiles.shape, bool(np.isnan(tiles).any())    # 2 x 2 groups of 16 x 16, NaN borders
((34, 34), True)
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

LIVE = "live"
BORDER = 2  # pixels of NaN between groups: napari draws NaN transparent


def tile_groups(patches: np.ndarray, gridsize: int, per_row: int = 4,
                border: int = BORDER) -> np.ndarray:
    """Lay (b, C, N, N) patches out as a grid: each group a g x g block (channels in
    row-major order), groups side by side, ``border`` NaN pixels between groups."""
    p = np.asarray(patches, dtype=np.float32)
    if p.ndim == 3:
        p = p[:, None]
    b, C, N = p.shape[0], p.shape[1], p.shape[-1]
    g = max(1, int(gridsize))
    if g * g != C:
        g = int(round(np.sqrt(C)))
    cols = min(per_row, b)
    rows = -(-b // cols)
    side = g * N
    out = np.full((rows * side + (rows - 1) * border, cols * side + (cols - 1) * border),
                  np.nan, np.float32)
    for i in range(b):
        r0, c0 = (i // cols) * (side + border), (i % cols) * (side + border)
        for c in range(C):
            rr, cc = divmod(c, g)
            out[r0 + rr * N:r0 + (rr + 1) * N, c0 + cc * N:c0 + (cc + 1) * N] = p[i, c]
    return out


def normalised(patches: np.ndarray) -> np.ndarray:
    """Each patch minus its own mean, over the group's mean amplitude: the zero-mean
    patches whose variance is the statistics' ``var_zero_mean`` (relative)."""
    p = np.asarray(patches, dtype=np.float32)
    mean = p.mean(axis=(-2, -1), keepdims=True)
    scale = np.maximum(np.abs(p.mean(axis=tuple(range(1, p.ndim)), keepdims=True)), 1e-12)
    return (p - mean) / scale


def limits(values: np.ndarray) -> tuple[float, float]:
    """Contrast limits following the data: 1st and 99th percentile of the finite pixels."""
    v = np.asarray(values)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(v, [1, 99])
    if not hi > lo:
        lo, hi = float(v.min()), float(v.max())
        if not hi > lo:
            hi = lo + 1.0
    return float(lo), float(hi)


def canvas_images(canvas: Any) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude and phase of a canvas (``canvas``, ``coverage``), NaN outside coverage."""
    c = np.asarray(canvas.canvas)
    cov = np.asarray(canvas.coverage, bool) & np.isfinite(c)
    amp = np.where(cov, np.abs(c), np.nan).astype(np.float32)
    phase = np.where(cov, np.angle(c), np.nan).astype(np.float32)
    return amp, phase


# the live layers, created when a run starts (adding a layer is napari's slow part: ~0.1 s
# on a desktop, seconds on a loaded machine without a GPU) and updated in place after that
LIVE_LAYERS = {
    "canvas amplitude": "gray",
    "canvas phase": "twilight",
    "patch grid": "viridis",
    "statistics": "PiYG",
    "probe": "magma",
}
# one update of the view spends at most this long on the GUI thread (at least one layer)
BUDGET_S = 0.03


class LiveLayers:
    """The live layers of the current run, renamed after the run when it ends.

    :meth:`prepare` creates them when a run starts; :meth:`update` queues the latest images
    (latest wins per layer) and :meth:`flush` sets them, a few layers per call within
    :data:`BUDGET_S`, so the GUI thread never spends long on one update.
    """

    def __init__(self, viewer: Any) -> None:
        self.viewer = viewer
        self._pending: dict[str, tuple[np.ndarray, tuple[float, float], dict]] = {}
        self._shown: dict[str, int] = {}  # id of the object each layer last showed
        self._beside: tuple[float, float] = (0.0, 0.0)

    @staticmethod
    def name(key: str) -> str:
        return f"{LIVE} {key}"

    def prepare(self) -> None:
        """Create the live layers; earlier runs' and the preview's layers are hidden so the
        new run is what the view shows."""
        self._pending.clear()
        self._shown.clear()
        for layer in self.viewer.layers:
            # the run takes the stage: earlier runs' and the preview's layers are hidden
            # (the layer list shows them again with a click)
            if layer.visible and (layer.metadata.get("ptycho_run") is not None
                                  or layer.metadata.get("workbench")):
                layer.visible = False
        for key, cmap in LIVE_LAYERS.items():
            name = self.name(key)
            if name not in self.viewer.layers:
                # visible from the start: showing a layer later costs a redraw of its own
                self.viewer.add_image(np.zeros((2, 2), np.float32), name=name, colormap=cmap,
                                      contrast_limits=(0.0, 1.0),
                                      visible=key not in ("probe", "statistics"))

    def update(self, state: Any) -> None:
        """Queue the latest canvas, patch grid, statistics and probe of ``state``."""
        if state.canvas is not None and self._changed("canvas", state.canvas.canvas):
            amp, phase = canvas_images(state.canvas)
            origin = tuple(float(x) for x in state.canvas.origin)
            meta = {"label": state.canvas_label, "run_id": state.run_id}
            self._pending["canvas amplitude"] = (amp, origin, meta)
            self._pending["canvas phase"] = (phase, origin, meta)
            # the patch grid sits to the right of the canvas, not on top of it
            self._beside = (origin[0], origin[1] + amp.shape[1] + 8.0)
        if state.patches is not None and self._changed("patches", state.patches):
            amp, _phase, g = state.patches
            meta = {"gridsize": g, "run_id": state.run_id}
            self._pending["patch grid"] = (tile_groups(amp, g), self._beside, meta)
            self._pending["statistics"] = (tile_groups(normalised(amp), g), self._beside, meta)
        if state.probe is not None and self._changed("probe", state.probe):
            self._pending["probe"] = (_probe_image(state.probe), (0.0, 0.0), {})

    def _changed(self, key: str, obj: Any) -> bool:
        if self._shown.get(key) == id(obj):
            return False
        self._shown[key] = id(obj)
        return True

    def flush(self, budget_s: float | None = BUDGET_S) -> None:
        """Set queued images into their layers: all of them (``budget_s=None``), or as many
        as fit in ``budget_s`` (at least one)."""
        t0 = time.perf_counter()
        while self._pending:
            key = next(iter(self._pending))
            data, translate, meta = self._pending.pop(key)
            name = self.name(key)
            if name not in self.viewer.layers:
                continue
            layer = self.viewer.layers[name]
            _set(layer, data, translate, meta)
            if budget_s is not None and time.perf_counter() - t0 > budget_s:
                break

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def finish(self, record: Any) -> list[str]:
        """The live layers become ordinary layers named after the run, holding its final
        canvas, probe, patch grid and statistics (the records in ``metadata``)."""
        self._pending.clear()
        v, added = self.viewer, []
        meta = {"ptycho_run": record.run_id, "run_dir": str(record.out), "kind": record.kind,
                "metrics": dict(record.metrics), "settings": dict(record.settings)}
        canvas_meta: dict[str, Any] = {}
        if record.canvas is not None:
            # what the workbench's compare and the plugin's writers read from a canvas layer
            canvas = as_canvas(record.canvas)
            canvas_meta = {"canvas": canvas, "ptycho": {"kind": "canvas",
                                                        "origin": tuple(canvas.origin),
                                                        "run": record.name}}
        finals: dict[str, Any] = {}
        if record.canvas is not None and self._changed("canvas", record.canvas.canvas):
            amp, phase = canvas_images(record.canvas)
            origin = tuple(float(x) for x in record.canvas.origin)
            finals["canvas amplitude"] = (amp, origin)
            finals["canvas phase"] = (phase, origin)
        if record.probe is not None and self._changed("probe", record.probe):
            finals["probe"] = (_probe_image(record.probe), (0.0, 0.0))
        have = {"canvas amplitude": record.canvas is not None,
                "canvas phase": record.canvas is not None,
                "patch grid": record.patches is not None,
                "statistics": record.patches is not None, "probe": record.probe is not None}
        stats = [{"step": s, **r} for s, r in record.stats]
        for key in LIVE_LAYERS:
            name = self.name(key)
            if name not in v.layers:
                continue
            layer = v.layers[name]
            if not have[key]:
                v.layers.remove(layer)
                continue
            if key in finals:
                _set(layer, finals[key][0], finals[key][1], {})
            final = f"{record.name} {key.replace('canvas ', '')}"
            if final in v.layers:  # a name taken by hand: the run's layer gets the suffix
                final = f"{final} ({record.run_id})"
            layer.name = final
            layer.metadata.update(meta)
            if key.startswith("canvas"):
                layer.metadata.update(canvas_meta)
            if key == "statistics":
                layer.metadata["statistics"] = stats
            added.append(layer.name)
        self._shown.clear()
        return added


def as_canvas(c: Any) -> Any:
    """An engine :class:`~engine.physics.stitching.Canvas` of a canvas-like object."""
    from engine.physics.stitching import Canvas

    if isinstance(c, Canvas):
        return c
    cov = np.asarray(c.coverage, bool)
    return Canvas(np.asarray(c.canvas), cov, tuple(int(v) for v in c.origin),
                  cov.astype(np.float32))


def _probe_image(probe: np.ndarray) -> np.ndarray:
    p = np.asarray(probe)
    return np.abs(p[0] if p.ndim == 3 else p).astype(np.float32)


def _set(layer: Any, data: np.ndarray, translate: tuple[float, float], meta: dict) -> None:
    lo, hi = limits(data)
    current = layer.data
    if isinstance(current, np.ndarray) and current.shape == data.shape \
            and current.dtype == data.dtype and current.flags.writeable:
        # in place and a refresh: a third of the cost of a new array (no new extent,
        # no dims update, no transform rebuild), which is what keeps a tick short
        current[...] = data
        layer.refresh()
    else:
        layer.data = data
    if tuple(layer.translate) != tuple(translate):  # each assignment redraws
        layer.translate = translate
    layer.contrast_limits_range = (lo, hi)
    layer.contrast_limits = (lo, hi)
    if meta:
        layer.metadata.update(meta)
