"""The training step: forward, loss, backward, optimiser update: written once.

The trainer runs it eagerly, :class:`~engine.network.graphs.StepGraph` captures it as a CUDA
graph, and ``ptycho bench pinn`` times it, so the three cannot drift apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from engine.network.losses import compute_loss


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate; a device tensor (a captured step reads it) in place."""
    for group in opt.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def train_step(model: Callable[..., tuple[torch.Tensor, torch.Tensor]],
               opt: torch.optim.Optimizer, loss: str, x: torch.Tensor, off: torch.Tensor,
               extent: tuple[int, int] | None, target: torch.Tensor | None = None, *,
               lr: float | None = None, zero_in_place: bool = False,
               backward: Callable[[torch.Tensor], Any] | None = None,
               autocast: contextlib.AbstractContextManager | None = None,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """One optimiser step of the physics model on a batch; returns the loss (on the device).

    Parameters
    ----------
    model : the :class:`~engine.network.physics.PhysicsModel` (or Fabric's wrapper of it).
    opt : its optimiser.
    loss : the loss name (``TrainConfig.loss``).
    x, off, extent, target : the batch (see :func:`~engine.network.predict.group_batch`).
    lr : learning rate set before the update (``None``: leave it; a graph sets it outside).
    zero_in_place : zero the gradients in place instead of freeing them: a captured graph
        writes into the gradient tensors it was captured with, so they must stay.
    backward : how to back-propagate (Fabric's ``fabric.backward``; default
        ``loss.backward()``).
    autocast : a context for the forward pass (mixed precision outside Fabric).
    mask : (N, N) 0/1 valid detector pixels on the device (``None``: all); masked pixels
        count in no loss.

    Examples
    --------
    >>> import numpy as np
    >>> from engine.network.model import NetworkConfig, PtychoNet
    >>> from engine.network.physics import PhysicsModel
    >>> _ = torch.manual_seed(0)
    >>> probe = np.ones((16, 16), np.complex64)
    >>> model = PhysicsModel(PtychoNet(NetworkConfig(N=16, base_channels=2, bottleneck=4)),
    ...                      probe, object_big=False)
    >>> opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    >>> x = torch.rand(2, 1, 16, 16)
    >>> off = torch.zeros(2, 1, 2)
    >>> first = train_step(model, opt, "poisson", x, off, None)
    >>> bool(torch.isfinite(first))
    True
    """
    opt.zero_grad(set_to_none=not zero_in_place)
    with autocast if autocast is not None else contextlib.nullcontext():
        obj, pred = model(x, off, extent)
    value = compute_loss(loss, obj, pred, x, target, mask)
    if backward is None:
        value.backward()
    else:
        backward(value)
    if lr is not None:
        set_lr(opt, lr)
    opt.step()
    return value
