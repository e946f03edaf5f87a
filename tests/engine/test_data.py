"""Data contract (docs/conventions.md#data-format): every violation is a one-line error naming the
key."""

from __future__ import annotations

import os

import numpy as np
import pytest

from engine import data as data_mod
from engine.data import read_npz, write_npz
from engine.errors import InputError


def _arrays(ds):
    return {"diffraction": ds.diffraction, "xcoords": ds.xcoords, "ycoords": ds.ycoords,
            "probeGuess": ds.probe, "objectGuess": ds.object, "Y": ds.patches}


def _write(tmp_path, arrays, name="d.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _error(path, **kw) -> str:
    with pytest.raises(InputError) as info:
        read_npz(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_round_trip(tmp_path, small_ds):
    path = write_npz(tmp_path / "x.npz", small_ds)
    back = read_npz(path)
    np.testing.assert_array_equal(back.diffraction, small_ds.diffraction)
    np.testing.assert_array_equal(back.positions, small_ds.positions)
    np.testing.assert_array_equal(back.object, small_ds.object)
    assert back.metadata["seed"] == 3
    with np.load(path) as z:
        assert z["diffraction"].dtype == np.float32 and z["probeGuess"].dtype == np.complex64
        assert z["metadata"].ndim == 0


def test_alias_and_legacy_layout(tmp_path, small_ds):
    arrays = _arrays(small_ds)
    arrays["diff3d"] = np.moveaxis(arrays.pop("diffraction"), 0, 2)  # (N, N, n)
    back = read_npz(_write(tmp_path, arrays))
    np.testing.assert_array_equal(back.diffraction, small_ds.diffraction)


def test_ambiguous_layout(tmp_path, small_ds):
    ds = small_ds.subset(np.arange(32))  # n == N == 32
    arrays = _arrays(ds)
    assert "ambiguous" in _error(_write(tmp_path, arrays))


def test_pytchopinn_style_file_without_Y(tmp_path, small_ds):
    arrays = _arrays(small_ds)
    del arrays["Y"]
    arrays["Y"] = small_ds.patches[..., None]  # PtychoPINN stores (n, N, N, 1)
    assert read_npz(_write(tmp_path, arrays)).patches.shape == small_ds.patches.shape


@pytest.mark.parametrize("key", ["xcoords", "ycoords", "probeGuess", "diffraction"])
def test_missing_key(tmp_path, small_ds, key):
    arrays = _arrays(small_ds)
    del arrays[key]
    msg = _error(_write(tmp_path, arrays))
    assert f"'{key}'" in msg


def test_file_without_diffraction_is_accepted_when_asked(tmp_path, small_ds):
    arrays = _arrays(small_ds)
    del arrays["diffraction"]
    assert read_npz(_write(tmp_path, arrays), require_diffraction=False).diffraction is None


@pytest.mark.parametrize("key,bad,expect", [
    ("diffraction", lambda a: a[:, :-1], "'diffraction': expected shape (n, N, N)"),
    ("Y", lambda a: a[:-1], "'Y': expected shape"),
    ("xcoords", lambda a: a[:-1], "'xcoords'/'ycoords'"),
    ("probeGuess", lambda a: a[:, :-2], "'probeGuess': expected a square"),
])
def test_shape_mismatch(tmp_path, small_ds, key, bad, expect):
    arrays = _arrays(small_ds)
    arrays[key] = bad(arrays[key])
    assert expect in _error(_write(tmp_path, arrays))


@pytest.mark.parametrize("key", ["diffraction", "xcoords", "probeGuess", "objectGuess"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_inf(tmp_path, small_ds, key, value):
    arrays = _arrays(small_ds)
    a = arrays[key].copy()
    a.flat[3] = value
    arrays[key] = a
    msg = _error(_write(tmp_path, arrays))
    assert f"'{key}': expected finite values" in msg


def test_negative_amplitude(tmp_path, small_ds):
    arrays = _arrays(small_ds)
    arrays["diffraction"] = arrays["diffraction"].copy()
    arrays["diffraction"][0, 0, 0] = -1
    assert "amplitudes >= 0" in _error(_write(tmp_path, arrays))


def test_no_positions(tmp_path, small_ds):
    arrays = {"diffraction": np.zeros((0, 32, 32), np.float32), "xcoords": np.zeros(0),
              "ycoords": np.zeros(0), "probeGuess": small_ds.probe}
    assert "n = 0" in _error(_write(tmp_path, arrays))


def test_positions_outside_object(tmp_path, small_ds):
    arrays = _arrays(small_ds)
    arrays["xcoords"] = arrays["xcoords"].copy()
    arrays["xcoords"][5] = 3.0
    msg = _error(_write(tmp_path, arrays))
    assert "inside" in msg and "#5" in msg


def test_pickled_objects_are_refused(tmp_path, small_ds):
    arrays = _arrays(small_ds)
    arrays["metadata"] = np.array([{"a": 1}], dtype=object)
    path = tmp_path / "p.npz"
    np.savez(path, **arrays)
    assert "pickled objects are refused" in _error(path)


def test_not_an_npz_and_missing_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    assert "readable .npz" in _error(bad)
    assert "no such file" in _error(tmp_path / "missing.npz")


def test_failed_write_leaves_previous_file_intact(tmp_path, small_ds, monkeypatch):
    path = write_npz(tmp_path / "d.npz", small_ds)
    before = path.read_bytes()

    def boom(fh, **arrays):
        fh.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(data_mod.np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        write_npz(path, small_ds.subset(np.arange(4)))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["d.npz"]  # no temp file left behind


def test_invalid_dataset_is_never_written(tmp_path, small_ds):
    with pytest.raises(InputError):
        data_mod.Dataset(diffraction=-small_ds.diffraction, xcoords=small_ds.xcoords,
                         ycoords=small_ds.ycoords, probe=small_ds.probe)
    assert not (tmp_path / "never.npz").exists()
