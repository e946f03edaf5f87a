"""What a data file holds, and what is wrong with it: the summary ``ptycho inspect`` prints
and the workbench shows.

Figures (lengths in metres in the report, printed in nm or µm): format, pattern shape and
dtype, energy and wavelength, distance, detector pixel, object pixel, scan extent, step
(median nearest-neighbour distance) and the overlap ratio with the probe
(1 − step / D, D = 2·√(2⟨r²⟩) the probe's diameter from its intensity-weighted second
moment: the 1/e² diameter of a Gaussian, the diameter of a disk), photons per pattern
(min/median/max, computed a batch of rows at a time), masked and saturated pixels.

Warnings a scientist acts on: overlap under 50 %, duplicated positions, positions out of
order (a grid scan whose path in file order is over 1.3 times a raster's through the
same points; a Fermat spiral's own order is not flagged), patterns off-centre (the mean
pattern's centre of mass more than 2 pixels from N/2), a probe missing from the file.

Examples
--------
>>> import tempfile
>>> from engine.data import write_npz
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> path = write_npz(tempfile.mkdtemp() + "/d.npz", simulate(SimulationConfig(
...     n_positions=16, N=32, step=6, seed=0)))
>>> r = inspect_file(path)
>>> r.format, r.n, r.N, round(r.overlap, 2) > 0.5
('npz', 16, 32, True)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.data import Dataset, is_lazy
from engine.io.streaming import pattern_summary
from engine.io.units import energy_in_ev, format_length


@dataclass
class InspectReport:
    """The summary of a data file (module docstring). Lengths in metres, ``None`` where the
    file is in pixel units; ``*_px`` the same in object pixels."""

    path: str
    format: str
    n: int
    N: int
    dtype: str
    lazy: bool
    energy_ev: float | None
    wavelength: float | None
    distance: float | None
    detector_pixel: tuple[float, float] | None
    object_pixel: tuple[float, float] | None
    extent_px: tuple[float, float]
    step_px: float
    probe_diameter_px: float
    overlap: float
    photons: dict[str, float]
    masked_pixels: int
    saturated_pixels: int | None
    centre_offset_px: tuple[float, float]
    probe_source: str
    saturation: float | None = None
    saturation_source: str | None = None
    warnings: list[str] = field(default_factory=list)
    # found on load (engine.physics.badpixels.mask_on_load): saturated, hot, cold, bad
    bad_pixels: dict[str, Any] | None = None
    # metadata["provenance"]: {step, parameters, result} of each step the data went through
    provenance: list[dict[str, Any]] = field(default_factory=list)

    def _len(self, px: float, axis: int = 1) -> str:
        if self.object_pixel is None:
            return f"{px:.4g} px"
        return f"{format_length(px * self.object_pixel[axis])} ({px:.4g} px)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report as the lines ``ptycho inspect`` prints."""
        out = [f"{self.path}: {self.format}{' (lazy)' if self.lazy else ''}"]
        if self.dtype == "none":
            out.append(f"  patterns        none ({self.n} positions, probe {self.N}x{self.N}, "
                       "object)")
        else:
            out.append(f"  patterns        {self.n} x {self.N}x{self.N} {self.dtype}")
        if self.wavelength is not None:
            out.append(f"  energy          {self.energy_ev / 1e3:.4g} keV, wavelength "
                       f"{format_length(self.wavelength)}")
            out.append(f"  distance        {format_length(self.distance)}")
            py, px = self.detector_pixel or (0, 0)
            out.append(f"  detector pixel  {format_length(py)} x {format_length(px)}")
            oy, ox = self.object_pixel or (0, 0)
            out.append(f"  object pixel    {format_length(oy)} x {format_length(ox)}")
        else:
            out.append("  geometry        none (pixel units)")
        out.append(f"  scan extent     {self._len(self.extent_px[0], 0)} x "
                   f"{self._len(self.extent_px[1])}")
        out.append(f"  step            {self._len(self.step_px)}; probe diameter "
                   f"{self._len(self.probe_diameter_px)}; overlap {100 * self.overlap:.0f} %")
        p = self.photons
        if self.dtype != "none":
            out.append(f"  photons/pattern min {p['min']:.4g}, median {p['median']:.4g}, "
                       f"max {p['max']:.4g}")
        sat = ("unknown (no saturation value)" if self.saturated_pixels is None else
               f"{self.saturated_pixels} (at >= {self.saturation:.6g} counts, "
               f"{self.saturation_source})")
        out.append(f"  masked pixels   {self.masked_pixels} of {self.N * self.N}; saturated "
                   f"{sat}")
        if self.bad_pixels is not None:
            b = self.bad_pixels
            out.append(f"  bad pixels      {b['bad']} found in the data and masked: "
                       f"{b['saturated']} saturated, {b['hot']} hot, {b['cold']} cold/dead")
        for k, step in enumerate(self.provenance):
            out.append(f"  {'provenance' if k == 0 else '':<15} {step_line(step)}")
        out.append(f"  probe           {self.probe_source}")
        out += [f"  warning: {w}" for w in self.warnings]
        return out


def step_line(step: dict[str, Any]) -> str:
    """One provenance step ``{step, parameters, result}`` as a line: its name and result
    (the parameters are in the JSON report)."""
    result = step.get("result") or {}
    shown = ", ".join(f"{k} {_short(v)}" for k, v in result.items()) if isinstance(
        result, dict) else _short(result)
    return f"{step.get('step', '?')}: {shown}" if shown else str(step.get("step", "?"))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return str(value)


def probe_diameter(probe: np.ndarray) -> float:
    """2·√(2⟨r²⟩) of |P|² about its centroid, in pixels."""
    w = np.abs(np.asarray(probe)) ** 2
    total = float(w.sum())
    if total <= 0:
        return 0.0
    rr, cc = np.indices(w.shape)
    cy, cx = (w * rr).sum() / total, (w * cc).sum() / total
    r2 = float((w * ((rr - cy) ** 2 + (cc - cx) ** 2)).sum() / total)
    return 2.0 * np.sqrt(2.0 * r2)


def scan_step(positions: np.ndarray) -> float:
    """Median distance from each position to its nearest neighbour (pixels)."""
    if len(positions) < 2:
        return 0.0
    from scipy.spatial import cKDTree

    d, _ = cKDTree(positions).query(positions, k=2)
    return float(np.median(d[:, 1]))


def on_grid(positions: np.ndarray, step: float) -> bool:
    """True if 90 % of the positions sit within step/5 of a grid of pitch ``step``."""
    if step <= 0:
        return False
    rel = (positions - positions.min(axis=0)) / step
    near = np.abs(rel - np.round(rel)) < 0.2
    return bool(np.mean(near.all(axis=1)) >= 0.9)


def path_ratio(positions: np.ndarray, step: float) -> float:
    """Length of the scan path in the file's order over that of a raster through the same
    points (rows of width ``step``, each left to right): 1 for a raster, below for a snake,
    well above 1 for a shuffled grid. Only meaningful for grid scans (:func:`on_grid`): a
    Fermat spiral's own order jumps by design."""
    if len(positions) < 4 or step <= 0:
        return 1.0
    rows = np.round((positions[:, 0] - positions[:, 0].min()) / step)
    raster = positions[np.lexsort((positions[:, 1], rows))]
    given = np.linalg.norm(np.diff(positions, axis=0), axis=1).sum()
    ideal = np.linalg.norm(np.diff(raster, axis=0), axis=1).sum()
    return float(given / ideal) if ideal > 0 else 1.0


def inspect_dataset(ds: Dataset, *, path: str = "", format: str = "dataset",
                    dtype: str | None = None, batch: int = 256) -> InspectReport:
    """The report of a dataset already read (its diffraction streamed a batch at a time)."""
    pos = ds.positions
    warnings: list[str] = []
    step = scan_step(pos)
    diameter = probe_diameter(ds.probe)
    overlap = 1.0 - step / diameter if diameter > 0 else 0.0
    if overlap < 0.5:
        warnings.append(f"overlap {100 * overlap:.0f} % is under 50 % (step {step:.3g} px, "
                        f"probe diameter {diameter:.3g} px): expect a poor reconstruction")
    if len(pos) > 1:
        from scipy.spatial import cKDTree

        pairs = cKDTree(pos).query_pairs(1e-3)
        if pairs:
            warnings.append(f"{len(pairs)} duplicated positions (closer than 0.001 px), "
                            f"first #{min(pairs)[0]} and #{min(pairs)[1]}")
        ratio = path_ratio(pos, step) if on_grid(pos, step) else 1.0
        if ratio > 1.3:
            warnings.append(f"positions out of order: the scan path is {ratio:.1f}x as long "
                            "as a raster through the same points (check the scan order, or "
                            "the translation axis order)")
    if ds.scan_index is not None and np.any(np.diff(ds.scan_index) < 0):
        warnings.append("scan_index is not in increasing order")
    saturation = ds.metadata.get("saturation_value")
    saturation_source = "file" if saturation is not None else None
    d = ds.diffraction
    if saturation is None and is_lazy(d) and np.issubdtype(getattr(d, "file_dtype", float),
                                                            np.integer):
        # without a stated saturation, counts at the integer type's ceiling are the ones a
        # detector clipped (or flagged as overflow)
        saturation = float(np.iinfo(d.file_dtype).max)
        saturation_source = f"{d.file_dtype} ceiling"
    mask = ds.pixel_mask
    s = pattern_summary(ds.diffraction, mask=mask, saturation=saturation, batch=batch) \
        if ds.diffraction is not None else None
    offset = (0.0, 0.0) if s is None else s.centre_offset
    if np.hypot(*offset) > 2.0:
        warnings.append(f"patterns off-centre: the mean pattern's centre of mass is "
                        f"({offset[0]:+.1f}, {offset[1]:+.1f}) px from N/2")
    probe_source = str(ds.metadata.get("probe_source", "file"))
    if probe_source.startswith("estimated"):
        warnings.append(f"the file has no probe ({probe_source})")
    counts = s.counts if s is not None else np.zeros(1)
    g = ds.geometry
    return InspectReport(
        path=path, format=format, n=ds.n, N=ds.N,
        dtype=dtype or ("none" if ds.diffraction is None else str(ds.diffraction.dtype)),
        lazy=is_lazy(ds.diffraction),
        energy_ev=None if g is None else energy_in_ev(g.wavelength),
        wavelength=None if g is None else g.wavelength,
        distance=None if g is None else g.distance,
        detector_pixel=None if g is None else g.detector_pixel,
        object_pixel=ds.pixel_size,
        extent_px=(float(np.ptp(pos[:, 0])), float(np.ptp(pos[:, 1]))),
        step_px=step, probe_diameter_px=diameter, overlap=float(overlap),
        photons={"min": float(counts.min()), "median": float(np.median(counts)),
                 "max": float(counts.max())},
        masked_pixels=0 if mask is None else int((~mask).sum()),
        saturated_pixels=None if saturation is None or s is None else int(s.saturated),
        centre_offset_px=(float(offset[0]), float(offset[1])),
        probe_source=probe_source, saturation=saturation,
        saturation_source=saturation_source, warnings=warnings,
        bad_pixels=ds.metadata.get("bad_pixels"),
        provenance=list(ds.metadata.get("provenance", [])))


def inspect_file(path: str | os.PathLike[str], *, load: Any = None,
                 **read: Any) -> InspectReport:
    """Read ``path`` (lazily: nothing but batches of rows enters memory) and report on it;
    ``read`` goes to :func:`engine.io.readers.read_dataset` (``mapping``, ``energy_unit``
    ...), or to ``load`` in its place (the API's ``load_dataset``, which also masks the bad
    pixels it finds)."""
    from engine.io.detect import detect
    from engine.io.readers import read_dataset

    kind = detect(path)
    read.setdefault("lazy", True)
    read.setdefault("require_diffraction", False)
    ds = (load or read_dataset)(path, **read)
    dtype = None
    if is_lazy(ds.diffraction):
        dtype = f"{ds.diffraction.file_dtype} ({ds.diffraction.measure} in the file)"
    return inspect_dataset(ds, path=str(path), format=kind if "mapping" not in read or
                           read["mapping"] is None else "mapped", dtype=dtype)
