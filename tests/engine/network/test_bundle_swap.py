"""Crash safety of bundle replacement: a kill at every step of the swap leaves a bundle.

Each case forks a process that replaces ``run/bundle`` and dies (``os._exit``: no cleanup,
no ``finally``) at one step of the swap; the parent then finds a loadable, digest-verified
bundle at the path users know, and the next write recovers and removes every leftover.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch

import engine.atomic as atomic
from engine.errors import OutputError
from engine.network.bundles import load_bundle, resolve_bundle_path, save_bundle

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

META = dict(intensity_scale=2.0, probe_factor=1.0, N=8, gridsize=1)
KILLED = 7


def _save(run, version: int):
    w = {"w": torch.full((3,), float(version))}
    probe = np.full((8, 8), version, dtype=np.complex64)
    return save_bundle(run / "bundle", w, probe, {**META, "version": version})


def _save_and_die_at(run, step: str, can_exchange: bool) -> int:
    pid = os.fork()
    if pid == 0:  # the child: replace the bundle, die at ``step``
        try:
            atomic._fault_hook = lambda name: os._exit(KILLED) if name == step else None
            if not can_exchange:
                atomic._exchange = lambda a, b: False
            _save(run, 2)
        finally:
            os._exit(0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


# (step, exchange supported, the version the path must show after the kill)
CASES = [
    ("staging", True, 1), ("staged", True, 1), ("ready", True, 1), ("swapped", True, 2),
    ("staging", False, 1), ("staged", False, 1), ("ready", False, 1),
    ("moved_aside", False, 2), ("swapped", False, 2),
]


@pytest.mark.parametrize(("step", "can_exchange", "expect"), CASES)
def test_kill_at_each_step_leaves_a_bundle(tmp_path, step, can_exchange, expect):
    run = tmp_path / "run"
    _save(run, 1)
    assert _save_and_die_at(run, step, can_exchange) == KILLED
    bundle = load_bundle(run)  # digests verified
    assert bundle.meta["version"] == expect
    assert float(bundle.weights["w"][0]) == expect
    # the next write recovers: one bundle, no hidden leftovers
    _save(run, 3)
    assert sorted(p.name for p in run.iterdir()) == ["bundle"]
    assert load_bundle(run / "bundle").meta["version"] == 3
    assert resolve_bundle_path(run) == run / "bundle"


def test_first_write_killed_leaves_nothing_half_written(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pid = os.fork()
    if pid == 0:
        try:
            atomic._fault_hook = lambda name: os._exit(KILLED) if name == "staged" else None
            _save(run, 1)
        finally:
            os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == KILLED
    assert not (run / "bundle").exists()
    _save(run, 2)
    assert sorted(p.name for p in run.iterdir()) == ["bundle"]


def _failing_rename(monkeypatch, target_name: str):
    real = os.replace

    def replace(src, dst):
        if os.fspath(dst).endswith(target_name) and ".ready-" in os.fspath(src):
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(dst))
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)


def test_failed_final_rename_keeps_old_bundle(tmp_path, monkeypatch):
    run = tmp_path / "run"
    _save(run, 1)
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    _failing_rename(monkeypatch, "bundle")
    with pytest.raises(OutputError) as info:
        _save(run, 2)
    msg = str(info.value)
    assert "\n" not in msg and "No space left on device" in msg and "bundle" in msg
    monkeypatch.undo()
    assert load_bundle(run).meta["version"] == 1
    assert sorted(p.name for p in run.iterdir()) == ["bundle"]


def test_failed_exchange_keeps_old_bundle(tmp_path, monkeypatch):
    run = tmp_path / "run"
    _save(run, 1)

    def exchange(a, b):
        raise OSError(errno.EIO, "Input/output error", os.fspath(b))

    monkeypatch.setattr(atomic, "_exchange", exchange)
    with pytest.raises(OutputError, match="Input/output error"):
        _save(run, 2)
    assert load_bundle(run).meta["version"] == 1
    assert sorted(p.name for p in run.iterdir()) == ["bundle"]
