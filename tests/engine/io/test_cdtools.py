"""A CXI file written by another program: CDTools' ``Ptycho2DDataset.to_cxi``. Read here, it
gives CDTools' own geometry: wavelength, distance, pixel sizes, and positions in object
pixels as CDTools computes them (its exit-wave basis and translations_to_pixel), to 1e-6
relative."""

from __future__ import annotations

import numpy as np
import pytest

from engine import api

cdtools = pytest.importorskip("cdtools")
torch = pytest.importorskip("torch")


def test_cdtools_file_reads_with_cdtools_geometry(tmp_path, sim):
    from cdtools.datasets import Ptycho2DDataset
    from cdtools.tools.initializers import exit_wave_geometry
    from cdtools.tools.interactions import translations_to_pixel

    N, n = sim.N, sim.n
    wavelength, distance = 1.3e-10, 1.7
    # an unequal, non-default orientation: rows along -y (75 µm), columns along +x (55 µm)
    basis = np.array([[0.0, -75e-6, 0.0], [55e-6, 0.0, 0.0]]).T  # CDTools stores (3, 2)
    rng = np.random.default_rng(0)
    probe_translations = np.zeros((n, 3))
    probe_translations[:, :2] = rng.uniform(-2e-6, 2e-6, (n, 2))
    patterns = sim.diffraction.astype(np.float32) ** 2
    mask = np.ones((N, N), bool)
    mask[2, 5] = False
    cdt = Ptycho2DDataset(probe_translations, patterns, wavelength=wavelength,
                          detector_geometry={"distance": distance,
                                             "basis": torch.as_tensor(basis)},
                          mask=mask)
    path = tmp_path / "cdtools.cxi"
    cdt.to_cxi(path)

    back = api.load_dataset(path, lazy=False)
    theirs = Ptycho2DDataset.from_cxi(str(path))
    assert back.geometry.wavelength == pytest.approx(float(theirs.wavelength), rel=1e-6)
    assert back.geometry.distance == pytest.approx(
        float(theirs.detector_geometry["distance"]), rel=1e-6)
    det_basis = torch.as_tensor(np.asarray(theirs.detector_geometry["basis"]))
    assert back.geometry.detector_pixel == pytest.approx(
        (float(torch.linalg.norm(det_basis[:, 0])), float(torch.linalg.norm(det_basis[:, 1]))),
        rel=1e-6)
    obj_basis = exit_wave_geometry(det_basis, (N, N), float(theirs.wavelength),
                                   float(theirs.detector_geometry["distance"]))
    assert back.pixel_size == pytest.approx(
        (float(torch.linalg.norm(obj_basis[:, 0])), float(torch.linalg.norm(obj_basis[:, 1]))),
        rel=1e-6)
    pix = translations_to_pixel(obj_basis.to(torch.float64),
                                theirs.translations.to(torch.float64)).numpy()
    ours = back.positions - back.positions.min(axis=0)
    theirs_px = pix - pix.min(axis=0)
    scale = np.abs(theirs_px).max()
    assert scale > 5  # a scan of several pixels, so the comparison means something
    np.testing.assert_allclose(ours, theirs_px, rtol=0, atol=1e-6 * scale)
    np.testing.assert_array_equal(back.pixel_mask, theirs.mask.numpy())
    np.testing.assert_allclose(back.diffraction, np.sqrt(patterns), rtol=1e-6)


def test_cdtools_reads_a_cxi_written_here(tmp_path, sim, geometry):
    """The other direction: CDTools opens this workbench's CXI and finds the same
    wavelength, distance, pixels, mask, counts and positions (in its own pixel frame)."""
    from dataclasses import replace

    from cdtools.datasets import Ptycho2DDataset
    from cdtools.tools.initializers import exit_wave_geometry
    from cdtools.tools.interactions import translations_to_pixel

    mask = np.ones((sim.N, sim.N), bool)
    mask[0, :4] = False
    path = api.save_dataset(tmp_path / "ours.cxi", replace(sim, pixel_mask=mask),
                            geometry=geometry)
    theirs = Ptycho2DDataset.from_cxi(str(path))
    assert float(theirs.wavelength) == pytest.approx(geometry.wavelength, rel=1e-6)
    assert float(theirs.detector_geometry["distance"]) == pytest.approx(geometry.distance)
    det_basis = torch.as_tensor(np.asarray(theirs.detector_geometry["basis"]))
    assert float(torch.linalg.norm(det_basis[:, 0])) == pytest.approx(geometry.detector_pixel[0])
    assert float(torch.linalg.norm(det_basis[:, 1])) == pytest.approx(geometry.detector_pixel[1])
    np.testing.assert_array_equal(theirs.mask.numpy(), mask)
    np.testing.assert_allclose(theirs.patterns.numpy(), sim.diffraction.astype(np.float64) ** 2,
                               rtol=1e-6)
    obj_basis = exit_wave_geometry(det_basis, (sim.N, sim.N), float(theirs.wavelength),
                                   float(theirs.detector_geometry["distance"]))
    pix = translations_to_pixel(obj_basis.to(torch.float64),
                                theirs.translations.to(torch.float64)).numpy()
    ours = sim.positions - sim.positions.min(axis=0)
    np.testing.assert_allclose(pix - pix.min(axis=0), ours, rtol=0,
                               atol=1e-6 * np.abs(ours).max())
