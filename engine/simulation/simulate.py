"""Simulated experiments: objects, probes, scans and Poisson counts
(docs/conventions.md#forward-model).

Examples
--------
>>> ds = simulate(SimulationConfig(object="asym", probe="disk", scan="raster",
...                                n_positions=25, N=32, step=6, nphotons=1e6, seed=1))
>>> ds.diffraction.shape, ds.object.dtype.name
((25, 32, 32), 'complex64')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine import __version__
from engine.backends import Backend, get_backend
from engine.backends.propagation import Propagator
from engine.data import Dataset, check_positions_inside
from engine.errors import InputError
from engine.events import Callback, RunControl, progress_emitter
from engine.geometry import Geometry
from engine.options import Options, option, validate
from engine.simulation.objects import OBJECTS, make_object
from engine.simulation.probes import PROBES, make_probe
from engine.simulation.scans import SCANS, make_scan

# the generators' names (the keys of OBJECTS, PROBES, SCANS), as types a form offers
ObjectName = Literal["lines", "grf", "asym", "siemens", "image"]
ProbeName = Literal["disk", "gaussian", "zone-plate"]
ScanName = Literal["raster", "spiral", "random"]

# a pixel can hold a whole pattern's counts; NumPy's Poisson sampler stops near 9.2e18
MAX_NPHOTONS = 1e18


@dataclass(frozen=True)
class SimulationConfig(Options):
    """Everything that defines a simulated data set; same config ⇒ same data.

    Parameters
    ----------
    object, probe, scan : generator names (see ``OBJECTS``, ``PROBES``, ``SCANS``).
    n_positions : number of scan positions n.
    N : pattern and probe size.
    step : mean distance between neighbouring positions, pixels.
    jitter : raster position jitter (standard deviation, pixels).
    nphotons : mean photon count per pattern; ``0`` or ``inf`` gives noise-free amplitudes.
    seed : random seed.
    object_size : (H, W); ``None`` fits the scan plus the probe and a margin.
    probe_radius : aperture radius in reciprocal pixels (disk, zone-plate) or Gaussian
        sigma in pixels; ``None`` picks a size suited to N.
    defocus : out-of-focus strength of the probe (1 = default propagation distance).
    amplitude_image, phase_image : PNG paths for ``object="image"``.
    propagation : ``"far"`` (one FFT) or ``"near"`` (angular spectrum;
        docs/conventions.md#propagation).
    wavelength, distance, detector_pixel : the geometry in metres (sample-to-detector
        distance; a square detector pixel). Required for the near field; for the far field
        all three or none (pixel units only).
    focus_distance : near field: focus-to-sample distance z1 of a divergent beam (Fresnel
        scaling, M = (z1 + z2)/z1); ``None``: a flat wavefront.

    The object is sampled on the sample-plane pixel (near field: detector pixel / M). The
    dataset carries the :class:`~engine.geometry.Geometry`.
    """

    object: ObjectName = option("lines", "test object (image: from PNG files)")
    probe: ProbeName = option("disk", "illumination")
    scan: ScanName = option("raster", "scan pattern")
    n_positions: int = option(1024, "number of scan positions n", minimum=1)
    N: int = option(64, "pattern and probe size (even)", minimum=8)
    step: float = option(8.0, "mean distance between neighbouring positions, pixels",
                         minimum=0, exclusive_minimum=True)
    jitter: float = option(0.0, "raster position jitter (standard deviation, pixels)",
                           minimum=0, advanced=True)
    nphotons: float = option(1e9, "mean photon count per pattern (0 or inf: no noise)",
                             minimum=0, finite=False)
    seed: int = option(0, "random seed; same seed, same data", minimum=0)
    object_size: tuple[int, int] | None = option(
        None, "object (H, W) (None: the scan plus the probe and a margin)", advanced=True)
    probe_radius: float | None = option(
        None, "aperture radius or Gaussian sigma (None: suited to N)", minimum=0,
        exclusive_minimum=True, advanced=True)
    defocus: float = option(1.0, "out-of-focus strength of the probe", advanced=True)
    amplitude_image: str | None = option(None, "PNG path of the amplitude (object image)",
                                         advanced=True)
    phase_image: str | None = option(None, "PNG path of the phase (object image)",
                                     advanced=True)
    propagation: Literal["far", "near"] = option(
        "far", "far field (one FFT) or near field (angular spectrum)")
    wavelength: float | None = option(None, "wavelength, metres (near field: required)",
                                      minimum=0, exclusive_minimum=True, advanced=True)
    distance: float | None = option(None, "sample-to-detector distance, metres", minimum=0,
                                    exclusive_minimum=True, advanced=True)
    detector_pixel: float | None = option(None, "detector pixel pitch, metres", minimum=0,
                                          exclusive_minimum=True, advanced=True)
    focus_distance: float | None = option(
        None, "near field: focus-to-sample distance of a divergent beam, metres (None: flat "
        "wavefront)", minimum=0, exclusive_minimum=True, advanced=True)

    def __post_init__(self) -> None:
        for name, allowed in (("object", OBJECTS), ("probe", PROBES), ("scan", SCANS)):
            if getattr(self, name) not in allowed:
                raise InputError(name, f"one of {sorted(allowed)}", repr(getattr(self, name)))
        validate(self)
        if math.isfinite(self.nphotons) and self.nphotons > MAX_NPHOTONS:
            raise InputError("nphotons", f"at most {MAX_NPHOTONS:g} (Poisson sampling's limit; "
                             "inf: no noise)", f"{self.nphotons:g}")
        if self.N % 2:
            raise InputError("N", "an even pattern size >= 8 (32...256 typical)", str(self.N))
        given = [v is not None for v in (self.wavelength, self.distance, self.detector_pixel)]
        if self.propagation == "near" and not all(given):
            raise InputError("propagation 'near'", "wavelength, distance and detector_pixel "
                             "(metres)", "some of them missing")
        if any(given) and not all(given):
            raise InputError("geometry", "wavelength, distance and detector_pixel together, "
                             "or none of them", "only some")
        self.geometry()  # the focus distance's own checks

    def geometry(self) -> Geometry | None:
        """The simulated measurement's geometry (``None``: pixel units only)."""
        if self.wavelength is None:
            return None
        return Geometry(wavelength=self.wavelength, distance=self.distance,
                        detector_pixel=(self.detector_pixel, self.detector_pixel),
                        propagation=self.propagation, focus_distance=self.focus_distance)


def simulate(config: SimulationConfig, *, backend: Backend | str = "numpy",
             object_array: np.ndarray | None = None, probe_array: np.ndarray | None = None,
             positions: np.ndarray | None = None, batch_size: int = 1024,
             emit: Callback | None = None, control: RunControl | None = None,
             device: str = "auto") -> Dataset:
    """Simulate a dataset: object, probe, scan, far- or near-field amplitudes and Poisson
    counts.

    ``object_array``, ``probe_array`` and ``positions`` (n, 2) (y, x) override the generators
    (e.g. to simulate diffraction for a measured object and probe). The forward model runs in
    batches of ``batch_size`` patterns, reporting :class:`~engine.events.Progress` to ``emit``;
    ``control`` is checked before every batch (a stop raises
    :class:`~engine.events.StopRequested`).
    """
    rng = np.random.default_rng(config.seed)
    N = config.N
    if probe_array is None:
        probe = make_probe(config.probe, N, radius=config.probe_radius, defocus=config.defocus)
    else:
        probe = np.asarray(probe_array, dtype=np.complex64)
        if probe.shape != (N, N):
            raise InputError("probe array", f"shape ({N}, {N}) = (N, N)", str(probe.shape))
        _finite_input("probe_array", probe)
    positions_given = positions is not None
    if positions is None:
        scan = make_scan(config.scan, config.n_positions, config.step, config.jitter, rng)
        positions, shape = _place_scan(scan, N, config.object_size)
    else:
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        shape = None
    if object_array is None:
        if shape is None:
            raise InputError("object_array", "an object when positions are given")
        obj = make_object(config.object, shape, rng,
                          images=(config.amplitude_image, config.phase_image))
    else:
        obj = np.asarray(object_array, dtype=np.complex64)
        _finite_input("object_array", obj)
    _finite_input("positions", positions)
    be = get_backend(backend, device) if isinstance(backend, str) else backend
    check_positions_inside(positions, obj.shape, N, "scan positions")
    o, p = be.asarray(obj, complex=True), be.asarray(probe, complex=True)
    geometry = config.geometry()
    propagate = Propagator.from_geometry(geometry, N).bind(be).forward
    patches = np.empty((positions.shape[0], N, N), np.complex64)
    amplitude = np.empty((positions.shape[0], N, N), np.float64)
    progress = progress_emitter(emit, "simulate")
    for start in range(0, positions.shape[0], batch_size):
        if control is not None:
            control.checkpoint()
        sl = slice(start, start + batch_size)
        patch = be.extract(o, positions[sl] - N / 2, N)
        patches[sl] = be.to_numpy(patch)
        amplitude[sl] = be.to_numpy(be.amplitude(propagate(be.illuminate(p, patch))))
        if progress:
            progress(min(start + batch_size, positions.shape[0]), positions.shape[0])
    diffraction, gain = poisson_counts(amplitude, config.nphotons, rng)
    metadata = {
        "generator": f"ptycho-workbench {__version__} engine.simulation.simulate",
        "simulation": _used_settings(config, object_array is not None,
                                     probe_array is not None, positions_given),
        "nphotons": config.nphotons,
        "seed": config.seed,
        "gain": gain,
        "units": {"positions": "object pixels (x = column, y = row, probe centre)",
                  "diffraction": "sqrt(photon counts)"},
    }
    return Dataset(
        diffraction=diffraction,
        xcoords=positions[:, 1].copy(),
        ycoords=positions[:, 0].copy(),
        probe=probe.astype(np.complex64),
        object=obj.astype(np.complex64),
        patches=patches.astype(np.complex64),
        metadata=metadata,
        geometry=geometry,
    )


# the generator settings each given array makes moot (recorded as "given" instead)
_MOOT = {"object": ("object", "amplitude_image", "phase_image", "object_size"),
         "probe": ("probe", "probe_radius", "defocus"),
         "scan": ("scan", "step", "jitter")}


def _used_settings(config: SimulationConfig, object_given: bool, probe_given: bool,
                   positions_given: bool) -> dict[str, Any]:
    """The configuration as it shaped the data: settings of a generator that a given array
    replaced are left out, and that part says ``"given"``."""
    out = config.to_dict()
    for part, given in (("object", object_given), ("probe", probe_given),
                        ("scan", positions_given)):
        if given:
            for key in _MOOT[part]:
                out.pop(key, None)
            out[part] = "given"
    return out


def _finite_input(name: str, a: np.ndarray) -> None:
    """A given probe, object or scan must be finite: a NaN would surface far downstream
    (as "all zero" amplitudes) instead of naming the input."""
    bad = int(a.size - np.isfinite(a).sum())
    if bad:
        raise InputError(name, "finite values", f"{bad} NaN or infinite")


def poisson_counts(amplitude: np.ndarray, nphotons: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """sqrt(Poisson(g² A²)) with g² set so the mean count per pattern is ``nphotons``.

    Returns the amplitudes (float32) and g. ``nphotons`` of 0 or inf means noise-free
    amplitudes at unit gain.
    """
    A = np.asarray(amplitude, dtype=np.float64)
    if nphotons == 0 or math.isinf(nphotons):
        return A.astype(np.float32), 1.0
    energy = float(np.mean(np.sum(A * A, axis=(-2, -1))))
    if not math.isfinite(energy):  # a NaN probe or object is named where it is given
        raise InputError("simulated amplitudes", "finite values", "NaN or infinite")
    if not energy > 0:
        raise InputError("simulated amplitudes", "non-zero far-field energy", "all zero")
    gain2 = nphotons / energy
    counts = rng.poisson(gain2 * A * A)
    return np.sqrt(counts).astype(np.float32), math.sqrt(gain2)


def _place_scan(scan: np.ndarray, N: int,
                object_size: tuple[int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
    """Shift scan coordinates so every window fits, and size the object to hold them."""
    margin = 4
    lo = scan.min(axis=0)
    extent = scan.max(axis=0) - lo
    fit = (int(math.ceil(extent[0])) + N + 2 * margin, int(math.ceil(extent[1])) + N + 2 * margin)
    if object_size is None:
        shape = fit
        positions = scan - lo + N / 2 + margin
    else:
        shape = (int(object_size[0]), int(object_size[1]))
        if shape[0] < fit[0] - 2 * margin or shape[1] < fit[1] - 2 * margin:
            raise InputError("object_size", f"at least {fit[0] - 2 * margin}x{fit[1] - 2 * margin} "
                             f"to hold the scan and the {N}x{N} probe", f"{shape[0]}x{shape[1]}")
        centre = np.array(shape, dtype=np.float64) / 2
        positions = scan - lo - extent / 2 + centre
    return positions, shape
