"""Training presets, the time estimate of a plan, and the flat-output check of a finished run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.data import write_npz
from engine.errors import InputError
from engine.network.config import TrainConfig
from engine.network.estimate import FORWARD_SHARE, estimate_training
from engine.network.flatness import FLAT_RATIO, output_flatness
from engine.network.presets import (
    PRESETS,
    default_preset,
    preset_config,
    preset_values,
    steps_per_epoch,
)
from tests.engine.network.conftest import tiny_config


def test_presets_by_device_and_explicit_options_win():
    assert default_preset("cpu") == "quick"
    assert default_preset("cuda") == default_preset("cuda:1") == "standard"
    quick = preset_config(None, "cpu", n_positions=1024, gridsize=2)
    assert (quick.base_channels, quick.lr, quick.gridsize) == (8, 1e-3, 2)
    # about 1,000 optimiser steps whatever the data size
    for n in (256, 1024, 4096):
        cfg = preset_config("quick", "cpu", n_positions=n)
        assert abs(cfg.epochs * steps_per_epoch(n) - 1000) <= steps_per_epoch(n) / 2 + 1
    over = preset_config("quick", "cpu", n_positions=1024, epochs=3, base_channels=16, lr=None)
    assert (over.epochs, over.base_channels, over.lr) == (3, 16, 1e-3)  # None: not given
    # standard is the defaults the GPU benchmarks measured; a GPU writes checkpoints less often
    standard = preset_config("standard", "cuda")
    assert (standard.base_channels, standard.epochs, standard.lr) == (32, 20, 5e-4)
    assert standard.checkpoint_every == 5 and preset_config("standard", "cpu").checkpoint_every == 1
    assert preset_config("quality", "cpu").lr_schedule == "cosine"
    assert set(PRESETS) == {"quick", "standard", "quality"}
    with pytest.raises(InputError, match="preset"):
        preset_values("fast")


def test_estimate_scales_the_measured_step(tiny_ds):
    cfg = tiny_config(epochs=3, batch_size=8)
    plan = estimate_training(tiny_ds, cfg, seconds_per_step=0.5)
    # 36 positions, 20 % held out: 29 training groups (4 steps), 7 validation (1 batch)
    assert (plan["steps_per_epoch"], plan["total_steps"]) == (4, 12)
    assert plan["expected_s"] == pytest.approx(0.5 * (12 + FORWARD_SHARE * (3 * 1 + 4)))
    bounded = estimate_training(tiny_ds, tiny_config(epochs=3, time_limit=2.0),
                                seconds_per_step=0.5)
    assert bounded["bounded_by_time_limit"] and bounded["expected_s"] == 2.0
    measured = estimate_training(tiny_ds, cfg, timed=2)
    assert 0 < measured["seconds_per_step"] < 60


def test_dry_run_prints_the_preset_and_the_expected_time(tiny_ds, tmp_path, capsys):
    data = str(write_npz(tmp_path / "tiny.npz", tiny_ds))
    assert main(["train", data, "--out", str(tmp_path / "run"), "--accelerator", "cpu",
                 "--dry-run"]) == 0
    lines = dict(ln.split(":", 1) for ln in capsys.readouterr().out.splitlines())
    figures = {k.strip(): v.strip() for k, v in lines.items()}
    assert figures["preset"] == "quick" and figures["base_channels"] == "8"
    assert figures["expected_time"].endswith((" s", " min"))
    assert float(figures["seconds_per_step"]) > 0
    assert main(["train", data, "--out", str(tmp_path / "run"), "--accelerator", "cpu",
                 "--preset", "standard", "--epochs", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "base_channels: 32" in out and "epochs: 2" in out


class _Stand:
    """A stand-in network that draws given patches (in X units) in order, through the true
    forward model: ``faithful`` patches are the truth itself."""

    def __init__(self, patches: np.ndarray, probe: np.ndarray) -> None:
        self.patches, self.probe, self.at = torch.from_numpy(patches), probe, 0

    def eval(self):
        return self

    def __call__(self, xb, off, extent):
        b = xb.shape[0]
        obj = self.patches[self.at:self.at + b].reshape(xb.shape)
        self.at += b
        psi = torch.from_numpy(self.probe) * obj
        pred = torch.fft.fftshift(torch.fft.fft2(psi, norm="ortho"), dim=(-2, -1)).abs()
        return obj, pred.float()


@pytest.mark.parametrize("faithful", [True, False])
def test_flat_output_is_told_from_a_faithful_one(faithful):
    from engine.network.batches import prepare
    from engine.simulation.simulate import SimulationConfig, simulate

    ds = simulate(SimulationConfig(object="lines", N=32, n_positions=64, step=4,
                                   nphotons=0, seed=0))
    prep = prepare(ds, 1, None, None, 0.0, 0, need_target=True)
    order = prep.train.indices.reshape(-1)
    truth = prep.target[order]                      # c·Y: the truth in X units
    patches = truth if faithful else np.full_like(truth, truth.mean())
    x = torch.from_numpy(prep.x)
    result = output_flatness(_Stand(patches, prep.probe), x, prep, ds, batch_size=16)
    assert result["flat"] is not faithful
    if faithful:   # noise-free data: the truth reproduces every pattern and its own variance
        assert result["pattern_ratio"] == pytest.approx(1.0, rel=1e-3)
        assert result["truth_ratio"] == pytest.approx(1.0, rel=1e-4)
    else:          # one patch everywhere: every pattern predicted alike, no texture
        assert result["pattern_ratio"] < 1e-6 and result["truth_ratio"] < 1e-6
    assert result["threshold"] == FLAT_RATIO


def test_a_trained_run_records_its_flatness(trained):
    run = trained(2)
    flat = run.result.metrics["flat_output"]
    assert set(flat) >= {"flat", "pattern_ratio", "truth_ratio", "threshold"}
    # the guard runs' networks beat a flat object (test_quality): not flagged
    assert flat["flat"] is False and flat["pattern_ratio"] > FLAT_RATIO


def test_untrained_network_is_flat(tiny_ds, tmp_path, caplog):
    from engine.network.trainer import train

    # one step at a vanishing learning rate: the network is still its flat initialisation
    result = train(tiny_ds, tiny_config(lr=1e-9, epochs=1, batch_size=64), tmp_path / "run")
    flat = result.metrics["flat_output"]
    assert flat["flat"] is True and flat["pattern_ratio"] < FLAT_RATIO
    assert "nearly flat" in caplog.text
    assert TrainConfig  # the options class the presets fill
