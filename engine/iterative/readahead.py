"""Reading the next batch of a lazy stack while the solver works on this one.

A lazy :class:`~engine.data.DiffractionStack` (an HDF5 file) costs a read per batch (tens of
ms for a few hundred patterns), time the solver would otherwise spend waiting. The epoch's
batch order is known in advance, so the next batch's rows are read on one background
thread while the current batch computes (NumPy and torch release the GIL in their array
work, HDF5 reads happen meanwhile). At most one batch is read ahead: resident memory grows
by one batch, not more.

The solver gives the epoch's batches to :meth:`ReadAhead.plan`; each :meth:`ReadAhead.take`
of the planned batch returns its rows (read ahead when they were) and starts reading the
batch after it.

Examples
--------
>>> import numpy as np
>>> ahead = ReadAhead(np.arange(24.0).reshape(6, 2, 2))
>>> ahead.plan([np.array([4, 5]), np.array([0, 1])])
>>> ahead.take(np.array([4, 5]))[:, 0, 0]  # read now; [0, 1] is read meanwhile
array([16., 20.], dtype=float32)
>>> ahead.take(np.array([0, 1]))[:, 0, 0]
array([0., 4.], dtype=float32)
>>> ahead.close()
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from engine.data import read_rows


class ReadAhead:
    """One batch of rows read ahead on a background thread (see the module docstring)."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self._pool: ThreadPoolExecutor | None = None
        self._rows: np.ndarray | None = None
        self._future: Future[np.ndarray] | None = None
        self._plan: list[np.ndarray] = []
        self._next = 0
        self.hits = 0  # batches served by a read ahead (for tests and benchmarks)

    def plan(self, batches: list[np.ndarray]) -> None:
        """The rows of this epoch's batches, in the order they will be taken."""
        self._drain()
        self._plan = [np.asarray(b) for b in batches]
        self._next = 0

    def start(self, rows: np.ndarray) -> None:
        """Begin reading ``rows`` (host indices); a read still pending is finished first, so
        only one reader touches the file at a time."""
        self._drain()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ptycho-read")
        self._rows = np.array(rows, copy=True)
        self._future = self._pool.submit(read_rows, self.stack, self._rows)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` as float32: the read-ahead's when it was for these rows (its error,
        if the read failed, is raised here), else a plain read."""
        data = None
        if self._future is not None and _same(self._rows, rows):
            data = self._future.result()
            self._future = self._rows = None
            self.hits += 1
        if self._next < len(self._plan) and _same(self._plan[self._next], rows):
            self._next += 1
            if data is None:
                data = read_rows(self.stack, rows)
            if self._next < len(self._plan):
                self.start(self._plan[self._next])
            return data
        return data if data is not None else read_rows(self.stack, rows)

    def _drain(self) -> None:
        if self._future is not None:
            self._future.exception()  # wait; a failed read of rows nobody took is dropped
        self._future = self._rows = None

    def close(self) -> None:
        """Finish any pending read and stop the thread."""
        self._drain()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _same(a: np.ndarray | None, b: np.ndarray) -> bool:
    return a is not None and a.shape == np.shape(b) and bool(np.array_equal(a, b))
