"""Stitching (docs/conventions.md#stitching): round trips, geometry, batching and streaming."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from engine.errors import InputError
from engine.physics.grouping import GroupingConfig, make_groups
from engine.physics.stitching import Canvas, CanvasGeometry, StitchConfig, Stitcher, stitch
from engine.simulation.objects import asym


@pytest.fixture(scope="module")
def asym_scene():
    rng = np.random.default_rng(0)
    obj = asym((120, 130), rng)
    assert not np.allclose(obj, obj[::-1]) and not np.allclose(obj, obj[:, ::-1])
    ys, xs = np.meshgrid(np.arange(24, 97, 6), np.arange(24, 107, 6), indexing="ij")
    pos = np.stack([ys.ravel(), xs.ravel()], 1).astype(float)  # integer positions: exact
    return obj, pos


@pytest.mark.parametrize("gridsize", [1, 2, 3])
@pytest.mark.parametrize("crop", [16, 32])
@pytest.mark.parametrize("window", ["uniform", "probe"])
def test_asymmetric_round_trip(backend, asym_scene, gridsize, crop, window):
    obj, pos = asym_scene
    N = 32
    probe = np.exp(-((np.arange(N) - N / 2) ** 2)[:, None] / 200
                   - ((np.arange(N) - N / 2) ** 2)[None, :] / 300).astype(complex)
    groups = make_groups(pos, GroupingConfig(gridsize=gridsize, n_groups=len(pos) - 5, seed=1))
    patches = backend.to_numpy(backend.extract(backend.asarray(obj), pos - N / 2, N))
    canvas = stitch(patches[groups.indices], groups.positions, backend=backend,
                    config=StitchConfig(crop=crop, window=window), probe=probe,
                    geometry=CanvasGeometry.from_positions(pos, N), batch_size=7)
    got = canvas.crop_object(obj.shape)
    cov = canvas.crop_coverage(obj.shape)
    assert cov.sum() > 0.3 * obj.size
    np.testing.assert_allclose(got[cov], obj[cov], rtol=0, atol=2e-5)
    assert np.isnan(got[~cov]).all()


def test_subpixel_round_trip_smooth_object(backend):
    H = W = 90
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    obj = (1.1 + np.sin(0.08 * xx) * np.cos(0.05 * yy)) * np.exp(0.5j * np.sin(0.06 * yy))
    rng = np.random.default_rng(1)
    pos = rng.uniform(20, 70, (80, 2))
    patches = backend.extract(backend.asarray(obj), pos - 16, 32)
    canvas = stitch(patches, pos, backend=backend, config=StitchConfig(crop=32))
    got, cov = canvas.crop_object(obj.shape), canvas.crop_coverage(obj.shape)
    # edge pixels see a single fractional-weight sample; inside, the bilinear interpolation
    # and its normalised adjoint only blur by < 1 px
    interior = ndimage.binary_erosion(cov, iterations=2)
    err = np.abs(got[interior] - obj[interior])
    assert interior.sum() > 2000 and err.max() < 0.02 and err.mean() < 0.005


def test_canvas_independent_of_gridsize_and_batch(asym_scene, numpy_backend):
    obj, pos = asym_scene
    patches = numpy_backend.extract(obj, pos - 16, 32)
    geometry = CanvasGeometry.from_positions(pos, 32)
    ref = stitch(patches, pos, backend=numpy_backend, batch_size=1000)
    for g, bs in [(1, 1), (2, 3), (3, 1000)]:
        groups = make_groups(pos, GroupingConfig(gridsize=g, seed=2))
        c = stitch(patches[groups.indices], groups.positions, backend=numpy_backend,
                   batch_size=bs, geometry=geometry)
        assert c.origin == ref.origin and c.canvas.shape == ref.canvas.shape
        both = c.coverage & ref.coverage
        np.testing.assert_allclose(c.canvas[both], ref.canvas[both], atol=1e-6)


def test_single_patch_and_partial_batches(backend):
    obj = np.arange(40 * 40).reshape(40, 40).astype(complex)
    pos = np.array([[20.0, 20.0]])
    p = backend.extract(backend.asarray(obj), pos - 8, 16)
    c = stitch(p, pos, backend=backend, config=StitchConfig(crop=16), batch_size=64)
    assert c.canvas.shape == (17, 17) and c.origin == (12, 12)
    np.testing.assert_allclose(c.canvas[:16, :16], obj[12:28, 12:28], atol=1e-3)
    assert not c.coverage[16].any() and np.isnan(c.canvas[16]).all()


def test_empty_batch_is_a_no_op(numpy_backend):
    geom = CanvasGeometry(origin=(0, 0), shape=(40, 40))
    st = Stitcher(geom, 16, numpy_backend)
    st.add(np.zeros((0, 16, 16), complex), np.zeros((0, 2)))
    out = st.result()
    assert not out.coverage.any() and np.isnan(out.canvas).all()


def test_streaming_equals_in_memory(asym_scene, numpy_backend):
    obj, pos = asym_scene
    patches = numpy_backend.extract(obj, pos - 16, 32)
    geom = CanvasGeometry.from_positions(pos, 32)
    batches = ((patches[i:i + 10], pos[i:i + 10]) for i in range(0, len(pos), 10))
    a = stitch(batches, None, backend=numpy_backend, geometry=geom)
    b = stitch(patches, pos, backend=numpy_backend)
    np.testing.assert_array_equal(a.coverage, b.coverage)
    np.testing.assert_allclose(a.canvas[a.coverage], b.canvas[b.coverage], atol=1e-6)


def test_stitcher_memory_is_canvas_sized(asym_scene, numpy_backend):
    """Every batch is made fresh and dropped by the caller after ``add``: what the stitcher
    still holds afterwards (traced allocations) is canvas-sized, while the patches streamed
    through it are many times that. A stitcher that kept its patches (or copies) would hold
    them all and fail."""
    import gc
    import tracemalloc

    obj, pos = asym_scene
    geometry = CanvasGeometry.from_positions(pos, 32)
    canvas_bytes = int(np.prod(geometry.shape)) * 16  # one complex128 canvas
    streamed = 0
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        st = Stitcher(geometry, 32, numpy_backend)
        for i in range(0, len(pos), 16):
            batch = numpy_backend.extract(obj, pos[i:i + 16] - 16, 32)  # a new array each time
            streamed += batch.nbytes
            st.add(batch, pos[i:i + 16])
            del batch
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert streamed > 8 * canvas_bytes  # the test has the power to see kept patches
    # numerator (complex) + weights (real) + the window: 1.5 canvases, nothing per patch
    assert held <= 2 * canvas_bytes, (held, canvas_bytes, streamed)
    assert st.result().coverage.any()


def test_canvas_save_load_round_trip(tmp_path, asym_scene, numpy_backend):
    obj, pos = asym_scene
    c = stitch(numpy_backend.extract(obj, pos - 16, 32), pos, backend=numpy_backend)
    path = c.save(tmp_path / "canvas.npz")
    d = Canvas.load(path)
    assert d.origin == c.origin
    np.testing.assert_array_equal(d.coverage, c.coverage)
    with np.load(path) as z:
        assert set(z.files) >= {"canvas", "coverage", "origin"}
        assert z["canvas"].dtype == np.complex64


def test_bad_stitch_inputs(numpy_backend):
    with pytest.raises(InputError, match="window"):
        StitchConfig(window="hann")
    with pytest.raises(InputError, match="crop"):
        StitchConfig(crop=40).crop_for(32)
    with pytest.raises(InputError, match="probe"):
        stitch(np.ones((1, 8, 8)), np.array([[10.0, 10.0]]), config=StitchConfig(window="probe"))
    with pytest.raises(InputError, match="one per patch"):
        stitch(np.ones((2, 8, 8)), np.array([[10.0, 10.0]]), batch_size=4)


def test_canvas_placement_is_one_rule():
    """``place_on_grid`` puts each pixel at origin + index on the grid, whatever the two
    origins; a round trip through a larger grid gives the array back."""
    from engine.physics.stitching import overlap_slices, place_on_grid

    rng = np.random.default_rng(4)
    v = rng.standard_normal((5, 7))
    for origin, grid_origin in (((3, -2), (0, 0)), ((-4, 10), (-6, 8)), ((0, 0), (2, 3))):
        grid = place_on_grid(v, origin, grid_origin, (9, 9), np.nan)
        for (i, j), x in np.ndenumerate(v):
            r, c = origin[0] + i - grid_origin[0], origin[1] + j - grid_origin[1]
            if 0 <= r < 9 and 0 <= c < 9:
                assert grid[r, c] == x
        assert np.isfinite(grid).sum() == sum(
            0 <= origin[0] + i - grid_origin[0] < 9 and 0 <= origin[1] + j - grid_origin[1] < 9
            for i, j in np.ndindex(v.shape))
    big = place_on_grid(v, (1, 2), (-5, -5), (20, 20), np.nan)
    assert np.array_equal(place_on_grid(big, (-5, -5), (1, 2), v.shape, np.nan), v)
    assert overlap_slices((0, 0), (3, 3), (3, 0), (4, 4)) is None
    canvas = Canvas(v.astype(np.complex64), np.ones(v.shape, bool), (2, 1),
                    np.ones(v.shape, np.float32))
    assert np.array_equal(canvas.crop_object((4, 4))[2:, 1:], v[:2, :3].astype(np.complex64))
