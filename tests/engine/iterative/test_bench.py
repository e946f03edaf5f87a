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
