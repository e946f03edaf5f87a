"""Where patches come from: ``truth`` now; reconstructions plug in here later."""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from engine.backends import Backend, get_backend
from engine.data import Dataset
from engine.errors import InputError

Source = Literal["truth"]
SOURCES: tuple[str, ...] = get_args(Source)


def truth_patches(ds: Dataset, backend: Backend | str = "numpy") -> np.ndarray:
    """Ground-truth object patches (n, N, N) complex64: ``Y``, or extracted from
    ``objectGuess`` at the scan positions when ``Y`` is absent (PtychoPINN files)."""
    if ds.patches is not None:
        return ds.patches
    if ds.object is None:
        raise InputError("source 'truth'", "a dataset with 'Y' or 'objectGuess'", "neither")
    be = get_backend(backend) if isinstance(backend, str) else backend
    out = be.extract(be.asarray(ds.object, complex=True), ds.positions - ds.N / 2, ds.N)
    return be.to_numpy(out).astype(np.complex64)


def source_patches(ds: Dataset, source: Source, backend: Backend | str = "numpy") -> np.ndarray:
    """Patches (n, N, N) of ``source`` for every scan position of ``ds``."""
    if source == "truth":
        return truth_patches(ds, backend)
    raise InputError("source", f"one of {SOURCES}", repr(source))
