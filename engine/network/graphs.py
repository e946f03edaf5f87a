"""The training step replayed as one CUDA graph (``ptycho train --cuda-graphs``).

A network step at N = 64 is a few hundred small kernels; on a GPU their launches and the
Python that issues them cost more than the arithmetic (measured on an H200: a gridsize-1
batch-16 step takes 7.8 ms eagerly and 3.1 ms replayed, `benchmarks/RESULTS.md`). Capturing
the step once and replaying it removes both. The step qualifies because it never waits for
the host: the groups' local canvas is measured on the host beforehand and the loss is read
only after the next step is queued.

A capture needs warm-up runs (cuDNN's algorithm choice, FFT plans, lazily built tables) that
really step the optimiser; :class:`StepGraph` undoes them, so a graphed run follows the
eager run's trajectory step for step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from engine.network.step import set_lr, train_step

__all__ = ["StepGraph", "capture", "set_lr"]


def capture(fn: Callable[[], Any], device: torch.device, warmup: int = 3,
            graph_factory: Callable[[], Any] | None = None) -> Callable[[], None]:
    """``fn`` captured as a CUDA graph after ``warmup`` runs; returns the replay.

    The warm-up runs on a side stream, as capture requires, and fills every lazy cache.
    ``graph_factory`` stands in for ``torch.cuda.CUDAGraph`` in tests: an object whose
    ``capture(fn)`` records ``fn`` and whose ``replay()`` runs it.
    """
    if graph_factory is not None:
        for _ in range(warmup):
            fn()
        graph = graph_factory()
        graph.capture(fn)
        return graph.replay
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


class StepGraph:
    """One training step (forward, loss, backward, Adam) captured for batches of one shape.

    Parameters
    ----------
    model : the :class:`~engine.network.physics.PhysicsModel` (unwrapped), on the device.
    opt : its Adam optimiser, created with ``capturable=True`` on CUDA.
    loss : the loss name (``TrainConfig.loss``).
    extent : the groups' local canvas (:func:`~engine.network.physics.group_extent`) or ``None``.
    graph_factory : stands in for ``torch.cuda.CUDAGraph`` in tests (see :func:`capture`).

    :meth:`step` copies a batch into the static inputs, sets the learning rate and replays;
    the first call captures. Batches of another shape are not for this graph
    (:meth:`fits`): the trainer runs those eagerly, zeroing gradients in place (a graph
    writes into the gradient tensors it was captured with, which this object keeps alive).
    """

    def __init__(self, model: torch.nn.Module, opt: torch.optim.Optimizer, loss: str,
                 extent: tuple[int, int] | None, graph_factory: Callable[[], Any] | None = None,
                 mask: torch.Tensor | None = None) -> None:
        self.model, self.opt, self.loss_name, self.extent = model, opt, loss, extent
        self.mask = mask  # the detector mask: a constant of the run, captured as it is
        self.graph_factory = graph_factory
        self._replay: Callable[[], None] | None = None
        self._static: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        self._loss: torch.Tensor | None = None
        self._grads: list[torch.Tensor | None] = []

    @property
    def captured(self) -> bool:
        return self._replay is not None

    def fits(self, x: torch.Tensor) -> bool:
        return self._static is None or self._static[0].shape == x.shape

    def _run(self) -> None:
        # zeroing in place (not set_to_none) keeps the gradient tensors, and their addresses,
        # the same in every run: the form a captured graph can replay; the learning rate is
        # a device tensor set before each replay
        x, off, target = self._static  # type: ignore[misc]
        self._loss = train_step(self.model, self.opt, self.loss_name, x, off, self.extent,
                                target, zero_in_place=True, mask=self.mask).detach()

    def _capture(self, x: torch.Tensor, off: torch.Tensor, target: torch.Tensor | None) -> None:
        self._static = (x.clone(), off.clone(), None if target is None else target.clone())
        for group in self.opt.param_groups:  # a device tensor, so replays see new rates
            if not isinstance(group["lr"], torch.Tensor):
                group["lr"] = torch.tensor(float(group["lr"]), device=x.device)
        weights = {k: v.clone() for k, v in self.model.state_dict().items()}
        moments = {p: {k: v.clone() for k, v in st.items() if isinstance(v, torch.Tensor)}
                   for p, st in self.opt.state.items()}
        self._replay = capture(self._run, x.device, graph_factory=self.graph_factory)
        self._grads = [p.grad for group in self.opt.param_groups for p in group["params"]]
        # undo the warm-up: weights and Adam's moments back in place (the graph holds their
        # addresses); Adam state that the warm-up created starts from zero, as a fresh one does
        self.model.load_state_dict(weights)
        with torch.no_grad():
            for p, st in self.opt.state.items():
                for k, v in st.items():
                    if isinstance(v, torch.Tensor):
                        v.copy_(moments[p][k]) if p in moments else v.zero_()

    def step(self, x: torch.Tensor, off: torch.Tensor, target: torch.Tensor | None,
             lr: float) -> torch.Tensor:
        """One optimiser step on this batch; returns its loss (a device scalar)."""
        if self._replay is None:
            self._capture(x, off, target)
        sx, soff, starget = self._static  # type: ignore[misc]
        sx.copy_(x)
        soff.copy_(off)
        if starget is not None and target is not None:
            starget.copy_(target)
        set_lr(self.opt, lr)
        self._replay()  # type: ignore[misc]
        # the static loss is overwritten by the next replay, and it is read after that
        return self._loss.clone()  # type: ignore[union-attr]
