"""Patch and canvas statistics (docs/conventions.md#statistics): what the live views and the guards
read.

Examples
--------
>>> import numpy as np
>>> a = np.ones((2, 1, 8, 8))           # two groups of one flat patch
>>> s = patch_statistics(a)
>>> s["var_zero_mean"], s["var_across_group"] is None
(0.0, True)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import write_json
from engine.backends import Backend, get_backend
from engine.physics.stitching import Canvas


def _as_groups(a: Any) -> Any:
    if a.ndim == 3:
        return a.reshape(a.shape[0], 1, a.shape[1], a.shape[2])
    if a.ndim != 4:
        from engine.errors import InputError

        raise InputError("patches", "a (b, C, M, M) or (n, M, M) array", f"shape {tuple(a.shape)}")
    return a


def var_across_group(amplitudes: Any, local_offsets: np.ndarray, backend: Backend) -> float | None:
    """Mean per-pixel variance across the C channels of each group, aligned on a local canvas.

    Each channel is resampled (bilinear adjoint, normalised by its own weight) onto its
    group's local canvas at its local offset; a pixel counts for a channel only where that
    channel covers it fully. The variance is taken over the channels covering a pixel, for
    pixels covered by at least two, and averaged over those pixels and groups.
    ``None`` for C = 1 (undefined, not zero) or when no pixel is seen twice.
    """
    a = _as_groups(amplitudes)
    b, C, M = int(a.shape[0]), int(a.shape[1]), int(a.shape[-1])
    if C == 1 or b == 0:
        return None
    off = np.asarray(local_offsets, dtype=np.float64).reshape(b, C, 2)
    tl = off - M / 2
    lo = np.floor(tl.min(axis=(0, 1)))
    span = np.ceil(tl.max(axis=(0, 1)) - lo).astype(int) + M + 2
    h, w = int(span[0]), int(span[1])
    # groups are laid side by side down the rows of one canvas so one scatter serves all
    stack_shift = np.stack([np.arange(b) * h, np.zeros(b)], axis=1)[:, None, :]
    tl_all = tl - lo + stack_shift
    values, valid = [], []
    ones = backend.asarray(np.ones((1, M, M)))
    for c in range(C):
        num = backend.zeros((b * h, w))
        den = backend.zeros((b * h, w))
        backend.scatter_add(num, a[:, c], tl_all[:, c])
        backend.scatter_add(den, ones, tl_all[:, c])
        num = backend.to_numpy(num).astype(np.float64)
        den = backend.to_numpy(den).astype(np.float64)
        full = den > 1 - 1e-4
        values.append(np.where(full, num / np.where(full, den, 1.0), 0.0))
        valid.append(full)
    v, m = np.stack(values), np.stack(valid)
    count = m.sum(axis=0)
    seen = count >= 2
    if not np.any(seen):
        return None
    mean = (v * m).sum(axis=0)[seen] / count[seen]
    var = (((v[:, seen] - mean) ** 2) * m[:, seen]).sum(axis=0) / count[seen]
    return float(var.mean())


def patch_statistics(amplitudes: Any, local_offsets: np.ndarray | None = None,
                     backend: Backend | str = "numpy") -> dict[str, Any]:
    """Statistics (docs/conventions.md#statistics) of amplitude patches (b, C, M, M) (or (n, M, M),
    read as C = 1).

    Returns ``mean``, ``std``, ``var_zero_mean``, ``var_across_group`` (``None`` for C = 1 or
    without offsets) and ``n_patches``.
    """
    be = get_backend(backend) if isinstance(backend, str) else backend
    a = _as_groups(be.asarray(amplitudes))
    out: dict[str, Any] = dict(be.patch_stats(a))
    out["var_across_group"] = (var_across_group(a, local_offsets, be)
                               if local_offsets is not None else None)
    out["n_patches"] = int(a.shape[0] * a.shape[1])
    out.update(extremes(a, be))
    return out


# patches described one by one in a record's ``per_patch`` block (the first ones, group-major)
PER_PATCH = 4


def extremes(amplitudes: Any, backend: Backend | str = "numpy",
             per_patch: int = PER_PATCH) -> dict[str, Any]:
    """``min`` and ``max`` of amplitude patches and a ``per_patch`` block: ``mean``, ``std``,
    ``min``, ``max`` lists of the first ``per_patch`` patches (group-major order).

    >>> e = extremes(np.arange(32.0).reshape(2, 1, 4, 4), per_patch=2)
    >>> e["min"], e["max"], e["per_patch"]["max"]
    (0.0, 31.0, [15.0, 31.0])
    """
    be = get_backend(backend) if isinstance(backend, str) else backend
    a = _as_groups(be.asarray(amplitudes))
    M = int(a.shape[-1])
    if a.shape[0] * a.shape[1] == 0:
        nan = float("nan")
        return {"min": nan, "max": nan, "per_patch": {k: [] for k in ("mean", "std", "min",
                                                                        "max")}}
    # only the first few patches travel to the host
    first = be.to_numpy(a.reshape(-1, M, M)[:per_patch]).astype(np.float64)
    return {
        "min": float(a.min()), "max": float(a.max()),
        "per_patch": {"mean": first.mean(axis=(1, 2)).tolist(),
                      "std": first.std(axis=(1, 2)).tolist(),
                      "min": first.min(axis=(1, 2)).tolist(),
                      "max": first.max(axis=(1, 2)).tolist()},
    }


# the original tool's regression guards on network output (docs/conventions.md#statistics):
# patches with no structure (var_zero_mean at or below this) or no signal (|mean| at or below
# this)
COLLAPSE_VAR_ZERO_MEAN = 1e-6
COLLAPSE_ABS_MEAN = 1e-9


def collapse_check(record: dict[str, Any]) -> dict[str, Any]:
    """The collapse guards on one statistics record.

    Returns ``{"collapsed": bool, "mean", "var_zero_mean", "reasons": [...]}``: collapsed
    when ``var_zero_mean <= 1e-6`` (flat patches) or ``|mean| <= 1e-9`` (zero output), or
    when either figure is not finite.

    >>> collapse_check({"mean": 0.5, "var_zero_mean": 0.0})["reasons"]
    ['var_zero_mean 0 <= 1e-06']
    >>> collapse_check({"mean": 0.5, "var_zero_mean": 0.01})["collapsed"]
    False
    """
    mean, vzm = record.get("mean"), record.get("var_zero_mean")
    reasons = []
    if vzm is None or not np.isfinite(vzm) or vzm <= COLLAPSE_VAR_ZERO_MEAN:
        reasons.append(f"var_zero_mean {vzm:.3g} <= {COLLAPSE_VAR_ZERO_MEAN:g}"
                       if vzm is not None else "var_zero_mean missing")
    if mean is None or not np.isfinite(mean) or abs(mean) <= COLLAPSE_ABS_MEAN:
        reasons.append(f"|mean| {abs(mean):.3g} <= {COLLAPSE_ABS_MEAN:g}"
                       if mean is not None else "mean missing")
    return {"collapsed": bool(reasons), "mean": mean, "var_zero_mean": vzm,
            "reasons": reasons}


class PooledStats:
    """Whole-set statistics pooled exactly from per-batch :func:`patch_statistics` records.

    Patches of one set have one size, so each batch's figures weigh by its ``n_patches``:
    the pooled mean is the patch-weighted mean, the pooled std comes from the pooled second
    moment (``std² + mean²`` per batch), ``var_zero_mean`` and ``var_across_group`` are
    patch-weighted means; ``min``/``max`` are the extremes over the batches and ``per_patch``
    the first batch's. The one implementation behind every ``batch: "all"`` record.

    Examples
    --------
    >>> a = np.arange(64.0).reshape(4, 1, 4, 4)
    >>> pooled = PooledStats()
    >>> pooled.add(patch_statistics(a[:1])); pooled.add(patch_statistics(a[1:]))
    >>> whole = patch_statistics(a)
    >>> bool(np.isclose(pooled.result()["std"], whole["std"]))
    True
    """

    def __init__(self) -> None:
        self.n = 0
        self.s1 = self.s2 = self.vzm = 0.0
        self.vag = self.vag_n = 0.0
        self.lo, self.hi = math.inf, -math.inf
        self.per_patch: dict[str, list[float]] | None = None

    def add(self, record: dict[str, Any]) -> None:
        """Pool one batch's record (``mean``, ``std``, ``var_zero_mean``, ``n_patches``...)."""
        k = int(record["n_patches"])
        if k == 0:
            return
        self.n += k
        self.s1 += record["mean"] * k
        self.s2 += (record["std"] ** 2 + record["mean"] ** 2) * k
        self.vzm += record["var_zero_mean"] * k
        if record.get("var_across_group") is not None:
            self.vag += record["var_across_group"] * k
            self.vag_n += k
        if record.get("min") is not None:
            self.lo, self.hi = min(self.lo, record["min"]), max(self.hi, record["max"])
        if self.per_patch is None:
            self.per_patch = record.get("per_patch")

    def result(self) -> dict[str, Any]:
        """The pooled record (NaN figures when nothing was added)."""
        if self.n == 0:
            nan = float("nan")
            return {"mean": nan, "std": nan, "var_zero_mean": nan, "var_across_group": None,
                    "n_patches": 0, "min": nan, "max": nan, "per_patch": self.per_patch}
        mean = self.s1 / self.n
        return {"mean": mean, "std": math.sqrt(max(self.s2 / self.n - mean**2, 0.0)),
                "var_zero_mean": self.vzm / self.n,
                "var_across_group": self.vag / self.vag_n if self.vag_n else None,
                "n_patches": self.n, "min": self.lo, "max": self.hi,
                "per_patch": self.per_patch}


def canvas_statistics(canvas: Canvas | np.ndarray, coverage: np.ndarray | None = None) -> dict:
    """Mean, std, min, max of the canvas amplitude over covered pixels, and coverage fraction."""
    if isinstance(canvas, Canvas):
        canvas, coverage = canvas.canvas, canvas.coverage
    amp = np.abs(np.asarray(canvas))
    cov = np.isfinite(amp) if coverage is None else np.asarray(coverage, bool)
    vals = amp[cov].astype(np.float64)
    nan = float("nan")
    return {
        "mean": float(vals.mean()) if vals.size else nan,
        "std": float(vals.std()) if vals.size else nan,
        "min": float(vals.min()) if vals.size else nan,
        "max": float(vals.max()) if vals.size else nan,
        "coverage": float(cov.mean()) if cov.size else 0.0,
    }


@dataclass
class StatsLog:
    """Collects statistics records (docs/conventions.md#statistics) for one phase; writes
    ``stats_<phase>.json`` and patch grids.

    Parameters
    ----------
    phase : ``"train"``, ``"inference"``, ``"truth"``...
    gridsize, backend, device, intensity_scale : copied into every record.
    limit : records (and grids) are kept for the first ``limit`` batches only (``None``: all).
    """

    phase: str
    gridsize: int
    backend: str
    device: str
    intensity_scale: float | None = None
    limit: int | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)
    max_sample_groups: int = 8

    def wants(self, batch: int) -> bool:
        return self.limit is None or batch < self.limit

    def log(self, batch: int | str, amplitudes: Any, local_offsets: np.ndarray | None = None,
            backend: Backend | str = "numpy", canvas: Canvas | None = None) -> dict | None:
        """Record the statistics of one batch (returns the record, or None past ``limit``)."""
        if isinstance(batch, int) and not self.wants(batch):
            return None
        be = get_backend(backend) if isinstance(backend, str) else backend
        figures = patch_statistics(amplitudes, local_offsets, be)
        return self.add(batch, figures, be.to_numpy(be.asarray(amplitudes)), canvas)

    def add(self, batch: int | str, figures: dict[str, Any], amplitudes: np.ndarray | None = None,
            canvas: Canvas | None = None) -> dict:
        """Append a record of already computed ``figures`` (see :func:`patch_statistics`)."""
        record: dict[str, Any] = {
            "phase": self.phase, "batch": batch, "gridsize": self.gridsize,
            "C": self.gridsize**2, "backend": self.backend, "device": self.device,
            "intensity_scale": self.intensity_scale, **figures,
        }
        if canvas is not None:
            record["canvas"] = canvas_statistics(canvas)
        self.records.append(record)
        have = sum(s.shape[0] for s in self.samples)
        if amplitudes is not None and isinstance(batch, int) and have < self.max_sample_groups:
            a = _as_groups(np.asarray(amplitudes))
            self.samples.append(np.abs(a[: self.max_sample_groups - have]).astype(np.float32))
        return record

    def summary(self) -> dict[str, Any]:
        """Patch-weighted mean of every figure over the logged batches."""
        return summarise(self.records)

    def write(self, directory: str | os.PathLike[str]) -> list[Path]:
        """``stats_<phase>.json`` and ``patches_<phase>_raw.png`` / ``_normalized.png``."""
        d = Path(directory)
        paths = [write_json(d / f"stats_{self.phase}.json", self.records)]
        if self.samples:
            grid = np.concatenate(self.samples)
            paths.append(write_patch_grid(d / f"patches_{self.phase}_raw.png", grid, False))
            paths.append(write_patch_grid(d / f"patches_{self.phase}_normalized.png", grid, True))
        return paths

    def write_grid(self, path: str | os.PathLike[str]) -> list[Path]:
        """The sample patches as a PNG grid at ``path`` (raw amplitudes) and its
        ``<stem>_normalized`` twin (each patch scaled to its own range); none without samples.
        """
        if not self.samples:
            return []
        grid, raw = np.concatenate(self.samples), Path(path)
        return [write_patch_grid(raw, grid, normalise=False),
                write_patch_grid(raw.with_name(raw.stem + "_normalized" + raw.suffix), grid,
                                 normalise=True)]


FIGURES = ("mean", "std", "var_zero_mean", "var_across_group", "intensity_scale")


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One record standing for a stats file: the ``batch: "all"`` record if present, else the
    batches pooled (:class:`PooledStats`; ``None`` stays ``None``)."""
    whole = [r for r in records if r.get("batch") == "all"]
    if whole:
        return dict(whole[-1])
    out: dict[str, Any] = {}
    weights = np.array([float(r.get("n_patches") or 0) for r in records])
    moments = ("mean", "std", "var_zero_mean")
    poolable = [r for r in records if r.get("n_patches")
                and all(r.get(k) is not None for k in moments)]
    pooled = PooledStats()
    for r in poolable:
        pooled.add(r)
    for key in FIGURES:
        if poolable and key in moments + ("var_across_group",):
            out[key] = pooled.result()[key]
            continue
        vals = [(r.get(key), w) for r, w in zip(records, weights, strict=True)]
        known = [(v, w) for v, w in vals if v is not None]
        if not known:
            out[key] = None
            continue
        v = np.array([float(x) for x, _ in known])
        w = np.array([x for _, x in known])
        out[key] = float(np.sum(v * w) / np.sum(w)) if np.sum(w) > 0 else float(np.mean(v))
    out["n_patches"] = int(weights.sum())
    if records:
        for key in ("phase", "gridsize", "C", "backend", "device"):
            out[key] = records[-1].get(key)
        canvases = [r["canvas"] for r in records if isinstance(r.get("canvas"), dict)]
        if canvases:  # the canvas is the whole set's: the last one logged stands for it
            out["canvas"] = canvases[-1]
    return out


def tile_patches(values: np.ndarray, gridsize: int | None = None, groups_per_row: int = 1,
                 gap: int = 2, group_gap: int | None = None,
                 fill: float = float("nan")) -> tuple[np.ndarray, np.ndarray]:
    """Tile patches (b, C, M, M) into one 2-D image and return it with each group's box.

    ``gridsize=None`` lays a group's C channels in one row; ``gridsize=g`` as a g × g block in
    row-major channel order (channel c at block row c // g, column c % g), i.e. where the
    members sit in the scan. Groups are laid ``groups_per_row`` to a row, ``group_gap`` pixels
    apart (default ``gap``), channels ``gap`` apart; gaps hold ``fill``. The boxes are
    (b, 4) ``(row0, col0, row1, col1)`` of each group's block (end-exclusive).

    >>> img, boxes = tile_patches(np.ones((3, 4, 8, 8)), gridsize=2, groups_per_row=2, gap=1)
    >>> img.shape, boxes[2].tolist()
    ((37, 37), [19, 1, 36, 18])
    """
    a = _as_groups(np.asarray(values))
    b, C, M = int(a.shape[0]), int(a.shape[1]), int(a.shape[-1])
    rows_c, cols_c = (1, C) if gridsize is None else (gridsize, gridsize)
    if rows_c * cols_c != C:
        from engine.errors import InputError

        raise InputError("gridsize", f"g with g² = C = {C} channels", str(gridsize))
    gg = gap if group_gap is None else group_gap
    bh, bw = rows_c * M + (rows_c - 1) * gap, cols_c * M + (cols_c - 1) * gap
    per_row = max(1, min(groups_per_row, b))
    n_rows = -(-b // per_row) if b else 0
    img = np.full((n_rows * (bh + gg) + gg, per_row * (bw + gg) + gg), fill,
                  dtype=np.result_type(a.dtype, np.float32))
    boxes = np.zeros((b, 4), dtype=np.int64)
    for i in range(b):
        r0, c0 = gg + (i // per_row) * (bh + gg), gg + (i % per_row) * (bw + gg)
        boxes[i] = (r0, c0, r0 + bh, c0 + bw)
        for c in range(C):
            y, x = r0 + (c // cols_c) * (M + gap), c0 + (c % cols_c) * (M + gap)
            img[y:y + M, x:x + M] = a[i, c]
    return img, boxes


def normalise_patches(amplitudes: np.ndarray) -> np.ndarray:
    """Each patch of (..., M, M) stretched to its own range [0, 1] (flat patches: 0)."""
    a = np.asarray(amplitudes, dtype=np.float64)
    lo = a.min(axis=(-2, -1), keepdims=True)
    span = a.max(axis=(-2, -1), keepdims=True) - lo
    return np.where(span > 0, (a - lo) / np.where(span > 0, span, 1.0), 0.0)


def patch_mosaic(amplitudes: np.ndarray, normalise: bool, gap: int = 2) -> np.ndarray:
    """An RGB mosaic (rows = groups, columns = channels) of amplitude patches in [0, 1].

    ``normalise=False`` shares one scale (0 … global max) so collapsed or mis-scaled patches
    look it; ``True`` stretches each patch to its own range to show structure. Gaps are blue.
    """
    a = _as_groups(np.abs(np.asarray(amplitudes, dtype=np.float64)))
    vmax = float(a.max()) if a.size and a.max() > 0 else 1.0
    v = normalise_patches(a) if normalise else a / vmax
    tiled, _ = tile_patches(v, gap=gap)
    rgb = np.repeat(tiled[..., None], 3, axis=-1)
    rgb[np.isnan(tiled)] = (0.15, 0.25, 0.55)
    return rgb


def write_patch_grid(path: str | os.PathLike[str], amplitudes: np.ndarray,
                     normalise: bool) -> Path:
    """PNG of :func:`patch_mosaic` (one row per group, one column per channel)."""
    from matplotlib.image import imsave

    from engine.atomic import atomic_open

    rgb = patch_mosaic(amplitudes, normalise)
    scale = max(1, 128 // max(1, np.asarray(amplitudes).shape[-1]))  # small patches: enlarge
    rgb = np.kron(rgb, np.ones((scale, scale, 1)))
    with atomic_open(path, "wb") as fh:
        imsave(fh, np.clip(rgb, 0, 1), format="png")
    return Path(path)
