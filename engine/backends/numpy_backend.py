"""NumPy reference backend (float64 by default): the definition the others are tested against."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.backends.protocol import Array


class NumpyBackend:
    """Reference implementation of :class:`engine.backends.protocol.Backend`.

    Parameters
    ----------
    device : only ``"cpu"`` (or ``"auto"``).
    precision : ``"double"`` (default, float64/complex128) or ``"single"``.
    """

    name = "numpy"

    def __init__(self, device: str = "cpu", precision: str = "double") -> None:
        from engine.errors import InputError

        if device not in ("cpu", "auto"):
            raise InputError("device", "'cpu' or 'auto' for the numpy backend", repr(device))
        if precision not in ("double", "single"):
            raise InputError("precision", "'double' or 'single'", repr(precision))
        self.device = "cpu"
        self.precision = precision
        self.real_dtype = np.float64 if precision == "double" else np.float32
        self.complex_dtype = np.complex128 if precision == "double" else np.complex64

    def __repr__(self) -> str:
        return f"NumpyBackend(precision={self.precision!r})"

    # -- conversion -------------------------------------------------------------------------
    def asarray(self, x: Any, *, complex: bool = False) -> np.ndarray:
        x = np.asarray(x)
        if complex or np.iscomplexobj(x):
            return x.astype(self.complex_dtype, copy=False)
        return x.astype(self.real_dtype, copy=False)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def zeros(self, shape: tuple[int, ...], *, complex: bool = False) -> np.ndarray:
        return np.zeros(shape, dtype=self.complex_dtype if complex else self.real_dtype)

    def synchronize(self) -> None:
        return None

    # -- geometry ---------------------------------------------------------------------------
    def _index(self, shape: tuple[int, int], top_left: Any, size: int):
        H, W = shape
        tl = np.asarray(top_left, dtype=np.float64).reshape(-1, 2)
        i0 = np.floor(tl)
        frac = (tl - i0).astype(self.real_dtype)
        ar = np.arange(size + 1)
        rows = np.clip(i0[:, :1].astype(np.int64) + ar, 0, H - 1)
        cols = np.clip(i0[:, 1:].astype(np.int64) + ar, 0, W - 1)
        flat = rows[:, :, None] * W + cols[:, None, :]
        return flat, frac[:, 0, None, None], frac[:, 1, None, None]

    def extract(self, obj: np.ndarray, top_left: Any, size: int) -> np.ndarray:
        flat, fy, fx = self._index(obj.shape, top_left, size)
        block = obj.reshape(-1)[flat]
        rows = block[:, :-1, :] * (1 - fy) + block[:, 1:, :] * fy
        return rows[:, :, :-1] * (1 - fx) + rows[:, :, 1:] * fx

    def scatter_add(self, canvas: np.ndarray, patches: np.ndarray, top_left: Any) -> None:
        M = patches.shape[-1]
        flat, fy, fx = self._index(canvas.shape, top_left, M)
        n = flat.shape[0]  # patches may be (1, M, M), broadcast over the positions
        cols = np.zeros((n, M, M + 1), dtype=np.result_type(patches, fx))
        cols[:, :, :-1] += patches * (1 - fx)
        cols[:, :, 1:] += patches * fx
        block = np.zeros((n, M + 1, M + 1), dtype=cols.dtype)
        block[:, :-1, :] += cols * (1 - fy)
        block[:, 1:, :] += cols * fy
        size = canvas.size
        idx = flat.reshape(-1)
        vals = block.reshape(-1)
        view = canvas.reshape(-1)
        if np.iscomplexobj(canvas):
            view += np.bincount(idx, vals.real, minlength=size)
            view += 1j * np.bincount(idx, vals.imag, minlength=size)
        else:
            view += np.bincount(idx, vals.real if np.iscomplexobj(vals) else vals, minlength=size)

    # -- physics ----------------------------------------------------------------------------
    def illuminate(self, probe: np.ndarray, patches: np.ndarray) -> np.ndarray:
        return probe * patches

    def propagate(self, psi: np.ndarray) -> np.ndarray:
        out = np.fft.fftshift(np.fft.fft2(psi, norm="ortho"), axes=(-2, -1))
        return out.astype(self.complex_dtype, copy=False)

    def backpropagate(self, Psi: np.ndarray) -> np.ndarray:  # noqa: N803
        out = np.fft.ifft2(np.fft.ifftshift(Psi, axes=(-2, -1)), norm="ortho")
        return out.astype(self.complex_dtype, copy=False)

    def fft2(self, x: np.ndarray) -> np.ndarray:
        return np.fft.fft2(x, norm="ortho").astype(self.complex_dtype, copy=False)

    def ifft2(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.fft.ifft2(X, norm="ortho").astype(self.complex_dtype, copy=False)

    def amplitude(self, Psi: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.abs(Psi)

    def forward(self, obj: np.ndarray, probe: np.ndarray, positions: Any) -> np.ndarray:
        N = probe.shape[-1]
        tl = np.asarray(positions, dtype=np.float64).reshape(-1, 2) - N / 2
        patches = self.extract(obj, tl, N)
        return self.amplitude(self.propagate(self.illuminate(probe, patches)))

    # -- statistics -------------------------------------------------------------------------
    def patch_stats(self, a: np.ndarray) -> dict[str, float]:
        a = np.asarray(a, dtype=np.float64)
        if a.size == 0:
            return {"mean": float("nan"), "std": float("nan"), "var_zero_mean": float("nan")}
        centred = a - a.mean(axis=(-2, -1), keepdims=True)
        return {
            "mean": float(a.mean()),
            "std": float(a.std()),
            "var_zero_mean": float(np.mean(centred**2)),
        }
