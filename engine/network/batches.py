"""Training data: scaling (docs/conventions.md#intensity-scaling), the scan-region split and the
groups of each region."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.data import Dataset, is_lazy, read_rows
from engine.errors import InputError
from engine.network.patterns import input_patterns
from engine.physics import scaling
from engine.physics.grouping import GroupingConfig, Groups, make_groups
from engine.physics.scaling import intensity_scale, normalise_probe


def data_digest(ds: Dataset) -> str:
    """sha256 of the arrays a model depends on (diffraction, positions, probe, and the
    detector mask when there is one).

    A lazy stack is hashed a batch of rows at a time, to the same digest as the array it
    holds (float32 rows, in order).
    """
    h = hashlib.sha256()
    d = ds.diffraction
    if is_lazy(d):
        h.update(str((np.dtype(np.float32).str, tuple(d.shape))).encode())
        rows = scaling.STREAM_ROWS
        for start in range(0, len(d), rows):
            h.update(np.ascontiguousarray(
                read_rows(d, slice(start, min(start + rows, len(d))))).tobytes())
        arrays = (ds.xcoords, ds.ycoords, ds.probe)
    else:
        arrays = (d, ds.xcoords, ds.ycoords, ds.probe)
    if ds.pixel_mask is not None:  # a new mask is new data; no mask keeps the old digest
        arrays = arrays + (ds.pixel_mask,)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def region_split(positions: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation regions: validation is the stripe of the
    highest x (columns) holding ``val_fraction`` of the positions, so it measures
    generalisation to object areas the network never saw (not random patterns)."""
    n = positions.shape[0]
    order = np.lexsort((positions[:, 0], positions[:, 1]))  # by x, then y
    n_val = int(round(val_fraction * n))
    return np.sort(order[: n - n_val]), np.sort(order[n - n_val:])


def group_region(ds: Dataset, index: np.ndarray, gridsize: int, neighbor_count: int | None,
                 n_groups: int | None, seed: int, what: str) -> Groups:
    """Groups of the positions ``index`` (dataset indices in ``Groups.indices``)."""
    C = gridsize**2
    if index.size < C:
        raise InputError(what, f"at least C = {C} positions for gridsize {gridsize}",
                         f"{index.size}")
    K = neighbor_count
    if K is not None:
        K = min(K, index.size - 1)
    if n_groups is not None and n_groups > index.size:
        # the rule of every command (stitch, stats, infer): never quietly fewer groups
        raise InputError("n_groups", f"at most {index.size} (the positions of the {what}; one "
                         "group per seed position)", str(n_groups))
    n_g = index.size if n_groups is None else n_groups
    local = make_groups(ds.positions[index], GroupingConfig(gridsize, K, n_g, seed))
    return Groups(indices=index[local.indices], positions=local.positions, gridsize=gridsize)


@dataclass
class PreparedData:
    """Scaled data and groups for training.

    Attributes
    ----------
    x : (n, N, N) float32, ``D / s`` with masked pixels 0; for a lazy stack, the stack of D
        itself (:meth:`inputs` streams it).
    s : intensity scale of the whole training file (valid pixels only).
    probe, probe_factor : normalised probe and the factor applied.
    target : (n, N, N) complex64 ground truth in X units (supervised), or None.
    target_factor : c with target = c·Y.
    train, val : groups (``val`` None when ``val_fraction`` is 0).
    digest : :func:`data_digest`.
    """

    x: np.ndarray
    s: float
    probe: np.ndarray
    probe_factor: float
    target: np.ndarray | None
    target_factor: float | None
    train: Groups
    val: Groups | None
    digest: str
    mask: np.ndarray | None = None  # (N, N) bool, True = valid

    def inputs(self, device: Any) -> Any:
        """The network inputs on ``device``: a tensor, or a
        :class:`~engine.network.patterns.StreamedPatterns` over a lazy stack."""
        if is_lazy(self.x):
            return input_patterns(self.x, self.s, self.mask, device)
        import torch

        return torch.from_numpy(self.x).to(device)

    @property
    def mask_weights(self) -> np.ndarray | None:
        """The mask as float32 0/1 (what the losses multiply by), or ``None``."""
        return None if self.mask is None else self.mask.astype(np.float32)


def prepare(ds: Dataset, gridsize: int, neighbor_count: int | None, n_groups: int | None,
            val_fraction: float, seed: int, need_target: bool) -> PreparedData:
    """Scale, split and group ``ds`` for training."""
    if ds.diffraction is None:
        raise InputError("training data", "a 'diffraction' array")
    mask = ds.pixel_mask
    s = intensity_scale(ds.diffraction, mask)
    probe, factor = normalise_probe(ds.probe)
    if is_lazy(ds.diffraction):
        x = ds.diffraction  # streamed by PreparedData.inputs, a batch at a time
    else:
        x = (ds.diffraction / np.float32(s)).astype(np.float32)
        if mask is not None:  # masked pixels enter the network as 0
            x = x * mask.astype(np.float32)
    target = target_factor = None
    if need_target:
        if ds.patches is None:
            raise InputError("loss 'supervised'", "data with ground-truth patches 'Y'")
        N = ds.N
        energy = float(np.mean(np.sum(np.abs(probe * ds.patches) ** 2, axis=(-2, -1))))
        # bring Y into X units: Σ|F(P·cY)|² = (N/2)², the energy every X pattern has
        target_factor = float(np.sqrt((N / 2) ** 2 / energy))
        target = (ds.patches * target_factor).astype(np.complex64)
    tr, va = region_split(ds.positions, val_fraction)
    train = group_region(ds, tr, gridsize, neighbor_count, n_groups, seed, "training region")
    val = None
    if va.size >= gridsize**2 and va.size > 0:
        n_val = None if n_groups is None else max(1, int(round(n_groups * va.size / tr.size)))
        val = group_region(ds, va, gridsize, neighbor_count, n_val, seed + 1, "validation region")
    return PreparedData(x, s, probe, factor, target, target_factor, train, val, data_digest(ds),
                        mask)
