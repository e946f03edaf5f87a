"""Preparation: dark, flat, clip, centre, crop, bin; mask, geometry, positions and probe
follow; a lazy stack stays lazy and equals the in-memory result."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine import api
from engine import prepare as prepare_module
from engine.errors import InputError
from engine.geometry import Geometry
from engine.prepare import PreparedStack, PrepareOptions, prepare, resample_probe
from engine.simulation.simulate import SimulationConfig, simulate
from tests.engine.lazy_stack import CountingStack

GEOMETRY = Geometry(wavelength=1e-10, distance=2.0, detector_pixel=(75e-6, 75e-6))


@pytest.fixture(scope="module")
def ds32():
    ds = simulate(SimulationConfig(object="asym", probe="disk", n_positions=25, N=32, step=5,
                                   nphotons=0, seed=1))
    return dataclasses.replace(ds, geometry=GEOMETRY)


def _embedded(ds, size=64, at=(11, 6)):
    """``ds``'s patterns placed on a larger detector with their centre moved by ``at`` from
    the middle of the embedding (and a probe zero-padded to match)."""
    n, N = ds.n, ds.N
    D = np.zeros((n, size, size), np.float32)
    r0, c0 = (size - N) // 2 + at[0], (size - N) // 2 + at[1]
    D[:, r0:r0 + N, c0:c0 + N] = ds.diffraction
    probe = np.zeros((size, size), np.complex64)
    lo = (size - N) // 2
    probe[lo:lo + N, lo:lo + N] = ds.probe
    return dataclasses.replace(ds, diffraction=D, probe=probe, object=None, patches=None,
                               geometry=GEOMETRY), (r0 + N // 2, c0 + N // 2)


def test_centre_of_mass_finds_a_moved_beam_and_crops_it_back(ds32):
    raw, centre = _embedded(ds32)
    out = prepare(raw, PrepareOptions(centre="com", N=32))
    step = out.metadata["provenance"][0]
    assert step["step"] == "centre"
    found = step["result"]["centre"]
    # the mean pattern's centre of mass is within a pixel of the beam centre
    assert abs(found[0] - centre[0]) < 1 and abs(found[1] - centre[1]) < 1
    np.testing.assert_allclose(out.diffraction, ds32.diffraction, atol=1e-5)
    assert out.pixel_mask is None  # the window lies on the detector


def test_a_given_centre_near_the_edge_masks_what_lies_outside(ds32):
    out = prepare(ds32, PrepareOptions(centre="given", centre_at=(4.0, 16.0), N=32))
    assert out.pixel_mask is not None
    # rows above the detector's top edge: 16 - 4 = 12 rows outside, masked and zero
    assert not out.pixel_mask[:12].any() and out.pixel_mask[12:].all()
    assert np.all(out.diffraction[:, :12] == 0)
    np.testing.assert_allclose(out.diffraction[:, 12:], ds32.diffraction[:, :20], atol=1e-6)
    with pytest.raises(InputError, match="centre_at"):
        PrepareOptions(centre="given")


def test_binning_sums_counts_and_doubles_the_detector_pixel(ds32):
    out = prepare(ds32, PrepareOptions(bin=2))
    assert out.N == 16 and out.diffraction.shape == (ds32.n, 16, 16)
    counts = ds32.diffraction.astype(np.float64) ** 2
    np.testing.assert_allclose(out.diffraction.astype(np.float64) ** 2,
                               counts.reshape(ds32.n, 16, 2, 16, 2).sum(axis=(2, 4)), rtol=1e-5)
    assert out.geometry.detector_pixel == (150e-6, 150e-6)
    # λz/(N p): half the pixels, twice the pitch: the object pixel is unchanged, and so are
    # the positions; the probe is the central 16 x 16 of the old one
    assert out.pixel_size == pytest.approx(ds32.pixel_size)
    np.testing.assert_array_equal(out.xcoords, ds32.xcoords)
    np.testing.assert_allclose(out.probe, ds32.probe[8:24, 8:24], atol=1e-6)
    assert out.object is not None and out.patches.shape == (ds32.n, 16, 16)
    assert [s["step"] for s in out.metadata["provenance"]] == ["bin", "probe"]


def test_cropping_grows_the_object_pixel_and_moves_positions_and_probe(ds32):
    out = prepare(ds32, PrepareOptions(N=16))
    f = 32 / 16
    assert out.pixel_size[0] == pytest.approx(ds32.pixel_size[0] * f)
    np.testing.assert_allclose(out.xcoords, ds32.xcoords / f)
    assert out.object is None and out.patches is None  # the truth's pixel grid is gone
    probe = out.metadata["provenance"][-1]
    assert probe["step"] == "probe" and probe["result"]["ground_truth_dropped"] == [
        "objectGuess", "Y"]
    # the probe keeps its physical size: its power-weighted radius halves in pixels
    def radius(p):
        w = np.abs(p) ** 2
        yy, xx = np.indices(p.shape) - p.shape[0] / 2
        return float(np.sqrt((w * (yy**2 + xx**2)).sum() / w.sum()))
    assert radius(out.probe) == pytest.approx(radius(ds32.probe) / f, rel=0.1)


def test_resample_probe_is_the_identity_at_factor_one():
    rng = np.random.default_rng(0)
    p = (rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))).astype(np.complex64)
    np.testing.assert_allclose(resample_probe(p, 1.0, 16), p, atol=1e-6)


def test_dark_flat_clip_and_the_mask(ds32):
    N = ds32.N
    dark = np.full((N, N), 2.0)
    flat = np.ones((N, N))
    flat[5, 5] = 0.0  # a dead flat-field pixel: masked
    flat[10, 20] = 2.0
    mask = np.ones((N, N), bool)
    mask[1, 2] = False
    data = dataclasses.replace(ds32, pixel_mask=mask)
    out = prepare(data, PrepareOptions(bin=2), dark=dark, flat=flat)
    counts = np.maximum((ds32.diffraction.astype(np.float64) ** 2 - 2.0)
                        * np.where(flat > 0, 1 / np.where(flat > 0, flat, 1), 0), 0)
    np.testing.assert_allclose(out.diffraction.astype(np.float64) ** 2,
                               counts.reshape(ds32.n, 16, 2, 16, 2).sum(axis=(2, 4)),
                               rtol=1e-5, atol=1e-4)
    expected = np.ones((16, 16), bool)
    expected[2, 2] = expected[0, 1] = False  # the flat's (5, 5) and the mask's (1, 2)
    np.testing.assert_array_equal(out.pixel_mask, expected)
    assert [s["step"] for s in out.metadata["provenance"]] == ["dark", "flat", "clip", "bin",
                                                                "probe"]
    with pytest.raises(InputError, match="dark"):
        prepare(ds32, PrepareOptions(), dark=np.zeros((4, 4)))


def test_a_lazy_stack_stays_lazy_and_equals_in_memory(ds32, monkeypatch):
    monkeypatch.setattr(prepare_module, "STREAM_ROWS", 4)
    raw, _ = _embedded(ds32)
    options = PrepareOptions(centre="com", N=16, bin=2)
    dark = np.full((64, 64), 0.5)
    mem = prepare(raw, options, dark=dark)
    stack = CountingStack(raw.diffraction)
    lazy = prepare(dataclasses.replace(raw, diffraction=stack), options, dark=dark)
    assert isinstance(lazy.diffraction, PreparedStack)
    assert stack.largest_read <= 4  # the mean pattern of the centre, streamed
    reads = len(stack.reads)
    np.testing.assert_allclose(lazy.diffraction[np.arange(raw.n)], mem.diffraction, rtol=1e-6)
    assert len(stack.reads) == reads + 1  # reading the prepared rows reads the raw ones
    assert lazy.metadata["provenance"] == mem.metadata["provenance"]
    sub = lazy.subset(np.array([3, 1]))
    np.testing.assert_allclose(sub.diffraction[np.arange(2)], mem.diffraction[[3, 1]], rtol=1e-6)
    # and it streams on through a reconstruction
    stack.reads.clear()
    result = api.reconstruct(lazy, api.LSQMLOptions(iterations=2, batch_size=5))
    assert stack.largest_read <= 5 and np.isfinite(result.errors[-1])


def test_api_prepare_records_provenance_for_inspect(ds32):
    out = api.prepare(ds32, PrepareOptions(N=16, bin=2))
    steps = out.metadata["provenance"]
    assert all(set(s) == {"step", "parameters", "result"} for s in steps)
    assert [s["step"] for s in steps] == ["bin", "probe"]
    again, report = api.find_bad_pixels(out)
    assert again.metadata["provenance"][-1]["step"] == "bad_pixels"
    assert report.counts["bad"] == again.metadata["provenance"][-1]["result"]["bad"]
