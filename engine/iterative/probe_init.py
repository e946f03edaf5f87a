"""The probe a solver starts from: the dataset's own, one derived from the data, one read
from a file, or a model (docs/iterative.md#starting-probe).

* ``given``: the dataset's ``probeGuess``.
* ``data``: from the mean diffraction pattern (:mod:`engine.io.probe_start`, the estimate a
  reader also gives a file without a probe; masked pixels filled first). Far field: the mean
  amplitude sqrt(mean_j D_j²) back-propagated with a flat phase (a compact, focus-like
  field), restricted to a soft disk of the beam radius the data implies (half the radius of
  the autocorrelation F⁻¹(mean D²), which is the mean of the exit waves' autocorrelations,
  twice as wide as the beam; its extent is where it holds 99 % of its sum), widened by half
  for the beam's tails, and refined by error reduction between that support and the mean
  amplitude (from seeded random phases), then centred. Near field: the detector plane is
  real space, so the square root of the mean intensity, back-propagated to the sample plane.
* ``disk``, ``gaussian``, ``zoneplate``: models. ``disk``: a flat-phase soft disk of radius
  r; ``gaussian``: exp(−ρ²/(2σ²)) with σ = r/2; ``zoneplate``: the beam of an annular
  pupil (central stop 0.4 of the outer radius) focused and seen ``defocus`` past the focus,
  with the pupil's outer frequency set so the defocused beam has radius r
  (NA = r / defocus). Parameters follow a colon, ``zoneplate:radius=2e-6,defocus=3e-4``,
  in metres when the dataset has a geometry, else in pixels (the wavelength is then one
  pixel); without them r is the beam radius the data implies and the defocus is the one
  that puts the pupil's edge at a quarter of the sampling frequency.
* ``file:PATH``: a dataset or CXI file's illumination (through ``load``, the API's
  ``load_dataset``), a run directory's or file's probe (``probe.npz``: the strongest
  mode), or a model bundle's probe. A probe of another size is centre-cropped or padded.

Every probe is returned normalised to the solvers' convention Σ|P|² = (N/2)²
(docs/conventions.md#intensity-scaling).

Examples
--------
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> ds = simulate(SimulationConfig(object="grf", n_positions=16, N=32, step=6, seed=0))
>>> p = initial_probe(ds, "data")
>>> p.shape, round(float((abs(p) ** 2).sum()), 3)
((32, 32), 256.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.backends import get_backend
from engine.backends.propagation import Propagator
from engine.data import Dataset, open_npz, read_npz
from engine.errors import InputError
from engine.io.probe_start import (  # noqa: F401 - re-exported
    SUPPORT_ITERATIONS,
    beam_radius_from_mean,
    centre_probe,
    enclosed_radius,
    mean_intensity,
    probe_from_mean_intensity,
)
from engine.io.probe_start import radius_grid as _radius_grid
from engine.io.probe_start import soft_disk as _soft_disk
from engine.iterative.options import PROBE_MODELS, check_probe_init
from engine.physics.scaling import normalise_probe

PUPIL_EDGE = 0.25  # the default zone-plate pupil's outer frequency, in units of 1/pixel
CENTRAL_STOP = 0.4


def beam_radius(dataset: Dataset, propagator: Propagator) -> float:
    """The beam radius (pixels) the data implies (:func:`beam_radius_from_mean` of the mean
    intensity, masked pixels filled)."""
    return beam_radius_from_mean(_mean(dataset), propagator)


def _mean(dataset: Dataset) -> np.ndarray:
    if dataset.diffraction is None:
        raise InputError("probe_init 'data'", "a dataset with diffraction patterns", "none")
    return mean_intensity(dataset.diffraction, dataset.pixel_mask)


def probe_from_data(dataset: Dataset, propagator: Propagator,
                    iterations: int = SUPPORT_ITERATIONS) -> np.ndarray:
    """The data-derived probe (unnormalised), see the module notes; the same estimate a
    reader gives a file without a probe (:mod:`engine.io.probe_start`)."""
    return probe_from_mean_intensity(_mean(dataset), propagator, iterations)


def _parse(spec: str) -> tuple[str, dict[str, float]]:
    name, _, rest = spec.partition(":")
    params: dict[str, float] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        try:
            if not eq or key not in ("radius", "defocus"):
                raise ValueError
            params[key] = float(value)
            if not math.isfinite(params[key]) or params[key] <= 0:
                raise ValueError
        except ValueError:
            raise InputError("probe_init", f"'{name}[:radius=R,defocus=Z]' with lengths > 0",
                             repr(spec)) from None
    return name, params


def probe_model(name: str, dataset: Dataset, propagator: Propagator,
                radius: float | None = None, defocus: float | None = None) -> np.ndarray:
    """A model probe (unnormalised) on the dataset's N×N grid; ``radius`` and ``defocus``
    in metres with a geometry, else pixels (``None``: from the data, see the module notes)."""
    N = dataset.N
    geo = dataset.geometry
    pixel = float(np.mean(dataset.pixel_size)) if geo is not None else 1.0
    wavelength = geo.wavelength if geo is not None else 1.0
    r = radius / pixel if radius is not None else beam_radius(dataset, propagator)
    if not 0 < r < N:
        raise InputError("probe_init radius", f"a beam radius between 0 and {N} pixels",
                         f"{r:.3g} pixels")
    if name == "disk":
        return _soft_disk(N, r).astype(np.complex128)
    if name == "gaussian":
        sigma = r / 2
        return np.exp(-_radius_grid(N) ** 2 / (2 * sigma**2)).astype(np.complex128)
    if name != "zoneplate":
        raise InputError("probe_init", f"one of {list(PROBE_MODELS)}", repr(name))
    # defocus in pixel units of length; NA = r / defocus sets the pupil's outer frequency
    dz = defocus / pixel if defocus is not None else r / (wavelength / pixel * PUPIL_EDGE)
    f_outer = r / (wavelength / pixel * dz)  # cycles per pixel
    if not 0 < f_outer <= 0.5:
        raise InputError("probe_init zoneplate", "a defocus with radius / (λ·defocus) within "
                         "the sampled band (≤ 1/(2 pixels))", f"{f_outer:.3g} per pixel")
    fy = np.fft.fftfreq(N)
    f = np.sqrt(fy[:, None] ** 2 + fy[None, :] ** 2)
    edge = 1.0 / N  # one frequency step of softening
    pupil = np.clip((f_outer - f) / edge + 0.5, 0, 1) * np.clip(
        (f - CENTRAL_STOP * f_outer) / edge + 0.5, 0, 1)
    prop = Propagator("near", N, wavelength / pixel, dz, (1.0, 1.0))
    focus = np.fft.fftshift(np.fft.ifft2(pupil))
    return np.asarray(prop.bind(get_backend("numpy")).forward(focus))


def _fit(probe: np.ndarray, N: int, what: str) -> np.ndarray:  # noqa: N803
    p = np.asarray(probe)
    if p.ndim == 3:  # modes: the strongest
        p = p[int(np.argmax(np.sum(np.abs(p) ** 2, axis=(1, 2))))]
    if p.ndim != 2 or p.shape[0] != p.shape[1] or not np.issubdtype(p.dtype, np.number):
        raise InputError(what, "a square (N, N) probe or (K, N, N) modes", f"shape {p.shape}")
    M = p.shape[0]
    if M > N:
        s = (M - N) // 2
        p = p[s:s + N, s:s + N]
    elif M < N:
        s = (N - M) // 2
        p = np.pad(p, ((s, N - M - s), (s, N - M - s)))
    return p.astype(np.complex128)


def probe_from_file(path: str, N: int,  # noqa: N803
                    load: Callable[[str], Dataset] | None = None) -> np.ndarray:
    """The probe stored at ``path`` (see the module notes) on an N×N grid."""
    p = Path(path)
    what = f"probe_init file:{path}"
    if p.is_dir():
        if (p / "probe.npz").is_file():
            p = p / "probe.npz"
        else:
            from engine.network.bundles import load_bundle  # torch only for bundles

            return _fit(load_bundle(p).probe, N, what)
    if not p.is_file():
        raise InputError(what, "a file or a run/bundle directory", "no such file or directory")
    if p.suffix == ".npz":
        with open_npz(p, "a probe .npz or a dataset") as z:
            for key in ("probe", "probeGuess"):
                if key in z.files:
                    return _fit(z[key], N, f"{what}: key '{key}'")
        return _fit(read_npz(p, require_diffraction=False).probe, N, what)
    if load is None:
        raise InputError(what, "a .npz file or a run directory (other formats through "
                         "engine.api)", p.suffix or "no suffix")
    return _fit(load(str(p)).probe, N, what)


def initial_probe(dataset: Dataset, spec: str = "given", propagator: Propagator | None = None,
                  *, load: Callable[[str], Dataset] | None = None) -> np.ndarray:
    """The starting probe (N, N) complex128 of ``spec``, normalised to Σ|P|² = (N/2)².

    Parameters
    ----------
    dataset : the data (its probe, diffraction, geometry).
    spec : ``given``, ``data``, ``disk``, ``gaussian``, ``zoneplate`` (optionally with
        ``:radius=...,defocus=...``) or ``file:PATH``.
    propagator : the propagation model (default: the dataset's geometry).
    load : reads a data file other than NPZ (the API passes its ``load_dataset``).
    """
    name, params = _parse(spec) if not spec.startswith("file:") else ("file", {})
    check_probe_init(spec if name == "file" else name)
    if params and name not in PROBE_MODELS:
        raise InputError("probe_init", f"parameters only for the models {list(PROBE_MODELS)}",
                         repr(spec))
    prop = propagator or Propagator.from_geometry(dataset.geometry, dataset.N)
    if name == "given":
        probe = np.asarray(dataset.probe, dtype=np.complex128)
    elif name == "data":
        probe = probe_from_data(dataset, prop)
    elif name == "file":
        probe = probe_from_file(spec[len("file:"):], dataset.N, load)
    else:
        probe = probe_model(name, dataset, prop, **params)
    if not np.all(np.isfinite(probe)):
        raise InputError(f"probe_init {spec}", "a finite probe", "NaN/Inf values")
    return normalise_probe(probe)[0].astype(np.complex128)
