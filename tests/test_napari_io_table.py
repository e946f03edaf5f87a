"""The napari reader and writers over tables of bad files and bad layers (issue 21, item 9).

The reader declines what is not ours (``get_reader`` returns ``None``) or reports one line
through one napari notification, never a traceback; deciding costs no bundle load. The
writers refuse a layer they cannot write as a canvas their own reader reads back, with one
line naming the layer, and write nothing. No display is needed: the plugin's callables are
called as napari calls them.
"""

from __future__ import annotations

import io as _io
import json
import pickle
import shutil
import zipfile

import numpy as np
import pytest

pytest.importorskip("napari")

import plugins._napari as plugin  # noqa: E402
from engine import api  # noqa: E402
from engine.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    import torch

    from engine.network.bundles import bundle_bytes, save_bundle

    d = tmp_path_factory.mktemp("napari")
    ds = api.simulate(api.SimulationConfig(object="asym", n_positions=16, N=32, step=6,
                                           seed=0))
    f = {"data": api.save_dataset(d / "data.npz", ds),
         "canvas": api.stitch(ds).save(d / "canvas.npz"), "dir": d}
    save_bundle(d / "run" / "bundle", {"w": torch.ones(4)}, np.ones((8, 8), np.complex64),
                dict(intensity_scale=2.0, probe_factor=1.0, N=8, gridsize=1))
    f["bundle_dir"] = d / "run"
    f["bundle_zip"] = d / "bundle.zip"
    f["bundle_zip"].write_bytes(bundle_bytes(d / "run" / "bundle").getvalue())
    return f


def _bad_files(good, d):
    raw = good["data"].read_bytes()
    files = {
        "empty": (d / "empty.npz", b""),
        "text": (d / "text.npz", b"not an archive\n"),
        "truncated": (d / "truncated.npz", raw[: len(raw) // 2]),
        "raw pickle": (d / "pickle.npz", pickle.dumps({"diffraction": 1})),
    }
    for path, data in files.values():
        path.write_bytes(data)
    out = {k: v[0] for k, v in files.items()}
    with open(d / "single.npz", "wb") as fh:
        np.save(fh, np.ones(3))
    out["single .npy"] = d / "single.npz"
    arrays = dict(np.load(good["data"], allow_pickle=False))
    np.savez(d / "pickled.npz", **{**arrays, "xcoords": np.array([{"x": 1}] * 16)})
    out["pickled member"] = d / "pickled.npz"
    header = _io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**7, 2000, 2000)})
    with zipfile.ZipFile(d / "bomb.npz", "w") as z:
        z.writestr("diffraction.npy", header.getvalue() + b"\0" * 64)
    out["146 TiB header"] = d / "bomb.npz"
    (d / "empty_dir").mkdir()
    out["empty directory"] = d / "empty_dir"
    out["missing"] = d / "missing.npz"
    with zipfile.ZipFile(d / "other.zip", "w") as z:
        z.writestr("a.txt", "hello")
    out["zip without bundle"] = d / "other.zip"
    forged = d / "forged.zip"
    with zipfile.ZipFile(good["bundle_zip"]) as src, zipfile.ZipFile(forged, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "bundle.json":
                meta = json.loads(data)
                meta["intensity_scale"] = -1.0
                from engine.network.bundles import _manifest_digest

                meta["manifest_sha256"] = _manifest_digest(meta)
                data = json.dumps(meta).encode()
            dst.writestr(name, data)
    out["forged bundle zip"] = forged
    incomplete = d / "incomplete"
    shutil.copytree(good["bundle_dir"], incomplete)
    (incomplete / ".ptycho-run.json").write_text('{"state": "incomplete", "replaces": null}')
    out["incomplete run"] = incomplete
    return out


BAD = ["empty", "text", "truncated", "raw pickle", "single .npy", "pickled member",
       "146 TiB header", "empty directory", "missing", "zip without bundle",
       "forged bundle zip", "incomplete run"]


@pytest.mark.parametrize("case", BAD)
def test_the_reader_declines_or_reports_one_line(good, tmp_path, monkeypatch, case):
    said = []
    monkeypatch.setattr(plugin, "_notify", said.append)
    path = _bad_files(good, tmp_path)[case]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    reader = plugin.get_reader(str(path))
    if reader is not None:
        layers = reader(str(path))
        assert layers == [(None,)] and len(said) == 1 and "\n" not in said[0], said
        assert str(path) in said[0]
    else:
        assert said == []
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_get_reader_claims_bundles_without_loading_them(good, monkeypatch):
    import engine.network.bundles as bundles

    def refuse(*a, **k):
        raise AssertionError("get_reader loaded a bundle")

    monkeypatch.setattr(bundles, "load_bundle", refuse)
    assert plugin.get_reader(str(good["bundle_zip"])) is not None
    assert plugin.get_reader(str(good["bundle_dir"])) is not None
    monkeypatch.undo()
    layers = plugin.get_reader(str(good["bundle_zip"]))(str(good["bundle_zip"]))
    assert [kw["name"] for _, kw, _ in layers] == ["bundle bundle probe amplitude",
                                                   "bundle bundle probe phase"]
    assert layers[0][0].shape == (8, 8)


def test_the_reader_reads_good_files(good):
    for key in ("data", "canvas", "bundle_dir"):
        layers = plugin.get_reader(str(good[key]))(str(good[key]))
        assert layers and all(np.asarray(d).size for d, _, _ in layers)


BAD_LAYERS = {
    "object": (np.array([[object(), 1]], dtype=object), {}, "dtype object"),
    "string": (np.array([["a", "b"]]), {}, "dtype <U1"),
    "NaN translate": (np.ones((4, 4), np.float32), {"translate": (np.nan, 0.0)}, "translate"),
    "3-D": (np.ones((3, 4, 4), np.float32), {}, "3-D"),
    "RGB": (np.ones((4, 4, 3), np.uint8), {}, "3-D"),
    "1-D": (np.ones(4), {}, "1-D"),
}


@pytest.mark.parametrize("writer", ["write_npz", "write_tiff"])
@pytest.mark.parametrize("case", sorted(BAD_LAYERS))
def test_writers_refuse_what_they_cannot_write_naming_the_layer(tmp_path, writer, case):
    data, meta, got = BAD_LAYERS[case]
    out = tmp_path / ("x.npz" if writer == "write_npz" else "x.tif")
    with pytest.raises(InputError) as info:
        getattr(plugin, writer)(str(out), data, {"name": f"my {case}", **meta})
    msg = str(info.value)
    assert f"layer 'my {case}'" in msg and got in msg and "\n" not in msg, msg
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", ["write_npz", "write_tiff"])
def test_what_a_writer_writes_its_reader_reads_back(tmp_path, writer):
    import tifffile

    a = np.full((6, 5), 2.0, np.float32)
    a[0, 0] = np.nan
    out = tmp_path / ("c.npz" if writer == "write_npz" else "c.tif")
    assert getattr(plugin, writer)(str(out), a, {"name": "amp", "translate": (3.0, 4.0)}) \
        == [str(out)]
    if writer == "write_npz":
        layers = plugin.get_reader(str(out))(str(out))
        np.testing.assert_array_equal(layers[0][0], a)
        assert tuple(layers[0][1]["translate"]) == (3, 4)
    else:
        pages = tifffile.imread(out)
        assert pages.shape == (2, 6, 5) and pages.dtype == np.float32
        np.testing.assert_array_equal(pages[0], a)
