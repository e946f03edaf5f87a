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
    assert set(result["summary"]) == {
        *(f"train g{g} b{b} as_given (patterns/s)" for g, b in ((1, 16), (2, 16), (2, 64))),
        *(f"inference g{g} b4 as_given (patterns/s)" for g in (1, 2)),
        "stitch 64 patches (ms)"}


@pytest.mark.parametrize("argv, flag", [(["--cases", "g2x16"], "--cases"),
                                        (["--cases", "g0b16"], "--cases"),
                                        (["--profile", "g1b2,g2b2"], "--profile"),
                                        (["--profile", "b16"], "--profile"),
                                        (["--cuda-graphs"], "--cuda-graphs")])
def test_bench_pinn_refuses_bad_options(tmp_path, capsys, argv, flag):
    out = tmp_path / "pinn.json"
    assert main(["bench", "pinn", "--device", "cpu", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert flag in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_bench_pinn_records_a_failing_case_and_goes_on(tmp_path, monkeypatch):
    """One case's failure is written down and the suite finishes the others."""
    import argparse

    from engine.bench import pinn

    def boom(*a):
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")

    monkeypatch.setattr(pinn, "infer_rate", boom)
    out = tmp_path / "pinn.json"
    args = argparse.Namespace(
        device="cpu", N=32, base_channels=4, steps=1, warmup=0, infer_batch=2,
        infer_batches=1, stitch_patches=16, precision="32", channels_last=False,
        compile=False, cuda_graphs=False, sweep_levers=False, cases="g1b2", threads=None,
        skip_throughput=False, quality=False, profile=None, out=str(out))
    result = pinn.run(args, lambda e: None)
    assert result["summary"]["inference g1 b2 as_given (patterns/s)"] == \
        "RuntimeError: CUDA out of memory."
    assert result["summary"]["train g1 b2 as_given (patterns/s)"] > 0
    assert json.loads(out.read_text())["summary"] == result["summary"]


def _tiny(out, *extra: str, warmup: str = "0") -> list[str]:
    """``bench pinn`` at a size that runs in seconds on a CPU."""
    return ["bench", "pinn", "--device", "cpu", "--N", "32", "--base-channels", "4",
            "--steps", "1", "--warmup", warmup, "--infer-batch", "2", "--infer-batches", "1",
            "--stitch-patches", "16", *extra, "--out", str(out)]


def test_bench_pinn_profiles_a_step_and_reports_arithmetic_rates(tmp_path):
    out = tmp_path / "pinn.json"
    assert main(_tiny(out, "--cases", "g2b2", "--profile", "g2b2", warmup="1")) == 0
    result = json.loads(out.read_text())
    prof = result["profile"]
    assert prof["case"] == "g2b2" and prof["clock"] == "cpu" and prof["total_ms_per_step"] > 0
    names = [row["op"] for row in prof["top"]]
    assert any("conv" in n for n in names), names  # the network's convolutions are there
    assert sum(row["share"] for row in prof["top"]) <= 1.0 + 1e-9
    train = next(r for r in result["results"] if r["phase"] == "train")
    model = result["model"]
    assert train["tflop_per_s"] == pytest.approx(
        3 * model["flops_per_pattern_gridsize2"] * train["patterns_per_s"] / 1e12)


def test_bench_pinn_times_the_network_shape_asked_for(tmp_path):
    figures = {}
    for bottleneck in ("8", "16"):
        out = tmp_path / f"pinn{bottleneck}.json"
        assert main(_tiny(out, "--bottleneck", bottleneck, "--cases", "g1b2")) == 0
        figures[bottleneck] = json.loads(out.read_text())["model"]
    assert [figures[b]["bottleneck"] for b in ("8", "16")] == [8, 16]
    assert figures["16"]["flops_per_pattern_gridsize1"] < \
        figures["8"]["flops_per_pattern_gridsize1"]


def test_lever_sweep_measures_each_lever_and_the_channels_last_graph_pair():
    import argparse

    import torch

    from engine.bench.pinn import _levers

    args = argparse.Namespace(sweep_levers=True, compile=False)
    gpu = dict(_levers(args, torch.device("cuda")))
    assert list(gpu) == ["baseline", "bf16", "channels_last", "cuda_graphs",
                         "channels_last_graphs", "all", "bf16_weights", "bf16_weights_graphs",
                         "bf16_weights_all"]
    assert gpu["channels_last_graphs"] == {"precision": "32", "channels_last": True,
                                           "compile": False, "cuda_graphs": True}
    assert gpu["bf16_weights_all"] == {"precision": "bf16", "channels_last": True,
                                       "compile": False, "cuda_graphs": True}
    # a CPU cannot capture CUDA graphs: those levers are left out there
    assert list(dict(_levers(args, torch.device("cpu")))) == ["baseline", "bf16",
                                                               "channels_last", "bf16_weights"]


def test_bench_pinn_bf16_network_is_timed_for_inference_only(tmp_path, capsys):
    out = tmp_path / "pinn.json"
    assert main(_tiny(out, "--precision", "bf16", "--cases", "g1b2")) == 0
    result = json.loads(out.read_text())
    assert [r["phase"] for r in result["results"]] == ["inference", "inference", "stitch"]
    assert all(r["patterns_per_s"] > 0 for r in result["results"][:2])
    capsys.readouterr()
    # training a bf16 network is not what the option means: refused with --quality
    assert main(["bench", "pinn", "--device", "cpu", "--precision", "bf16", "--quality",
                 "--out", str(tmp_path / "q.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--precision" in err and len(err.splitlines()) == 1
