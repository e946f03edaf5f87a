"""``ptycho reconstruct``: files written, options parsed, bad input refused."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from engine.cli import reconstruct_cmd
from engine.data import write_npz
from engine.errors import InputError
from engine.physics.stitching import Canvas


def _parse(argv):
    parser = argparse.ArgumentParser(prog="ptycho")
    reconstruct_cmd.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["reconstruct", *argv])


def test_reconstruct_writes_the_run_directory(small32, tmp_path, capsys):
    data = write_npz(tmp_path / "data.npz", small32)
    out = tmp_path / "runs" / "e"
    args = _parse([str(data), "--method", "rpie", "--iterations", "3", "--batch-size", "6",
                   "--backend", "numpy", "--probe-modes", "2",
                   "--checkpoint-every", "2", "--out", str(out)])
    assert args.handler(args) == 0
    canvas = Canvas.load(out / "recon.npz")
    assert canvas.canvas.dtype == np.complex64
    assert np.isnan(canvas.canvas[~canvas.coverage]).all()
    assert np.isfinite(canvas.canvas[canvas.coverage]).all() and canvas.coverage.mean() > 0.5
    with np.load(out / "probe.npz") as z:
        assert z["probe"].shape == (2, small32.N, small32.N)
        assert z["probeGuess"].shape == (small32.N, small32.N)
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history["history"]] == [1, 2, 3]
    assert json.loads((out / "options.json").read_text())["probe_modes"] == 2
    assert not (out / "error.png").exists()  # renamed for what it shows
    for png in ("amplitude.png", "phase.png", "probe.png", "convergence.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "checkpoint" / "checkpoint.npz").is_file()
    assert "epoch 3" in capsys.readouterr().err

    # continue the same run to 5 epochs from its checkpoint
    args = _parse([str(data), "--method", "rpie", "--iterations", "5", "--batch-size", "6",
                   "--probe-modes", "2", "--resume", str(out / "checkpoint"), "--quiet",
                   "--out", str(out)])
    assert args.handler(args) == 0
    assert len(json.loads((out / "history.json").read_text())["history"]) == 5


@pytest.mark.parametrize("argv, name", [
    (["--method", "epie", "--alpha", "-1"], "alpha"),
    (["--batch-size", "0"], "batch_size"),
    (["--method", "lsqml", "--alpha", "0.5"], "--alpha"),
    (["--method", "epie", "--noise", "poisson"], "--noise"),
    (["--method", "rpie", "--batch-normalisation", "peak"], "--batch-normalisation"),
    (["--init", "missing.npz"], "init"),  # the engine names the keyword; main() the flag
    (["--torch-threads", "-1"], "--torch-threads"),
])
def test_bad_arguments_are_one_line_errors(small32, tmp_path, argv, name):
    data = write_npz(tmp_path / "data.npz", small32)
    args = _parse([str(data), "--iterations", "1", "--out", str(tmp_path / "o"), *argv])
    with pytest.raises(InputError) as info:
        args.handler(args)
    assert str(info.value).startswith(name) and "\n" not in str(info.value)
    assert not (tmp_path / "o" / "recon.npz").exists()
