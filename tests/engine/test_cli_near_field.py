"""The command line's near-field and starting-probe flags, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli import main
from engine.data import read_npz


def test_simulate_near_field_then_reconstruct_from_the_data_probe(tmp_path, capsys) -> None:
    data = tmp_path / "nf.npz"
    assert main(["simulate", "--object", "siemens", "--probe", "zone-plate", "--n-positions",
                 "25", "--N", "32", "--step", "5", "--nphotons", "1e5", "--propagation",
                 "near", "--distance", "0.1", "--energy-ev", "12398.4", "--detector-pixel",
                 "1e-6", "--out", str(data)]) == 0
    assert "near field" in capsys.readouterr().out
    ds = read_npz(data)
    assert ds.geometry.propagation == "near"
    assert ds.geometry.wavelength == pytest.approx(1e-10, rel=1e-4)
    out = tmp_path / "run"
    assert main(["reconstruct", str(data), "--iterations", "2", "--batch-size", "8",
                 "--probe-init", "data", "--update-probe", "--quiet", "--out", str(out)]) == 0
    opts = json.loads((out / "options.json").read_text())
    assert opts["probe_init"] == "data" and opts["propagation"] == "auto"
    summary = json.loads((out / "history.json").read_text())["summary"]
    assert summary["propagation"] == "near"
    assert summary["distance"] == pytest.approx(0.1)
    # the run's probe starts the next one
    again = tmp_path / "again"
    assert main(["reconstruct", str(data), "--iterations", "1", "--probe-init",
                 f"file:{out}", "--propagation", "far", "--quiet", "--out", str(again)]) == 0
    with np.load(again / "probe.npz") as z:
        assert z["probe"].shape == (1, 32, 32)


def test_one_line_errors(tmp_path, capsys) -> None:
    data = tmp_path / "ff.npz"
    assert main(["simulate", "--object", "siemens", "--n-positions", "16", "--N", "32",
                 "--step", "6", "--out", str(data)]) == 0
    assert main(["simulate", "--propagation", "near", "--distance", "0.1",
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert main(["simulate", "--propagation", "near", "--distance", "0.1", "--wavelength",
                 "1e-10", "--energy-ev", "8000", "--detector-pixel", "1e-6",
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert main(["reconstruct", str(data), "--propagation", "near", "--iterations", "1",
                 "--out", str(tmp_path / "r")]) == 2
    assert main(["reconstruct", str(data), "--probe-init", "blob", "--iterations", "1",
                 "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 4 and any("--probe-init" in line for line in err)
    assert any("geometry" in line for line in err)
