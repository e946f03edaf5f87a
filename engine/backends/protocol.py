"""The one protocol every compute backend implements.

Arrays are the backend's own type (``numpy.ndarray`` or ``torch.Tensor``); the engine moves
data across with :meth:`Backend.asarray` and :meth:`Backend.to_numpy` only at the edges.

Geometry conventions (docs/conventions.md#coordinates): ``top_left`` is an ``(n, 2)`` float array of
(row, col) object coordinates of a window's pixel (0, 0); a probe centred at position (y, x) has
``top_left = (y - N/2, x - N/2)``. Sub-pixel values use **bilinear interpolation**, the one
documented interpolation of the project; reads beyond the last row/column repeat the edge
(the weight there is zero for every in-bounds window, see ``data.check_positions_inside``).
:meth:`Backend.scatter_add` is the exact adjoint of :meth:`Backend.extract`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

Array = Any


def checkerboard(N: int) -> np.ndarray:  # noqa: N803 - the physics symbol
    """(-1)^(r+c) on an N×N grid: for even N, ``fft2(x * checkerboard(N))`` is the centred
    far field ``propagate(x)`` (see :meth:`Backend.fft2`)."""
    r = np.arange(N)
    return 1.0 - 2.0 * ((r[:, None] + r[None, :]) % 2)


@runtime_checkable
class Backend(Protocol):
    """Array operations of the forward model, stitching and statistics."""

    name: str
    device: str
    real_dtype: Any
    complex_dtype: Any

    def asarray(self, x: Any, *, complex: bool = False) -> Array:
        """Convert ``x`` to a backend array of the backend's real (or complex) dtype."""

    def to_numpy(self, x: Array) -> np.ndarray:
        """Copy a backend array to host NumPy."""

    def zeros(self, shape: tuple[int, ...], *, complex: bool = False) -> Array:
        """A zero-filled array."""

    def extract(self, obj: Array, top_left: Any, size: int) -> Array:
        """(n, size, size) windows of ``obj`` (H, W) at sub-pixel ``top_left`` (n, 2)."""

    def scatter_add(self, canvas: Array, patches: Array, top_left: Any) -> None:
        """Add ``patches`` (n, M, M) (or (1, M, M), broadcast) into ``canvas`` in place.

        The exact adjoint of :meth:`extract`.
        """

    def illuminate(self, probe: Array, patches: Array) -> Array:
        """Exit waves ``probe * patches`` (probe (N, N) or (n, N, N), broadcast)."""

    def propagate(self, psi: Array) -> Array:
        """Far field ``fftshift(fft2(psi)) / N`` over the last two axes (orthonormal)."""

    def backpropagate(self, Psi: Array) -> Array:  # noqa: N803 - the physics symbol
        """Inverse of :meth:`propagate`."""

    def fft2(self, x: Array) -> Array:
        """Orthonormal 2-D DFT over the last two axes, without the shift.

        For even N, ``fft2(x * c) == propagate(x)`` with the checkerboard c = (-1)^(r+c):
        solvers that keep the probe times c skip the shift of every batch.
        """

    def ifft2(self, X: Array) -> Array:  # noqa: N803
        """Inverse of :meth:`fft2`."""

    def amplitude(self, Psi: Array) -> Array:  # noqa: N803
        """``|Psi|``."""

    def forward(self, obj: Array, probe: Array, positions: Any) -> Array:
        """Far-field amplitudes (n, N, N) at probe centres ``positions`` (n, 2) (y, x)."""

    def patch_stats(self, a: Array) -> dict[str, float]:
        """``mean``, ``std`` and ``var_zero_mean`` of real patches (..., M, M)
        (docs/conventions.md#statistics)."""

    def synchronize(self) -> None:
        """Wait for queued device work (for timing)."""
