"""A lazy diffraction stack for tests: a NumPy array (or np.memmap) behind the
:class:`engine.data.DiffractionStack` protocol that records every read."""

from __future__ import annotations

from typing import Any

import numpy as np


class CountingStack:
    """Rows of ``array`` read on demand; ``reads`` holds the row count of every read.

    ``subset`` shares the counter, so reads through a subset count too.
    """

    def __init__(self, array: np.ndarray, reads: list[int] | None = None,
                 rows: np.ndarray | None = None) -> None:
        self._array = array
        self._rows = np.arange(array.shape[0]) if rows is None else np.asarray(rows)
        self.reads: list[int] = [] if reads is None else reads
        self.shape = (int(self._rows.size),) + tuple(array.shape[1:])
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = self._rows[index]
        self.reads.append(int(np.size(rows)))
        return np.asarray(self._array[rows], dtype=np.float32)

    def subset(self, index: np.ndarray) -> CountingStack:
        return CountingStack(self._array, self.reads, self._rows[np.asarray(index)])

    @property
    def largest_read(self) -> int:
        return max(self.reads, default=0)
