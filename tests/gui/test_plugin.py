"""The npe2 plugin: manifest, samples, reader and writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import api

MANIFEST = Path(__file__).resolve().parents[2] / "plugins" / "napari.yaml"


def test_manifest_validates():
    from npe2 import PluginManifest

    m = PluginManifest.from_file(MANIFEST)
    m.validate_imports()  # every python_name resolves to a callable
    assert m.name == "ptycho-workbench"
    assert {s.key for s in m.contributions.sample_data} == {"lines", "asym", "grf", "siemens"}
    assert [w.display_name for w in m.contributions.widgets] == ["Ptycho Workbench"]


@pytest.mark.parametrize("key", ["lines", "asym", "grf", "siemens"])
def test_each_sample_opens_and_adds_layers(make_napari_viewer, key):
    viewer = make_napari_viewer()
    viewer.open_sample("ptycho-workbench", key)
    names = [layer.name for layer in viewer.layers]
    assert f"{key} positions" in names and f"{key} truth amplitude" in names
    d = viewer.layers[f"{key} diffraction (log)"].data
    assert d.ndim == 3 and np.isfinite(d).all() and d.max() > 0
    assert viewer.layers[f"{key} positions"].data.shape[1] == 2


def test_reader_writer_round_trip(make_napari_viewer, small_lines, tmp_path):
    canvas = api.stitch(small_lines, api.StitchConfig())
    canvas.save(tmp_path / "recon.npz")
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "recon.npz"), plugin="ptycho-workbench")
    amp = viewer.layers["recon amplitude"]
    assert {layer.name for layer in layers} == {"recon amplitude", "recon phase"}
    assert tuple(amp.translate) == tuple(float(v) for v in canvas.origin)
    # NPZ writer: the complex canvas comes back unchanged
    out = tmp_path / "out.npz"
    viewer.layers.selection = {amp}
    written = viewer.layers.save(str(out), selected=True, plugin="ptycho-workbench")
    assert written == [str(out)]
    back = api.load_canvas(out)
    np.testing.assert_array_equal(back.coverage, canvas.coverage)
    np.testing.assert_allclose(back.canvas[canvas.coverage], canvas.canvas[canvas.coverage])
    assert back.origin == canvas.origin
    # TIFF writer: amplitude and phase pages, NaN outside the coverage
    import tifffile

    tif = tmp_path / "out.tif"
    viewer.layers.save(str(tif), selected=True, plugin="ptycho-workbench")
    pages = tifffile.imread(tif)
    assert pages.shape == (2, *canvas.canvas.shape)
    np.testing.assert_allclose(pages[0][canvas.coverage], np.abs(canvas.canvas[canvas.coverage]),
                               rtol=1e-6)
    np.testing.assert_allclose(pages[1][canvas.coverage],
                               np.angle(canvas.canvas[canvas.coverage]), atol=1e-6)
    assert np.isnan(pages[0][~canvas.coverage]).all()


def test_reader_opens_run_directory(make_napari_viewer, small_lines, tmp_path):
    run = tmp_path / "run1"
    run.mkdir()
    api.stitch(small_lines).save(run / "recon.npz")
    (run / "report.json").write_text('{"ssim": 0.9}')
    viewer = make_napari_viewer()
    viewer.open(str(run), plugin="ptycho-workbench")
    layer = viewer.layers["run1 amplitude"]
    assert layer.metadata["ptycho"]["report"] == {"ssim": 0.9}
    assert np.isnan(layer.data).any() and np.isfinite(layer.data).any()


def test_reader_opens_a_bundle_and_a_run_with_one(make_napari_viewer, small_lines, tmp_path):
    import torch

    from engine.network.bundles import save_bundle

    meta = {"intensity_scale": 9.5, "probe_factor": 1.0, "N": 32, "gridsize": 2}
    save_bundle(tmp_path / "run" / "bundle", {"w": torch.ones(2)}, small_lines.probe, meta)
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "run" / "bundle"), plugin="ptycho-workbench")
    layer = viewer.layers["bundle bundle probe amplitude"]
    np.testing.assert_allclose(layer.data, np.abs(small_lines.probe))
    assert layer.metadata["ptycho"]["bundle"]["intensity_scale"] == 9.5
    api.stitch(small_lines).save(tmp_path / "run" / "recon.npz")
    viewer.open(str(tmp_path / "run"), plugin="ptycho-workbench")
    assert viewer.layers["run amplitude"].metadata["ptycho"]["bundle"]["gridsize"] == 2


def test_reader_opens_ptychopinn_layout(make_napari_viewer, small_lines, tmp_path):
    ds = small_lines
    path = tmp_path / "pinn.npz"
    np.savez(path, diff3d=ds.diffraction, xcoords=ds.xcoords, ycoords=ds.ycoords,
             probeGuess=ds.probe, objectGuess=ds.object)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="ptycho-workbench")
    np.testing.assert_allclose(viewer.layers["pinn positions"].data, ds.positions)
    np.testing.assert_allclose(viewer.layers["pinn diffraction (log)"].data,
                               np.log1p(ds.diffraction), rtol=1e-6)
    np.testing.assert_allclose(viewer.layers["pinn truth phase"].data, np.angle(ds.object),
                               atol=1e-6)
