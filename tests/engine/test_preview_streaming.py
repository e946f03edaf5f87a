"""The preview and the statistics on a lazy stack and with a detector mask."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine import preview as preview_module
from engine.network.trainer import train
from engine.physics import scaling
from engine.physics.workflows import stats_dataset
from engine.preview import PreviewOptions, preview
from engine.simulation.simulate import SimulationConfig, simulate
from tests.engine.lazy_stack import CountingStack
from tests.engine.network.conftest import tiny_config


@pytest.fixture(scope="module")
def masked_ds():
    ds = simulate(SimulationConfig(object="asym", N=32, n_positions=49, step=5, nphotons=1e5,
                                   seed=2))
    D = ds.diffraction.copy()
    D[:, 4, 6] = 20 * D.max()  # a hot pixel, masked
    mask = np.ones((32, 32), bool)
    mask[4, 6] = False
    return dataclasses.replace(ds.with_diffraction(D), pixel_mask=mask)


def test_preview_of_a_bundle_on_a_lazy_stack_equals_in_memory(masked_ds, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(scaling, "STREAM_ROWS", 8)
    monkeypatch.setattr(preview_module, "STITCH_PATCHES", 16)  # patches predicted at a time
    run = train(masked_ds, tiny_config(epochs=1), tmp_path / "run")
    options = PreviewOptions(scaling="data", show_groups=4)
    a = preview(masked_ds, options, bundle=run.bundle)
    stack = CountingStack(masked_ds.diffraction)
    b = preview(dataclasses.replace(masked_ds, diffraction=stack), options, bundle=run.bundle)
    assert stack.reads and stack.largest_read <= 16
    assert b.scale.value == pytest.approx(a.scale.value, rel=1e-6)
    np.testing.assert_allclose(b.grid["inputs"], a.grid["inputs"], rtol=1e-6, equal_nan=True)
    cov = a.canvas.coverage
    np.testing.assert_allclose(b.canvas.canvas[cov], a.canvas.canvas[cov], rtol=1e-5, atol=1e-6)
    # the hot pixel is masked out of the inputs the workbench shows and the network sees
    assert np.nanmax(a.grid["inputs"]) < 0.5 * float(masked_ds.diffraction.max()) / a.scale.value


def test_statistics_scale_ignores_masked_pixels_and_streams(masked_ds, monkeypatch):
    monkeypatch.setattr(scaling, "STREAM_ROWS", 8)
    stack = CountingStack(masked_ds.diffraction)
    lazy = stats_dataset(dataclasses.replace(masked_ds, diffraction=stack), limit=1)
    mem = stats_dataset(masked_ds, limit=1)
    assert 0 < stack.largest_read <= 8
    s_lazy, s_mem = lazy.records[-1]["intensity_scale"], mem.records[-1]["intensity_scale"]
    assert s_lazy == pytest.approx(s_mem, rel=1e-6)
    unmasked = stats_dataset(dataclasses.replace(masked_ds, pixel_mask=None), limit=1)
    # one hot pixel at 20x the peak would set the scale of every pattern
    assert unmasked.records[-1]["intensity_scale"] > 3 * s_mem


def test_the_overview_figure_leaves_masked_pixels_blank(masked_ds):
    from engine.evaluation.report import overview_figure

    fig = overview_figure(masked_ds)
    panels = {ax.get_title(): ax for ax in fig.axes}
    ax = panels["pattern 0 (masked pixels blank)"]
    shown = ax.images[0].get_array()
    assert np.ma.is_masked(shown[4, 6]) or np.isnan(shown[4, 6])
    # the colour scale is the data's, not the hot pixel's
    assert ax.images[0].get_clim()[1] < np.log1p(float(masked_ds.diffraction[0, 4, 6]) ** 2)
