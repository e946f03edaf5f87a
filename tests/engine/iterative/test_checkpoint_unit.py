"""The solver checkpoint is one atomic unit: a kill mid-write never tears arrays from state."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import engine.atomic as atomic
from engine.data import save_arrays
from engine.errors import InputError
from engine.iterative import EPIEOptions
from engine.iterative.state import SolverState, load_checkpoint, save_checkpoint

KILLED = 7


def _state(epoch: int) -> SolverState:
    # the arrays carry their epoch so a torn checkpoint shows as a mismatch
    obj = np.full((8, 8), epoch, dtype=np.complex128)
    probe = np.full((1, 4, 4), epoch, dtype=np.complex128)
    return SolverState(obj, probe, epoch, np.random.default_rng(epoch),
                       [{"epoch": k, "error": 1.0 / k} for k in range(1, epoch + 1)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("renames_before_kill", [0, 1, 2])
def test_kill_between_writes_never_tears_the_checkpoint(tmp_path, renames_before_kill):
    ck = tmp_path / "checkpoint"
    options = EPIEOptions(iterations=5)
    save_checkpoint(ck, _state(1), options)
    pid = os.fork()
    if pid == 0:
        try:
            real, done = os.replace, []

            def replace(src, dst):  # die after the n-th completed rename of the write
                if len(done) == renames_before_kill:
                    os._exit(KILLED)
                real(src, dst)
                done.append(dst)

            atomic.os.replace = replace
            save_checkpoint(ck, _state(2), options)
            os._exit(KILLED)  # fewer renames than n: killed just after the write
        finally:
            os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == KILLED
    state, _, meta = load_checkpoint(ck)
    assert state.epoch in (1, 2)
    assert np.all(state.object == state.epoch) and np.all(state.probe == state.epoch)
    assert len(state.history) == state.epoch == meta["epoch"]


def test_checkpoint_is_one_file(tmp_path):
    ck = tmp_path / "checkpoint"
    (ck).mkdir()
    (ck / "checkpoint.json").write_text("{}")  # an older run's state file goes
    save_checkpoint(ck, _state(3), EPIEOptions(iterations=5))
    assert sorted(p.name for p in ck.iterdir()) == ["checkpoint.npz"]
    state, options, _ = load_checkpoint(ck)
    assert state.epoch == 3 and options.iterations == 5


def test_two_file_checkpoint_is_refused_in_one_line(tmp_path):
    ck = tmp_path / "checkpoint"
    save_arrays(ck / "checkpoint.npz", {"object": np.ones((4, 4)), "probe": np.ones((1, 2, 2)),
                                        "origin": np.zeros(2, dtype=np.int64)})
    (ck / "checkpoint.json").write_text(json.dumps({"epoch": 1}))
    with pytest.raises(InputError, match="older checkpoint") as info:
        load_checkpoint(ck)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a zip"])
def test_unreadable_checkpoint_is_refused_in_one_line(tmp_path, content):
    ck = tmp_path / "checkpoint"
    ck.mkdir()
    (ck / "checkpoint.npz").write_bytes(content)
    with pytest.raises(InputError, match="checkpoint") as info:
        load_checkpoint(ck)
    assert "\n" not in str(info.value)
