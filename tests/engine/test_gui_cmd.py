"""``ptycho gui`` starts the workbench in a child process (the engine never imports the GUI)."""

from __future__ import annotations

import sys

import pytest

from engine.cli import gui_cmd, main


def test_gui_launches_the_workbench_module_with_the_data(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(gui_cmd.subprocess, "call", lambda argv: calls.append(argv) or 0)
    from engine.data import write_npz
    from engine.simulation.simulate import SimulationConfig, simulate

    data = write_npz(tmp_path / "d.npz", simulate(SimulationConfig(n_positions=16, N=32,
                                                                   step=6, seed=0)))
    assert main(["gui", str(data)]) == 0
    assert calls == [[sys.executable, "-m", "ptycho_gui", str(data)]]
    assert main(["gui"]) == 0 and calls[-1][-1] == "lines"


def test_gui_refuses_a_missing_file(monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(gui_cmd.subprocess, "call", lambda argv: pytest.fail("launched"))
    assert main(["gui", "no/such.npz"]) == 2
    assert "data: expected" in capsys.readouterr().err


def test_gui_without_a_display_runs_the_demo(monkeypatch, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    ran = []
    monkeypatch.setattr("engine.cli.main", lambda argv: ran.append(argv) or 0)
    assert gui_cmd.run(type("A", (), {"data": "lines", "demo_out": str(tmp_path)})()) == 0
    assert ran == [["demo", "--out", str(tmp_path)]]


def _bad_data(tmp_path):
    import pickle

    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("hello")
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "nothing").mkdir()
    (tmp_path / "x.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    return {"missing": "no/such.npz", "empty": tmp_path / "empty.npz",
            "text": tmp_path / "text.npz", "pickle": tmp_path / "pickle.npz",
            "empty dir": tmp_path / "nothing", "bad zip": tmp_path / "x.zip",
            "not a sample": "linez"}


@pytest.mark.parametrize("display", [True, False])
@pytest.mark.parametrize("case", ["missing", "empty", "text", "pickle", "empty dir",
                                  "bad zip", "not a sample"])
def test_gui_refuses_bad_data_in_one_line_with_or_without_a_display(
        monkeypatch, tmp_path, capsys, display, case):
    if display:
        monkeypatch.setenv("DISPLAY", ":99")
    else:
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(gui_cmd.subprocess, "call", lambda argv: pytest.fail("launched"))
    data = _bad_data(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = main(["gui", str(data), "--demo-out", str(tmp_path / "demo")])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("ptycho gui: error: ")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no demo ran


def test_gui_without_a_display_says_so_and_what_runs(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    ran = []
    monkeypatch.setattr("engine.cli.main", lambda argv: ran.append(argv) or 0)
    args = type("A", (), {"data": "asym", "demo_out": str(tmp_path)})()
    assert gui_cmd.run(args) == 0
    err = capsys.readouterr().err
    assert "no display found" in err and "headless demo" in err and "asym" in err
