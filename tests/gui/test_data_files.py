"""The workbench on a beamline's own files (issue 23): CXI/NeXus/HDF5 through the napari
reader and ``Workbench.load``, the geometry summary, the patterns as a lazy dask layer that
reads only the chunk on screen, every layer in physical units (nm) aligned with the
positions, and runs on a CXI file. The Qt-free tests need no viewer."""

from __future__ import annotations

import numpy as np
import pytest

from engine import api
from engine.errors import InputError
from engine.geometry import Geometry
from ptycho_gui import Workbench, io
from ptycho_gui.layers import Frame, lazy_patterns

# 8 keV, 2 m, 75 µm pixels: an object pixel of λz/(N·p) = 129.17 nm at N = 32
GEOMETRY = Geometry(wavelength=1.55e-10, distance=2.0, detector_pixel=(75e-6, 75e-6))
PIXEL_NM = 1.55e-10 * 2.0 / (32 * 75e-6) * 1e9
TINY_TRAIN = {"epochs": 2, "batch_size": 8, "base_channels": 8, "seed": 0}


@pytest.fixture(scope="module")
def sim():
    return api.simulate(api.SimulationConfig(object="asym", probe="disk", scan="raster",
                                             n_positions=64, N=32, step=5, jitter=0.4,
                                             nphotons=1e6, seed=3))


@pytest.fixture
def cxi(sim, tmp_path):
    return api.save_dataset(tmp_path / "scan.cxi", sim, geometry=GEOMETRY)


# -- the reader ---------------------------------------------------------------------------
def test_reader_claims_hdf5_by_signature_and_declines_the_rest(cxi, tmp_path):
    from plugins import _napari

    nxs = tmp_path / "copy.nxs"
    nxs.write_bytes(cxi.read_bytes())
    assert io.readable(cxi) and io.readable(nxs)
    assert _napari.get_reader(str(cxi)) is not None
    for name, body in (("text.h5", b"not an hdf5 file at all"), ("empty.cxi", b"")):
        (tmp_path / name).write_bytes(body)
        assert not io.readable(tmp_path / name)
        assert _napari.get_reader(str(tmp_path / name)) is None
    names = [kw["name"] for _, kw, _ in io.read(cxi)]
    assert names == ["scan diffraction (log)", "scan truth amplitude", "scan truth phase",
                     "scan probe amplitude", "scan probe phase", "scan positions"]


def test_an_hdf5_of_another_layout_is_one_line_naming_file_and_expectation(tmp_path,
                                                                        monkeypatch):
    import h5py

    from plugins import _napari

    other = tmp_path / "facility.h5"
    with h5py.File(other, "w") as h5:
        h5["scan/frames"] = np.zeros((4, 8, 8), np.uint16)
    assert io.readable(other)  # the signature claims it; reading says what is wrong
    with pytest.raises(InputError) as err:
        io.read(other)
    text = str(err.value)
    assert "\n" not in text and str(other) in text and "CXI" in text and "mapping" in text
    said = []
    monkeypatch.setattr(_napari, "_notify", said.append)
    assert _napari._read(str(other)) == [(None,)]
    assert len(said) == 1 and str(other) in said[0] and "CXI" in said[0]
    with pytest.raises(InputError, match="facility.h5"):
        Workbench().load(other)


def test_manifest_opens_the_hdf5_extensions():
    import yaml

    from plugins import __file__ as plugins_init

    manifest = yaml.safe_load(open(plugins_init.replace("__init__.py", "napari.yaml")))
    patterns = manifest["contributions"]["readers"][0]["filename_patterns"]
    assert {"*.cxi", "*.h5", "*.hdf5", "*.nxs", "*.npz"} <= set(patterns)


# -- lazy patterns ------------------------------------------------------------------------
class CountingStack:
    """A lazy stack (the :class:`engine.data.DiffractionStack` protocol) counting rows."""

    def __init__(self, data):
        self.data, self.shape, self.dtype = data, data.shape, np.dtype(np.float32)
        self.rows_read = 0

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        out = self.data[index]
        self.rows_read += 1 if np.ndim(out) == 2 else len(out)
        return out

    def subset(self, index):
        return CountingStack(self.data[index])


def test_lazy_layer_reads_only_the_shown_patterns_chunk():
    data = np.random.default_rng(0).random((96, 16, 16)).astype(np.float32)
    stack = CountingStack(data)
    layer = lazy_patterns(stack, rows=8)
    assert stack.rows_read == 0  # building the layer reads nothing
    np.testing.assert_array_equal(np.asarray(layer[37]), data[37])
    assert stack.rows_read == 8  # rows 32..39: the one chunk holding pattern 37
    np.testing.assert_array_equal(np.asarray(layer[38, 2:5]), data[38, 2:5])
    assert stack.rows_read == 16


def test_opening_a_cxi_file_reads_one_chunk_for_the_pattern_shown(sim, tmp_path):
    path = api.save_dataset(tmp_path / "big.cxi", sim, geometry=GEOMETRY)
    data, kwargs, kind = io.read(path)[0]
    stack = kwargs["metadata"]["dataset"].diffraction
    assert kind == "image" and not isinstance(stack, np.ndarray)  # stays in the file
    assert stack.rows_read == 1  # the contrast limits: pattern 0 only
    rows = data.chunks[0][0]
    assert rows < sim.n
    before = stack.rows_read
    shown = np.asarray(data[rows + 3])  # a pattern in the second chunk
    assert stack.rows_read - before == rows
    np.testing.assert_allclose(shown, np.log1p(sim.diffraction[rows + 3]), rtol=1e-5)
    assert kwargs["scale"] == (1.0, pytest.approx(PIXEL_NM), pytest.approx(PIXEL_NM))


# -- geometry summary ---------------------------------------------------------------------
def test_load_shows_the_geometry_summary_and_warns_once(sim, tmp_path):
    # a sparse scan: step 20 px with a probe of ~16 px is under 50 % overlap
    sparse = api.simulate(api.SimulationConfig(object="asym", probe="disk", scan="raster",
                                               n_positions=16, N=32, step=20, seed=1))
    path = api.save_dataset(tmp_path / "sparse.cxi", sparse, geometry=GEOMETRY)
    wb = Workbench(auto_preview=False)
    warned = []
    wb.warned.connect(warned.append)
    wb.load(path)
    text = "\n".join(wb.summary())
    for item in ("cxi", "energy", "keV", "wavelength 0.155 nm", "distance        2 m",
                 "detector pixel  75 µm", "object pixel    129 nm", "scan extent",
                 "overlap", "photons/pattern", "masked pixels", "probe"):
        assert item in text, item
    overlap = [w for w in warned if "overlap" in w]
    assert len(overlap) == 1 and overlap[0].startswith("sparse: ")
    wb.load(path)  # the same warning is not repeated
    assert len([w for w in warned if "overlap" in w]) == 1
    wb.load("lines", n_positions=16, N=32)
    assert wb.summary()[1].endswith("none (pixel units)")


# -- runs on a CXI file -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["epie", "rpie", "lsqml"])
def test_solvers_run_on_a_cxi_file(kind, cxi, tmp_path):
    wb = Workbench(auto_preview=False, runs_root=tmp_path / "runs")
    ds = wb.load(cxi)
    assert ds.pixel_size == pytest.approx((PIXEL_NM * 1e-9,) * 2)
    rec = wb.start(kind, iterations=3, batch_size=16)
    assert wb.wait(120) and rec.status == "finished", rec.error
    assert rec.metrics["amplitude_ssim"] > 0.3  # a real reconstruction, not noise
    assert (rec.out / "recon.npz").is_file()


def test_lsqml_on_a_lazy_cxi_stack_matches_the_in_memory_one(cxi, tmp_path):
    results = []
    for lazy in (False, True):
        wb = Workbench(auto_preview=False, runs_root=tmp_path / f"runs{lazy}")
        wb.load(api.load_dataset(cxi, lazy=lazy))
        assert isinstance(wb.data.diffraction, np.ndarray) != lazy
        rec = wb.start("lsqml", iterations=2, batch_size=16)
        assert wb.wait(120) and rec.status == "finished", rec.error
        results.append(np.asarray(rec.canvas.canvas))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-4, atol=1e-5)


def test_training_inference_and_refine_run_on_a_cxi_file(cxi, tmp_path):
    wb = Workbench(auto_preview=False, runs_root=tmp_path / "runs")
    wb.load(cxi)
    train = wb.start("train", **TINY_TRAIN)
    assert wb.wait(240) and train.status == "finished", train.error
    assert train.bundle is not None and np.isfinite(train.metrics["val_loss"])
    infer = wb.start("infer", bundle=str(train.bundle))
    assert wb.wait(120) and infer.status == "finished", infer.error
    assert infer.canvas is not None
    refine = wb.start("refine", iterations=2, batch_size=16,
                      **{f"train_{k}": v for k, v in TINY_TRAIN.items()})
    assert wb.wait(240) and refine.status == "finished", refine.error
    assert refine.metrics["amplitude_ssim"] > refine.metrics["network_amplitude_ssim"]


# -- physical units in a viewer -----------------------------------------------------------
def test_layers_carry_nm_and_positions_align_with_the_canvas(make_napari_viewer, cxi,
                                                             tmp_path):
    viewer = make_napari_viewer()
    wb = Workbench(viewer, runs_root=tmp_path / "runs")
    wb.load(cxi)
    assert wb.wait(60) and wb.last_error is None
    s = PIXEL_NM
    pos, amp = viewer.layers["positions"], viewer.layers["canvas amplitude"]
    for layer in (pos, amp, viewer.layers["canvas phase"], viewer.layers["probe amplitude"],
                  viewer.layers["patch grid amplitude"]):
        assert [str(u) for u in layer.units][-2:] == ["nanometer", "nanometer"], layer.name
    assert tuple(amp.scale) == pytest.approx((s, s))
    assert viewer.scale_bar.visible
    # a position's layer coordinate is its canvas pixel times the pixel size, and the
    # canvas pixel under it is the same world point
    origin = np.asarray(wb.result.canvas.origin, float)
    p = wb.data.positions[5]
    world = np.asarray(pos.data_to_world(p))
    np.testing.assert_allclose(world, p * s, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(amp.data_to_world(p - origin)), world, rtol=1e-9)
    # the group borders and labels are in the same frame (their widths stay in pixels)
    for name in ("group borders", "preview labels"):
        assert tuple(viewer.layers[name].scale) == pytest.approx((s, s)), name
    grids = viewer.layers["patch grid amplitude"]
    assert grids.extent.world[0][-1] > amp.extent.world[1][-1]
    # a run's result layers carry the same physical scale
    rec = wb.start("lsqml", iterations=2, batch_size=16)
    assert wb.wait(120) and rec.status == "finished", rec.error
    final = viewer.layers[f"{rec.name} amplitude"]
    assert tuple(final.scale) == pytest.approx((s, s))
    assert [str(u) for u in final.units] == ["nanometer", "nanometer"]
    np.testing.assert_allclose(final.translate, np.asarray(rec.canvas.origin) * s)
    # the units are the same on every layer: napari's scale bar shows nm
    assert [str(u) for u in viewer.layers.units][-2:] == ["nanometer", "nanometer"]


def test_frame_of_a_pixel_dataset_is_the_identity_and_large_pixels_are_in_um(sim):
    f = Frame.of(sim)
    assert f.unit == "pixel" and f.scale == (1.0, 1.0)
    assert f.world((3, 4)).tolist() == [3.0, 4.0]
    big = Frame((2.5e-6, 2e-6))
    assert big.unit == "µm" and big.scale == (2.5, 2.0)
    np.testing.assert_allclose(big.pixels(big.world([[3.0, 4.0]])), [[3.0, 4.0]])


@pytest.mark.parametrize("suffix", [".h5", ".cxi"])
def test_reader_opens_a_reconstruction_product_in_nm(cxi, tmp_path, suffix):
    ds = api.load_dataset(cxi)
    res = api.reconstruct(ds, api.LSQMLOptions(iterations=1, batch_size=16))
    path = api.save_reconstruction(tmp_path / f"recon{suffix}", res, ds)
    assert io.readable(path)
    layers = {kw["name"]: (data, kw) for data, kw, _ in io.read(path)}
    amp, kw = layers["recon object amplitude"]
    np.testing.assert_allclose(amp, np.abs(res.object), rtol=1e-5, atol=1e-6)
    assert kw["scale"] == pytest.approx((PIXEL_NM, PIXEL_NM))
    assert kw["units"] == ("nm", "nm")
    pos, pkw = layers["recon positions"]
    assert pos.shape == (ds.n, 2) and pkw["scale"] == kw["scale"]


def test_file_open_of_a_cxi_makes_it_the_workbench_dataset(workbench, cxi):
    wb, widget, viewer = workbench
    viewer.open(str(cxi), plugin="ptycho-workbench")  # what File › Open does
    assert wb.wait(120) and wb.last_error is None, wb.last_error
    assert wb.data_path == str(cxi) and wb.data.n == 64
    assert wb.data.pixel_size == pytest.approx((PIXEL_NM * 1e-9,) * 2)
    # the Data tab is in front with the file's summary
    assert widget.tabs.tabText(widget.tabs.currentIndex()) == "Data"
    text = widget.summary.toPlainText()
    assert "object pixel    129 nm" in text and str(cxi) in text
    assert "canvas amplitude" in viewer.layers
    assert [str(u) for u in viewer.layers["canvas amplitude"].units] == ["nanometer"] * 2
