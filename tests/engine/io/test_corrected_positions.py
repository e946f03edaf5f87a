"""A position-corrected reconstruction written as CXI (``api.save_reconstruction`` and
``ptycho convert RUN``) carries the corrected positions, in metres, and they read back."""

from __future__ import annotations

from dataclasses import replace

import h5py
import numpy as np
import pytest

from engine import api
from engine.cli import main

from .conftest import object_pixel


@pytest.fixture(scope="module")
def corrected(geometry):
    """A scan given with ~1 px errors, reconstructed with position correction."""
    ds = api.simulate(api.SimulationConfig(object="grf", n_positions=25, N=32, step=5,
                                           seed=2, nphotons=1e6))
    rng = np.random.default_rng(0)
    err = rng.normal(0.0, 0.7, (ds.n, 2))
    given = replace(ds, xcoords=ds.xcoords + err[:, 1], ycoords=ds.ycoords + err[:, 0],
                    geometry=geometry)
    result = api.reconstruct(given, api.LSQMLOptions(
        iterations=6, batch_size=25, seed=0, position_correction=True, position_start=1))
    return given, result


def _translations(path):
    with h5py.File(path, "r") as f:
        return f["entry_1/sample_1/geometry_1/translation"][()]


def test_save_reconstruction_writes_the_corrected_positions_in_metres(tmp_path, corrected):
    given, result = corrected
    assert result.positions is not None
    moved = np.abs(result.positions - given.positions).max()
    assert moved > 0.05  # the solver did move them: the test tells the two apart
    expected = result.positions - np.asarray(result.canvas.origin, np.float64)
    for name in ("r.cxi", "r.h5"):
        back = api.load_reconstruction(api.save_reconstruction(tmp_path / name, result, given))
        assert back.corrected_positions
        np.testing.assert_allclose(back.positions, expected, atol=1e-9)
    # in metres: translations move by the corrected positions times the object pixel
    # (CXI sample translations are the negative of the probe's place on the object)
    t = _translations(tmp_path / "r.cxi")
    dy, dx = object_pixel()
    np.testing.assert_allclose(-(t[:, 0] - t[0, 0]), (expected[:, 1] - expected[0, 1]) * dx,
                               rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(-(t[:, 1] - t[0, 1]), (expected[:, 0] - expected[0, 0]) * dy,
                               rtol=1e-9, atol=1e-15)


def test_convert_of_a_run_directory_writes_its_corrected_positions(tmp_path, corrected, capsys):
    given, result = corrected
    run = result.save(tmp_path / "run")
    data = api.save_dataset(tmp_path / "given.npz", given)
    out = tmp_path / "run.cxi"
    assert main(["convert", str(run), str(out), "--data", str(data)]) == 0
    capsys.readouterr()
    back = api.load_reconstruction(out)
    assert back.corrected_positions
    np.testing.assert_allclose(
        back.positions, result.positions - np.asarray(result.canvas.origin, np.float64),
        atol=1e-9)
    # not the positions the data file gives
    assert np.abs(back.positions - (given.positions - result.canvas.origin)).max() > 0.05
