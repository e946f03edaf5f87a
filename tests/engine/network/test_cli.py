"""``ptycho train`` and ``ptycho infer`` on the command line."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cli import main
from engine.data import write_npz
from engine.simulation.simulate import SimulationConfig, simulate


@pytest.fixture(scope="module")
def tiny_npz(tiny_ds, tmp_path_factory):
    return str(write_npz(tmp_path_factory.mktemp("cli") / "tiny.npz", tiny_ds))


def test_dry_run_prints_model_size(tiny_npz, tmp_path, capsys):
    assert main(["train", tiny_npz, "--out", str(tmp_path), "--gridsize", "2",
                 "--base-channels", "8", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for key in ("parameters", "flops_per_pattern", "intensity_scale", "train_groups", "depth"):
        assert key in out
    assert not (tmp_path / "bundle").exists()

    def figures(text):
        return {ln.split(":")[0].strip(): ln.split(":")[1].strip() for ln in text.splitlines()
                if ":" in ln}

    # N = 32: the default bottleneck is 8×8, two levels; --bottleneck 4 adds one
    assert (figures(out)["bottleneck"], figures(out)["depth"]) == ("8", "2")
    # and its cells see the whole 32×32 pattern: no global mixing unless asked
    assert figures(out)["global_mixing"] == "False"
    size = int(figures(out)["parameters"].replace(",", ""))
    assert main(["train", tiny_npz, "--out", str(tmp_path), "--bottleneck", "4",
                 "--dry-run"]) == 0
    assert figures(capsys.readouterr().out)["depth"] == "3"
    assert main(["train", tiny_npz, "--out", str(tmp_path), "--gridsize", "2",
                 "--base-channels", "8", "--global-mixing", "on", "--dry-run"]) == 0
    mixed = figures(capsys.readouterr().out)
    assert mixed["global_mixing"] == "True"
    # an 8×8 map (64² + 64) and its GroupNorm's scale and shift (2 × 32 maps)
    assert int(mixed["parameters"].replace(",", "")) == size + 64 * 64 + 64 + 2 * 32


@pytest.mark.parametrize("argv, match", [
    (["--loss", "l2"], "--loss"),
    (["--epochs", "x"], "--epochs"),
    (["--gridsize", "0"], "--gridsize"),
    (["--bottleneck", "12"], "--bottleneck"),
    (["--global-mixing", "yes"], "--global-mixing"),
    (["--precision", "fp8"], "--precision"),
    (["--resume"], "--resume"),
    (["--lr-schedule", "step"], "--lr-schedule"),
    (["--upsample", "bicubic"], "--upsample"),
    (["--checkpoint-every", "0"], "--checkpoint-every"),
    (["--time-limit", "-5"], "--time-limit"),
    (["--time-limit", "inf"], "--time-limit"),
])
def test_bad_train_arguments_give_one_line(tiny_npz, tmp_path, capsys, argv, match):
    with pytest.raises(SystemExit) as exc:
        rc = main(["train", tiny_npz, "--out", str(tmp_path / "r"), "--epochs", "1", *argv])
        raise SystemExit(rc)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err


def test_train_then_infer_writes_every_artifact(tiny_npz, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", tiny_npz, "--out", str(run), "--gridsize", "2", "--neighbor-count", "5",
                 "--epochs", "1", "--batch-size", "8", "--base-channels", "4", "--accelerator",
                 "cpu", "--log-patch-stats", "--patch-stats-limit", "1", "--zip"]) == 0
    assert (run / "bundle/bundle.json").is_file() and (run / "bundle.zip").is_file()
    assert (run / "analysis/stats_train.json").is_file()
    out = run / "infer"
    assert main(["infer", str(run), tiny_npz, "--out", str(out), "--debug-dump",
                 "--log-patch-stats", "--batch-size", "4", "--device", "cpu"]) == 0
    assert "from bundle: " in capsys.readouterr().out
    with np.load(out / "recon.npz", allow_pickle=False) as z:
        assert {"canvas", "coverage", "origin"} <= set(z.files)
        assert np.iscomplexobj(z["canvas"]) and z["coverage"].any()
    for name in ("amplitude.png", "phase.png", "analysis/stats_inference.json",
                 "debug/canvas.json", "debug/offsets.json", "debug/stats.json",
                 "debug/pred_patches_amp_grid.png", "debug/pred_patches_amp_grid_normalized.png"):
        assert (out / name).stat().st_size > 0, name
    assert main(["infer", str(run / "bundle.zip"), tiny_npz, "--out", str(tmp_path / "z"),
                 "--scaling", "fixed=2.5", "--device", "cpu"]) == 0
    assert "fixed: 2.500000" in capsys.readouterr().out
    # the bf16 network: the same canvas to bf16's precision
    assert main(["infer", str(run), tiny_npz, "--out", str(tmp_path / "b"), "--device", "cpu",
                 "--precision", "bf16", "--batch-size", "4"]) == 0
    with np.load(out / "recon.npz") as a, np.load(tmp_path / "b/recon.npz") as b:
        cov = a["coverage"]
        assert np.array_equal(cov, b["coverage"])
        assert not np.array_equal(a["canvas"][cov], b["canvas"][cov])
        np.testing.assert_allclose(b["canvas"][cov], a["canvas"][cov], rtol=0, atol=0.05)


def test_mismatched_data_gives_one_line(tiny_npz, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", tiny_npz, "--out", str(run), "--epochs", "1", "--base-channels", "4",
                 "--accelerator", "cpu"]) == 0
    capsys.readouterr()
    n64 = str(write_npz(tmp_path / "n64.npz", simulate(SimulationConfig(N=64, n_positions=9))))
    cases = [([n64], "N = 32"), ([tiny_npz, "--gridsize", "2"], "gridsize 1"),
             ([tiny_npz, "--scaling", "fixed=-1"], "fixed"),
             ([tiny_npz, "--scaling", "bundel"], "scaling"),
             ([tiny_npz, "--precision", "fp16"], "--precision")]
    for extra, match in cases:
        rc = main(["infer", str(run), *extra, "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and match in err and len(err.splitlines()) == 1, err
    (run / "bundle/weights.safetensors").write_bytes(b"junk")
    assert main(["infer", str(run), tiny_npz, "--out", str(tmp_path / "o")]) == 2
    assert "tampered or truncated" in capsys.readouterr().err
