"""The probe a solver starts from: the dataset's own, one derived from the data, one read
from a file, or a model (docs/iterative.md#starting-probe).

* ``given``: the dataset's ``probeGuess``.
* ``data``: from the mean diffraction pattern. Far field: the mean amplitude
  sqrt(mean_j D_j²) back-propagated with a flat phase (a compact, focus-like field),
  restricted to a soft disk of the beam radius the data implies (half the radius of the
  autocorrelation F⁻¹(mean D²), which is the mean of the exit waves' autocorrelations, twice
  as wide as the beam; its extent is where it holds 99 % of its sum), widened by half for
  the beam's tails, and refined by error reduction between that support and the mean
  amplitude (from seeded random phases), then centred. Near field: the detector plane is real
  space, so the square root of the mean intensity, back-propagated to the sample plane.
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
from engine.data import Dataset, open_npz, read_npz, read_rows
from engine.errors import InputError
from engine.iterative.options import PROBE_MODELS, check_probe_init
from engine.physics.scaling import normalise_probe

# fraction of the autocorrelation's (or the intensity's) power inside the radius taken as
# its extent: a statement about the beam, not about any one simulated probe
ENCLOSED_POWER = 0.9
# the autocorrelation's extent (twice the beam's) is taken where it holds this fraction: its
# tails are the beam's edge against itself, weak but part of the beam
AUTOCORRELATION_POWER = 0.99
SUPPORT_MARGIN = 1.5  # the data start's support radius, in beam radii: the tails fit in
PUPIL_EDGE = 0.25  # the default zone-plate pupil's outer frequency, in units of 1/pixel
CENTRAL_STOP = 0.4
SUPPORT_ITERATIONS = 50  # error-reduction passes of the far-field data start


def _radius_grid(N: int) -> np.ndarray:  # noqa: N803
    c = np.arange(N) - N // 2
    return np.sqrt(c[:, None] ** 2 + c[None, :] ** 2)


def enclosed_radius(image: np.ndarray, fraction: float = ENCLOSED_POWER) -> float:
    """Radius (pixels, about the array centre) holding ``fraction`` of ``image``'s sum."""
    w = np.abs(np.asarray(image, dtype=np.float64))
    r = _radius_grid(w.shape[-1]).ravel()
    order = np.argsort(r)
    cum = np.cumsum(w.ravel()[order])
    if not cum[-1] > 0:
        raise InputError("diffraction", "some non-zero intensity to size the beam", "all zero")
    return float(r[order][min(np.searchsorted(cum, fraction * cum[-1]), r.size - 1)])


def _mean_intensity(dataset: Dataset) -> np.ndarray:
    if dataset.diffraction is None:
        raise InputError("probe_init 'data'", "a dataset with diffraction patterns", "none")
    total = np.zeros((dataset.N, dataset.N))
    for start in range(0, dataset.n, 256):  # row blocks: a lazy stack is read in batches
        rows = read_rows(dataset.diffraction, slice(start, start + 256)).astype(np.float64)
        total += np.sum(rows * rows, axis=0)
    return total / dataset.n


def beam_radius(dataset: Dataset, propagator: Propagator) -> float:
    """The beam radius (pixels) the data implies: far field, half the extent of the
    autocorrelation F⁻¹(mean I); near field, the extent of the back-propagated mean
    amplitude's intensity."""
    mean = _mean_intensity(dataset)
    if propagator.kind == "far":
        auto = np.fft.fftshift(np.abs(np.fft.ifft2(np.fft.ifftshift(mean))))
        return max(1.0, 0.5 * enclosed_radius(auto, AUTOCORRELATION_POWER))
    field = _near_back(np.sqrt(mean), propagator)
    return max(1.0, enclosed_radius(np.abs(field) ** 2))


def _near_back(amplitude: np.ndarray, propagator: Propagator) -> np.ndarray:
    be = get_backend("numpy")
    return np.asarray(propagator.bind(be).adjoint(amplitude.astype(np.complex128)))


def _soft_disk(N: int, radius: float) -> np.ndarray:  # noqa: N803
    return np.clip(radius - _radius_grid(N) + 0.5, 0.0, 1.0)


def probe_from_data(dataset: Dataset, propagator: Propagator,
                    iterations: int = SUPPORT_ITERATIONS) -> np.ndarray:
    """The data-derived probe (unnormalised), see the module notes."""
    mean = _mean_intensity(dataset)
    amplitude = np.sqrt(mean)
    if propagator.kind == "near":
        return _near_back(amplitude, propagator)
    be = get_backend("numpy")
    support = _soft_disk(dataset.N, SUPPORT_MARGIN * beam_radius(dataset, propagator))
    # error reduction between the mean amplitude and the support, from the mean amplitude
    # with seeded random phases: the flat-phase back-propagation alone is a real,
    # centro-symmetric, focus-like peak, and error reduction keeps a real field real
    rng = np.random.default_rng(0)
    far = amplitude * np.exp(2j * np.pi * rng.random(amplitude.shape))
    field = np.asarray(be.backpropagate(far)) * support
    for _ in range(iterations):
        far = np.asarray(be.propagate(field))
        far = amplitude * np.exp(1j * np.angle(far))
        field = np.asarray(be.backpropagate(far)) * support
    # the mean pattern fixes the beam's modulus but not its phase: error reduction ends
    # between the probe and its twin conj(P(−r)) (the same far-field modulus), a mixture
    # the solvers then struggle out of; its modulus with a flat phase leaves them only
    # the wavefront to find. A probe shifted by s and an object shifted by −s explain the
    # same data: scan positions are probe centres (docs/conventions.md#coordinates), so
    # the start is centred
    return centre_probe(np.abs(field).astype(np.complex128))


def centre_probe(probe: np.ndarray) -> np.ndarray:
    """``probe`` (N, N) moved (Fourier shift, sub-pixel, periodic) so that the centroid of
    its intensity lies on the array centre (N/2, N/2)."""
    p = np.asarray(probe, dtype=np.complex128)
    N = p.shape[-1]
    w = np.abs(p) ** 2
    if not w.sum() > 0:
        return p
    c = np.arange(N, dtype=np.float64)
    cy = float(np.sum(w.sum(axis=1) * c) / w.sum())
    cx = float(np.sum(w.sum(axis=0) * c) / w.sum())
    f = np.fft.fftfreq(N)
    ramp = np.exp(-2j * np.pi * (f[:, None] * (N // 2 - cy) + f[None, :] * (N // 2 - cx)))
    return np.fft.ifft2(np.fft.fft2(p) * ramp)


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
