"""Element-wise helpers that work on NumPy arrays and torch tensors alike.

The solvers do every geometric and Fourier operation through the backend protocol
(extract, scatter_add, propagate, backpropagate); what is left is arithmetic, reductions over
the pattern axes and a handful of element-wise functions, which these helpers dispatch by
array type so that one solver source runs on every backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any


def _is_torch(x: Array) -> bool:
    return type(x).__module__.startswith("torch")


def abs2(x: Array) -> Array:
    """|x|² as a real array."""
    if _is_torch(x):
        return x.real.square() + x.imag.square() if x.is_complex() else x.square()
    return x.real * x.real + x.imag * x.imag if np.iscomplexobj(x) else x * x


def conj(x: Array) -> Array:
    return x.conj()


def real(x: Array) -> Array:
    return x.real


def sqrt(x: Array) -> Array:
    return x.sqrt() if _is_torch(x) else np.sqrt(x)


def sum_axes(x: Array, axes: tuple[int, ...], keepdims: bool = False) -> Array:
    """Sum over ``axes``; over axes of length one (a single probe mode) it is a view, not a
    copy. The result may share memory with ``x``: the solvers never write in place."""
    if all(x.shape[a] == 1 for a in axes):
        return x if keepdims else x.reshape([d for i, d in enumerate(x.shape)
                                             if i not in {a % x.ndim for a in axes}])
    if _is_torch(x):
        return x.sum(dim=axes, keepdim=keepdims)
    return x.sum(axis=axes, keepdims=keepdims)


def amax(x: Array) -> Array:
    """The largest element as a 0-d array of the backend (no device synchronisation)."""
    return x.max()


def amax_axes(x: Array, axes: tuple[int, ...], keepdims: bool = False) -> Array:
    if _is_torch(x):
        out = x
        for ax in sorted((a % x.ndim for a in axes), reverse=True):
            out = out.amax(dim=ax, keepdim=keepdims)
        return out
    return x.max(axis=axes, keepdims=keepdims)


def clip(x: Array, lo: float | None, hi: float | None) -> Array:
    return x.clamp(lo, hi) if _is_torch(x) else np.clip(x, lo, hi)


def maximum(x: Array, value: Array | float) -> Array:
    """Element-wise max of ``x`` and a scalar (a Python number or a 0-d array)."""
    return x.clamp_min(value) if _is_torch(x) else np.maximum(x, value)


def log(x: Array) -> Array:
    return x.log() if _is_torch(x) else np.log(x)


def copy(x: Array) -> Array:
    return x.clone() if _is_torch(x) else x.copy()


def stack(xs: list[Array]) -> Array:
    if _is_torch(xs[0]):
        import torch

        return torch.stack(xs)
    return np.stack(xs)


def to_float(x: Array) -> float:
    return float(x)


def where_positive(mask_source: Array, a: Array, b: float) -> Array:
    """``a`` where ``mask_source > 0`` else ``b``."""
    if _is_torch(a):
        import torch

        return torch.where(mask_source > 0, a, torch.full_like(a, b))
    return np.where(mask_source > 0, a, b)
