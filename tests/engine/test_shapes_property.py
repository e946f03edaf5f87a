"""Property-based shape tests for extract / stitch over random sizes and batchings."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backends import get_backend
from engine.physics.grouping import GroupingConfig, make_groups
from engine.physics.stitching import CanvasGeometry, StitchConfig, stitch

NB = get_backend("numpy")
TB = get_backend("torch", "cpu")


@settings(max_examples=25, deadline=None, derandomize=True)
@given(N=st.sampled_from([8, 12, 16, 32]), n=st.integers(1, 20), gridsize=st.integers(1, 3),
       batch=st.integers(1, 9), crop_frac=st.sampled_from([0.5, 1.0]),
       seed=st.integers(0, 10_000), use_torch=st.booleans())
def test_extract_stitch_shapes(N, n, gridsize, batch, crop_frac, seed, use_torch):
    be = TB if use_torch else NB
    rng = np.random.default_rng(seed)
    n = max(n, gridsize**2)
    H, W = 3 * N, 3 * N
    pos = rng.uniform(N / 2, 2.5 * N - 1, (n, 2))
    obj = rng.uniform(0.5, 1, (H, W)) * np.exp(1j * rng.uniform(-1, 1, (H, W)))
    patches = be.to_numpy(be.extract(be.asarray(obj), pos - N / 2, N))
    assert patches.shape == (n, N, N)
    groups = make_groups(pos, GroupingConfig(gridsize=gridsize, seed=seed))
    assert groups.indices.shape == (n, gridsize**2)
    crop = max(1, int(N * crop_frac))
    geom = CanvasGeometry.from_positions(pos, N)
    canvas = stitch(patches[groups.indices], groups.positions, backend=be, batch_size=batch,
                    config=StitchConfig(crop=crop), geometry=geom)
    assert canvas.canvas.shape == geom.shape == canvas.coverage.shape
    assert canvas.coverage.any()
    assert np.isfinite(canvas.canvas[canvas.coverage]).all()
    assert np.isnan(canvas.canvas[~canvas.coverage]).all()
    # a stitched canvas never exceeds the values it averages
    assert np.abs(canvas.canvas[canvas.coverage]).max() <= np.abs(obj).max() + 1e-4
