"""Round trips: simulate → write CXI → read gives the same dataset, and a short
reconstruction from it equals the one from the NPZ; a reconstruction written as CXI and as a
Ptychodus product (HDF5 and NPZ) reads back identical; convert between all formats."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine import api
from engine.data import is_lazy, read_rows
from engine.errors import InputError
from engine.io.detect import detect
from engine.io.product import read_ptychodus

from .conftest import WAVELENGTH


def test_cxi_round_trip_gives_the_same_dataset(tmp_path, sim, geometry):
    path = api.save_dataset(tmp_path / "d.cxi", sim, geometry=geometry)
    assert detect(path) == "cxi"
    back = api.load_dataset(path, lazy=False)
    np.testing.assert_array_equal(back.diffraction, sim.diffraction)
    np.testing.assert_allclose(back.xcoords, sim.xcoords, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.ycoords, sim.ycoords, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(back.probe, sim.probe)
    np.testing.assert_array_equal(back.object, sim.object)
    assert back.geometry == geometry
    assert back.metadata["nphotons"] == sim.metadata["nphotons"]
    # what other programs read: the specification's places, counts, J and metres
    with h5py.File(path) as f:
        assert int(f["cxi_version"][()]) == 160
        assert f["entry_1/data_1/data"].shape == (sim.n, sim.N, sim.N)
        assert f["entry_1/data_1/data"].dtype == np.uint32
        assert f["entry_1/sample_1/geometry_1/translation"].shape == (sim.n, 3)
        assert f["entry_1/instrument_1/source_1/energy"][()] == pytest.approx(
            6.62607015e-34 * 299792458.0 / WAVELENGTH)


def test_reconstruction_from_cxi_equals_the_one_from_npz(tmp_path, sim, geometry):
    npz = api.save_dataset(tmp_path / "d.npz", sim)
    cxi = api.save_dataset(tmp_path / "d.cxi", sim, geometry=geometry)
    opts = api.LSQMLOptions(iterations=2, batch_size=8, seed=0)
    a = api.reconstruct(api.load_dataset(npz), opts)
    b = api.reconstruct(api.load_dataset(cxi), opts)
    np.testing.assert_array_equal(a.object, b.object)
    np.testing.assert_array_equal(a.probe, b.probe)
    assert a.errors == b.errors


def test_lazy_cxi_reads_like_memory(tmp_path, sim, geometry):
    """The lazy dataset is the in-memory one, row for row, and its subsets stay lazy."""
    cxi = api.save_dataset(tmp_path / "d.cxi", sim, geometry=geometry)
    lazy = api.load_dataset(cxi, lazy=True)
    np.testing.assert_array_equal(np.asarray(lazy.diffraction), sim.diffraction)
    part = lazy.subset(np.array([7, 3]))
    assert is_lazy(part.diffraction)
    np.testing.assert_array_equal(read_rows(part.diffraction, slice(None)),
                                  sim.diffraction[[7, 3]])
    np.testing.assert_array_equal(part.xcoords, lazy.xcoords[[7, 3]])


@pytest.fixture(scope="module")
def recon(sim):
    return api.reconstruct(sim, api.LSQMLOptions(iterations=2, batch_size=8, seed=0))


def _same_product(a, b):
    np.testing.assert_array_equal(a.object, b.object)
    np.testing.assert_array_equal(a.probe, b.probe)
    np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(a.losses[0], b.losses[0])
    np.testing.assert_array_equal(a.losses[1], b.losses[1])
    assert a.object_pixel == pytest.approx(b.object_pixel, rel=1e-12)
    assert a.settings == b.settings


@pytest.mark.parametrize("name,fmt", [("r.cxi", None), ("r.h5", None),
                                      ("r.npz", "ptychodus")])
def test_reconstruction_reads_back_identical(tmp_path, sim, geometry, recon, name, fmt):
    from dataclasses import replace

    data = replace(sim, geometry=geometry)
    written = api.reconstruction_product(recon, data)
    path = api.save_reconstruction(tmp_path / name, recon, data, format=fmt)
    back = api.load_reconstruction(path)
    _same_product(written, back)
    assert back.settings["options"]["method"] == "lsqml"
    assert len(back.losses[1]) == 2
    # positions index the product's own object grid: origin taken off
    np.testing.assert_allclose(back.positions, sim.positions - np.asarray(recon.canvas.origin))


def test_cxi_reconstruction_has_process_and_images(tmp_path, sim, geometry, recon):
    from dataclasses import replace

    path = api.save_reconstruction(tmp_path / "r.cxi", recon, replace(sim, geometry=geometry))
    assert detect(path) == "cxi-product"
    with h5py.File(path) as f:
        assert f["entry_1/image_1/data"].shape == recon.probe.shape
        assert f["entry_1/image_2/data"].shape == recon.object.shape
        assert "ptycho-workbench" in f["entry_1/process_1/version"][()].decode()
        assert b"lsqml" in f["entry_1/process_1/configuration"][()]


def test_ptychodus_product_keys(tmp_path, sim, geometry, recon):
    from dataclasses import replace

    path = api.save_reconstruction(tmp_path / "r.h5", recon, replace(sim, geometry=geometry))
    with h5py.File(path) as f:
        for key in ("probe", "object", "probe_position_x_m", "probe_position_y_m",
                    "probe_position_indexes", "loss_values", "loss_epochs",
                    "object_layer_spacing_m"):
            assert key in f
        assert f.attrs["probe_energy_eV"] == pytest.approx(8000.0)
        assert f["object"].attrs["pixel_width_m"] == pytest.approx(geometry.object_pixel(32)[1])
    assert read_ptychodus(path).probe.shape == recon.probe.shape


def test_pixel_units_reconstruction_refused_for_ptychodus(tmp_path, sim, recon):
    with pytest.raises(InputError, match="pixel units"):
        api.save_reconstruction(tmp_path / "r.h5", recon, sim)


def test_convert_between_formats(tmp_path, sim, geometry):
    npz = api.save_dataset(tmp_path / "d.npz", sim)
    with pytest.raises(InputError, match="pixel units"):
        api.convert(npz, tmp_path / "d.cxi")
    cxi = api.convert(npz, tmp_path / "d.cxi", geometry=geometry)
    npz2 = api.convert(cxi, tmp_path / "d2.npz")
    back = api.load_dataset(npz2)
    np.testing.assert_array_equal(back.diffraction, sim.diffraction)
    assert back.geometry == geometry
    prod = api.convert(cxi, tmp_path / "p.h5")  # the dataset's object as a product
    assert detect(prod) == "ptychodus-h5"
    prod_npz = api.convert(prod, tmp_path / "p.npz", format="ptychodus")
    assert detect(prod_npz) == "ptychodus-npz"
    cxi_prod = api.convert(prod_npz, tmp_path / "p.cxi")
    assert detect(cxi_prod) == "cxi-product"
    plain = api.convert(cxi_prod, tmp_path / "plain.npz")
    ds = api.load_dataset(plain, require_diffraction=False)
    np.testing.assert_array_equal(ds.object, sim.object)
    np.testing.assert_allclose(ds.positions, sim.positions, atol=1e-9)
    with pytest.raises(InputError, match="read only"):
        api.convert(cxi, tmp_path / "x.nxs")
    with pytest.raises(InputError, match="extension"):
        api.convert(cxi, tmp_path / "x.tif")


def test_cxi_write_is_atomic(tmp_path, sim, geometry):
    path = api.save_dataset(tmp_path / "d.cxi", sim, geometry=geometry)
    before = path.read_bytes()
    with pytest.raises(InputError):
        api.save_dataset(path, sim)  # no geometry: refused before anything is written
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.cxi"]


def test_a_run_directory_converts_to_products(tmp_path, sim, geometry, capsys):
    from dataclasses import replace

    from engine.cli import main

    data = api.save_dataset(tmp_path / "d.cxi", sim, geometry=geometry)
    ds = api.load_dataset(data)
    result = api.reconstruct(ds, api.LSQMLOptions(iterations=2, batch_size=8, seed=0),
                             out=tmp_path / "run")
    with pytest.raises(InputError, match="^data: expected the dataset the run"):
        api.convert(tmp_path / "run", tmp_path / "r.h5")
    assert main(["convert", str(tmp_path / "run"), str(tmp_path / "r.h5"), "--data",
                 str(data)]) == 0
    back = api.load_reconstruction(tmp_path / "r.h5")
    direct = api.reconstruction_product(result, replace(sim, geometry=geometry))
    np.testing.assert_array_equal(back.object, direct.object)
    np.testing.assert_array_equal(back.probe, direct.probe)
    np.testing.assert_allclose(back.positions, direct.positions, atol=1e-9)
    np.testing.assert_array_equal(back.losses[1], direct.losses[1])
    assert back.settings["options"]["method"] == "lsqml"


def test_near_field_geometry_survives_cxi(tmp_path, sim):
    from engine.geometry import Geometry

    g = Geometry(wavelength=1e-10, distance=0.5, detector_pixel=(1e-6, 1e-6),
                 propagation="near", focus_distance=0.05)
    back = api.load_dataset(api.save_dataset(tmp_path / "nf.cxi", sim, geometry=g), lazy=False)
    assert back.geometry == g
    np.testing.assert_allclose(back.positions, sim.positions, atol=1e-9)
