"""A reconstruction killed over an existing run leaves a consistent run directory: never the
previous run's ``recon.npz`` beside the new run's checkpoint."""

from __future__ import annotations

import os

import pytest

import engine.iterative.solver as solver
from engine.cli import main
from engine.data import write_npz
from engine.iterative.state import load_checkpoint

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
KILLED = 7


def _killed_after_first_checkpoint(argv) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            real = solver.save_checkpoint

            def save_then_die(*a, **k):
                real(*a, **k)
                os._exit(KILLED)

            solver.save_checkpoint = save_then_die
            main(argv)
        finally:
            os._exit(0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _visible(d):
    return sorted(p.name for p in d.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("how", ["overwrite", "resume"])
def test_killed_reconstruct_leaves_no_stale_recon(small32, tmp_path, capsys, how):
    data = str(write_npz(tmp_path / "d.npz", small32))
    out = tmp_path / "run"
    base = ["reconstruct", data, "--method", "epie", "--batch-size", "12", "--quiet",
            "--checkpoint-every", "1", "--out", str(out)]
    assert main([*base, "--iterations", "2"]) == 0
    assert (out / "recon.npz").is_file()
    # without --overwrite the run is refused, and untouched
    assert main([*base, "--iterations", "3"]) == 2
    assert "holds a run" in capsys.readouterr().err
    extra = ["--overwrite"] if how == "overwrite" else ["--resume", str(out / "checkpoint")]
    assert _killed_after_first_checkpoint([*base, "--iterations", "6", *extra]) == KILLED
    assert _visible(out) == ["checkpoint"]  # no recon.npz, PNGs or history of the old run
    state, _, _ = load_checkpoint(out / "checkpoint")
    assert state.epoch == (1 if how == "overwrite" else 3)
    # the killed run continues from its checkpoint; leftovers are cleaned on the way
    assert main([*base, "--iterations", "4", "--resume", str(out / "checkpoint")]) == 0
    assert "recon.npz" in _visible(out)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".replaced")) == []
