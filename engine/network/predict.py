"""Batched prediction of object patches for groups, shared by training stats and inference."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from engine.network.physics import PhysicsModel, group_extent
from engine.physics.grouping import Groups


def group_batch(x: torch.Tensor, groups: Groups, sl: slice,
                target: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Inputs (b, C, N, N), local offsets (b, C, 2) float64 and targets of groups ``sl``."""
    idx = torch.as_tensor(groups.indices[sl], device=x.device)
    off = torch.as_tensor(groups.local_offsets[sl], dtype=torch.float64, device=x.device)
    return x[idx], off, (None if target is None else target[idx])


def batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


@torch.no_grad()
def predict(model: PhysicsModel, x: torch.Tensor, groups: Groups, batch_size: int,
            amplitudes: bool = True
            ) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor | None, torch.Tensor]]:
    """Yield ``(slice, patches (b, C, N, N) complex, predicted amplitudes, inputs)`` per batch.

    ``patches`` are what the forward model sees (after ``object_big`` when it is on), the
    same definition training statistics use, so training and inference figures compare.
    ``amplitudes=False`` skips the far field (``None`` in its place): inference needs only
    the patches.
    """
    model.eval()
    extent = group_extent(groups.local_offsets, x.shape[-1]) if groups.n_groups else None
    for sl in batch_slices(groups.n_groups, batch_size):
        xb, off, _ = group_batch(x, groups, sl)
        if amplitudes:
            obj, pred = model(xb, off, extent)
        else:
            obj, pred = model.patches(xb, off, extent), None
        yield sl, obj, pred, xb


def positions_of(groups: Groups, sl: slice) -> np.ndarray:
    """(b·C, 2) member positions of groups ``sl`` in channel order."""
    return groups.positions[sl].reshape(-1, 2)
