"""``ptycho bench pinn`` runs end to end at a tiny size and reports every case."""

from __future__ import annotations

import json

import pytest

from engine.cli import main


@pytest.mark.slow
def test_bench_pinn_reports_every_case(tmp_path, capsys):
    out = tmp_path / "pinn.json"
    assert main(["bench", "pinn", "--device", "cpu", "--N", "32", "--base-channels", "4",
                 "--steps", "1", "--warmup", "1", "--infer-batch", "4", "--infer-batches", "1",
                 "--stitch-patches", "64", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    train = [r for r in result["results"] if r["phase"] == "train"]
    assert [(r["gridsize"], r["batch_groups"]) for r in train] == [(1, 16), (2, 16), (2, 64)]
    assert all(r["patterns_per_s"] > 0 and r["peak_rss_mib"] > 0 for r in train)
    assert {r["gridsize"] for r in result["results"] if r["phase"] == "inference"} == {1, 2}
    assert result["model"]["flops_per_pattern_gridsize1"] > 0
    assert result["environment"]["device"] == "cpu"
