"""The differentiable forward model the network is trained through
(docs/conventions.md#forward-model).

``object_big`` merges the C patches of a group on a shared local canvas at their local
offsets (bilinear adjoint, :meth:`TorchBackend.scatter_add`) and re-extracts them
(:meth:`TorchBackend.extract`), so that the overlap inside a group constrains the network.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.backends.torch_backend import TorchBackend
from engine.network.model import PtychoNet


def _local_corners(off, N: int, xp):
    """Top-left corners of a group's members on its local canvas (torch or NumPy, float64).

    A common translation of a group's frame changes nothing physically; choosing it so
    channel 0 sits on whole pixels makes raster groups land exactly (no bilinear blur).
    """
    off = off - (off[:, :1] - xp.floor(off[:, :1]))
    tl = off - N / 2
    lowest = tl.min(axis=1, keepdims=True) if xp is np else tl.amin(dim=1, keepdim=True)
    return tl - xp.floor(lowest)


def group_extent(local_offsets: np.ndarray, N: int) -> tuple[int, int]:  # noqa: N803
    """Local canvas (rows, columns) that holds every group of ``local_offsets`` (host side).

    Passing it to :func:`merge_reextract` (or the model's ``forward``) spares the device a
    synchronisation per batch, which also keeps the step capturable as a CUDA graph; any
    extent at least this large gives the same result.
    """
    off = np.asarray(local_offsets, dtype=np.float64)
    if off.ndim != 3 or off.shape[-1] != 2 or off.shape[0] == 0:
        raise ValueError(f"local_offsets: expected (groups, C, 2) with groups >= 1, "
                         f"got shape {off.shape}")
    span = np.ceil(_local_corners(off, N, np).max(axis=(0, 1))).astype(np.int64) + N + 2
    return int(span[0]), int(span[1])


def merge_reextract(backend: TorchBackend, patches: torch.Tensor,
                    local_offsets: torch.Tensor,
                    extent: tuple[int, int] | None = None) -> torch.Tensor:
    """Average the C patches of each group on a local canvas and extract them back.

    Parameters
    ----------
    patches : (B, C, N, N) complex.
    local_offsets : (B, C, 2) float64, member position minus group offset (y, x).
    extent : the local canvas (rows, columns), from :func:`group_extent` of these groups
        (or of a superset); ``None`` measures it on the device, one synchronisation.

    Returns
    -------
    (B, C, N, N) complex: channel c of group b read from the merged canvas at its offset.
    """
    B, C, N = patches.shape[0], patches.shape[1], patches.shape[-1]
    if C == 1:
        return patches
    tl = _local_corners(local_offsets.to(torch.float64), N, torch)
    if extent is None:
        span = torch.ceil(tl.amax(dim=(0, 1))).to(torch.int64) + N + 2
        h, w = int(span[0]), int(span[1])
    else:
        h, w = extent
    # groups stacked down the rows of one canvas, so one scatter and one gather serve all
    shift = torch.zeros((B, 1, 2), dtype=torch.float64, device=tl.device)
    shift[:, 0, 0] = torch.arange(B, device=tl.device, dtype=torch.float64) * h
    tl = (tl + shift).reshape(-1, 2)
    num = torch.zeros((B * h, w), dtype=patches.dtype, device=patches.device)
    den = torch.zeros((B * h, w), dtype=torch.float32, device=patches.device)
    backend.scatter_add(num, patches.reshape(-1, N, N), tl)
    backend.scatter_add(den, torch.ones((1, N, N), device=patches.device), tl)
    merged = num / torch.where(den > 1e-6, den, torch.ones_like(den))
    return backend.extract(merged, tl, N).reshape(B, C, N, N)


class PhysicsModel(nn.Module):
    """Network plus probe: X (B, C, N, N) → patches and predicted amplitudes in X units.

    Parameters
    ----------
    net : the encoder–decoder.
    probe : (N, N) complex, already normalised (docs/conventions.md#intensity-scaling); stored
        as a buffer, not trained.
    object_big : merge/re-extract the group's patches before the forward model.
    """

    def __init__(self, net: PtychoNet, probe: np.ndarray, object_big: bool) -> None:
        super().__init__()
        self.net = net
        self.object_big = bool(object_big)
        p = torch.as_tensor(np.asarray(probe, dtype=np.complex64))
        self.register_buffer("probe_real", p.real.clone().contiguous())
        self.register_buffer("probe_imag", p.imag.clone().contiguous())
        self._backend: TorchBackend | None = None

    def backend(self) -> TorchBackend:
        dev = str(self.probe_real.device)
        if self._backend is None or self._backend.device != dev:
            self._backend = TorchBackend(dev)
        return self._backend

    def patches(self, x: torch.Tensor, local_offsets: torch.Tensor | None,
                extent: tuple[int, int] | None = None) -> torch.Tensor:
        """Complex object patches (B, C, N, N) as the forward model sees them.

        ``extent``: the groups' local canvas from :func:`group_extent` (no device
        synchronisation), or ``None`` to measure it per batch.
        """
        amplitude, phase = self.net(x)
        amplitude, phase = amplitude.float(), phase.float()  # physics runs in fp32
        with torch.autocast(device_type=x.device.type, enabled=False):
            obj = torch.polar(amplitude, phase)
            if self.object_big and obj.shape[1] > 1 and local_offsets is not None:
                obj = merge_reextract(self.backend(), obj, local_offsets, extent)
        return obj

    def diffraction(self, obj: torch.Tensor) -> torch.Tensor:
        """Far-field amplitudes |fftshift(fft2(P·O))/N| of patches (B, C, N, N)."""
        with torch.autocast(device_type=obj.device.type, enabled=False):
            probe = torch.complex(self.probe_real, self.probe_imag)
            N = obj.shape[-1]
            if N % 2 == 0:  # the fftshift folded into the probe (|.| is shift-invariant)
                return torch.fft.fft2(self.backend().shifted_probe(probe) * obj,
                                      norm="ortho").abs()
            return torch.fft.fftshift(torch.fft.fft2(probe * obj, norm="ortho"),
                                      dim=(-2, -1)).abs()

    def forward(self, x: torch.Tensor, local_offsets: torch.Tensor | None = None,
                extent: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        obj = self.patches(x, local_offsets, extent)
        return obj, self.diffraction(obj)
