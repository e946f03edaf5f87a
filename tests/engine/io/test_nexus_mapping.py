"""A NeXus NXcxi_ptycho file (photon energy from the beam, never the machine's source) and a
facility's own layout read through a TOML mapping file."""

from __future__ import annotations

import tomllib

import h5py
import numpy as np
import pytest

from engine import api
from engine.backends import get_backend
from engine.backends.propagation import Propagator
from engine.errors import InputError
from engine.io.detect import detect
from engine.io.streaming import fill_masked

from .conftest import DISTANCE, ENERGY_EV, PIXEL, WAVELENGTH, object_pixel


def _nx(group, cls):
    group.attrs["NX_class"] = cls
    return group


def write_nexus(path, ds, *, beam_energy=True):
    dy, dx = object_pixel(ds.N)
    with h5py.File(path, "w") as f:
        e = _nx(f.create_group("entry"), "NXentry")
        e["definition"] = "NXcxi_ptycho"
        inst = _nx(e.create_group("instrument_1"), "NXinstrument")
        src = _nx(inst.create_group("source_1"), "NXsource")
        src["energy"] = 6.0  # the storage ring's 6 GeV: not the photon energy
        src["energy"].attrs["units"] = "GeV"
        if beam_energy:
            beam = _nx(inst.create_group("beam_1"), "NXbeam")
            beam["energy"] = ENERGY_EV / 1e3
            beam["energy"].attrs["units"] = "keV"
        det = _nx(inst.create_group("detector_1"), "NXdetector")
        det["data"] = np.rint(ds.diffraction.astype(np.float64) ** 2)
        for name, value, unit in (("distance", DISTANCE * 1e3, "mm"),
                                  ("x_pixel_size", PIXEL[1] * 1e6, "um"),
                                  ("y_pixel_size", PIXEL[0] * 1e6, "um")):
            det[name] = value
            det[name].attrs["units"] = unit
        data = _nx(e.create_group("data_1"), "NXdata")
        data["data"] = h5py.SoftLink("/entry/instrument_1/detector_1/data")
        data["x"] = ds.xcoords * dx * 1e9
        data["x"].attrs["units"] = "nm"
        data["y"] = ds.ycoords * dy * 1e9
        data["y"].attrs["units"] = "nm"
    return path


def test_nexus_reads_the_beam_energy(tmp_path, sim):
    path = write_nexus(tmp_path / "scan.nxs", sim)
    assert detect(path) == "nexus"
    back = api.load_dataset(path, lazy=False)
    assert back.geometry.wavelength == pytest.approx(WAVELENGTH, rel=1e-12)
    assert back.geometry.distance == pytest.approx(DISTANCE, rel=1e-12)
    assert back.geometry.detector_pixel == pytest.approx(PIXEL, rel=1e-12)
    shift = back.metadata["position_shift_px"]
    np.testing.assert_allclose(back.xcoords - shift[1], sim.xcoords, atol=1e-9)
    np.testing.assert_allclose(back.ycoords - shift[0], sim.ycoords, atol=1e-9)
    np.testing.assert_array_equal(back.diffraction, sim.diffraction)
    assert back.metadata["energy_path"] == "/entry/instrument_1/beam_1/energy"


def test_nexus_without_beam_energy_never_takes_the_machines(tmp_path, sim):
    path = write_nexus(tmp_path / "scan.nxs", sim, beam_energy=False)
    with pytest.raises(InputError) as info:
        api.load_dataset(path)
    msg = str(info.value)
    assert "NXbeam" in msg and "machine's" in msg and "\n" not in msg


MAPPING = """
[diffraction]
path = "/scan/pilatus/frames"

[translation]
x = { path = "/scan/motors/samx", unit = "um" }
y = { path = "/scan/motors/samy" }   # the file's units attribute says mm

[energy]
path = "/scan/mono/energy"
unit = "keV"

[distance]
value = 2000
unit = "mm"

[detector_pixel]
x = { value = 55, unit = "um" }
y = { value = 75, unit = "um" }

[mask]
path = "/scan/pilatus/bad"
good = 0
"""


def write_facility(path, ds, *, energy_units=None):
    dy, dx = object_pixel(ds.N)
    with h5py.File(path, "w") as f:
        f["scan/pilatus/frames"] = np.rint(ds.diffraction.astype(np.float64) ** 2)
        f["scan/motors/samx"] = ds.xcoords * dx * 1e6
        f["scan/motors/samy"] = ds.ycoords * dy * 1e3
        f["scan/motors/samy"].attrs["units"] = "mm"
        f["scan/mono/energy"] = ENERGY_EV / 1e3
        if energy_units:
            f["scan/mono/energy"].attrs["units"] = energy_units
        bad = np.zeros((ds.N, ds.N), np.uint8)
        bad[0, :3] = 1
        f["scan/pilatus/bad"] = bad
    return path


def test_mapped_layout(tmp_path, sim):
    path = write_facility(tmp_path / "facility.h5", sim)
    mapping = tmp_path / "facility.toml"
    mapping.write_text(MAPPING)
    assert detect(path) == "hdf5"
    back = api.load_dataset(path, mapping=mapping, lazy=False)
    assert back.geometry.wavelength == pytest.approx(WAVELENGTH, rel=1e-12)
    assert back.geometry.detector_pixel == pytest.approx(PIXEL, rel=1e-12)
    shift = back.metadata["position_shift_px"]
    np.testing.assert_allclose(back.xcoords - shift[1], sim.xcoords, atol=1e-9)
    np.testing.assert_allclose(back.ycoords - shift[0], sim.ycoords, atol=1e-9)
    assert int((~back.pixel_mask).sum()) == 3
    np.testing.assert_array_equal(back.diffraction, sim.diffraction)


def test_unmapped_hdf5_asks_for_a_mapping_and_lists_the_file(tmp_path, sim):
    path = write_facility(tmp_path / "facility.h5", sim)
    with pytest.raises(InputError) as info:
        api.load_dataset(path)
    msg = str(info.value)
    assert msg.startswith("mapping: expected a mapping file")
    assert "/scan/motors/samx (16,) float64" in msg and "\n" not in msg


def test_mapping_missing_path_names_it_and_lists_datasets(tmp_path, sim):
    path = write_facility(tmp_path / "facility.h5", sim)
    mapping = tmp_path / "m.toml"
    mapping.write_text(MAPPING.replace("/scan/mono/energy", "/scan/mono/E"))
    with pytest.raises(InputError) as info:
        api.load_dataset(path, mapping=mapping)
    msg = str(info.value)
    assert "mapping 'energy.path' = '/scan/mono/E'" in msg
    assert "/scan/mono/energy () float64" in msg and "\n" not in msg


def test_mapping_energy_without_unit_is_refused(tmp_path, sim):
    path = write_facility(tmp_path / "facility.h5", sim)
    mapping = tmp_path / "m.toml"
    mapping.write_text(MAPPING.replace('unit = "keV"\n', ""))
    with pytest.raises(InputError, match="read as J gives .* as eV gives .* say which"):
        api.load_dataset(path, mapping=mapping)
    # the file's own units attribute settles it
    path2 = write_facility(tmp_path / "f2.h5", sim, energy_units="keV")
    back = api.load_dataset(path2, mapping=mapping, lazy=False)
    assert back.geometry.wavelength == pytest.approx(WAVELENGTH, rel=1e-12)


def test_bad_mapping_files(tmp_path, sim):
    path = write_facility(tmp_path / "facility.h5", sim)
    bad = tmp_path / "bad.toml"
    bad.write_text("[energy\n")
    with pytest.raises(InputError, match="TOML"):
        api.load_dataset(path, mapping=bad)
    bad.write_text(MAPPING.replace("[distance]", "[distanse]"))
    with pytest.raises(InputError, match="unknown \\['distanse'\\]"):
        api.load_dataset(path, mapping=bad)


def test_mapped_near_field_without_probe_starts_from_the_mean_amplitude(tmp_path, sim):
    path = write_facility(tmp_path / "facility.h5", sim)
    spec = tomllib.loads(MAPPING)
    spec["propagation"] = "near"
    back = api.load_dataset(path, mapping=spec, lazy=False)
    assert back.geometry.propagation == "near"
    assert back.metadata["probe_source"] == ("estimated: from the mean pattern "
                                             "(probe_init 'data')")
    # near field: the object pixel is the detector pixel (plane wave, M = 1)
    assert back.pixel_size == pytest.approx(PIXEL)
    amp = sim.diffraction.astype(np.float64)
    valid = back.pixel_mask
    assert not valid[0, :3].any()  # the three dead pixels of the file's mask
    # the square root of the mean intensity (dead pixels filled from their valid
    # neighbours), back-propagated to the sample plane
    filled = fill_masked(np.mean(amp**2, axis=0), valid)
    prop = Propagator.from_geometry(back.geometry, back.N)
    expected = np.asarray(prop.bind(get_backend("numpy")).adjoint(
        np.sqrt(filled).astype(np.complex128)))
    probe = back.probe.astype(np.complex128)
    k = np.vdot(expected, probe) / np.vdot(expected, expected)
    np.testing.assert_allclose(probe, k * expected, atol=1e-4 * np.abs(probe).max())
    # the solvers' probe_init="data" start is the same field
    start = api.initial_probe(back, "data")
    k2 = np.vdot(start, probe) / np.vdot(start, start)
    np.testing.assert_allclose(probe, k2 * start, atol=1e-4 * np.abs(probe).max())
    # scaled to the mean photons per pattern on valid pixels
    energy = float(np.mean(np.sum(amp**2 * valid, axis=(1, 2))))
    assert float(np.sum(np.abs(probe) ** 2)) == pytest.approx(energy, rel=1e-5)


def test_nexus_and_mapped_files_convert_to_cxi(tmp_path, sim):
    nxs = write_nexus(tmp_path / "scan.nxs", sim)
    mapped = write_facility(tmp_path / "facility.h5", sim)
    mapping = tmp_path / "facility.toml"
    mapping.write_text(MAPPING)
    for src, kw in ((nxs, {}), (mapped, {"mapping": mapping})):
        original = api.load_dataset(src, lazy=False, **kw)
        out = api.convert(src, tmp_path / f"{src.stem}.cxi", **kw)
        assert detect(out) == "cxi"
        back = api.load_dataset(out, lazy=False)
        assert back.geometry == original.geometry
        np.testing.assert_allclose(back.positions, original.positions, atol=1e-9)
        np.testing.assert_array_equal(back.diffraction, original.diffraction)
        if original.pixel_mask is not None:
            np.testing.assert_array_equal(back.pixel_mask, original.pixel_mask)
