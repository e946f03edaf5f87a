"""Multi-process data parallel training on CPU (gloo), through the CLI and Lightning's launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.data import write_npz
from engine.simulation.simulate import SimulationConfig, simulate


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_with_uneven_groups(tmp_path):
    """Two ranks, 65 training groups (odd: a naive split gives the ranks different step
    counts and the collective calls deadlock or fail); one bundle, rank 0's, is written and
    the recorded loss is the mean over both ranks' patterns."""
    ds = simulate(SimulationConfig(object="lines", N=32, n_positions=100, seed=0))
    data = write_npz(tmp_path / "d.npz", ds)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    # Lightning's launcher starts rank 1 by re-running this command line
    cmd = [sys.executable, "-m", "engine.cli", "train", str(data), "--out", str(out),
           "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--epochs", "2",
           "--batch-size", "8", "--base-channels", "4", "--n-groups", "65", "--seed", "0"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((out / "bundle" / "bundle.json").read_text())
    assert meta["config"]["devices"] == 2
    log = proc.stdout + proc.stderr
    # rank 0 alone reports and writes
    assert log.count("wrote ") == 1 and log.count("epoch 2/2") == 1, log[-2000:]
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    # 65 groups: 64 shared evenly, 32 per rank, 4 steps of 8 per epoch on each rank
    assert state["step"] == 8 and len(state["history"]) == 2
    assert state["history"][-1]["loss"] < state["history"][0]["loss"]
