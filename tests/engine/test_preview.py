"""engine.preview: what the workbench shows, computed headless (api.preview)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import api
from engine.errors import InputError
from engine.events import RunControl, StopRequested
from engine.preview import PreviewCache


@pytest.fixture(scope="module")
def lines():
    return api.simulate(api.SimulationConfig(object="lines", n_positions=64, N=32, step=4,
                                             nphotons=1e6, seed=1))


def test_gridsize_sets_groups_grid_and_var_across_group(lines):
    p1 = api.preview(lines, api.PreviewOptions(gridsize=1))
    p2 = api.preview(lines, api.PreviewOptions(gridsize=2))
    assert p1.groups.indices.shape == (64, 1) and p2.groups.indices.shape == (16, 4)
    assert p1.stats["all"]["var_across_group"] is None  # undefined, not 0
    assert all(r["var_across_group"] is None for r in p1.stats["batches"])
    v = p2.stats["all"]["var_across_group"]
    assert v is not None and np.isfinite(v) and v >= 0
    # truth patches of one object agree where they overlap: variance far below the signal's
    assert v < 1e-3 * p2.stats["all"]["var_zero_mean"]
    # a g x g block per group: the grid is about g times wider per group
    b = p2.grid_boxes[0]
    assert (b[2] - b[0], b[3] - b[1]) == (2 * 32 + 1, 2 * 32 + 1)
    assert np.isnan(p2.grid["amplitude"]).any()  # gaps between patches and groups
    # every position of a group is coloured by its first group
    for g, members in enumerate(p2.groups.indices):
        assert all(p2.position_group[m] <= g for m in members)


def test_canvas_is_nan_outside_coverage_and_matches_the_object(lines):
    p = api.preview(lines, api.PreviewOptions(gridsize=1))
    c = p.canvas
    assert np.isnan(c.canvas[~c.coverage]).all() and np.isfinite(c.canvas[c.coverage]).all()
    obj = c.crop_object(lines.object.shape)
    cov = c.crop_coverage(lines.object.shape)
    err = np.abs(obj[cov] - lines.object[cov])
    assert np.median(err) < 0.05 * np.abs(lines.object).mean()


def test_data_scaling_is_invariant_and_fixed_mismatch_is_flagged(lines):
    bright = lines.with_diffraction(lines.diffraction * 10.0)  # counts x 100
    a = api.preview(lines, api.PreviewOptions(gridsize=2, scaling="data"))
    b = api.preview(bright, api.PreviewOptions(gridsize=2, scaling="data"))
    np.testing.assert_allclose(b.scale.value, 10 * a.scale.value, rtol=1e-6)
    np.testing.assert_allclose(b.grid["inputs"], a.grid["inputs"], rtol=1e-5, equal_nan=True)
    assert not a.scale.mismatch and a.scale.source == "data"
    f = api.preview(bright, api.PreviewOptions(scaling="fixed", scale_value=a.scale.value))
    assert f.scale.mismatch and abs(f.scale.ratio - 10) < 1e-6
    assert "WARNING" in f.scale.describe() and "fixed" in f.scale.describe()
    ok = api.preview(lines, api.PreviewOptions(scaling="fixed", scale_value=1.5 * a.scale.value))
    assert not ok.scale.mismatch  # within 2x


def test_bad_settings_name_the_field(lines):
    with pytest.raises(InputError, match="^gridsize"):
        api.PreviewOptions(gridsize=5)
    with pytest.raises(InputError, match="^scale_value"):
        api.PreviewOptions(scaling="fixed")
    with pytest.raises(InputError, match="^scaling"):
        api.preview(lines, api.PreviewOptions(scaling="bundle"))  # no bundle loaded
    with pytest.raises(InputError, match="^n_groups"):
        api.preview(lines, api.PreviewOptions(n_groups=1000))
    with pytest.raises(InputError, match="^crop"):
        api.preview(lines, api.PreviewOptions(crop=64))


def test_backends_agree_and_cache_reuses_identical_results(lines):
    cache = PreviewCache()
    opts = api.PreviewOptions(gridsize=2, window="probe")
    n = api.preview(lines, opts, backend="numpy", cache=cache)
    t = api.preview(lines, opts, backend="torch", device="cpu", cache=cache)
    cov = n.canvas.coverage
    np.testing.assert_array_equal(cov, t.canvas.coverage)
    np.testing.assert_allclose(t.canvas.canvas[cov], n.canvas.canvas[cov], atol=1e-5)
    again = api.preview(lines, opts.replace(scaling="fixed", scale_value=3.0), cache=cache)
    assert again.canvas is n.canvas  # a scaling flip of the truth reuses the canvas
    fresh = api.preview(lines, opts)
    np.testing.assert_array_equal(fresh.canvas.canvas, n.canvas.canvas)


def test_a_stop_request_cancels_the_preview(lines):
    control = RunControl()
    control.stop()
    with pytest.raises(StopRequested):
        api.preview(lines, api.PreviewOptions(), control=control)


def test_compare_view_registers_and_tabulates(lines, tmp_path):
    c = api.preview(lines).canvas
    moved = api.Canvas(c.canvas * 2.0, c.coverage, (c.origin[0], c.origin[1] + 3), c.weight)
    v = api.compare_view(c, moved)
    shift = v.report["alignment"]["registration"]["shift_px"]
    assert abs(shift[0]) < 0.1 and abs(shift[1] + 3) < 0.1
    assert abs(v.report["amplitude"]["scale"] - 0.5) < 1e-3
    d = v.images["difference"]
    assert np.nanmax(np.abs(d)) < 1e-3 and np.isnan(d).any()
    assert v.rows[0][0] == "MAE" and v.rows[-1] == ["registration", "ok", "-"]


@pytest.mark.slow
def test_a_bundle_replaces_the_truth_with_its_prediction(tmp_path):
    """A (tiny, one-epoch) network's patches and canvas; the scale 'bundle' is its own."""
    import torch

    ds = api.simulate(api.SimulationConfig(object="asym", N=32, n_positions=36, step=5,
                                           nphotons=1e5, seed=2))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        api.train(ds, api.TrainConfig(gridsize=2, batch_size=4, epochs=1, base_channels=4,
                                      seed=0, deterministic=True, accelerator="cpu"),
                  out=tmp_path / "run")
        cache = PreviewCache()
        p = api.preview(ds, api.PreviewOptions(gridsize=2, scaling="bundle"),
                        bundle=tmp_path / "run", cache=cache)
        truth = api.preview(ds, api.PreviewOptions(gridsize=2))
    finally:
        torch.set_num_threads(before)
    assert p.source == "prediction" and p.scale.source == "bundle"
    assert not p.scale.mismatch  # trained on this very data
    assert np.isfinite(p.canvas.canvas[p.canvas.coverage]).all()
    assert not np.allclose(p.grid["amplitude"], truth.grid["amplitude"], equal_nan=True)
    np.testing.assert_array_equal(p.groups.indices, truth.groups.indices)
    with pytest.raises(InputError, match="^gridsize"):
        api.preview(ds, api.PreviewOptions(gridsize=1), bundle=tmp_path / "run", cache=cache)
