"""CXI files written with h5py to the specification: both axis orders, energies in J and eV,
the detector orientation, masks, links; bad files give one line each."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine import api
from engine.errors import InputError
from engine.io.cxi import read_cxi
from engine.io.lazy import H5Stack

from .conftest import DISTANCE, PIXEL, WAVELENGTH, object_pixel, write_spec_cxi


def _same_scan(ds, back):
    """Positions equal up to the placement shift, which puts the smallest at N/2."""
    shift = back.metadata["position_shift_px"]
    assert np.allclose(back.ycoords - shift[0], ds.ycoords, atol=1e-9)
    assert np.allclose(back.xcoords - shift[1], ds.xcoords, atol=1e-9)
    assert min(back.ycoords.min(), back.xcoords.min()) == pytest.approx(back.N / 2)


@pytest.mark.parametrize("order", ["xy", "yx"])
@pytest.mark.parametrize("energy", ["J", "eV", "wavelength"])
def test_spec_file_reads_with_its_geometry(tmp_path, sim, order, energy):
    path = write_spec_cxi(tmp_path / "s.cxi", sim, order=order, energy=energy)
    back = api.load_dataset(path, translation_order=order, lazy=False)
    assert back.geometry.wavelength == pytest.approx(WAVELENGTH, rel=1e-12)
    assert back.geometry.distance == DISTANCE
    assert back.geometry.detector_pixel == PIXEL
    assert back.pixel_size == pytest.approx(object_pixel(), rel=1e-12)
    _same_scan(sim, back)
    # the file stores counts: the dataset holds their square roots, exactly the simulated
    np.testing.assert_array_equal(back.diffraction, sim.diffraction)
    np.testing.assert_array_equal(back.probe, sim.probe)
    assert back.metadata["probe_source"].startswith("file")


def test_wrong_axis_order_swaps_the_scan(tmp_path, sim):
    """Reading a yx file as xy swaps rows and columns (what the option is for): with unequal
    pixel sizes the positions change scale too."""
    path = write_spec_cxi(tmp_path / "s.cxi", sim, order="yx")
    wrong = read_cxi(path, lazy=False)
    right = read_cxi(path, translation_order="yx", lazy=False)
    assert not np.allclose(wrong.positions, right.positions)
    dy, dx = object_pixel()
    # read as xy: col = (y dy) / dx
    span = np.ptp(sim.ycoords) * dy / dx
    assert np.ptp(wrong.xcoords) == pytest.approx(span, rel=1e-9)


def test_basis_vectors_orient_the_detector(tmp_path, sim):
    """basis_vectors with rows along +y and columns along +x (flipped from the CXI default)
    mirror the scan; the CDTools (3, 2) transpose reads the same."""
    flipped = np.array([[0.0, PIXEL[0], 0.0], [PIXEL[1], 0.0, 0.0]])
    a = read_cxi(write_spec_cxi(tmp_path / "a.cxi", sim, basis=flipped), lazy=False)
    b = read_cxi(write_spec_cxi(tmp_path / "b.cxi", sim, basis=flipped.T), lazy=False)
    np.testing.assert_allclose(a.positions, b.positions)
    np.testing.assert_allclose(a.ycoords + sim.ycoords, (a.ycoords + sim.ycoords)[0],
                               atol=1e-9)
    np.testing.assert_allclose(a.xcoords + sim.xcoords, (a.xcoords + sim.xcoords)[0],
                               atol=1e-9)
    default = np.array([[0.0, -PIXEL[0], 0.0], [-PIXEL[1], 0.0, 0.0]])
    c = read_cxi(write_spec_cxi(tmp_path / "c.cxi", sim, basis=default), lazy=False)
    _same_scan(sim, c)


def test_translation_units_attribute(tmp_path, sim):
    path = write_spec_cxi(tmp_path / "s.cxi", sim, translation_unit="um")
    _same_scan(sim, read_cxi(path, lazy=False))


def test_mask_and_data_without_link(tmp_path, sim):
    mask = np.zeros((32, 32), np.uint32)
    mask[3, 4] = 1  # a defect
    mask[5, 6] = 0x1000  # "has signal": usable
    mask[7, 8] = 0x1001  # defect plus signal: not usable
    path = write_spec_cxi(tmp_path / "s.cxi", sim, mask=mask, data_in_detector=False)
    back = read_cxi(path, lazy=False)
    assert back.pixel_mask.sum() == 32 * 32 - 2
    assert not back.pixel_mask[3, 4] and back.pixel_mask[5, 6] and not back.pixel_mask[7, 8]


def test_lazy_read_keeps_the_patterns_in_the_file(tmp_path, sim):
    path = write_spec_cxi(tmp_path / "s.cxi", sim)
    back = api.load_dataset(path, lazy=True, bad_pixels=False)
    assert isinstance(back.diffraction, H5Stack) and back.diffraction.rows_read == 0
    # the bad-pixel pass on load streams the rows once and leaves them in the file
    checked = api.load_dataset(path, lazy=True)
    assert isinstance(checked.diffraction, H5Stack)
    assert checked.diffraction.rows_read == sim.n
    np.testing.assert_array_equal(back.diffraction[[3, 1]], sim.diffraction[[3, 1]])


def test_probe_missing_is_estimated_from_the_mean_pattern(tmp_path, sim):
    path = write_spec_cxi(tmp_path / "s.cxi", sim, probe=False)
    back = read_cxi(path, lazy=False)
    assert back.metadata["probe_source"] == ("estimated: from the mean pattern "
                                             "(probe_init 'data')")
    # its far field has the mean pattern's energy
    power = float(np.sum(np.abs(back.probe) ** 2))
    mean = float(np.mean(np.sum(sim.diffraction.astype(np.float64) ** 2, axis=(1, 2))))
    assert power == pytest.approx(mean, rel=1e-5)
    # one implementation: the solvers' probe_init="data" start, only scaled otherwise
    start = api.initial_probe(back, "data")
    scaled = back.probe.astype(np.complex128) * np.sqrt(np.sum(np.abs(start) ** 2) / power)
    np.testing.assert_allclose(scaled, start, atol=1e-4 * np.abs(start).max())
    # a compact, centred beam: the pixel at N/2 is near its brightest, the corner dark
    a = np.abs(back.probe)
    assert a[16, 16] > 0.5 * a.max() and a[0, 0] < 0.05 * a.max()


def test_energy_without_unit_is_refused_with_both_readings(tmp_path, sim):
    path = write_spec_cxi(tmp_path / "s.cxi", sim, energy="none-eV")
    with pytest.raises(InputError) as info:
        read_cxi(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert "8000 read as J gives λ=2.483e-29 m, as eV gives λ=1.55e-10 m; say which" in msg
    back = read_cxi(path, energy_unit="eV", lazy=False)
    assert back.geometry.wavelength == pytest.approx(WAVELENGTH, rel=1e-12)


def test_missing_data_lists_what_the_file_holds(tmp_path):
    path = tmp_path / "x.cxi"
    with h5py.File(path, "w") as f:
        f["cxi_version"] = 160
        f["entry_1/instrument_1/detector_1/distance"] = 1.0
    with pytest.raises(InputError) as info:
        api.load_dataset(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert "/entry_1/data_1/data" in msg
    assert "/entry_1/instrument_1/detector_1/distance () float64" in msg


@pytest.mark.parametrize("shape,expected", [((16, 32), "(n, N, N)"),
                                            ((16, 32, 30), "square patterns")])
def test_wrong_pattern_shape_is_one_line(tmp_path, sim, shape, expected):
    path = write_spec_cxi(tmp_path / "s.cxi", sim)
    with h5py.File(path, "a") as f:
        del f["entry_1/instrument_1/detector_1/data"]
        f["entry_1/instrument_1/detector_1/data"] = np.ones(shape)
    with pytest.raises(InputError) as info:
        read_cxi(path)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_translation_count_must_match(tmp_path, sim):
    path = write_spec_cxi(tmp_path / "s.cxi", sim)
    with h5py.File(path, "a") as f:
        del f["entry_1/sample_1/geometry_1/translation"]
        f["entry_1/sample_1/geometry_1/translation"] = np.zeros((5, 3))
    with pytest.raises(InputError, match=r"translation.*\(16, 3\)"):
        read_cxi(path)


def test_external_link_to_the_data_is_followed(tmp_path, sim):
    """Detectors often write the frames to another file the master file links to."""
    frames = tmp_path / "frames.h5"
    with h5py.File(frames, "w") as f:
        f["frames"] = np.rint(sim.diffraction.astype(np.float64) ** 2).astype(np.uint16)
    path = write_spec_cxi(tmp_path / "master.cxi", sim)
    with h5py.File(path, "a") as f:
        del f["entry_1/instrument_1/detector_1/data"]
        f["entry_1/instrument_1/detector_1/data"] = h5py.ExternalLink("frames.h5", "/frames")
    back = api.load_dataset(path, lazy=True)
    np.testing.assert_array_equal(back.diffraction[:], sim.diffraction)
