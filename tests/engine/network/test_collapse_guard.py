"""The collapse guards at run time (var_zero_mean > 1e-6, |mean| > 1e-9 on the network's
output), statistics files with canvas figures, min/max and per-patch blocks, the console's
per-batch lines, and ``ptycho compare`` over the files training and inference write."""

from __future__ import annotations

import contextlib
import io
import json
import logging

import pytest
import torch

from engine.cli import main
from engine.data import read_npz, write_npz
from engine.network.bundles import load_bundle, save_bundle
from engine.network.inference import InferConfig, infer

# bundle.json keys save_bundle writes itself (a re-save passes the rest through)
_WRITTEN = ("format", "normalisation", "versions", "files", "manifest_sha256")


@pytest.fixture(scope="module")
def run(tiny_ds, tmp_path_factory):
    """One CLI training run (1 epoch, patch statistics logged) and its data file."""
    d = tmp_path_factory.mktemp("guard")
    data = d / "data.npz"
    write_npz(data, tiny_ds)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(["train", str(data), "--out", str(d / "run"), "--epochs", "1",
                   "--batch-size", "8", "--base-channels", "4", "--lr", "3e-3",
                   "--deterministic", "--accelerator", "cpu", "--log-patch-stats"])
    assert rc == 0
    (d / "train_stdout.txt").write_text(printed.getvalue())
    return d, data


def _collapsed_bundle(src, dst):
    """The bundle at ``src`` with an amplitude head that outputs zeros, re-saved (valid
    digests) through the engine's own writer."""
    b = load_bundle(src)
    weights = dict(b.weights)
    weights["amplitude_head.weight"] = torch.zeros_like(weights["amplitude_head.weight"])
    weights["amplitude_head.bias"] = torch.full_like(weights["amplitude_head.bias"], -200.0)
    meta = {k: v for k, v in b.meta.items() if k not in _WRITTEN}
    return save_bundle(dst, weights, b.probe, meta)


def test_training_records_guard_and_writes_full_statistics(run, capsys):
    d, _ = run
    meta = json.loads((d / "run/bundle/bundle.json").read_text())
    assert meta["metrics"]["collapsed"] is False
    assert meta["metrics"]["collapse"]["reasons"] == []
    records = json.loads((d / "run/analysis/stats_train.json").read_text())
    whole = records[-1]
    assert whole["batch"] == "all"
    # canvas figures of the stitched training set, and the extremes of the patches
    assert 0 < whole["canvas"]["coverage"] <= 1
    assert whole["canvas"]["min"] <= whole["canvas"]["mean"] <= whole["canvas"]["max"]
    assert 0 <= whole["min"] < whole["mean"] < whole["max"]
    first = records[0]
    assert first["min"] >= whole["min"] and first["max"] <= whole["max"]
    pp = first["per_patch"]
    assert len(pp["mean"]) == 4 and all(lo <= m <= hi for lo, m, hi
                                        in zip(pp["min"], pp["mean"], pp["max"], strict=True))
    assert whole["per_patch"] == first["per_patch"]
    # one console line per logged batch (2 by default), then the run's line
    lines = (d / "train_stdout.txt").read_text().splitlines()
    stats = [ln for ln in lines if ln.startswith("patch stats (train batch ")]
    assert [ln.split(")")[0] for ln in stats] == ["patch stats (train batch 0",
                                                  "patch stats (train batch 1"]
    assert f"mean={records[0]['mean']:.6g} std={records[0]['std']:.6g}" in stats[0]


def test_inference_guard_strict_and_console_lines(run, tmp_path, capsys, caplog):
    d, data = run
    out = tmp_path / "ok"
    capsys.readouterr()
    assert main(["infer", str(d / "run"), str(data), "--out", str(out), "--strict",
                 "--log-patch-stats", "--debug-dump", str(tmp_path / "dbg")]) == 0
    stdout = capsys.readouterr().out
    lines = [ln for ln in stdout.splitlines() if ln.startswith("patch stats (inference")]
    assert lines[0].startswith("patch stats (inference batch 0): mean=")
    assert "var_zero_mean=" in lines[0] and "min=" in lines[0]
    assert json.loads((out / "summary.json").read_text())["collapsed"] is False
    # --debug-dump DIR writes there, not under <out>/debug
    assert (tmp_path / "dbg/stats.json").is_file() and not (out / "debug").exists()

    zero = _collapsed_bundle(d / "run/bundle", tmp_path / "zero_bundle")
    res = infer(zero, read_npz(data), InferConfig(device="cpu"))
    assert res.collapsed and res.stats["mean"] < 1e-9
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["infer", str(zero), str(data), "--out", str(tmp_path / "z")]) == 0
    assert "collapse guard" in caplog.text and "var_zero_mean" in caplog.text
    summary = json.loads((tmp_path / "z/summary.json").read_text())
    assert summary["collapsed"] is True and summary["collapse"]["reasons"]
    capsys.readouterr()
    assert main(["infer", str(zero), str(data), "--out", str(tmp_path / "z2"),
                 "--strict"]) == 3
    err = capsys.readouterr().err
    assert "collapsed" in err and (tmp_path / "z2/recon.npz").is_file()


def test_compare_reads_every_stats_file(run, tmp_path, capsys):
    d, data = run
    inf = tmp_path / "inf"
    assert main(["infer", str(d / "run"), str(data), "--out", str(inf), "--log-patch-stats",
                 "--debug-dump"]) == 0
    capsys.readouterr()
    # a training run directory against an inference directory: canvas figures included
    assert main(["compare", str(d / "run"), str(inf), "--out", str(tmp_path / "r.json")]) == 0
    text = capsys.readouterr().out
    assert "analysis/stats_train.json" in text and "analysis/stats_inference.json" in text
    report = json.loads((tmp_path / "r.json").read_text())
    for key in ("canvas.mean", "canvas.std", "canvas.min", "canvas.max", "canvas.coverage"):
        assert report["figures"][key]["status"] in ("ok", "differs"), key
    assert report["figures"]["var_across_group"]["status"] == "undefined"  # gridsize 1
    # the debug dump's stats.json, as a file and as its directory
    for src in (inf / "debug/stats.json", inf / "debug"):
        assert main(["compare", str(inf / "analysis/stats_inference.json"), str(src)]) == 0
        text = capsys.readouterr().out
        assert "debug/stats.json" in text and "canvas.mean" in text
    # a collapsed candidate: the verdict says so and --fail-on gates the exit status
    zero = _collapsed_bundle(d / "run/bundle", tmp_path / "zero_bundle")
    assert main(["infer", str(zero), str(data), "--out", str(tmp_path / "z"),
                 "--log-patch-stats"]) == 0
    capsys.readouterr()
    assert main(["compare", str(inf), str(tmp_path / "z")]) == 0
    out = capsys.readouterr().out
    assert "verdict: DIFFERS" in out and "candidate_zero" in out
    assert main(["compare", str(inf), str(tmp_path / "z"), "--fail-on",
                 "differs,candidate_zero"]) == 1
    assert main(["compare", str(inf), str(inf), "--fail-on", "differs,candidate_zero"]) == 0
    assert "verdict: OK" in capsys.readouterr().out


def test_every_validation_is_guarded(tiny_ds, tmp_path, monkeypatch, caplog):
    """A validation whose patches are flat is warned about with its figures and recorded in
    the epoch's history and the bundle's metrics."""
    import numpy as np

    from engine.network import trainer

    from .conftest import tiny_config

    real = trainer._validate

    def flat_validation(*args, **kwargs):
        loss, canvas, stats = real(*args, **kwargs)
        record = {**stats["record"], "var_zero_mean": 0.0, "mean": 0.8}
        return loss, canvas, {**stats, "record": record}

    monkeypatch.setattr(trainer, "_validate", flat_validation)
    with caplog.at_level(logging.WARNING):
        result = trainer.train(tiny_ds, tiny_config(epochs=2), tmp_path / "run")
    warnings = [r.getMessage() for r in caplog.records if "collapse guard" in r.getMessage()]
    assert len(warnings) == 2  # one per validation
    assert "validation, epoch 1" in warnings[0] and "var_zero_mean 0" in warnings[0]
    assert [h["collapsed"] for h in result.history] == [True, True]
    meta = json.loads((tmp_path / "run/bundle/bundle.json").read_text())
    assert meta["metrics"]["collapsed"] is True
    # the trained network itself is not flat: the end-of-run check over the training set
    # passes, and the validation's collapse is what the run records
    assert meta["metrics"]["collapse"]["where"] == "validation, epoch 2"
    assert np.isfinite(result.metrics["train_patch_stats"]["var_zero_mean"])
