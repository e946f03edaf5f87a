"""``ptycho gui`` starts the workbench in a child process (the engine never imports the GUI)."""

from __future__ import annotations

import sys

import pytest

from engine.cli import gui_cmd, main


def test_gui_launches_the_workbench_module_with_the_data(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(gui_cmd.subprocess, "call", lambda argv: calls.append(argv) or 0)
    data = tmp_path / "d.npz"
    data.write_bytes(b"")
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
