"""Bad pixels found on load (issue 23 item 4): ``api.load_dataset`` of a detector's file
masks saturated, hot and dead pixels (the file's saturation value where it states one),
records counts and provenance, and ``ptycho inspect`` reports them; NPZ as it is."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine import api
from engine.cli import main
from engine.io.build import mean_pattern_probe

from .conftest import write_spec_cxi

HOT = (5, 7)
SATURATED = (20, 9)


@pytest.fixture()
def corrupted(sim):
    """``sim`` with a hot pixel (3x the largest amplitude in every frame) and a pixel at the
    stated saturation in two frames; and that saturation (counts)."""
    D = sim.diffraction.astype(np.float64).copy()
    peak = float(D.max())
    saturation = float(np.rint(20 * peak**2))
    D[:, HOT[0], HOT[1]] = 3 * peak
    D[[2, 9], SATURATED[0], SATURATED[1]] = np.sqrt(saturation)
    return sim.with_diffraction(D.astype(np.float32)), saturation


def _write(tmp_path, ds, saturation, *, probe=True):
    path = write_spec_cxi(tmp_path / "bad.cxi", ds, probe=probe)
    with h5py.File(path, "a") as f:
        f["entry_1/instrument_1/detector_1/saturation_value"] = saturation
    return path


def test_a_cxi_files_bad_pixels_are_masked_on_load(tmp_path, corrupted):
    ds, saturation = corrupted
    path = _write(tmp_path, ds, saturation)
    back = api.load_dataset(path, lazy=True)
    assert not back.pixel_mask[HOT] and not back.pixel_mask[SATURATED]
    counts = back.metadata["bad_pixels"]
    assert (counts["hot"], counts["saturated"]) == (1, 1)
    assert counts["saturation_counts"] == pytest.approx(saturation)
    assert counts["saturation_source"] == "file"
    # nothing else of a clean simulated pattern is taken for bad
    assert int((~back.pixel_mask).sum()) == counts["bad"] == 2
    step = back.metadata["provenance"][-1]
    assert step["step"] == "bad_pixels" and step["result"]["newly_masked"] == 2
    assert step["parameters"]["saturation"] == pytest.approx(saturation)
    # turned off: only the file's own mask (none here)
    assert api.load_dataset(path, lazy=True, bad_pixels=False).pixel_mask is None


def test_the_estimated_probe_is_made_again_without_the_bad_pixels(tmp_path, corrupted):
    ds, saturation = corrupted
    path = _write(tmp_path, ds, saturation, probe=False)
    raw = api.load_dataset(path, lazy=False, bad_pixels=False)
    back = api.load_dataset(path, lazy=False)
    assert back.metadata["probe_source"].endswith("(bad pixels filled)")
    expected, _ = mean_pattern_probe(back.diffraction, back.geometry, back.pixel_mask)
    np.testing.assert_allclose(back.probe, expected.astype(np.complex64), rtol=1e-5,
                               atol=1e-6 * float(np.abs(expected).max()))
    # the hot pixel (9x the brightest count in all 16 frames) changes the estimate visibly
    clean, _ = mean_pattern_probe(np.asarray(raw.diffraction), raw.geometry, back.pixel_mask)
    assert np.abs(raw.probe - clean).max() > 0.01 * np.abs(clean).max()


def test_an_npz_is_read_as_it_is_unless_asked(tmp_path, corrupted):
    ds, _ = corrupted
    path = api.save_dataset(tmp_path / "bad.npz", ds)
    assert api.load_dataset(path).pixel_mask is None
    asked = api.load_dataset(path, bad_pixels=True)
    assert not asked.pixel_mask[HOT]
    assert asked.metadata["bad_pixels"]["saturation_source"] == "repeated stack maximum"
    # options given are the options used: a threshold too high for the hot pixel
    lenient = api.load_dataset(path, bad_pixels=api.BadPixelOptions(threshold=1e6))
    assert lenient.pixel_mask[HOT]
    assert lenient.metadata["provenance"][-1]["parameters"]["threshold"] == 1e6


def test_inspect_reports_the_counts_and_the_provenance(tmp_path, corrupted, capsys):
    ds, saturation = corrupted
    path = _write(tmp_path, ds, saturation)
    report = api.inspect(path)
    assert report.bad_pixels["bad"] == 2 and report.masked_pixels == 2
    assert [s["step"] for s in report.provenance] == ["bad_pixels"]
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert ("bad pixels      2 found in the data and masked: 1 saturated, 1 hot, "
            "0 cold/dead") in out
    assert "provenance      bad_pixels: saturated 1, hot 1" in out
    assert main(["inspect", str(path), "--no-bad-pixels"]) == 0
    out = capsys.readouterr().out
    assert "found in the data" not in out and "masked pixels   0 of 1024" in out


def test_a_prepared_file_lists_every_step(tmp_path, corrupted, capsys):
    ds, saturation = corrupted
    path = _write(tmp_path, ds, saturation)
    out = tmp_path / "prepared.npz"
    assert main(["prepare", str(path), "--out", str(out), "--centre", "com"]) == 0
    capsys.readouterr()
    report = api.inspect(out)
    assert [s["step"] for s in report.provenance] == ["bad_pixels", "centre"]
    assert report.masked_pixels >= 2
    # read again, the bad pixels are not looked for twice
    assert [s["step"] for s in api.load_dataset(
        api.convert(out, tmp_path / "again.cxi")).metadata["provenance"]] == \
        ["bad_pixels", "centre"]
