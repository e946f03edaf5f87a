"""Run directories: refused when they hold a run, locked while a run writes, checked writable
before any work; output errors end in one line (exit status 2), never a traceback."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

import engine.atomic as atomic
import engine.rundir as rundir
from engine.cli import main
from engine.data import write_npz
from engine.errors import InputError, OutputError
from engine.rundir import check_writable, holds_run, open_run
from engine.simulation.simulate import SimulationConfig, simulate


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    ds = simulate(SimulationConfig(n_positions=16, N=32, step=6, seed=0))
    return str(write_npz(tmp_path_factory.mktemp("rundir") / "d.npz", ds))


def _names(path) -> list[str]:
    """The entries of ``path`` but the run's state marker."""
    return sorted(p.name for p in path.iterdir() if p.name != rundir.MARKER)


def _one_line_error(capsys, code) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---- item 4: refusal, overwrite, lock --------------------------------------------------------

def test_a_directory_holding_a_run_is_refused(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "recon.npz").write_bytes(b"old")
    with pytest.raises(InputError, match=r"holds a run \(checkpoint, recon.npz\)"):
        with open_run(tmp_path):
            pass
    assert (tmp_path / "recon.npz").read_bytes() == b"old"


def test_unrelated_files_do_not_make_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with open_run(tmp_path) as run:
        (run / "recon.npz").write_bytes(b"new")
    assert (tmp_path / "notes.txt").read_text() == "mine" and holds_run(tmp_path) == ["recon.npz"]


def test_overwrite_replaces_the_run_whole(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "recon.npz").write_bytes(b"old")
    with open_run(tmp_path, overwrite=True) as run:
        assert holds_run(run) == []  # the old run is out of the way from the start
        (run / "bundle").mkdir()
    assert _names(tmp_path) == ["bundle"]


def test_a_failed_overwrite_puts_the_previous_run_back(tmp_path):
    (tmp_path / "recon.npz").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with open_run(tmp_path, overwrite=True) as run:
            (run / "checkpoint").mkdir()
            raise RuntimeError("diverged")
    assert _names(tmp_path) == ["recon.npz"]
    assert (rundir.readable_run(tmp_path) / "recon.npz").read_bytes() == b"old"


def test_a_killed_overwrite_leaves_no_mixture_and_is_undone_next_time(tmp_path):
    (tmp_path / "recon.npz").write_bytes(b"old")
    pid = os.fork()
    if pid == 0:
        try:
            with open_run(tmp_path, overwrite=True) as run:
                (run / "checkpoint").mkdir()
                os._exit(7)
        finally:
            os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
    visible = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert visible == ["checkpoint"]  # the new checkpoint, not beside the old recon.npz
    said = []
    with pytest.raises(InputError, match="holds a run"):  # refused, and nothing lost
        with open_run(tmp_path, notify=said.append):
            pass
    assert len(said) == 1 and "put back" in said[0]
    assert _names(tmp_path) == ["recon.npz"]
    assert (tmp_path / "recon.npz").read_bytes() == b"old"


def test_resume_keeps_the_checkpoint_and_drops_what_it_supersedes(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "recon.npz").write_bytes(b"old")
    with open_run(tmp_path, resume=True, keep=("checkpoint",)) as run:
        assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == \
            ["checkpoint"]
    assert _names(tmp_path) == ["checkpoint"]


def test_a_second_run_into_a_locked_directory_fails_at_once(tmp_path, data_file, capsys):
    with open_run(tmp_path / "run"):
        with pytest.raises(InputError, match="in use by another run"):
            with open_run(tmp_path / "run", overwrite=True):
                pass
        code = main(["train", data_file, "--out", str(tmp_path / "run"), "--epochs", "1",
                     "--base-channels", "4", "--accelerator", "cpu"])
        assert "in use by another run" in _one_line_error(capsys, code)
    assert not (tmp_path / "run" / "bundle").exists()
    with open_run(tmp_path / "run"):  # released with the first run
        pass


def test_train_refuses_another_run_without_overwrite(tmp_path, data_file, capsys):
    out = tmp_path / "run"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "checkpoint.npz").write_bytes(b"a reconstruction's checkpoint")
    argv = ["train", data_file, "--out", str(out), "--epochs", "1", "--base-channels", "4",
            "--accelerator", "cpu"]
    line = _one_line_error(capsys, main(argv))
    assert "holds a run" in line and "overwrite" in line
    assert (out / "checkpoint" / "checkpoint.npz").read_bytes() == \
        b"a reconstruction's checkpoint"
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "bundle" / "bundle.json").is_file()
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == \
        ["model.safetensors", "optimizer.safetensors", "state.json"]


# ---- item 5: writability before any work; OSError on output in one line ----------------------

def test_check_writable_cases(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_writable(f, directory=True)
    with pytest.raises(InputError, match="is a directory"):
        check_writable(tmp_path, directory=False)
    with pytest.raises(InputError, match="not a directory"):
        check_writable(f / "sub" / "x.npz", directory=False)
    with pytest.raises(InputError, match="/proc/ptycho-run"):
        check_writable("/proc/ptycho-run/out", directory=True)
    check_writable(tmp_path / "new" / "deeper", directory=True)
    assert not (tmp_path / "new").exists()  # checking creates nothing


@pytest.mark.parametrize("command", [
    ["train", "{data}", "--out", "{file}"],
    ["infer", "{dir}", "{data}", "--out", "{file}"],
    ["reconstruct", "{data}", "--out", "{file}"],
    ["demo", "--out", "{file}"],
    ["simulate", "--n-positions", "16", "--N", "32", "--out", "{dir}"],
    ["stitch", "{data}", "--out", "{file}/x.npz"],
    ["stats", "{data}", "--out", "/proc/ptycho/stats.json"],
    ["evaluate", "{dir}/recon.npz", "--truth", "{data}", "--out", "{dir}"],
    ["compare", "{data}", "{data}", "--out", "{dir}"],
    ["inventory", "{dir}", "--out", "{dir}"],
    ["bench", "physics", "--out", "{dir}"],
])
def test_unwritable_outputs_are_refused_before_work(tmp_path, data_file, capsys, command):
    f = tmp_path / "a-file"
    f.write_text("x")
    argv = [a.format(data=data_file, file=f, dir=tmp_path) for a in command]
    line = _one_line_error(capsys, main(argv))
    assert line.startswith(f"ptycho {command[0]}: error: --out: "), line


def test_read_only_file_system_is_one_line(tmp_path, data_file, capsys, monkeypatch):
    real = os.open

    def read_only(path, flags, *a, **k):
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(rundir.os, "open", read_only)
    line = _one_line_error(capsys, main(["train", data_file, "--out", str(tmp_path / "r")]))
    assert "Read-only file system" in line and str(tmp_path / "r") in line


def test_full_disk_while_writing_is_one_line(tmp_path, capsys, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    out = tmp_path / "d.npz"
    line = _one_line_error(capsys, main(["simulate", "--n-positions", "16", "--N", "32",
                                         "--out", str(out)]))
    assert line == f"ptycho simulate: error: {out}: cannot write (No space left on device)"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file left


def test_output_error_is_one_line():
    exc = OutputError("/x/y", "Permission denied")
    assert str(exc) == "/x/y: cannot write (Permission denied)" and isinstance(exc, OSError)


# ---- item 6: file modes honour the umask -----------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_honour_the_umask(tmp_path, umask):
    import torch

    from engine.network.bundles import save_bundle

    old = os.umask(umask)
    try:
        atomic.write_json(tmp_path / "a.json", {"a": 1})
        save_bundle(tmp_path / "run" / "bundle", {"w": torch.ones(2)},
                    np.ones((4, 4), np.complex64),
                    dict(intensity_scale=1.0, probe_factor=1.0, N=4, gridsize=1))
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask
    bundle = tmp_path / "run" / "bundle"
    assert bundle.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o777 & ~umask
    for f in bundle.iterdir():
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f
