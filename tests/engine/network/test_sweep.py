"""``ptycho bench pinn-sweep``: a grid of trainings scored against the truth."""

from __future__ import annotations

import json

import pytest
import torch

from engine.bench import pinn_sweep
from engine.cli import main
from engine.errors import InputError


def _grid(tmp_path, cases, base=None):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"base": base or {}, "cases": cases}))
    return path


TINY = {"N": 32, "n_positions": 36, "gridsize": 1, "batch_size": 8, "base_channels": 4,
        "steps": 8, "deterministic": True}


@pytest.mark.slow
def test_sweep_scores_every_case_and_records_a_failure(tmp_path):
    grid = _grid(tmp_path, [{"name": "deep", "simulation": {"step": 4, "nphotons": 1e5},
                             "stitch": [{"window": "uniform"}, {"crop": 24}, {"crop": 2}],
                             "refine": {"epochs": [1, 3], "batch_size": 9}},
                            {"name": "shallow", "bottleneck": 16, "val_fraction": 0.0},
                            {"name": "bad", "upsample": "bicubic"}], TINY)
    out = tmp_path / "sweep.json"
    assert main(["bench", "pinn-sweep", "--grid", str(grid), "--device", "cpu",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    summary = result["summary"]
    assert list(summary) == ["deep", "shallow", "bad"]
    for name in ("deep", "shallow"):
        assert summary[name]["steps"] in (8, 10)  # whole epochs of 4 (5 without a split)
        assert -1 <= summary[name]["whole amplitude_pearson_r"] <= 1
    assert summary["deep"]["held_out amplitude_ssim"] <= 1
    # trained on every position: there is no held-out stripe to score
    assert "held_out amplitude_ssim" not in summary["shallow"]
    assert result["cases"][1]["held_out"] is None
    assert "upsample: expected" in summary["bad"]["error"]  # the grid's own key, no flag
    assert result["cases"][0]["data"]["step"] == 4 and result["cases"][1]["data"]["step"] == 8
    assert result["cases"][0]["data"]["nphotons"] == 1e5
    shallow = result["cases"][1]
    assert shallow["config"]["bottleneck"] == 16 and shallow["case"]["name"] == "shallow"
    # the network as built, the defaults resolved (N = 32: no global mixing)
    assert shallow["network"]["bottleneck"] == 16
    assert result["cases"][0]["network"]["global_mixing"] is False
    # the same bundle reassembled three ways: the default (probe window, crop N/2) and two more
    deep = result["cases"][0]
    assert deep["stitch"] == {"crop": None, "window": "probe", "eps": 1e-6}
    assert [v["stitch"] for v in deep["stitch_variants"]] == [
        {"crop": None, "window": "uniform", "eps": 1e-6},
        {"crop": 24, "window": "probe", "eps": 1e-6},
        {"crop": 2, "window": "probe", "eps": 1e-6}]
    # a crop that covers nothing past the training region has no held-out figures
    assert deep["stitch_variants"][2]["held_out"] is None
    ssims = [deep["held_out"]["amplitude_ssim"]] + [
        v["held_out"]["amplitude_ssim"] for v in deep["stitch_variants"][:2]]
    assert len(set(ssims)) == 3, ssims
    assert summary["deep"]["[window=probe,crop=24] held_out amplitude_ssim"] == \
        round(ssims[2], 4)
    assert result["cases"][1]["stitch_variants"] == []
    # the solver on the same data, from flat and from the network, per epoch count
    refined = deep["refine"]
    assert [(r["method"], r["epochs"], r["init"]) for r in refined] == [
        ("lsqml", 1, "flat"), ("lsqml", 1, "network"), ("lsqml", 3, "flat"),
        ("lsqml", 3, "network")]
    assert all(r["options"]["batch_size"] == 9 for r in refined)
    rs = [r["whole"]["amplitude_pearson_r"] for r in refined]
    assert len(set(rs)) == 4, rs  # different starts and lengths give different objects
    # more epochs from flat fit the (well-sampled, low-noise) object better
    assert refined[2]["whole"]["phase_rms_rad"] < refined[0]["whole"]["phase_rms_rad"]
    assert summary["deep"]["[lsqml 3 from network] held_out amplitude_ssim"] == \
        round(refined[3]["held_out"]["amplitude_ssim"], 4)
    assert result["cases"][1]["refine"] == []
    # the two networks differ, so their reconstructions do too
    assert summary["deep"]["whole amplitude_pearson_r"] != \
        summary["shallow"]["whole amplitude_pearson_r"]


def test_sweep_restores_tf32_and_passes_options(monkeypatch):
    seen = {}

    def fake_quality_run(N, n, g, epochs, batch, width, lr, device, emit, **kw):
        seen.update(N=N, n=n, g=g, batch=batch, width=width, lr=lr, kw=kw,
                    tf32=torch.backends.cudnn.allow_tf32)
        return {"steps": 1, "train_seconds": 0.0, "whole": {"r": 1.0}, "held_out": None}

    monkeypatch.setattr(pinn_sweep, "quality_run", fake_quality_run)
    before = torch.backends.cudnn.allow_tf32
    case = {"name": "x", "N": 64, "n_positions": 100, "gridsize": 2, "batch_size": 64,
            "base_channels": 8, "lr": 3e-3, "tf32": not before, "steps": 40,
            "val_fraction": 0.0, "bottleneck": 16}
    pinn_sweep.run_case(case, torch.device("cpu"), lambda e: None)
    assert seen["tf32"] is (not before) and torch.backends.cudnn.allow_tf32 is before
    assert (seen["N"], seen["n"], seen["g"], seen["batch"], seen["width"], seen["lr"]) == \
        (64, 100, 2, 64, 8, 3e-3)
    assert seen["kw"] == {"seed": 0, "steps": 40, "seconds": None, "simulation": None,
                          "stitch": None, "refine": None, "val_fraction": 0.0,
                          "bottleneck": 16}


def test_a_bad_stitch_variant_is_refused_before_training(monkeypatch):
    from engine.bench import pinn_quality

    monkeypatch.setattr(pinn_quality, "simulate", lambda *a: pytest.fail("trained anyway"))
    for bad, why in (([{"window": "hann"}], "window"), ([{"size": 8}], "crop, window"),
                     (["probe"], "list of objects")):
        with pytest.raises(InputError, match=why):
            pinn_sweep.run_case({"name": "x", **TINY, "stitch": bad}, torch.device("cpu"),
                                lambda e: None)
    for bad, why in (({"method": "lsqml"}, "epochs"), ({"epochs": []}, "epoch counts"),
                     ({"epochs": 0}, "iterations"), ({"epochs": 2, "method": "dm"}, "method"),
                     ({"epochs": 2, "alpha": 0.5}, "unknown"), ([5], "epochs")):
        with pytest.raises(InputError, match=why):
            pinn_sweep.run_case({"name": "x", **TINY, "refine": bad}, torch.device("cpu"),
                                lambda e: None)


def test_a_variant_that_cannot_be_scored_is_recorded_not_fatal():
    import numpy as np

    from engine.bench.pinn_quality import _variant_scores
    from engine.physics.stitching import Canvas

    far = Canvas(np.ones((4, 4), np.complex64), np.ones((4, 4), bool), (500, 500),
                 np.ones((4, 4), np.float32))
    got = _variant_scores(far, np.ones((32, 32), np.complex64), 0.0, True)
    assert got["whole"] is None and got["held_out"] is None
    assert "coverage" in got["error"]
    stitch = {"crop": 2, "window": "probe", "eps": 1e-6}
    summary = pinn_sweep._summary({"steps": 1, "train_seconds": 0.0, "whole": {}, "held_out": None,
                                   "stitch_variants": [{"stitch": stitch, **got}]})
    assert summary["[window=probe,crop=2] error"] == got["error"]


@pytest.mark.parametrize("grid, why", [({"cases": []}, "cases"),
                                       ({"cases": [{"lr": 1e-3}]}, "name"),
                                       ({"cases": [{"name": "a"}, {"name": "a"}]}, "name")])
def test_bad_grids_are_refused(tmp_path, grid, why):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(grid))
    with pytest.raises(InputError, match=why):
        pinn_sweep.load_grid(path)


def test_unreadable_grid_and_unknown_case_give_one_line_errors(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["bench", "pinn-sweep", "--grid", str(tmp_path / "none.json"),
                 "--out", str(out)]) == 2
    grid = _grid(tmp_path, [{"name": "a"}], TINY)
    assert main(["bench", "pinn-sweep", "--grid", str(grid), "--only", "b",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--grid" in err[0] and "--only" in err[1]
    assert not out.exists()
