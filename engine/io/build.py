"""From the physical quantities a reader found in a file to a :class:`engine.data.Dataset`.

Every HDF5 reader (CXI, NeXus, a mapped layout) fills a :class:`Measurement` and calls
:func:`build_dataset`, so that geometry, positions, the lazy stack and the probe start are
handled one way (docs/conventions.md#geometry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.backends.propagation import Propagator
from engine.data import Dataset
from engine.errors import InputError
from engine.geometry import Geometry
from engine.io.lazy import H5Stack
from engine.io.placement import (
    basis_2x3,
    default_basis,
    place,
    translations_to_pixels,
)
from engine.io.probe_start import probe_from_mean_intensity
from engine.io.streaming import fill_masked, pattern_summary

# stacks larger than this are read lazily when ``lazy="auto"``
AUTO_LAZY_BYTES = 1 << 30

ProbeInit = Callable[[Any, Geometry | None, np.ndarray | None], tuple[np.ndarray, str]]


def mean_pattern_probe(diffraction: Any, geometry: Geometry | None,
                       mask: np.ndarray | None) -> tuple[np.ndarray, str]:
    """The default start for a file without a probe, and what ``metadata["probe_source"]``
    says of it: the solvers' ``probe_init="data"`` estimate from the mean intensity
    (:mod:`engine.io.probe_start`, masked pixels filled from their neighbours), scaled so
    that Σ|P|² is the mean photons per pattern on valid pixels (what a flat object of
    modulus 1 would give, docs/conventions.md#intensity-scaling). One streamed pass."""
    s = pattern_summary(diffraction, mask=mask)
    N = diffraction.shape[-1]
    propagator = Propagator.from_geometry(geometry, N)
    probe = probe_from_mean_intensity(fill_masked(s.mean_counts, mask), propagator)
    energy = float(np.mean(s.counts)) if s.counts.size else 0.0
    power = float(np.sum(np.abs(probe) ** 2))
    if power > 0 and energy > 0:
        probe = probe * np.sqrt(energy / power)
    return probe.astype(np.complex64), f"estimated: {PROBE_SOURCE}"


# what metadata["probe_source"] says of the estimate (after "estimated: ")
PROBE_SOURCE = "from the mean pattern (probe_init 'data')"


@dataclass
class Measurement:
    """What a reader found, in SI units.

    translations : (n, 3) sample translations x, y, z in metres (already in x, y order).
    basis : (2, 3) detector basis or None (then the CXI default for ``detector_pixel``).
    mask : (N, N) bool, True = valid pixel, or None.
    probe : (N, N) complex or None.
    """

    path: str
    data_path: str
    measure: str
    translations: np.ndarray
    wavelength: float
    distance: float
    detector_pixel: tuple[float, float]
    basis: np.ndarray | None = None
    mask: np.ndarray | None = None
    probe: np.ndarray | None = None
    object: np.ndarray | None = None
    scan_index: np.ndarray | None = None
    propagation: str = "far"
    focus_distance: float | None = None
    # added after placing: the offset this workbench's writer took off (its own files
    # come back on the grid of their object)
    position_offset: tuple[float, float] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def want_lazy(lazy: bool | str, nbytes: int) -> bool:
    if lazy == "auto":
        return nbytes > AUTO_LAZY_BYTES
    if isinstance(lazy, bool):
        return lazy
    raise InputError("lazy", "True, False or 'auto'", repr(lazy))


def build_dataset(m: Measurement, *, lazy: bool | str = "auto",
                  probe_init: ProbeInit | None = None) -> Dataset:
    """The dataset of measurement ``m``: lazy or in-memory amplitudes, geometry, positions
    in object pixels placed inside the object, the probe (or its estimate)."""
    stack = H5Stack(m.path, m.data_path, measure=m.measure)
    n, N = stack.shape[0], stack.shape[1]
    where = f"{m.path}: {m.data_path}"
    t = np.asarray(m.translations, np.float64)
    if t.shape[0] != n:
        raise InputError(f"{m.path}: translations", f"{n} positions (one per pattern)",
                         f"{t.shape[0]}")
    geometry = Geometry(wavelength=float(m.wavelength), distance=float(m.distance),
                        detector_pixel=(float(m.detector_pixel[0]), float(m.detector_pixel[1])),
                        propagation=m.propagation,  # type: ignore[arg-type]
                        focus_distance=m.focus_distance)
    basis = (default_basis(geometry.detector_pixel) if m.basis is None
             else basis_2x3(m.basis, f"{m.path}: basis_vectors"))
    pixels = translations_to_pixels(t, basis, wavelength=geometry.wavelength,
                                    distance=geometry.distance, N=N,
                                    propagation=geometry.propagation,
                                    magnification=geometry.magnification)
    positions, shift = place(pixels, N)
    if m.position_offset is not None:
        positions = positions + np.asarray(m.position_offset, np.float64)
        shift = shift + np.asarray(m.position_offset, np.float64)
    mask = None
    if m.mask is not None:
        mask = np.asarray(m.mask, bool)
        if mask.shape != (N, N):
            raise InputError(f"{m.path}: mask", f"shape ({N}, {N}) like the patterns",
                             f"shape {mask.shape}")
    if want_lazy(lazy, n * N * N * 4):
        diffraction: Any = stack
    else:
        diffraction = stack[:]
        stack.close()
    meta = dict(m.metadata)
    meta.update({
        "source_file": str(Path(m.path).resolve()),
        "diffraction_path": m.data_path,
        "position_shift_px": [float(shift[0]), float(shift[1])],
        "basis_vectors": basis.tolist(),
        "basis_source": "file" if m.basis is not None else "CXI default (rows -y, cols -x)",
    })
    probe = m.probe
    if probe is not None:
        probe = np.asarray(probe)
        if probe.ndim == 3:  # modes: the strongest starts the reconstruction
            probe = probe[int(np.argmax(np.sum(np.abs(probe) ** 2, axis=(1, 2))))]
        if probe.shape != (N, N):
            raise InputError(f"{m.path}: probe", f"shape ({N}, {N}) like the patterns",
                             f"shape {probe.shape}")
        meta.setdefault("probe_source", "file")
    else:
        probe, how = (probe_init or mean_pattern_probe)(diffraction, geometry, mask)
        meta["probe_source"] = how
    try:
        return Dataset(diffraction=diffraction, xcoords=positions[:, 1].copy(),
                       ycoords=positions[:, 0].copy(), probe=np.asarray(probe, np.complex64),
                       object=None if m.object is None else np.asarray(m.object, np.complex64),
                       scan_index=m.scan_index, metadata=meta, pixel_mask=mask,
                       geometry=geometry)
    except InputError as exc:
        raise InputError(f"{where}: {exc.what}", exc.expected, exc.got) from None


