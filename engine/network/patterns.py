"""The network's inputs ``X = D / s`` on the training or inference device, in memory or
streamed from a lazy stack, with masked detector pixels set to 0.

In memory the inputs are one tensor on the device, indexed by group (the fast path, as
before). A lazy :class:`~engine.data.DiffractionStack` becomes a :class:`StreamedPatterns`:
indexing it with a batch's group indices reads those rows only (each distinct row once),
scales and masks them and moves them to the device, so the patterns are never all in
memory. Both answer ``x[idx]``, ``x.shape`` and ``x.device``, which is all the batching
(:func:`~engine.network.predict.group_batch`) asks of them.

A masked pixel (``Dataset.pixel_mask`` False: hot, saturated, dead, outside the detector)
enters the network as 0 and no loss (:func:`engine.network.losses.compute_loss` with
``mask``): its value is what the forward model predicts, never fitted.

Examples
--------
>>> import numpy as np
>>> D = np.full((4, 8, 8), 2.0, np.float32)
>>> mask = np.ones((8, 8), bool); mask[0, 0] = False
>>> x = input_patterns(D, 4.0, mask, "cpu")
>>> float(x[0, 0, 0]), float(x[0, 1, 1])
(0.0, 0.5)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.data import is_lazy, read_rows


def mask_tensor(mask: np.ndarray | None, device: Any) -> torch.Tensor | None:
    """The (N, N) mask as a float32 0/1 tensor on ``device`` (``None`` stays ``None``)."""
    if mask is None:
        return None
    return torch.as_tensor(np.asarray(mask, dtype=np.float32), device=device)


class StreamedPatterns:
    """``D / s`` (masked pixels 0) of a lazy stack, read a batch of rows at a time.

    Attributes
    ----------
    stack : the lazy stack of amplitudes D.
    scale : the intensity scale s.
    mask : (N, N) bool or None.
    device : where the rows go.
    """

    def __init__(self, stack: Any, scale: float, mask: np.ndarray | None,
                 device: Any) -> None:
        self.stack, self.scale = stack, float(scale)
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)
        self.device = torch.device(device)
        self.shape = tuple(int(v) for v in stack.shape)
        self.dtype = torch.float32

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, index: Any) -> np.ndarray:
        """Rows ``index`` (any integer array shape) as scaled, masked float32 host arrays of
        shape ``index.shape + (N, N)``; each distinct row is read once, in sorted order."""
        flat = np.asarray(index, dtype=np.int64).reshape(-1)
        unique, inverse = np.unique(flat, return_inverse=True)
        data = read_rows(self.stack, unique) / np.float32(self.scale)
        if self.mask is not None:
            data = data * self.mask
        return data[inverse].reshape(np.shape(index) + data.shape[1:]).astype(np.float32)

    def __getitem__(self, index: Any) -> torch.Tensor:
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        return torch.from_numpy(self.rows(index)).to(self.device)


def input_patterns(diffraction: Any, scale: float, mask: np.ndarray | None,
                   device: Any) -> torch.Tensor | StreamedPatterns:
    """The network inputs of ``diffraction``: a device tensor for an in-memory array, a
    :class:`StreamedPatterns` for a lazy stack."""
    if is_lazy(diffraction):
        return StreamedPatterns(diffraction, scale, mask, device)
    x = (np.asarray(diffraction) / np.float32(scale)).astype(np.float32)
    if mask is not None:
        x = x * mask.astype(np.float32)
    return torch.from_numpy(x).to(device)
