"""``ptycho evaluate`` and ``ptycho inventory`` through the command line's main()."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from engine.data import write_npz


@pytest.fixture(scope="module")
def cli_main():
    from engine import cli

    return cli.main


@pytest.fixture()
def files(tmp_path, dataset, make_canvas):
    data = write_npz(tmp_path / "data.npz", dataset)
    recon = make_canvas(dataset.object * np.exp(0.4j)).save(tmp_path / "recon.npz")
    return data, recon


def test_evaluate_writes_json_and_prints_a_table(cli_main, files, tmp_path, capsys):
    data, recon = files
    out = tmp_path / "sub" / "eval.json"
    assert cli_main(["evaluate", str(recon), "--truth", str(data), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["amplitude"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert result["alignment"]["phase_offset_rad"] == pytest.approx(0.4, abs=1e-6)
    assert result["phase"]["rms_error_rad"] < 1e-6
    assert result["remove_ramp"] is False
    printed = capsys.readouterr().out
    assert "SSIM" in printed and "phase RMS (rad)" in printed and "FRC 1/2-bit" in printed
    assert cli_main(["evaluate", str(recon), "--truth", str(data), "--out", str(out),
                     "--remove-ramp"]) == 0
    assert json.loads(out.read_text())["alignment"]["phase_ramp_rad_per_px"] is not None


def _one_line_error(cli_main, argv, capsys, *needles):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err


def test_evaluate_bad_inputs_give_one_line_errors(cli_main, files, tmp_path, capsys):
    data, recon = files
    out = str(tmp_path / "eval.json")
    _one_line_error(cli_main, ["evaluate", str(tmp_path / "nope.npz"), "--truth", str(data),
                               "--out", out], capsys, "nope.npz", "no such file")
    _one_line_error(cli_main, ["evaluate", str(recon), "--truth", str(tmp_path / "t.npz"),
                               "--out", out], capsys, "t.npz", "no such file")
    no_truth = tmp_path / "no_truth.npz"
    np.savez(no_truth, xcoords=np.zeros(2))
    _one_line_error(cli_main, ["evaluate", str(recon), "--truth", str(no_truth), "--out", out],
                    capsys, "objectGuess")
    bad_recon = tmp_path / "bad_recon.npz"
    np.savez(bad_recon, canvas=np.zeros((4, 4)))
    _one_line_error(cli_main, ["evaluate", str(bad_recon), "--truth", str(data), "--out", out],
                    capsys, "coverage")
    assert not (tmp_path / "eval.json").exists()


def test_inventory_lists_and_hashes_every_file(cli_main, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "analysis" / "deep").mkdir(parents=True)
    contents = {"bundle.json": b"{}", "analysis/stats.json": b"[1, 2]",
                "analysis/deep/z.bin": bytes(range(256)) * 5000, "a.txt": b""}
    for rel, blob in contents.items():
        (run / rel).write_bytes(blob)
    out = run / "inventory.json"
    assert cli_main(["inventory", str(run), "--out", str(out)]) == 0
    listing = json.loads(out.read_text())
    paths = [e["path"] for e in listing["files"]]
    assert paths == sorted(contents)  # the inventory itself is not listed
    for e in listing["files"]:
        blob = contents[e["path"]]
        assert e["size"] == len(blob)
        assert e["sha1"] == hashlib.sha1(blob).hexdigest()
        assert e["sha256"] == hashlib.sha256(blob).hexdigest()
    assert listing["n_files"] == 4 and listing["total_bytes"] == sum(map(len, contents.values()))
    printed = capsys.readouterr().out
    assert hashlib.sha256(b"[1, 2]").hexdigest() in printed and "4 files" in printed
    # a second run gives the same list (the old inventory is still left out)
    assert cli_main(["inventory", str(run), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["files"] == listing["files"]
    _one_line_error(cli_main, ["inventory", str(tmp_path / "missing")], capsys, "missing")


def test_inventory_check_verifies_every_digest(cli_main, tmp_path, capsys):
    import torch

    from engine.network.bundles import bundle_bytes, save_bundle

    run = tmp_path / "run"
    weights = {"w": torch.arange(64, dtype=torch.float32)}
    save_bundle(run / "bundle", weights, np.ones((8, 8), np.complex64),
                {"intensity_scale": 2.0, "probe_factor": 1.0, "N": 8, "gridsize": 1})
    (run / "bundle.zip").write_bytes(bundle_bytes(run / "bundle").getvalue())
    (run / "notes.txt").write_text("hello")
    assert cli_main(["inventory", str(run), "--out", str(run / "inventory.json")]) == 0
    capsys.readouterr()
    assert cli_main(["inventory", str(run), "--check"]) == 0
    out = capsys.readouterr()
    # bundle.json: its manifest + 2 files; the zip's copy: the same 3; inventory: 5 files
    assert "checked 11 digests" in out.out and "all match" in out.out and not out.err
    # one flipped byte: named by the bundle manifest and by the inventory, one line each
    w = run / "bundle" / "weights.safetensors"
    blob = bytearray(w.read_bytes())
    blob[-1] ^= 1
    w.write_bytes(bytes(blob))
    (run / "notes.txt").unlink()
    assert cli_main(["inventory", str(run), "--check"]) == 1
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 3, lines
    assert sum("MISMATCH bundle/weights.safetensors" in ln for ln in lines) == 2
    assert any("bundle/bundle.json" in ln for ln in lines)
    assert any("notes.txt: missing" in ln for ln in lines)
    assert "3 mismatches" in out.out


def test_evaluate_warns_when_registration_fails(cli_main, files, tmp_path, capsys):
    from engine.physics.stitching import Canvas

    data, recon = files
    good = Canvas.load(recon)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=good.canvas.shape) + 1j * rng.normal(size=good.canvas.shape)
    bad = Canvas(noise.astype(np.complex64), good.coverage, good.origin, good.weight)
    bad_path = bad.save(tmp_path / "noise.npz")
    out = tmp_path / "eval.json"
    assert cli_main(["evaluate", str(recon), "--truth", str(data), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["alignment"]["registration"]["ok"] is True
    assert "registration failed" not in capsys.readouterr().err
    assert cli_main(["evaluate", str(bad_path), "--truth", str(data), "--out", str(out)]) == 0
    reg = json.loads(out.read_text())["alignment"]["registration"]
    assert reg["ok"] is False and "correlate" in reg["reason"]
    captured = capsys.readouterr()
    assert "warning: registration failed" in captured.err
    assert "REGISTRATION FAILED" in captured.out
