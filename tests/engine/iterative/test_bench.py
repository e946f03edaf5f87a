"""``ptycho bench iterative`` runs end to end on a tiny problem (pty-chi left out)."""

from __future__ import annotations

import argparse
import json

from engine.bench import SUITES, iterative


def test_iterative_suite_records_rates_and_phase_error():
    assert SUITES["iterative"] == "engine.bench.iterative"
    parser = argparse.ArgumentParser()
    iterative.add_arguments(parser)
    args = parser.parse_args(["--n", "16", "--N", "32", "--epochs", "2", "--repeat", "2",
                              "--methods", "epie,lsqml", "--backends", "numpy",
                              "--no-ptychi"])
    events = []
    result = iterative.run(args, events.append)
    json.dumps(result)  # JSON-ready
    assert [r["method"] for r in result["runs"]] == ["epie", "lsqml"]
    for r in result["runs"]:
        assert r["repeat"] == 2 and len(r["epoch_seconds"]) == 2
        assert r["best_epoch_patterns_per_s"] >= r["patterns_per_s"] > 0
        assert 0 <= r["phase_rms_rad"] < 1  # the reports' phase RMS (docs/metrics.md)
        assert 0 <= r["phase_rms_unregistered_rad"] < 1  # the solvers' own, named apart
    assert result["ptychi"] == {"requested": False}
    assert set(result["summary"]) == {"epie", "lsqml"}
    assert result["problem"]["n"] == 16 and events


def test_ptychi_leaves_torch_defaults_as_it_found_them():
    """pty-chi sets torch's process-wide default device (a function mode that doubles the
    dispatch cost of every later torch call) and dtype; the benchmark undoes both, so the
    solvers that run after it are not slowed down."""
    import torch

    from engine.bench.iterative import _torch_defaults_kept

    with _torch_defaults_kept():
        torch.set_default_device("cpu")
        torch.set_default_dtype(torch.float64)
    assert torch.get_default_dtype() == torch.float32
    assert getattr(torch._GLOBAL_DEVICE_CONTEXT, "device_context", None) is None


def test_position_correction_comparison_records_accuracy_and_time():
    """``--positions-only``: the reference from the true positions and the corrected runs,
    each with its position RMS (after the common offset) and phase RMS."""
    parser = argparse.ArgumentParser()
    iterative.add_arguments(parser)
    args = parser.parse_args(["--positions-only", "--positions-n", "49", "--positions-epochs",
                              "6", "--positions-batch", "16", "--backends", "numpy",
                              "--no-ptychi"])
    result = iterative.run(args, [].append)
    json.dumps(result)
    pos = result["positions"]
    start = pos["problem"]["initial_positions_rms_px"]
    assert 1.0 < start < 3.0
    ref, ours = pos["runs"]
    assert ref["case"].startswith("true") and ref["positions_rms_px"] == 0.0
    assert ours["backend"] == "numpy" and 0 < ours["positions_rms_px"] < start
    assert set(pos["summary"]) == {"reference (true positions)", "numpy"}
    assert "runs" not in result  # the solver comparison was left out


def test_ptychi_position_correction_moves_positions():
    """pty-chi's side of the comparison: its positions come back in object coordinates and
    move with its gradient correction on."""
    import numpy as np
    import pytest

    from engine.bench.iterative_positions import perturb
    from engine.simulation.simulate import SimulationConfig, simulate

    try:
        iterative._import_ptychi()
    except ImportError:
        pytest.skip("pty-chi is not installed")
    ds = simulate(SimulationConfig(object="grf", probe="disk", scan="raster", n_positions=25,
                                   N=32, step=4, nphotons=1e5, seed=0))
    given = perturb(ds, 1)
    rec, seconds = iterative._ptychi(given, "lsqml", 16, 3, "cpu",
                                     correction={"start": 1, "limit": 0.5, "step_size": 1.0})
    moved = np.abs(rec["positions"] - given.positions)
    assert len(seconds) == 3 and 0 < moved.max() <= 2 * 0.5 + 1e-6
    assert np.abs(rec["positions"] - given.positions).mean() < 1.0  # same frame as ours
