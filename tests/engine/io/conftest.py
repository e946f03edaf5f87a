"""Small seeded datasets and files written with h5py directly to the CXI and NeXus
specifications (not by this project's writers)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine.geometry import ELECTRONVOLT, PLANCK_C, Geometry
from engine.simulation.simulate import SimulationConfig, simulate

ENERGY_EV = 8000.0
WAVELENGTH = PLANCK_C / (ENERGY_EV * ELECTRONVOLT)
DISTANCE = 2.0
PIXEL = (75e-6, 55e-6)  # (row, col): unequal, so a swapped axis shows


@pytest.fixture(scope="session")
def sim():
    """16 patterns of 32 x 32, whole Poisson counts, a true object."""
    return simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=5, seed=3,
                                     nphotons=1e5))


@pytest.fixture(scope="session")
def geometry():
    return Geometry(wavelength=WAVELENGTH, distance=DISTANCE, detector_pixel=PIXEL)


def object_pixel(N=32):
    return (WAVELENGTH * DISTANCE / (N * PIXEL[0]), WAVELENGTH * DISTANCE / (N * PIXEL[1]))


def write_spec_cxi(path, ds, *, order="xy", energy="J", basis=None, probe=True, mask=None,
                   data_in_detector=True, translation_unit=None):
    """A CXI 1.6 file as the specification lays it out, from ``ds`` (positions in object
    pixels become sample translations in metres with the default detector orientation).

    energy: "J" (no units attribute: the specification's unit), "eV" (a units attribute),
    "none-eV" (an eV value with no unit: ambiguous), or "wavelength" (no energy at all).
    """
    dy, dx = object_pixel(ds.N)
    t = np.zeros((ds.n, 3))
    t[:, 0] = ds.xcoords * dx
    t[:, 1] = ds.ycoords * dy
    t[:, 2] = 1e-3  # z: must not move anything
    if order == "yx":
        t[:, [0, 1]] = t[:, [1, 0]]
    with h5py.File(path, "w") as f:
        f["cxi_version"] = 150
        e = f.create_group("entry_1")
        src = e.create_group("instrument_1/source_1")
        if energy == "J":
            src["energy"] = ENERGY_EV * ELECTRONVOLT
        elif energy == "eV":
            src["energy"] = ENERGY_EV
            src["energy"].attrs["units"] = "eV"
        elif energy == "none-eV":
            src["energy"] = ENERGY_EV
        else:
            src["wavelength"] = WAVELENGTH
        det = e.create_group("instrument_1/detector_1")
        det["distance"] = DISTANCE
        det["x_pixel_size"] = PIXEL[1]
        det["y_pixel_size"] = PIXEL[0]
        if basis is not None:
            det["basis_vectors"] = basis
        counts = np.rint(ds.diffraction.astype(np.float64) ** 2).astype(np.int32)
        d1 = e.create_group("data_1")
        if data_in_detector:
            det.create_dataset("data", data=counts, chunks=(4, ds.N, ds.N))
            d1["data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
        else:
            d1.create_dataset("data", data=counts)
        if mask is not None:
            det["mask"] = mask
        if probe:
            src["illumination"] = ds.probe
        g = e.create_group("sample_1/geometry_1")
        g["translation"] = t if translation_unit is None else t * 1e6
        if translation_unit is not None:
            g["translation"].attrs["units"] = translation_unit
        d1["translation"] = h5py.SoftLink("/entry_1/sample_1/geometry_1/translation")
    return path
