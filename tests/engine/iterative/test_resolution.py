"""Half-split FRC resolution: agreement with the FRC against the truth, splits, units, CLI.

The problem: the ``asym`` object, a 144-position raster of a 32×32 disk probe, 10³ photons
per pattern, so that the FRC crosses its threshold well below Nyquist. The half-split
curve is read at the half-bit threshold T; the full-data reconstruction against the
truth, on the same rectangle (so on the same rings), at √(2T/(1+T)) (Rosenthal &
Henderson); the two crossings must agree within one ring.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from engine import api
from engine.data import Dataset
from engine.errors import InputError
from engine.evaluation.metrics import frc, frc_crossing, truth_threshold
from engine.geometry import Geometry
from engine.iterative import options_for, reconstruct
from engine.iterative.resolution import split_halves
from engine.physics.stitching import place_on_grid
from engine.simulation.simulate import SimulationConfig, simulate

OPTIONS = {"iterations": 30, "batch_size": 32}


def noisy(nphotons: float) -> Dataset:
    return simulate(SimulationConfig(object="asym", probe="disk", scan="raster",
                                     n_positions=144, N=32, step=4, nphotons=nphotons, seed=1))


@pytest.fixture(scope="module")
def scan() -> Dataset:
    return noisy(1e3)


@pytest.fixture(scope="module")
def halves(scan: Dataset):
    return api.resolution(scan, options_for("lsqml", **OPTIONS))


def truth_crossing(ds: Dataset, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """Crossing of the full reconstruction's FRC against the truth on ``box``, and the
    ring width."""
    full = reconstruct(ds, options_for("lsqml", **OPTIONS))
    r0, c0, h, w = box
    truth = ds.object[r0:r0 + h, c0:c0 + w]
    est = place_on_grid(full.canvas.canvas.astype(np.complex128), full.canvas.origin,
                        (r0, c0), (h, w), np.nan)
    assert np.isfinite(est).all()
    est = est * np.exp(-1j * np.angle(np.sum(est * np.conj(truth))))  # global phase
    rec = frc(truth, est)
    crossing, nyquist = frc_crossing(np.asarray(rec["frequency"]), np.asarray(rec["frc"]),
                                     truth_threshold(np.asarray(rec["half_bit"])))
    assert not nyquist
    return crossing, 1.0 / min(h, w)


def test_half_split_agrees_with_truth(scan: Dataset, halves) -> None:
    assert not halves.reached_nyquist
    assert 2.0 < halves.resolution_px < 10.0
    assert abs(halves.resolution_px - 1.0 / halves.crossing) < 1e-12
    assert max(abs(s) for s in halves.shift_px) < 0.5  # the halves share the grid
    reference, ring = truth_crossing(scan, halves.box)
    assert abs(halves.crossing - reference) <= ring, (halves.crossing, reference, ring)
    # the threshold is the half-bit curve of the rings
    assert np.all((halves.threshold > 0.2) & (halves.threshold < 1.0))
    assert halves.resolution_nm is None and halves.pixel_size_m is None


def test_more_photons_resolve_finer(halves) -> None:
    """The estimate responds to the data: 100x the dose, a finer resolution."""
    better = api.resolution(noisy(1e5), options_for("lsqml", **OPTIONS))
    assert better.resolution_px < 0.8 * halves.resolution_px


def test_pixel_size_gives_nanometres(scan: Dataset, tmp_path) -> None:
    geometry = Geometry(wavelength=1e-10, distance=2.0, detector_pixel=(75e-6, 75e-6))
    ds = replace(scan.subset(np.arange(64)), geometry=geometry)
    out = tmp_path / "res"
    res = api.resolution(ds, options_for("lsqml", iterations=3, batch_size=16), out=out)
    pixel = ds.pixel_size[0]
    assert res.resolution_nm == pytest.approx(res.resolution_px * pixel * 1e9)
    record = json.loads((out / "resolution.json").read_text())
    assert record["resolution_nm"] == pytest.approx(res.resolution_nm)
    assert len(record["frc"]) == len(record["frequency_cycles_per_px"]) == len(res.frc)
    assert (out / "frc.png").stat().st_size > 1000


@pytest.mark.parametrize("scheme", ["checkerboard", "alternate"])
def test_splits_are_interleaved_halves(scan: Dataset, scheme: str) -> None:
    a, b = split_halves(scan, scheme)
    assert abs(a.size - b.size) <= 1 and np.union1d(a, b).size == scan.n
    pos = scan.positions
    if scheme == "checkerboard":
        # no two nearest raster neighbours in the same half
        for half in (a, b):
            p = pos[half]
            d = np.hypot(*(p[:, None] - p[None]).transpose(2, 0, 1))
            np.fill_diagonal(d, np.inf)
            assert d.min() > 4.0 * 1.4
    else:
        np.testing.assert_array_equal(a, np.arange(0, scan.n, 2))


def test_bad_input(scan: Dataset) -> None:
    with pytest.raises(InputError, match="split"):
        split_halves(scan, "stripes")
    with pytest.raises(InputError, match="at least 4"):
        split_halves(scan.subset(np.arange(3)), "alternate")
    with pytest.raises(InputError, match="options"):
        api.resolution(scan, {"method": "lsqml"})  # type: ignore[arg-type]


def test_cli_halves(scan: Dataset, tmp_path, capsys) -> None:
    from engine.cli import main

    data = tmp_path / "d.npz"
    api.save_dataset(data, scan.subset(np.arange(64)))
    out = tmp_path / "frc.json"
    assert main(["evaluate", "--halves", str(data), "--iterations", "3", "--batch-size",
                 "16", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "resolution" in printed and "px" in printed
    assert json.loads(out.read_text())["threshold"].startswith("half-bit")
    assert out.with_suffix(".png").is_file()
