"""What a setting does, computed at once: the workbench's preview, headless.

One call groups the scan positions, takes the patches of the first groups (the truth, or a
loaded bundle's prediction), tiles them into patch grids (amplitude raw and normalised,
phase, and the network inputs ``D / s``), stitches the stitched canvas (NaN outside the
coverage), computes the variance statistics batch by batch and reports the intensity
scale in use, where it came from and the data's own (see ``docs/conventions.md``). The napari
workbench shows these as layers; a notebook gets the same with ``api.preview(data, options)``.

A newer setting cancels an older preview through ``control`` (:class:`~engine.events.RunControl`):
the computation checks it between stages and batches and raises
:class:`~engine.events.StopRequested`.

Examples
--------
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> ds = simulate(SimulationConfig(object="lines", n_positions=64, N=32, step=6, seed=0))
>>> p = preview(ds, PreviewOptions(gridsize=2))
>>> p.groups.C, p.grid["amplitude"].ndim, p.stats["all"]["var_across_group"] is not None
(4, 2, True)
>>> preview(ds, PreviewOptions(gridsize=1)).stats["all"]["var_across_group"] is None
True
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from engine import checks
from engine.backends import Backend, get_backend
from engine.backends.propagation import Propagator
from engine.data import Dataset, read_rows
from engine.errors import InputError
from engine.events import Callback, Progress, RunControl
from engine.options import Options, option, validate
from engine.physics.grouping import GroupingConfig, Groups, make_groups
from engine.physics.scaling import (
    MISMATCH_FACTOR,
    choose_scale,
    intensity_scale,
    scale_ratio,
    scale_text,
)
from engine.physics.sources import source_patches
from engine.physics.stats import PooledStats, normalise_patches, patch_statistics, tile_patches
from engine.physics.stitching import Canvas, CanvasGeometry, StitchConfig, Stitcher

MEMO_SIZE = 8  # groupings and canvases remembered per dataset
STITCH_PATCHES = 1024  # patches stitched at a time (memory O(batch), not O(groups))


@dataclass(frozen=True)
class PreviewOptions(Options):
    """The settings a preview depends on (each flip of one recomputes the preview).

    Parameters
    ----------
    gridsize : g in 1…4; a group holds C = g² neighbouring patterns.
    neighbor_count : K nearest neighbours a group draws its members from (``None``: C + 2).
    n_groups : groups stitched and counted (``None``: one per C positions, so each pattern
        is used about once).
    crop : central window of each patch that is stitched, in pixels (``None``: N/2).
    window : stitching weight, ``uniform`` or ``probe`` (|P|²).
    scaling : intensity scale ``s`` of the inputs ``D / s``: ``data`` (the data's own),
        ``fixed`` (``scale_value``) or ``bundle`` (the loaded bundle's).
    scale_value : the scale for ``scaling="fixed"``.
    show_groups : groups shown in the patch grids.
    batch_size : groups per statistics batch (``None``: 64 patterns' worth, 64 // C groups).
    stats_batches : the statistics cover the first ``stats_batches`` batches (``None``: all);
        the canvas always covers every group. ``var_across_group`` resamples every channel of
        every group, which costs most of a preview, hence the sample.
    seed : grouping seed.
    """

    gridsize: int = option(1, "patterns per group side: C = gridsize² per group",
                           minimum=1, maximum=4)
    neighbor_count: int | None = option(None, "nearest neighbours a group draws from "
                                        "(auto: C + 2)", minimum=0, maximum=64, advanced=True)
    n_groups: int | None = option(None, "groups stitched and counted (auto: one per C "
                                  "positions)", minimum=1, maximum=1_000_000)
    crop: int | None = option(None, "central part of each patch stitched, pixels (auto: N/2)",
                              minimum=1, maximum=512)
    window: Literal["uniform", "probe"] = option("uniform", "stitching weight: uniform or the "
                                                 "probe's |P|²")
    scaling: Literal["data", "fixed", "bundle"] = option(
        "data", "intensity scale s of the inputs D/s: the data's own, a fixed value or the "
        "loaded bundle's")
    scale_value: float | None = option(None, "the scale s for scaling 'fixed'", minimum=0,
                                       exclusive_minimum=True, maximum=1e12)
    show_groups: int = option(8, "groups shown in the patch grids", minimum=1, maximum=64,
                              advanced=True)
    batch_size: int | None = option(None, "groups per statistics batch (auto: 64 patterns' "
                                    "worth)", minimum=1, maximum=65536, advanced=True)
    stats_batches: int | None = option(4, "batches whose statistics are computed (None: all)",
                                       minimum=1, maximum=100_000, advanced=True)
    seed: int = option(0, "grouping seed (same seed, same groups)", minimum=0,
                       maximum=2**31 - 1, advanced=True)

    def __post_init__(self) -> None:
        validate(self)
        if self.scaling == "fixed" and self.scale_value is None:
            raise InputError("scale_value", "a value > 0 for scaling 'fixed'", "None")
        GroupingConfig(self.gridsize, self.neighbor_count, self.n_groups, self.seed)
        self.stitch_config()

    def stitch_config(self) -> StitchConfig:
        return StitchConfig(crop=self.crop, window=self.window)

    def grouping(self, n: int) -> GroupingConfig:
        """The grouping of ``n`` positions (defaults resolved against the data)."""
        C = self.gridsize**2
        if n < C:
            raise InputError("gridsize", f"at most {math.isqrt(n)} for {n} positions "
                             f"(C = gridsize² patterns per group)", str(self.gridsize))
        K = self.neighbor_count if self.neighbor_count is not None else min(C + 2, n - 1)
        G = self.n_groups if self.n_groups is not None else max(1, n // C)
        return GroupingConfig(self.gridsize, K if C > 1 else None, G, self.seed)

    def stats_batch_size(self) -> int:
        return self.batch_size or max(1, 64 // self.gridsize**2)


@dataclass(frozen=True)
class ScaleInfo:
    """The intensity scale in use, where it came from, and the data's own."""

    value: float
    source: str            # "data", "fixed" or "bundle"
    data_scale: float
    bundle_scale: float | None = None

    @property
    def ratio(self) -> float:
        """max(s / s_data, s_data / s) >= 1."""
        return scale_ratio(self.value, self.data_scale)

    @property
    def mismatch(self) -> bool:
        """The scale differs from the data's own by more than 2× (what once zeroed outputs)."""
        return self.ratio > MISMATCH_FACTOR

    def describe(self) -> str:
        """One line: the scale, its source, the data's own and, when they differ, a warning
        (the engine's one text, :func:`engine.physics.scaling.scale_text`)."""
        return scale_text(self.value, self.source, self.data_scale)


@dataclass
class Preview:
    """Everything the workbench shows for one set of options.

    Attributes
    ----------
    options : the options it was computed for.
    groups : the grouping (indices (G, C), member positions (G, C, 2)).
    position_group : (n,) int, the first group each position belongs to (-1: none).
    source : ``"truth"`` or ``"prediction"``.
    grid : 2-D patch-grid images of the first ``show_groups`` groups, NaN between patches:
        ``amplitude``, ``amplitude_normalised``, ``phase`` and (with diffraction) ``inputs``
        (the network inputs ``D / s``); each group is a g × g block, channels row-major.
    grid_boxes : (b, 4) (row0, col0, row1, col1) of each group's block in the grids.
    canvas : the stitched canvas (complex, NaN outside the coverage).
    stats : ``{"batches": [record, ...], "all": record}`` (``None`` in the first, layers-only
        step of :func:`iter_preview`), the statistics per batch of the
        first groups and pooled over those batches (``var_across_group`` is ``None`` for
        gridsize 1: undefined, never 0).
    scale : the intensity scale in use (``None`` without diffraction).
    timings : seconds per stage.
    forward : the forward check of the shown truth patches (``None`` without diffraction
        or truth): ``propagation`` (the dataset geometry's model, far or near field) and
        ``misfit``, ‖X − c·|A(P·O_j)|‖ / ‖X‖ over the shown patterns with the best scale c
        (:func:`forward_check`). Near 0 when data, truth, probe and geometry agree; a
        near-field dataset checked with the far field (or a wrong distance) is far off.
    """

    options: PreviewOptions
    groups: Groups
    position_group: np.ndarray
    source: str
    grid: dict[str, np.ndarray]
    grid_boxes: np.ndarray
    canvas: Canvas
    stats: dict[str, Any] | None
    scale: ScaleInfo | None
    backend: str
    timings: dict[str, float] = field(default_factory=dict)
    forward: dict[str, Any] | None = None

    @property
    def gridsize(self) -> int:
        return self.groups.gridsize


def resolve_preview_scale(data: Dataset, options: PreviewOptions,
                          bundle_scale: float | None = None,
                          data_scale: float | None = None) -> ScaleInfo | None:
    """The scale ``options.scaling`` picks for ``data`` (``None`` without diffraction);
    ``data_scale`` is the data's own when already known."""
    if data.diffraction is None:
        return None
    own = data_scale if data_scale is not None else intensity_scale(data.diffraction,
                                                                      data.pixel_mask)
    # the engine's one rule (inference resolves its scale with the same function)
    s = choose_scale(options.scaling, options.scale_value, own, bundle_scale)
    return ScaleInfo(s, options.scaling, own, bundle_scale)


def network_inputs(data: Dataset, index: np.ndarray, scale: float) -> np.ndarray:
    """The network inputs D / s of positions ``index`` (any integer shape), float32 of shape
    ``index.shape + (N, N)``, masked detector pixels 0; only those rows are read from a
    lazy stack."""
    flat = np.asarray(index).reshape(-1)
    unique, inverse = np.unique(flat, return_inverse=True)
    rows = read_rows(data.diffraction, unique) / np.float32(scale)
    if data.pixel_mask is not None:
        rows = rows * data.pixel_mask
    return rows[inverse].reshape(np.shape(index) + rows.shape[1:]).astype(np.float32)


def position_groups(groups: Groups, n: int) -> np.ndarray:
    """(n,) the first group (in group order) containing each position; -1 if none."""
    out = np.full(n, -1, dtype=np.int64)
    flat = groups.indices.reshape(-1)
    owner = np.repeat(np.arange(groups.n_groups), groups.C)
    # reversed so the first group wins the assignment
    out[flat[::-1]] = owner[::-1]
    return out


class PreviewCache:
    """What stays valid across flips of one dataset: its patches and a loaded network.

    Pass the same cache to successive :func:`preview` calls on the same data so that a flip
    recomputes only what the setting changes.
    """

    def __init__(self) -> None:
        self._key: Any = None
        self._patches: dict[str, np.ndarray] = {}
        self._scale: float | None = None
        self._memo: dict[str, dict[Any, Any]] = {}
        self.bundle_key: str | None = None
        self._bundle: tuple[str, Any, Any] | None = None

    def use(self, data: Dataset) -> None:
        """Start remembering for ``data`` (forgets another dataset's entries)."""
        if self._key is not data:
            self._key, self._patches, self._scale, self._memo = data, {}, None, {}

    def memo(self, kind: str, key: Any, compute: Any) -> Any:
        """The remembered value of ``(kind, key)``, else ``compute()`` remembered (the last
        few per kind); ``compute=None`` only looks up (``None`` when absent)."""
        table = self._memo.setdefault(kind, {})
        if key in table:
            return table[key]
        if compute is None:
            return None
        value = table[key] = compute()
        while len(table) > MEMO_SIZE:
            table.pop(next(iter(table)))
        return value

    def data_scale(self, data: Dataset) -> float | None:
        """The data's own intensity scale (``None`` without diffraction), computed once."""
        self.use(data)
        if self._scale is None and data.diffraction is not None:
            self._scale = intensity_scale(data.diffraction, data.pixel_mask)
        return self._scale

    def patches(self, data: Dataset, be: Backend) -> np.ndarray:
        """The truth patches (n, N, N) of ``data``, extracted once."""
        self.use(data)
        if "truth" not in self._patches:
            self._patches["truth"] = source_patches(data, "truth", be)
        return self._patches["truth"]

    def model(self, bundle: Any) -> tuple[Any, Any]:
        """(Bundle, PhysicsModel) of a bundle path or loaded bundle, on the CPU, cached."""
        from engine.network.bundles import Bundle, load_bundle
        from engine.network.inference import load_model

        key = str(bundle.path if isinstance(bundle, Bundle) else os.fspath(bundle))
        if self._bundle is None or self._bundle[0] != key:
            b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, "cpu")
            self._bundle = (key, b, load_model(b, __import__("torch").device("cpu")))
        self.bundle_key = key
        return self._bundle[1], self._bundle[2]


def _checkpoint(control: RunControl | None) -> None:
    if control is not None:
        control.checkpoint()


def _predicted_patches(data: Dataset, groups: Groups, scale: ScaleInfo, model: Any,
                       batch_size: int, control: RunControl | None):
    """Yield (slice, patches (b, C, N, N) complex numpy) of the network's prediction."""
    import torch

    from engine.network.patterns import input_patterns
    from engine.network.predict import predict

    # masked pixels enter as 0; a lazy stack is read a batch of groups at a time
    x = input_patterns(data.diffraction, scale.value, data.pixel_mask, torch.device("cpu"))
    for sl, obj, _, _ in predict(model, x, groups, batch_size, amplitudes=False):
        _checkpoint(control)
        yield sl, obj.cpu().numpy().astype(np.complex64)


def _stitch(data: Dataset, groups: Groups, opts: PreviewOptions, be: Backend, model: Any,
            scale: ScaleInfo | None, cache: PreviewCache, n_head: int,
            control: RunControl | None) -> tuple[Canvas, np.ndarray]:
    """The canvas of every group's patches (truth or prediction) and the first ``n_head``
    groups' patches (b, C, N, N)."""
    stitch_groups = max(1, STITCH_PATCHES // groups.C)
    if model is None:
        truth = cache.patches(data, be)
        batches = ((sl, truth[groups.indices[sl]]) for sl in groups.batches(stitch_groups))
    else:
        batches = _predicted_patches(data, groups, scale, model, stitch_groups, control)
    geometry = CanvasGeometry.from_positions(data.positions, data.N)
    stitcher = Stitcher(geometry, data.N, be, opts.stitch_config(), probe=data.probe)
    head: list[np.ndarray] = []
    have = 0
    for sl, patches in batches:
        stitcher.add(patches, groups.positions[sl])
        if have < n_head:
            head.append(np.asarray(patches[: n_head - have]))
            have += len(head[-1])
        _checkpoint(control)
    return stitcher.result(), np.concatenate(head)


def forward_check(data: Dataset, patches: np.ndarray, index: np.ndarray, be: Backend,
                  propagation: str = "auto") -> dict[str, Any]:
    """How well the forward model of ``data``'s geometry explains its measured patterns
    ``index`` (any shape) from the true object ``patches`` (same shape + (N, N)) and the
    dataset's probe: ``misfit`` = ‖X − c·|A(P·O)|‖ / ‖X‖ with the least-squares scale c
    (the photon scale is unknown to the model), and the ``propagation`` it used."""
    prop = Propagator.from_geometry(data.geometry, data.N, propagation)
    N = data.N
    idx = np.asarray(index).reshape(-1)
    o = be.asarray(np.asarray(patches).reshape(-1, N, N), complex=True)
    model = be.to_numpy(be.amplitude(prop.bind(be).forward(
        be.illuminate(be.asarray(data.probe, complex=True), o)))).astype(np.float64)
    # sorted, unique rows: what a lazy (HDF5) stack can read
    rows, back = np.unique(idx, return_inverse=True)
    measured = read_rows(data.diffraction, rows).astype(np.float64)[back]
    c = float(np.sum(measured * model) / max(float(np.sum(model * model)), 1e-30))
    misfit = float(np.linalg.norm(measured - c * model) / max(np.linalg.norm(measured), 1e-30))
    return {"propagation": prop.kind, "misfit": misfit}


def preview(data: Dataset, options: PreviewOptions | None = None, *,
            bundle: Any = None, backend: str | Backend = "numpy", device: str = "auto",
            emit: Callback | None = None, control: RunControl | None = None,
            cache: PreviewCache | None = None) -> Preview:
    """Compute the preview of ``data`` under ``options`` (the last of :func:`iter_preview`).

    Parameters
    ----------
    data : the dataset (needs the truth, ``Y`` or ``objectGuess``, unless ``bundle`` is given).
    options : the settings (default :class:`PreviewOptions`).
    bundle : a trained bundle (path or loaded); its prediction replaces the truth.
    backend, device : where grouping statistics and stitching run (``numpy`` or ``torch``).
    emit : receives :class:`~engine.events.Progress` per stage.
    control : a stop request cancels the computation (raises ``StopRequested``).
    cache : a :class:`PreviewCache` shared by successive calls on the same data.

    Examples
    --------
    >>> from engine.simulation.simulate import SimulationConfig, simulate
    >>> ds = simulate(SimulationConfig(n_positions=36, N=32, step=6, seed=0))
    >>> p = preview(ds, PreviewOptions(scaling="fixed", scale_value=1e4))
    >>> p.scale.mismatch
    True
    """
    *_, last = iter_preview(data, options, bundle=bundle, backend=backend, device=device,
                            emit=emit, control=control, cache=cache)
    return last


def iter_preview(data: Dataset, options: PreviewOptions | None = None, *,
                 bundle: Any = None, backend: str | Backend = "numpy", device: str = "auto",
                 emit: Callback | None = None, control: RunControl | None = None,
                 cache: PreviewCache | None = None) -> Iterator[Preview]:
    """:func:`preview` in two steps: first every layer (``stats`` ``None``), then the same
    preview with its statistics, which cost most of the time (a viewer shows the layers at
    once). Arguments as :func:`preview`."""
    data, options = checks.dataset(data), checks.options(options, PreviewOptions)
    checks.bundle(bundle, required=False), checks.callback(emit), checks.run_control(control)
    opts = options or PreviewOptions()
    # single precision on numpy too: what torch computes, at half the memory traffic
    be = (get_backend(backend, device, **({"precision": "single"} if backend == "numpy" else {}))
          if isinstance(backend, str) else backend)
    cache = cache or PreviewCache()
    cache.use(data)
    t: dict[str, float] = {}
    t0 = time.perf_counter()

    def stage(name: str, done: int) -> None:
        nonlocal t0
        now = time.perf_counter()
        t[name] = now - t0
        t0 = now
        if emit is not None:
            emit(Progress(task="preview", done=done, total=4, message=name))
        _checkpoint(control)

    _checkpoint(control)
    model = None
    bundle_scale = None
    if bundle is not None:
        b, model = cache.model(bundle)
        bundle_scale = b.intensity_scale
        if b.gridsize != opts.gridsize:
            raise InputError("gridsize", f"{b.gridsize}, the loaded bundle's gridsize",
                             str(opts.gridsize))
        if b.N != data.N:
            raise InputError("bundle", f"a bundle for N = {data.N}", f"N = {b.N}")
    scale = resolve_preview_scale(data, opts, bundle_scale, cache.data_scale(data))
    if model is not None and scale is None:
        raise InputError("data", "diffraction patterns for the bundle to predict from", "none")
    gcfg = opts.grouping(data.n)
    groups = cache.memo("groups", gcfg, lambda: make_groups(data.positions, gcfg))
    stage("group", 1)

    bs = opts.stats_batch_size()
    n_batches = -(-groups.n_groups // bs)
    n_stats = min(groups.n_groups, bs * (opts.stats_batches or n_batches))
    n_show = min(opts.show_groups, groups.n_groups)
    n_head = max(n_stats, n_show)
    source = "truth" if model is None else "prediction"
    # what the canvas depends on: a flip of anything else (scaling of the truth, the number
    # of groups shown...) reuses it
    ckey = (gcfg, opts.crop, opts.window, be.name, str(be.device), n_head,
            None if model is None else (cache.bundle_key, scale.value))
    hit = cache.memo("canvas", ckey, None)
    if hit is not None:
        canvas, first = hit
    else:
        canvas, first = _stitch(data, groups, opts, be, model, scale, cache, n_head, control)
        cache.memo("canvas", ckey, lambda: (canvas, first))
    stage("patches and canvas", 2)

    sample = first[:n_show]
    per_row = max(1, math.ceil(math.sqrt(n_show)))
    gap, ggap = 1, max(3, data.N // 8)
    amp_s = np.abs(sample).astype(np.float32)
    grid = {}
    grid["amplitude"], boxes = tile_patches(amp_s, groups.gridsize, per_row, gap, ggap)
    grid["amplitude_normalised"], _ = tile_patches(normalise_patches(amp_s).astype(np.float32),
                                                   groups.gridsize, per_row, gap, ggap)
    grid["phase"], _ = tile_patches(np.angle(sample).astype(np.float32), groups.gridsize,
                                    per_row, gap, ggap)
    if scale is not None:
        x = network_inputs(data, groups.indices[:n_show], scale.value)
        grid["inputs"], _ = tile_patches(x, groups.gridsize, per_row, gap, ggap)
    forward = None
    if scale is not None and model is None:
        forward = forward_check(data, sample, groups.indices[:n_show], be)
    stage("patch grids", 3)
    result = Preview(options=opts, groups=groups,
                     position_group=position_groups(groups, data.n), source=source, grid=grid,
                     grid_boxes=boxes, canvas=canvas, stats=None, scale=scale, backend=be.name,
                     timings=dict(t), forward=forward)
    yield result  # every layer is ready: a viewer shows them before the statistics

    records: list[dict[str, Any]] = []
    for i, start in enumerate(range(0, n_stats, bs)):
        sl = slice(start, min(start + bs, n_stats))
        amp = be.amplitude(be.asarray(first[sl], complex=True))
        figures = patch_statistics(amp, groups.local_offsets[sl], be)
        records.append({"batch": i, "groups": sl.stop - sl.start, **figures})
        _checkpoint(control)
    stage("statistics", 4)
    yield replace(result, stats={"batches": records,
                                 "all": _pooled(records, groups.gridsize, scale, be)},
                  timings=t)


def _pooled(records: list[dict[str, Any]], gridsize: int, scale: ScaleInfo | None,
            be: Backend) -> dict[str, Any]:
    """The batches pooled (:class:`~engine.physics.stats.PooledStats`, exact for mean, std,
    var_zero_mean) into the ``batch: "all"`` record."""
    pooled = PooledStats()
    for r in records:
        pooled.add(r)
    whole = pooled.result()
    return {
        "batch": "all", "gridsize": gridsize, "C": gridsize**2, "backend": be.name,
        **{k: whole[k] for k in ("mean", "std", "var_zero_mean", "var_across_group",
                                 "n_patches")},
        "intensity_scale": None if scale is None else scale.value,
    }


@dataclass
class CompareView:
    """Two canvases or two statistics sources side by side (what the compare view shows).

    Attributes
    ----------
    kind : ``"canvas"`` or ``"stats"``.
    report : :func:`~engine.evaluation.metrics.compare_canvases` (canvases: registration as
        ``ptycho evaluate`` does it) or :func:`~engine.evaluation.compare.compare_stats`
        (statistics: each figure's status and the verdict), as ``ptycho compare`` reports.
    columns : the table's column names; rows : its rows (figure first, texts).
    images : canvases only: ``origin``, ``baseline`` (A), registered ``candidate`` (B) on
        one grid and ``valid``; ``difference`` is A − B of the amplitudes and
        ``phase_difference`` the wrapped phase of A · conj(B) (NaN where either is undefined).
    """

    kind: str
    report: dict[str, Any]
    columns: list[str]
    rows: list[list[str]]
    images: dict[str, Any] | None = None


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _as_canvas(x: Any) -> Canvas | None:
    """A canvas from a Canvas, a canvas .npz or a run directory holding recon.npz."""
    if isinstance(x, Canvas):
        return x
    if isinstance(x, str | os.PathLike):
        p = os.fspath(x)
        if p.endswith(".npz"):
            return Canvas.load(p)
        if os.path.isdir(p) and os.path.isfile(os.path.join(p, "recon.npz")):
            return Canvas.load(os.path.join(p, "recon.npz"))
    return None


def compare_view(a: Any, b: Any, *, rtol: float = 0.05) -> CompareView:
    """Compare ``a`` (baseline, A) and ``b`` (candidate, B): canvases or statistics.

    Canvases (a :class:`Canvas`, a canvas ``.npz`` or a run directory with ``recon.npz``):
    B is registered onto A, phase-aligned and amplitude-scaled as ``ptycho evaluate`` does,
    and the table lists MAE … FRC for amplitude and phase. Anything else is read as a
    statistics source (a stats JSON, a run directory, or a list of records) and compared
    figure by figure with ``ptycho compare``'s statuses.

    Examples
    --------
    >>> from engine.simulation.simulate import SimulationConfig, simulate
    >>> ds = simulate(SimulationConfig(n_positions=36, N=32, step=6, seed=0))
    >>> c = preview(ds).canvas
    >>> v = compare_view(c, c)
    >>> v.kind, float(np.nanmax(np.abs(v.images["difference"]))) < 1e-4
    ('canvas', True)
    """
    for name, value in (("a", a), ("b", b)):
        if not (isinstance(value, Canvas | str | os.PathLike | list)
                or isinstance(getattr(value, "records", None), list)):
            raise InputError(name, "a Canvas, a canvas .npz or run directory path, a "
                             "statistics JSON path or a list of records",
                             type(value).__name__)
    ca, cb = _as_canvas(a), _as_canvas(b)
    if ca is not None and cb is not None:
        from engine.evaluation.metrics import compare_canvases

        rep = compare_canvases(ca, cb, images=True)
        im = rep.pop("images")
        A, B, valid = im["baseline"], im["candidate"], im["valid"]
        diff = np.where(valid, np.abs(A) - np.abs(B), np.nan)
        dphi = (np.where(valid, np.angle(np.where(valid, A, 1) * np.conj(np.where(valid, B, 1))),
                         np.nan) if np.iscomplexobj(A) and np.iscomplexobj(B) else None)
        amp, ph = rep.get("amplitude") or {}, rep.get("phase") or {}

        def frc(section: dict[str, Any], key: str) -> Any:
            return (section.get("frc") or {}).get(key)

        rows = [["MAE", amp.get("mae"), ph.get("mae")],
                ["RMSE", amp.get("rmse"), ph.get("rmse")],
                ["PSNR (dB)", amp.get("psnr"), ph.get("psnr")],
                ["SSIM", amp.get("ssim"), ph.get("ssim")],
                ["Pearson r", amp.get("pearson_r"), ph.get("pearson_r")],
                ["FRC 1/7 (px)", frc(amp, "resolution_px_1_7"), frc(ph, "resolution_px_1_7")],
                ["phase RMS (rad)", None, ph.get("rms_error_rad")],
                ["amplitude scale", amp.get("scale"), None],
                ["overlap", rep.get("overlap_fraction"), None]]
        reg = rep.get("alignment", {}).get("registration", {})
        status = "ok" if reg.get("ok", True) else f"FAILED: {reg.get('reason')}"
        rows.append(["registration", status, None])
        return CompareView("canvas", rep, ["figure", "amplitude", "phase"],
                           [[r[0], *(_fmt(v) for v in r[1:])] for r in rows],
                           {"origin": im["origin"], "baseline": A, "candidate": B,
                            "valid": valid, "difference": diff, "phase_difference": dphi})
    from engine.evaluation.compare import compare_stats

    rep = compare_stats(a, b, rtol=rtol)
    rows = [[name, _fmt(f["baseline"]), _fmt(f["candidate"]), _fmt(f["ratio"]),
             f["status"]] for name, f in rep["figures"].items()]
    rows.append(["verdict", "", "", "", rep["verdict"]["status"]])
    return CompareView("stats", rep, ["figure", "A", "B", "B/A", "status"], rows)
