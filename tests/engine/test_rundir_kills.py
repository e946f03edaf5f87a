"""Nothing lost under any kill (issue 21, items 1-3).

An ``overwrite`` run is killed (``os._exit`` in a forked child: no cleanup, no ``finally``)
at every step of the replacement, including inside the new bundle's own swap. After each
kill a reader finds a complete run (the previous one until the new one was marked
complete), and so it does after every later command: one that is refused, a failed
replacement, a resume, a successful rerun. SIGTERM and SIGHUP end a CLI run as Ctrl-C does.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

import engine.atomic as atomic
import engine.rundir as rundir
from engine.cli import main
from engine.data import write_npz
from engine.errors import InputError
from engine.evaluation.inventory import format_inventory, inventory
from engine.network.bundles import load_bundle, save_bundle
from engine.rundir import MARKER, open_run, readable_run
from engine.simulation.simulate import SimulationConfig, simulate

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

KILLED = 7
RUN_STEPS = ["moving", "moved_aside", "marked", "written", "verified", "completed", "cleaned"]
BUNDLE_STEPS = ["staging", "staged", "ready", "swapped"]  # inside the new run's bundle write
NEW_WINS = {"completed", "cleaned"}  # the new run was marked complete before the kill


def _old_run(run):
    """A complete earlier run: bundle version 1 beside its recon.npz."""
    with open_run(run) as d:
        _bundle(d, 1)
        (d / "recon.npz").write_bytes(b"old")


def _bundle(d, version):
    save_bundle(d / "bundle", {"w": torch.full((3,), float(version))},
                np.full((8, 8), version, dtype=np.complex64),
                dict(intensity_scale=2.0, probe_factor=1.0, N=8, gridsize=1, version=version))


def _new_run(run, version=2):
    with open_run(run, overwrite=True) as d:
        _bundle(d, version)
        (d / "summary.json").write_text("{}")


def _kill_at(run, hook_module, step) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            hook_module._fault_hook = lambda name: os._exit(KILLED) if name == step else None
            _new_run(run)
        finally:
            os._exit(0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _complete_version(run) -> int:
    """The version of the complete run a reader finds at ``run`` (digests verified)."""
    b = load_bundle(run)
    version = b.meta["version"]
    assert float(b.weights["w"][0]) == version
    where = readable_run(run)
    old = (where / "recon.npz").is_file() and (where / "recon.npz").read_bytes() == b"old"
    assert old == (version == 1)  # never the old recon.npz beside a new bundle
    return version


def _refused(run):
    with pytest.raises(InputError, match="holds a run"):
        with open_run(run):
            pass


def _failed(run):
    with pytest.raises(RuntimeError):
        with open_run(run, overwrite=True) as d:
            _bundle(d, 9)
            raise RuntimeError("diverged")


def _resumed(run):
    with open_run(run, resume=True):
        pass


LATER = {"refused": _refused, "failed overwrite": _failed, "resume": _resumed,
         "rerun": lambda run: _new_run(run, 3)}


def _no_leftovers(run):
    hidden = [p.name for p in run.rglob(".*") if p.name != MARKER]
    assert hidden == [], hidden


@pytest.mark.parametrize("later", sorted(LATER))
@pytest.mark.parametrize(("module", "step"), [(rundir, s) for s in RUN_STEPS]
                         + [(atomic, s) for s in BUNDLE_STEPS])
def test_a_kill_at_every_step_leaves_a_complete_run(tmp_path, module, step, later):
    run = tmp_path / "run"
    _old_run(run)
    assert _kill_at(run, module, step) == KILLED
    expect = 2 if module is rundir and step in NEW_WINS else 1
    assert _complete_version(run) == expect  # before anything else touched the directory
    assert {e["path"] for e in inventory(run)} >= {"bundle/bundle.json"}
    LATER[later](run)
    assert _complete_version(run) == (3 if later == "rerun" else expect)
    _no_leftovers(run)


def test_readers_find_the_previous_run_while_it_is_being_replaced(tmp_path):
    run = tmp_path / "run"
    _old_run(run)
    with open_run(run, overwrite=True) as d:
        (d / "checkpoint").mkdir()
        assert _complete_version(run) == 1
        assert load_bundle(run / "bundle").meta["version"] == 1
        assert "recon.npz" in {e["path"] for e in inventory(run)}
        _bundle(d, 2)
    assert _complete_version(run) == 2


def test_an_incomplete_run_is_named_so(tmp_path):
    run = tmp_path / "run"
    pid = os.fork()
    if pid == 0:
        try:
            with open_run(run) as d:
                _bundle(d, 1)
                os._exit(KILLED)
        finally:
            os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == KILLED
    with pytest.raises(InputError, match="incomplete run"):
        load_bundle(run)
    with pytest.raises(InputError, match="holds an incomplete run"):
        with open_run(run):
            pass
    with open_run(run, resume=True):  # a resume completes it
        pass
    assert load_bundle(run).meta["version"] == 1


def test_temporary_files_of_killed_writes_go_on_the_next_open(tmp_path):
    run = tmp_path / "run"
    _old_run(run)
    (run / ".recon.npz.123-abcdef01.tmp").write_bytes(b"half")
    (run / "bundle" / ".weights.safetensors.9-00ff00ff.tmp").write_bytes(b"half")
    (run / ".checkpoint.tmp-55-0123abcd").mkdir()
    _resumed(run)
    _no_leftovers(run)
    assert _complete_version(run) == 1


def test_a_refused_or_failed_run_removes_the_directory_it_created(tmp_path):
    with pytest.raises(InputError):
        with open_run(tmp_path / "new"):
            raise InputError("data", "something else")
    assert not (tmp_path / "new").exists()
    with pytest.raises(InputError):
        with open_run(tmp_path / "a" / "b" / "new"):
            raise InputError("data", "something else")
    assert not (tmp_path / "a").exists()  # the folders created for it go too
    (tmp_path / "mine").mkdir()
    with pytest.raises(InputError):
        with open_run(tmp_path / "mine"):
            raise InputError("data", "something else")
    assert (tmp_path / "mine").is_dir()  # not created by the run: it stays


def test_inventory_lists_dangling_links_and_fifos_as_unreadable(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"abc")
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "pipe")
    entries = {e["path"]: e for e in inventory(tmp_path)}
    assert entries["a.txt"]["size"] == 3
    assert entries["gone"]["unreadable"] == "dangling symbolic link"
    assert "FIFO" in entries["pipe"]["unreadable"] and entries["pipe"]["sha256"] is None
    text = format_inventory(list(entries.values()))
    assert "2 unreadable" in text and "gone  (unreadable: dangling symbolic link)" in text


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    ds = simulate(SimulationConfig(n_positions=16, N=32, step=6, seed=0))
    return str(write_npz(tmp_path_factory.mktemp("kills") / "d.npz", ds))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_end_a_run_like_ctrl_c(tmp_path, data_file, capsys, monkeypatch,
                                                  signum):
    out = tmp_path / "run"
    argv = ["reconstruct", data_file, "--out", str(out), "--method", "epie",
            "--iterations", "2"]
    assert main(argv) == 0
    before = (out / "recon.npz").read_bytes()
    handler = signal.getsignal(signum)
    capsys.readouterr()
    # the signal arrives once the new run has written its first checkpoint
    monkeypatch.setattr(rundir, "_fault_hook", None)
    real = atomic.atomic_open

    def deliver(path, *a, **k):
        if str(path).endswith("checkpoint.npz"):
            os.kill(os.getpid(), signum)
        return real(path, *a, **k)

    monkeypatch.setattr(atomic, "atomic_open", deliver)
    import engine.data

    monkeypatch.setattr(engine.data, "atomic_open", deliver)
    code = main([*argv, "--overwrite", "--iterations", "3"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("ptycho ")]  # not the progress
    assert code == 128 + signum and len(lines) == 1 and "Traceback" not in err, err
    assert signal.Signals(signum).name in lines[0] and err.rstrip().endswith(lines[0])
    assert (out / "recon.npz").read_bytes() == before  # the previous run is back
    assert signal.getsignal(signum) is handler  # the caller's handler is back


def test_the_command_line_after_a_killed_overwrite(tmp_path, data_file, capsys, caplog):
    """``ptycho reconstruct --overwrite`` killed once its outputs are written: ``inventory``
    lists the previous run (putting it back, as no run holds the directory: one warning
    line), and the next command is refused with one line, the previous run intact."""
    out = tmp_path / "run"
    argv = ["reconstruct", data_file, "--out", str(out), "--method", "epie",
            "--iterations", "1"]
    assert main(argv) == 0
    old = (out / "recon.npz").read_bytes()
    pid = os.fork()
    if pid == 0:
        try:
            rundir._fault_hook = lambda name: os._exit(KILLED) if name == "written" else None
            main([*argv, "--overwrite", "--iterations", "2"])
        finally:
            os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == KILLED
    capsys.readouterr()
    caplog.clear()
    assert main(["inventory", str(out)]) == 0
    listed = capsys.readouterr().out
    import hashlib

    assert hashlib.sha256(old).hexdigest() in listed  # the previous run's recon.npz
    said = [r.getMessage() for r in caplog.records if r.name == "engine.rundir"]
    assert len(said) == 1 and "put back" in said[0], said
    assert main(argv) == 2  # refused: the directory holds a run, which is the previous one
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "holds a run" in err[0], err
    assert (out / "recon.npz").read_bytes() == old
    assert not [p for p in out.iterdir() if p.name.startswith(rundir.ASIDE)]
