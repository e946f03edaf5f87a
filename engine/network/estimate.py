"""How long a training will take on this machine, measured rather than guessed.

:func:`estimate_training` runs a few real optimiser steps of a fresh network (the same
forward model, loss and Adam step as the trainer, on the data's own first batch), times the
last ones, and scales that to the run's steps plus its per-epoch validation and the final
statistics pass. The measurement includes whatever else loads the machine at that moment,
which is the point: a shared 2-core CPU can be several times slower than an idle one.

Examples
--------
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> from engine.network.config import TrainConfig
>>> ds = simulate(SimulationConfig(n_positions=64, N=32, step=4, seed=0))
>>> plan = estimate_training(ds, TrainConfig(epochs=2, base_channels=4, accelerator="cpu"))
>>> plan["total_steps"], plan["expected_s"] > 0
(8, True)
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from engine.data import Dataset
from engine.network.config import TrainConfig
from engine.network.presets import resolve_device

# a forward pass without the backward and the optimiser: about a third of a training step
FORWARD_SHARE = 1.0 / 3.0


def measure_step_seconds(data: Dataset, cfg: TrainConfig, *, warmup: int = 1,
                         timed: int = 3) -> float:
    """Wall-clock seconds of one training step of ``cfg`` on ``data`` on this machine.

    ``warmup`` untimed steps (allocation, kernel selection), then the median of ``timed``
    steps. The network is built fresh and thrown away; global torch state is left alone.
    """
    import torch

    from engine.network.batches import prepare
    from engine.network.losses import compute_loss
    from engine.network.physics import group_extent
    from engine.network.predict import group_batch
    from engine.network.trainer import build_model

    device = torch.device("cuda" if resolve_device(cfg.accelerator) in ("cuda", "gpu")
                          else "cpu")
    prep = prepare(data, cfg.gridsize, cfg.neighbor_count, cfg.n_groups, cfg.val_fraction,
                   cfg.seed, cfg.loss == "supervised")
    model = build_model(data.N, cfg, prep.probe).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x = prep.inputs(device)
    mask = None if prep.mask is None else torch.from_numpy(prep.mask_weights).to(device)
    target = None if prep.target is None else torch.from_numpy(prep.target).to(device)
    extent = (group_extent(prep.train.local_offsets, data.N)
              if cfg.use_object_big and cfg.C > 1 else None)
    batch = slice(0, min(cfg.batch_size, prep.train.n_groups))
    times = []
    for i in range(warmup + timed):
        t0 = time.perf_counter()
        xb, off, tb = group_batch(x, prep.train, batch, target)
        obj, pred = model(xb, off, extent)
        loss = compute_loss(cfg.loss, obj, pred, xb, tb, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def estimate_training(data: Dataset, cfg: TrainConfig, *, seconds_per_step: float | None = None,
                      **measure: Any) -> dict[str, Any]:
    """The expected wall-clock time of training ``cfg`` on ``data`` on this machine.

    Returns ``seconds_per_step`` (measured by :func:`measure_step_seconds` unless given),
    ``steps_per_epoch``, ``total_steps``, ``expected_s`` (training steps, the validation
    forward passes of every epoch and the final statistics pass; bounded by
    ``cfg.time_limit``) and ``bounded_by_time_limit``.
    """
    from engine.network.batches import prepare

    prep = prepare(data, cfg.gridsize, cfg.neighbor_count, cfg.n_groups, cfg.val_fraction,
                   cfg.seed, cfg.loss == "supervised")
    per_step = (measure_step_seconds(data, cfg, **measure) if seconds_per_step is None
                else float(seconds_per_step))
    per_epoch = math.ceil(prep.train.n_groups / cfg.batch_size)
    val_batches = 0 if prep.val is None else math.ceil(prep.val.n_groups / cfg.batch_size)
    total_steps = per_epoch * cfg.epochs
    seconds = per_step * (total_steps + FORWARD_SHARE * (val_batches * cfg.epochs + per_epoch))
    bounded = cfg.time_limit is not None and seconds > cfg.time_limit
    return {"seconds_per_step": per_step, "steps_per_epoch": per_epoch,
            "total_steps": total_steps,
            "expected_s": float(cfg.time_limit) if bounded else seconds,
            "bounded_by_time_limit": bool(bounded)}
