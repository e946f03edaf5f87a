"""A diffraction stack in an HDF5 file, read on demand (:class:`engine.data.DiffractionStack`).

The file stores counts (or intensities); the stack returns float32 amplitudes √counts,
reading only the rows asked for. Rows are read in increasing order, contiguous runs as one
slice (what HDF5 chunking serves best), then put back in the order asked. Each read checks
the values it returns: a NaN, an infinity or a negative count is a one-line error naming the
file, the dataset and the row. The stack holds a path, not an open file, so it pickles and
another process reopens it.

Examples
--------
>>> import tempfile, h5py, numpy as np
>>> path = tempfile.mkdtemp() + "/d.h5"
>>> with h5py.File(path, "w") as f:
...     _ = f.create_dataset("data", data=np.full((4, 8, 8), 9.0))
>>> stack = H5Stack(path, "data")
>>> stack[[2, 0]].shape, float(stack[1].max()), stack.rows_read
((2, 8, 8), 3.0, 3)
>>> stack.subset(np.array([3, 1])).shape, stack.nbytes
((2, 8, 8), 1024)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError

MEASURES = ("counts", "amplitude")
# HDF5's chunk cache per open stack. The 1 MiB default is kept on purpose: a chunk larger
# than the cache is read partially, only the rows asked for, while a larger cache loads
# whole chunks for single rows (measured: random batches of 64 rows ran 1.5-2.5x slower
# with 32 MiB, N = 128, 16-pattern chunks).
CHUNK_CACHE_BYTES = 1 << 20


class H5Stack:
    """Rows of an (n, N, N) HDF5 dataset as float32 amplitudes, read lazily.

    Parameters
    ----------
    path : the HDF5 file.
    dataset : path of the (n, N, N) dataset inside it (links are followed).
    rows : which rows of the dataset this stack holds, in order (default all).
    measure : ``"counts"`` (counts or intensities: amplitudes are √values, the default) or
        ``"amplitude"`` (stored as amplitudes already).
    """

    def __init__(self, path: str | os.PathLike[str], dataset: str,
                 rows: np.ndarray | None = None, measure: str = "counts") -> None:
        if measure not in MEASURES:
            raise InputError("measure", f"one of {MEASURES}", repr(measure))
        self.path = str(Path(path).resolve())
        self.dataset = dataset
        self.measure = measure
        h5 = self._file()
        d = h5.get(dataset)
        if d is None or not hasattr(d, "shape"):
            raise InputError(f"{self.path}: {dataset}", "an (n, N, N) dataset", "no such dataset")
        if d.ndim != 3 or d.shape[1] != d.shape[2]:
            raise InputError(f"{self.path}: {dataset}", "an (n, N, N) stack of square patterns",
                             f"shape {tuple(d.shape)}")
        if np.iscomplexobj(np.empty(0, d.dtype)) or not np.issubdtype(d.dtype, np.number):
            raise InputError(f"{self.path}: {dataset}", "real counts", f"dtype {d.dtype}")
        self.file_shape = tuple(int(s) for s in d.shape)
        self.file_dtype = d.dtype
        self.chunks = d.chunks
        n = self.file_shape[0]
        self.rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        if self.rows.ndim != 1 or (self.rows.size and (self.rows.min() < 0
                                                       or self.rows.max() >= n)):
            raise InputError(f"{self.path}: {dataset} rows", f"indices in [0, {n})",
                             f"{self.rows.min()}..{self.rows.max()}")
        self.shape = (int(self.rows.size), self.file_shape[1], self.file_shape[2])
        self.dtype = np.dtype(np.float32)
        self.rows_read = 0  # file rows read so far (tests and benchmarks count them)
        self.reads = 0  # read calls to the file

    # an open h5py.File per process; never pickled
    def _file(self) -> Any:
        import h5py

        h5 = getattr(self, "_h5", None)
        if h5 is None or not h5.id.valid or getattr(self, "_pid", None) != os.getpid():
            try:
                h5 = h5py.File(self.path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES,
                               rdcc_nslots=10007)
            except OSError as exc:
                raise InputError(self.path, "a readable HDF5 file",
                                 str(exc).split("\n")[0]) from None
            self._h5, self._pid = h5, os.getpid()
            self._lock = threading.Lock()
        return h5

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_h5", "_pid", "_lock"):
            state.pop(key, None)
        return state

    def close(self) -> None:
        h5 = getattr(self, "_h5", None)
        if h5 is not None and h5.id.valid:
            h5.close()
        self._h5 = None

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return 3

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Bytes the stack would take in memory as float32 amplitudes."""
        return 4 * self.size

    def __repr__(self) -> str:
        return (f"H5Stack({self.path!r}, {self.dataset!r}, shape={self.shape}, "
                f"measure={self.measure!r})")

    def is_lazy(self) -> bool:
        return True

    def subset(self, index: np.ndarray) -> H5Stack:
        """A lazy stack of rows ``index`` of this one; reads nothing."""
        out = H5Stack.__new__(H5Stack)
        out.__dict__.update(self.__getstate__())
        out.rows = self.rows[np.asarray(index)].reshape(-1)
        out.shape = (int(out.rows.size), self.shape[1], self.shape[2])
        out.rows_read = 0
        out.reads = 0
        return out

    def _local(self, index: Any) -> tuple[np.ndarray, bool]:
        """Positions in ``self.rows`` selected by ``index``; whether the result is one row."""
        if isinstance(index, tuple):
            if len(index) != 1:
                raise InputError("diffraction index", "rows only (an int, slice or 1-D array)",
                                 repr(index))
            index = index[0]
        if isinstance(index, int | np.integer):
            i = int(index)
            if not -len(self) <= i < len(self):
                raise IndexError(f"row {i} out of range for {len(self)} patterns")
            return np.array([i % len(self)]), True
        if isinstance(index, slice):
            return np.arange(len(self))[index], False
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return np.arange(len(self))[idx.reshape(-1).astype(np.int64)], False

    def __getitem__(self, index: Any) -> np.ndarray:
        local, single = self._local(index)
        file_rows = self.rows[local]
        out = self.read_file_rows(file_rows)
        return out[0] if single else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self[:]
        return a if dtype is None else a.astype(dtype)

    def _runs(self, uniq: np.ndarray):
        """``(position in uniq, raw values)`` of sorted unique file rows, one read per
        contiguous run (what HDF5 chunking serves best), each read validated."""
        h5 = self._file()
        with self._lock:
            d = h5[self.dataset]
            start = 0
            breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
            for run in np.split(np.arange(uniq.size), breaks):
                if run.size == 0:
                    continue
                a, b = int(uniq[run[0]]), int(uniq[run[-1]]) + 1
                raw = d[a:b]
                self.reads += 1
                self.rows_read += b - a
                self._check(raw, a)
                yield start, raw
                start += b - a

    def read_file_rows(self, file_rows: np.ndarray) -> np.ndarray:
        """Amplitudes of file rows ``file_rows`` (any order, repeats allowed)."""
        file_rows = np.asarray(file_rows, np.int64)
        uniq, inverse = np.unique(file_rows, return_inverse=True)
        block = np.empty((uniq.size, self.file_shape[1], self.file_shape[2]), np.float32)
        for start, raw in self._runs(uniq):
            exact = self._exact(raw)
            out = block[start:start + len(raw)]
            if self.measure == "counts":
                # float32 input: its float32 root is the correctly rounded one
                np.copyto(out, np.sqrt(exact), casting="same_kind")
            else:
                np.copyto(out, exact, casting="same_kind")
        return block[inverse.reshape(-1)]

    def raw_rows(self, index: Any) -> np.ndarray:
        """Rows ``index`` of this stack as stored in the file (counts, the file's dtype),
        validated like every read: what a lossless copy to another file writes."""
        local, single = self._local(index)
        file_rows = self.rows[local]
        uniq, inverse = np.unique(file_rows, return_inverse=True)
        block = np.empty((uniq.size, self.file_shape[1], self.file_shape[2]), self.file_dtype)
        for start, raw in self._runs(uniq):
            block[start:start + len(raw)] = raw
        out = block[inverse.reshape(-1)]
        return out[0] if single else out

    @staticmethod
    def _exact(raw: np.ndarray) -> np.ndarray:
        """``raw`` as float32 where that is exact (integers below 2^24, float32 data: the
        float32 square root is then the correctly rounded one), float64 otherwise."""
        if raw.dtype == np.float32:
            return raw
        if np.issubdtype(raw.dtype, np.integer) and (raw.dtype.itemsize <= 2 or (
                raw.size and int(raw.max()) < 1 << 24)):
            return raw.astype(np.float32)
        return raw.astype(np.float64)

    def _check(self, raw: np.ndarray, first_row: int) -> None:
        bad = ~np.isfinite(raw)
        if bad.any():
            j = int(np.argwhere(bad)[0][0])
            raise InputError(f"{self.path}: {self.dataset} row {first_row + j}",
                             f"finite {self.measure}", f"{int(bad[j].sum())} NaN/Inf values")
        neg = raw < 0
        if neg.any():
            j = int(np.argwhere(neg)[0][0])
            raise InputError(f"{self.path}: {self.dataset} row {first_row + j}",
                             f"{self.measure} >= 0",
                             f"{int(neg[j].sum())} negative values (min {raw[j].min():.4g})")

    def iter_rows(self, batch: int = 256):
        """Yield ``(start, amplitudes)`` batches of consecutive rows of this stack."""
        for s in range(0, len(self), batch):
            yield s, self[s:s + batch]
