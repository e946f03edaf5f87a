"""``api.inspect`` / ``ptycho inspect`` figures and warnings, and ``ptycho convert``."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from engine import api
from engine.cli import main
from engine.io.inspect import inspect_dataset, probe_diameter

from .conftest import PIXEL, object_pixel, write_spec_cxi


def test_probe_diameter_of_a_disk_and_a_gaussian():
    rr, cc = np.indices((64, 64)) - 32
    disk = (rr**2 + cc**2 <= 10**2).astype(float)
    assert probe_diameter(disk) == pytest.approx(20.0, rel=0.03)
    w = 8.0
    gauss = np.exp(-(rr**2 + cc**2) / w**2)  # |P|² = exp(-2 r²/w²): 1/e² diameter 2w
    assert probe_diameter(gauss) == pytest.approx(2 * w, rel=1e-3)


def test_inspect_cxi_figures(tmp_path, sim):
    mask = np.zeros((32, 32), np.uint32)
    mask[:2, :] = 1
    path = write_spec_cxi(tmp_path / "s.cxi", sim, mask=mask)
    r = api.inspect(path)
    assert (r.format, r.n, r.N, r.lazy) == ("cxi", 16, 32, True)
    assert r.energy_ev == pytest.approx(8000.0)
    assert r.detector_pixel == PIXEL
    assert r.object_pixel == pytest.approx(object_pixel())
    assert r.masked_pixels == 64
    counts = (sim.diffraction.astype(np.float64) ** 2)[:, 2:, :].sum(axis=(1, 2))
    assert r.photons["median"] == pytest.approx(np.median(counts))
    assert r.photons["min"] == pytest.approx(counts.min())
    assert r.step_px == pytest.approx(5.0, rel=0.05)
    assert r.extent_px == pytest.approx((np.ptp(sim.ycoords), np.ptp(sim.xcoords)))
    text = "\n".join(r.lines())
    assert "object pixel    " in text and " nm" in text and "µm" in text
    assert not any("overlap" in w for w in r.warnings)


def test_inspect_warnings(sim):
    n = sim.n
    # a sparse scan: 4x the step
    sparse = replace(sim, xcoords=sim.xcoords * 4, ycoords=sim.ycoords * 4, object=None,
                     patches=None)
    assert any("under 50 %" in w for w in inspect_dataset(sparse).warnings)
    # duplicated and shuffled positions
    x, y = sim.xcoords.copy(), sim.ycoords.copy()
    x[5], y[5] = x[4], y[4]
    order = np.random.default_rng(0).permutation(n)
    dup = replace(sim, xcoords=x[order], ycoords=y[order], object=None, patches=None)
    warnings = inspect_dataset(dup).warnings
    assert any("duplicated" in w for w in warnings)
    assert any("out of order" in w for w in warnings)
    # patterns off-centre by 5 pixels
    shifted = replace(sim, diffraction=np.roll(sim.diffraction, 5, axis=2))
    r = inspect_dataset(shifted)
    assert any("off-centre" in w for w in r.warnings)
    assert r.centre_offset_px[1] == pytest.approx(5.0, abs=0.3)
    assert abs(r.centre_offset_px[0]) < 0.3
    missing = replace(sim, metadata={**sim.metadata, "probe_source": "estimated: x"})
    assert any("no probe" in w for w in inspect_dataset(missing).warnings)
    assert inspect_dataset(sim).warnings == []


def test_cli_inspect_and_convert(tmp_path, sim, capsys):
    npz = api.save_dataset(tmp_path / "d.npz", sim)
    cxi = tmp_path / "d.cxi"
    assert main(["convert", str(npz), str(cxi)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--energy-ev/--distance-m/--detector-pixel-m: expected a wavelength" in err
    assert main(["convert", str(npz), str(cxi), "--energy-ev", "8000", "--distance-m", "2",
                 "--detector-pixel-m", "75e-6", "55e-6"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "object pixel" in out and "nm" in out
    js = tmp_path / "r.json"
    assert main(["inspect", str(cxi), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "energy          8 keV" in out and "detector pixel  75 µm x 55 µm" in out
    assert json.loads(js.read_text())["n"] == 16
    bad = tmp_path / "bad.h5"
    write_spec_cxi(bad, sim, energy="none-eV")
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "say which" in err
    assert main(["inspect", str(bad), "--energy-unit", "eV"]) == 0
    capsys.readouterr()
    plain = tmp_path / "plain.h5"
    import h5py

    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    assert main(["inspect", str(plain)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ptycho inspect: error: --mapping: expected a mapping file")


def test_saturated_pixels_from_the_file_or_the_type_ceiling(tmp_path, sim):
    import h5py

    path = write_spec_cxi(tmp_path / "s.cxi", sim)
    with h5py.File(path, "a") as f:
        d = f["entry_1/instrument_1/detector_1/data"]
        top = int(d[()].max())
        f["entry_1/instrument_1/detector_1/saturation_value"] = top
    r = api.inspect(path)
    counts = np.rint(sim.diffraction.astype(np.float64) ** 2)
    assert r.saturated_pixels == int((counts >= top).sum()) >= 1
    assert r.saturation_source == "file"
    # no stated value: int32 counts at 2^31 - 1 are the clipped ones
    path2 = write_spec_cxi(tmp_path / "t.cxi", sim)
    with h5py.File(path2, "a") as f:
        d = f["entry_1/instrument_1/detector_1/data"]
        row = d[3]
        row[:2, :2] = np.iinfo(np.int32).max
        d[3] = row
    r2 = api.inspect(path2)
    assert r2.saturated_pixels == 4 and r2.saturation_source == "int32 ceiling"
    assert "4 (at >= 2.14748e+09 counts, int32 ceiling)" in "\n".join(r2.lines())
