"""Detector masks in the network's losses and inputs, and lazy stacks streamed through
training, statistics and inference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine.network.inference import InferConfig, infer
from engine.network.losses import compute_loss
from engine.network.trainer import train
from engine.physics import scaling
from engine.physics.scaling import ScalingConfig
from tests.engine.lazy_stack import CountingStack

from .conftest import tiny_config


@pytest.mark.parametrize("name", ["poisson", "mae"])
def test_masked_pixels_add_nothing_to_the_loss(name):
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 1, 8, 8, generator=gen) + 0.1
    x = torch.rand(3, 1, 8, 8, generator=gen) + 0.1
    mask = torch.ones(8, 8)
    mask[1, 2] = mask[6, 6] = 0
    x_bad = x.clone()
    x_bad[..., 1, 2] = 1e4  # a hot pixel under the mask
    obj = torch.zeros(3, 1, 8, 8, dtype=torch.complex64)
    a = compute_loss(name, obj, pred, x, mask=mask)
    b = compute_loss(name, obj, pred, x_bad, mask=mask)
    assert float(a) == pytest.approx(float(b), rel=1e-6)
    # the mean per valid pixel: the unmasked loss of the valid pixels alone
    valid = mask.bool()
    ref = compute_loss(name, obj, pred[..., valid], x[..., valid])
    assert float(a) == pytest.approx(float(ref), rel=1e-5)
    assert float(compute_loss(name, obj, pred, x_bad)) > 10 * float(a)
    # and the gradient at a masked pixel is 0: predicted, never fitted
    p = pred.clone().requires_grad_(True)
    compute_loss(name, obj, p, x_bad, mask=mask).backward()
    assert float(p.grad[..., 1, 2].abs().max()) == 0.0
    assert float(p.grad[..., 0, 0].abs().max()) > 0.0


def _with_hot_pixels(ds):
    D = ds.diffraction.copy()
    D[:, 3, 5] = 5 * D.max()
    D[:, 20, 11] = 0.0
    mask = np.ones((ds.N, ds.N), bool)
    mask[3, 5] = mask[20, 11] = False
    return dataclasses.replace(ds.with_diffraction(D), pixel_mask=mask)


@pytest.mark.parametrize("gridsize", [1, 2])
def test_training_from_a_lazy_stack_equals_in_memory(pinn_ds, tmp_path, monkeypatch,
                                                     gridsize):
    """Same seed, same losses, same statistics; the stack is never asked for more than a
    batch of groups' rows at once; the masked pixels' values change nothing."""
    monkeypatch.setattr(scaling, "STREAM_ROWS", 16)  # whole-stack figures: 16 rows a read
    ds = _with_hot_pixels(pinn_ds.subset(np.arange(160)))
    cfg = tiny_config(gridsize=gridsize, epochs=2, batch_size=4, val_fraction=0.2,
                      snapshot_every=1)
    ref = train(ds, cfg, tmp_path / "mem")
    stack = CountingStack(ds.diffraction)
    lazy = train(dataclasses.replace(ds, diffraction=stack), cfg, tmp_path / "lazy")
    assert stack.reads
    C = gridsize**2
    # the largest read: a statistics/stitching batch of max(batch, 64) groups' distinct
    # rows, never the whole stack (160 patterns)
    assert stack.largest_read <= max(cfg.batch_size, 64) * C
    assert stack.largest_read < ds.n
    train_reads = [r for r in stack.reads if r <= cfg.batch_size * C]
    assert train_reads, "training batches read a batch of groups' rows"
    for a, b in zip(ref.history, lazy.history, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
    sa, sb = ref.metrics["train_patch_stats"], lazy.metrics["train_patch_stats"]
    for key in ("mean", "std", "var_zero_mean"):
        assert sb[key] == pytest.approx(sa[key], rel=1e-5)
    # the mask acted: the hot pixel's value does not reach the network
    D = ds.diffraction.copy()
    D[:, 3, 5] = 50 * ds.diffraction.max()
    other = train(dataclasses.replace(ds, diffraction=D), cfg, tmp_path / "hotter")
    assert other.history[-1]["loss"] == pytest.approx(ref.history[-1]["loss"], rel=1e-5)


def test_inference_from_a_lazy_stack_equals_in_memory(tiny_ds, tmp_path):
    ds = _with_hot_pixels(tiny_ds)
    run = train(ds, tiny_config(epochs=1), tmp_path / "run")
    config = InferConfig(batch_size=8, scaling=ScalingConfig("data"), device="cpu")
    a = infer(run.bundle, ds, config)
    stack = CountingStack(ds.diffraction)
    b = infer(run.bundle, dataclasses.replace(ds, diffraction=stack), config)
    assert 0 < stack.largest_read <= config.batch_size
    assert b.scale == pytest.approx(a.scale, rel=1e-6)
    np.testing.assert_allclose(b.canvas.canvas[a.canvas.coverage],
                               a.canvas.canvas[a.canvas.coverage], rtol=1e-5, atol=1e-6)


def test_five_percent_corrupted_pixels_masked_train_as_well_as_clean(pinn_ds, tmp_path):
    """The issue's figure for the network: 8 epochs (width 8, gridsize 1) on the 256-pattern
    lines set with 5 % of the detector hot, dead or stuck at the maximum. Measured: clean
    0.131 rad phase RMS (amplitude r 0.75), masked 0.127 rad (r 0.78), unmasked 0.92 rad
    (r −0.09) against the true object."""
    from engine.evaluation.metrics import evaluate_canvas

    N = pinn_ds.N
    rng = np.random.default_rng(0)
    bad = rng.choice(N * N, int(round(0.05 * N * N)), replace=False)
    hot, dead, stuck = np.array_split(bad, 3)
    D = pinn_ds.diffraction.copy()
    flat = D.reshape(D.shape[0], -1)
    flat[:, hot] = np.sqrt(flat[:, hot] ** 2 + 0.2 * D.max() ** 2)
    flat[:, dead] = 0.0
    flat[:, stuck] = D.max()
    mask = np.ones(N * N, bool)
    mask[bad] = False
    corrupted = pinn_ds.with_diffraction(D)
    cfg = tiny_config(epochs=8, base_channels=8, lr=1e-3, val_fraction=0.0)
    scores = {}
    for name, data in (("clean", pinn_ds),
                       ("masked", dataclasses.replace(corrupted, pixel_mask=mask.reshape(N, N))),
                       ("unmasked", corrupted)):
        run = train(data, cfg, tmp_path / name)
        canvas = infer(run.bundle, data, InferConfig(device="cpu")).canvas
        ev = evaluate_canvas(canvas, pinn_ds.object)
        scores[name] = (ev["phase"]["rms_error_rad"], ev["amplitude"]["pearson_r"])
    clean, masked, unmasked = scores["clean"], scores["masked"], scores["unmasked"]
    assert masked[0] <= 1.25 * clean[0] and masked[1] >= clean[1] - 0.1
    assert unmasked[0] > 4 * masked[0] and unmasked[1] < 0.3
