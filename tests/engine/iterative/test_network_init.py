"""Network → iterative refinement in one call: ``init`` is a trained run directory."""

from __future__ import annotations

import pytest

from engine.iterative import LSQMLOptions, phase_rms_unregistered, reconstruct
from engine.network import config
from engine.network import trainer as training


def test_refinement_starts_from_the_bundles_inference(small32, tmp_path):
    cfg = config.TrainConfig(gridsize=1, batch_size=8, epochs=1, base_channels=4, lr=3e-3,
                             seed=0, deterministic=True, accelerator="cpu")
    run = tmp_path / "runs" / "a"
    training.train(small32, cfg, run)
    from engine.network.inference import infer_canvas

    network = infer_canvas(run, small32)
    opts = LSQMLOptions(iterations=4, batch_size=9)
    refined = reconstruct(small32, opts, init=str(run))
    started = reconstruct(small32, opts.replace(iterations=1), init=network)
    # the run directory and the network's canvas give the same start, and refinement helps
    assert refined.errors[0] == pytest.approx(started.errors[0], rel=1e-9)
    assert refined.errors[-1] < refined.errors[0]
    assert phase_rms_unregistered(refined.canvas, small32.object) < 0.5
