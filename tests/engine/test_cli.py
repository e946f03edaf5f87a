"""The command line: every command end to end, and one-line errors on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli import main
from engine.physics.stitching import Canvas


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "data.npz"
    rc = main(["simulate", "--object", "asym", "--probe", "disk", "--scan", "raster",
               "--n-positions", "49", "--N", "32", "--step", "5", "--jitter", "0",
               "--nphotons", "1e6", "--seed", "0", "--out", str(path)])
    assert rc == 0
    return path


def test_simulate_writes_valid_file(data_file):
    from engine.data import read_npz

    ds = read_npz(data_file)
    assert ds.n == 49 and ds.N == 32 and ds.patches is not None
    assert json.loads(json.dumps(ds.metadata))["simulation"]["object"] == "asym"


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_stitch_truth(tmp_path, data_file, backend):
    out = tmp_path / "canvas.npz"
    rc = main(["stitch", str(data_file), "--source", "truth", "--gridsize", "2", "--crop", "16",
               "--window", "uniform", "--backend", backend, "--device", "cpu", "--out", str(out)])
    assert rc == 0
    from engine.data import read_npz

    c, ds = Canvas.load(out), read_npz(data_file)
    got, cov = c.crop_object(ds.object.shape), c.crop_coverage(ds.object.shape)
    assert cov.sum() > 1000
    # integer positions (no jitter): the stitched truth is the object itself
    np.testing.assert_allclose(got[cov], ds.object[cov], atol=2e-5)


def test_stats_and_compare(tmp_path, data_file, capsys):
    s2, s1 = tmp_path / "s2.json", tmp_path / "s1.json"
    assert main(["stats", str(data_file), "--source", "truth", "--gridsize", "2", "--backend",
                 "numpy", "--out", str(s2), "--grid-png", str(tmp_path / "grid.png")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("patch stats (truth batch 0): mean=")  # one line per batch
    assert main(["stats", str(data_file), "--gridsize", "1", "--out", str(s1)]) == 0
    assert (tmp_path / "grid.png").stat().st_size > 1000
    assert (tmp_path / "grid_normalized.png").exists()
    records = json.loads(s2.read_text())
    assert records[-1]["batch"] == "all" and records[-1]["C"] == 4
    assert json.loads(s1.read_text())[-1]["var_across_group"] is None
    capsys.readouterr()
    assert main(["compare", str(s2), str(s1), "--out", str(tmp_path / "r.json")]) == 0
    table = capsys.readouterr().out
    assert "var_across_group" in table and "undefined" in table and "verdict:" in table
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["figures"]["mean"]["status"] == "ok"


@pytest.mark.parametrize("argv,needle", [
    (["stitch", "MISSING.npz", "--out", "x.npz"], "no such file"),
    (["stitch", "DATA", "--gridsize", "3", "--neighbor-count", "2", "--out", "x.npz"],
     "--neighbor-count: expected K >= C - 1 = 8"),
    (["stitch", "DATA", "--n-groups", "1000", "--out", "x.npz"], "--n-groups: expected at most 49"),
    (["stitch", "DATA", "--backend", "jax", "--out", "x.npz"], "backend: expected one of"),
    (["stitch", "DATA", "--crop", "64", "--out", "x.npz"], "crop: expected at most"),
    (["stats", "DATA", "--source", "bundle:x", "--out", "x.json"], "--source: expected one of"),
    (["compare", "MISSING.json", "MISSING.json"], "no such file"),
    (["simulate", "--N", "33", "--out", "x.npz"], "N: expected an even"),
])
def test_bad_input_one_line_error(tmp_path, data_file, capsys, argv, needle):
    argv = [str(data_file) if a == "DATA" else a for a in argv]
    argv = [str(tmp_path / a) if a.startswith("MISSING") else a for a in argv]
    argv = [str(tmp_path / a) if a in ("x.npz", "x.json") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and err[0].startswith(f"ptycho {argv[0]}: error:")
    assert not (tmp_path / "x.npz").exists()


def test_failed_run_keeps_previous_output(tmp_path, data_file):
    out = tmp_path / "canvas.npz"
    assert main(["stitch", str(data_file), "--out", str(out)]) == 0
    before = out.read_bytes()
    assert main(["stitch", str(data_file), "--n-groups", "1000", "--out", str(out)]) == 2
    assert out.read_bytes() == before


def test_bench_physics_small(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "physics", "--N", "16", "--n", "64", "--stitch-patches", "100",
                 "--repeat", "1", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["parity_max_rel_error_torch_vs_numpy64"] < 1e-5
    assert {f["backend"] for f in r["forward"]} == {"numpy", "torch"}
    assert all(f["forward_patterns_per_s"] > 0 for f in r["forward"])
    assert r["env"]["date"] and r["stitch"][0]["patches"] == 100


def test_compare_canvases(tmp_path, data_file, capsys):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert main(["stitch", str(data_file), "--gridsize", "1", "--out", str(a)]) == 0
    assert main(["stitch", str(data_file), "--gridsize", "2", "--out", str(b)]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    # a table like evaluate's, not the report's JSON (that goes to --out)
    assert "SSIM" in printed and "amplitude scale" in printed and "{" not in printed
    assert len(printed.splitlines()) < 20
    report = json.loads((tmp_path / "r.json").read_text())
    # the same truth stitched with two groupings: identical where both cover
    assert report["amplitude"]["ssim"] > 0.999
    assert report["phase"]["rms_error_rad"] < 1e-3


def test_demo_writes_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-positions", "49", "--backend", "numpy",
                 "--iterations", "8"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["parseval"]["relative_error"] < 1e-5
    assert report["stitch_round_trip_max_error"] < 1e-5
    assert report["patch_stats"]["var_zero_mean"] > 0
    assert (out / "report.png").stat().st_size > 10_000
    # even a short rPIE run recovers the phase far better than a flat object (~0.4 rad)
    assert report["reconstruction"]["phase_rms_rad"] < 0.2
    for name in report["files"]:
        assert (out / name).exists(), name


def test_simulate_from_npz_records_its_source(tmp_path, data_file):
    import hashlib

    from engine.data import read_npz

    out = tmp_path / "resim.npz"
    assert main(["simulate", "--from-npz", str(data_file), "--nphotons", "1e5",
                 "--out", str(out)]) == 0
    meta = read_npz(out).metadata
    assert meta["source"]["sha256"] == hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert meta["source"]["file"] == str(data_file.resolve())
    sim = meta["simulation"]
    # the generators' settings did not shape this data: not recorded as if they had
    assert sim["object"] == sim["probe"] == sim["scan"] == "given"
    for moot in ("probe_radius", "defocus", "step", "jitter", "amplitude_image"):
        assert moot not in sim, moot
    assert sim["nphotons"] == 1e5 and sim["n_positions"] == 49
