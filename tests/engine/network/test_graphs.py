"""``--cuda-graphs``: the captured training step follows the eager one.

No GPU here: a stand-in graph records the captured function and replays it by running it,
which exercises everything around the capture — static inputs, the learning rate held in a
tensor, undoing the warm-up runs, partial batches run eagerly beside the graph, checkpoints
of a graphed run — on the CPU. The capture itself ran on an H200 (`benchmarks/RESULTS.md`).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import engine.network.trainer as trainer
from engine.errors import InputError
from engine.network.config import TrainConfig
from engine.network.graphs import StepGraph, set_lr
from engine.network.losses import compute_loss
from engine.network.physics import group_extent
from engine.network.trainer import build_model, train
from tests.conftest import TORCH_DEVICE

from .conftest import tiny_config


class FakeGraph:
    """Stands in for ``torch.cuda.CUDAGraph``: replay runs what was captured."""

    captures = 0

    def capture(self, fn):
        FakeGraph.captures += 1
        self.fn = fn

    def replay(self):
        self.fn()


def _batches(rng, n, batch, N):  # noqa: N803
    x = torch.as_tensor(rng.gamma(1.0, 1.0, (n, 4, N, N)).astype(np.float32))
    local = np.array([[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]])
    off = torch.as_tensor(local[None] + rng.uniform(-0.5, 0.5, (n, 4, 2)))
    return [(x[i:i + batch], off[i:i + batch]) for i in range(0, n, batch)], off


def _eager_step(model, opt, xb, off, extent, lr, set_to_none):
    obj, pred = model(xb, off, extent)
    loss = compute_loss("poisson", obj, pred, xb)
    opt.zero_grad(set_to_none=set_to_none)
    loss.backward()
    set_lr(opt, lr)
    opt.step()
    return loss


def test_graphed_steps_follow_the_eager_steps(tiny_ds):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    cfg = TrainConfig(gridsize=2, base_channels=4)
    eager = build_model(32, cfg, tiny_ds.probe)
    graphed = copy.deepcopy(eager)
    opt_e = torch.optim.Adam(eager.parameters(), lr=1e-3)
    opt_g = torch.optim.Adam(graphed.parameters(), lr=1e-3)
    batches, off_all = _batches(rng, 11, 4, 32)  # two full batches of 4, then one of 3
    extent = group_extent(off_all.numpy(), 32)
    graph = StepGraph(graphed, opt_g, "poisson", extent, graph_factory=FakeGraph)
    for k, (xb, off) in enumerate(batches * 2):
        lr = 1e-3 * (k + 1) / 6  # a schedule: every replay must see its own rate
        loss_e = _eager_step(eager, opt_e, xb, off, extent, lr, set_to_none=True)
        if graph.fits(xb):
            loss_g = graph.step(xb, off, None, lr)
        else:  # the trainer's eager path beside a graph zeroes gradients in place
            loss_g = _eager_step(graphed, opt_g, xb, off, extent, lr, set_to_none=False)
        # the graph's learning rate is a float32 tensor, the eager one a Python float: the
        # runs part by rounding only (a lost warm-up undo or a stale rate is ~1e-2)
        assert float(loss_g.detach()) == pytest.approx(float(loss_e.detach()), rel=1e-4)
    assert graph.captured and isinstance(opt_g.param_groups[0]["lr"], torch.Tensor)
    for a, b in zip(eager.parameters(), graphed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=2e-5)


def test_train_with_graphs_matches_eager_and_resumes_eagerly(tiny_ds, tmp_path, monkeypatch):
    real = trainer._step_graph
    FakeGraph.captures = 0
    monkeypatch.setattr(trainer, "_step_graph",
                        lambda *a, **k: real(*a, graph_factory=FakeGraph, **k))
    kw = dict(gridsize=2, neighbor_count=4, batch_size=5)
    full = train(tiny_ds, tiny_config(epochs=2, **kw), tmp_path / "eager")
    graphed = train(tiny_ds, tiny_config(epochs=2, cuda_graphs=True, **kw), tmp_path / "g")
    assert FakeGraph.captures == 1
    assert [h["loss"] for h in graphed.history] == pytest.approx(
        [h["loss"] for h in full.history], rel=1e-4)
    # a graphed run's checkpoint (learning rate kept in a tensor) resumes without graphs
    train(tiny_ds, tiny_config(epochs=1, cuda_graphs=True, **kw), tmp_path / "part")
    resumed = train(tiny_ds, tiny_config(epochs=2, **kw), tmp_path / "part", resume=True)
    assert [h["loss"] for h in resumed.history] == pytest.approx(
        [h["loss"] for h in full.history], rel=1e-4)


def test_graphs_need_a_gpu_fp32_and_one_device(tiny_ds, tmp_path):
    with pytest.raises(InputError, match="^cuda_graphs: expected"):
        train(tiny_ds, tiny_config(cuda_graphs=True), tmp_path)
    assert not (tmp_path / "bundle").exists()
    for bad in (dict(precision="bf16-mixed"), dict(compile=True), dict(devices=2)):
        with pytest.raises(InputError, match="^cuda_graphs: expected"):
            TrainConfig(cuda_graphs=True, **bad)


@pytest.mark.skipif(TORCH_DEVICE != "cuda", reason="a real CUDA graph (PTYCHO_TEST_DEVICE=cuda)")
def test_cuda_graph_training_follows_eager_training_on_the_gpu(tiny_ds, tmp_path):
    kw = dict(gridsize=2, neighbor_count=4, batch_size=5, epochs=3, accelerator="cuda",
              deterministic=False)
    eager = train(tiny_ds, tiny_config(**kw), tmp_path / "eager")
    graphed = train(tiny_ds, tiny_config(cuda_graphs=True, **kw), tmp_path / "graphed")
    # TF32 convolutions and atomics: close, not bit-identical
    assert [h["loss"] for h in graphed.history] == pytest.approx(
        [h["loss"] for h in eager.history], rel=2e-2)
    assert graphed.history[-1]["loss"] < graphed.history[0]["loss"]
