"""The lazy HDF5 stack reads only the rows it is asked for, in sorted contiguous runs,
matches the in-memory array, validates every read, pickles by path, and subsets lazily."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from engine import api
from engine.data import is_lazy, read_rows
from engine.errors import InputError
from engine.io.lazy import H5Stack
from engine.io.streaming import pattern_summary


@pytest.fixture()
def stack_file(tmp_path):
    rng = np.random.default_rng(1)
    counts = rng.poisson(50.0, (40, 16, 16)).astype(np.uint16)
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=counts, chunks=(8, 16, 16))
    return path, counts


def test_reads_only_the_rows_asked(stack_file):
    path, counts = stack_file
    s = H5Stack(path, "d")
    assert s.rows_read == 0 and len(s) == 40 and s.dtype == np.float32
    out = s[np.array([33, 2, 3, 4, 33])]
    np.testing.assert_array_equal(out, np.sqrt(counts[[33, 2, 3, 4, 33]].astype(np.float64))
                                  .astype(np.float32))
    # 2, 3, 4 in one contiguous read, 33 once
    assert s.rows_read == 4 and s.reads == 2
    np.testing.assert_array_equal(s[5], np.sqrt(counts[5].astype(np.float64)).astype(np.float32))
    assert s.rows_read == 5


def test_h5py_sees_only_the_reads_asked(stack_file, monkeypatch):
    """Counted at h5py's own Dataset.__getitem__: no read of the whole stack."""
    path, counts = stack_file
    seen = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        seen.append(key)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    s = H5Stack(path, "d")
    read_rows(s, slice(8, 12))
    assert seen == [slice(8, 12)]


def test_matches_memory_and_subsets_lazily(stack_file):
    path, counts = stack_file
    s = H5Stack(path, "d")
    full = np.sqrt(counts.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(s[:], full)
    sub = s.subset(np.array([30, 1, 7]))
    assert is_lazy(sub) and sub.rows_read == 0 and sub.shape == (3, 16, 16)
    np.testing.assert_array_equal(sub[::-1], full[[7, 1, 30]])
    np.testing.assert_array_equal(sub.subset(np.array([2]))[0], full[7])


def test_pickles_by_path_and_reopens(stack_file):
    path, counts = stack_file
    s = H5Stack(path, "d")
    s[0]  # an open file handle exists now
    clone = pickle.loads(pickle.dumps(s))
    assert "_h5" not in clone.__dict__
    np.testing.assert_array_equal(clone[[3, 9]], s[[3, 9]])


def test_bad_values_name_file_dataset_and_row(tmp_path):
    path = tmp_path / "bad.h5"
    data = np.ones((6, 8, 8))
    data[4, 2, 2] = np.nan
    data[2, 1, 1] = -3.0
    with h5py.File(path, "w") as f:
        f["g/d"] = data
    s = H5Stack(path, "g/d")
    s[[0, 1]]  # good rows read fine
    with pytest.raises(InputError) as info:
        s[4]
    assert f"{path}: g/d row 4: expected finite counts, got 1 NaN/Inf values" in str(info.value)
    with pytest.raises(InputError, match=r"g/d row 2: expected counts >= 0, got 1 negative"):
        s[1:4]


def test_wrong_shapes_are_one_line(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["flat"] = np.ones((4, 8))
        f["rect"] = np.ones((4, 8, 6))
        f["cplx"] = np.ones((4, 8, 8), np.complex64)
    for name, what in (("flat", "square"), ("rect", "square"), ("cplx", "real")):
        with pytest.raises(InputError, match=what):
            H5Stack(path, name)
    with pytest.raises(InputError, match="no such dataset"):
        H5Stack(path, "missing")


def test_streamed_summary_matches_memory(stack_file):
    path, counts = stack_file
    s = H5Stack(path, "d")
    summary = pattern_summary(s, batch=7)
    np.testing.assert_allclose(summary.counts, counts.sum(axis=(1, 2)), rtol=1e-5)
    assert s.rows_read == 40  # one pass, each row once


def test_failed_streaming_write_keeps_the_previous_output(tmp_path, sim, geometry):
    """A CXI copied from a lazy source that turns out corrupt half-way leaves the previous
    output intact and no temporary file behind."""
    src = api.save_dataset(tmp_path / "src.cxi", sim, geometry=geometry)
    out = api.convert(src, tmp_path / "out.cxi")
    before = out.read_bytes()
    with h5py.File(src, "a") as f:
        d = f["entry_1/instrument_1/detector_1/data"]
        row = d[10].astype(np.int64)
        del f["entry_1/instrument_1/detector_1/data"]
        data = np.rint(sim.diffraction.astype(np.float64) ** 2)
        data[10] = row
        data[10, 0, 0] = np.nan
        f["entry_1/instrument_1/detector_1/data"] = data
    with pytest.raises(InputError, match="row 10"):
        api.convert(src, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.cxi", "src.cxi"]


def test_conversion_copies_the_files_counts_exactly(tmp_path, sim):
    """A lazy CXI/NeXus source is copied count for count, in the file's own dtype."""
    from .conftest import write_spec_cxi

    src = write_spec_cxi(tmp_path / "s.cxi", sim)  # int32 counts
    out = api.convert(src, tmp_path / "o.cxi")
    with h5py.File(src) as a, h5py.File(out) as b:
        x = a["entry_1/data_1/data"][()]
        y = b["entry_1/data_1/data"][()]
        assert y.dtype == x.dtype == np.int32
        np.testing.assert_array_equal(x, y)
    s = H5Stack(src, "entry_1/data_1/data")
    np.testing.assert_array_equal(s.subset(np.array([5, 2])).raw_rows(slice(None)), x[[5, 2]])
