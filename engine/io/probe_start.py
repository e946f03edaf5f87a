"""The probe a file without one starts from, estimated from its mean pattern: one
implementation for the readers (``metadata["probe_source"]``) and the solvers'
``probe_init="data"`` (:mod:`engine.iterative.probe_init`, docs/iterative.md#starting-probe).

It sits here, below both, because the readers (engine.io) may not import the methods
(engine.iterative) in the project's import layers.

* Far field: the mean amplitude sqrt(mean_j D_j²) with seeded random phases, refined by
  error reduction between it and a soft disk of the beam radius the data implies (half the
  radius of the autocorrelation F⁻¹(mean D²), which is the mean of the exit waves'
  autocorrelations, twice as wide as the beam; its extent is where it holds 99 % of its
  sum), widened by half for the beam's tails; its modulus with a flat phase, centred.
* Near field: the detector plane is real space, so the square root of the mean intensity,
  back-propagated to the sample plane.

Masked pixels (``Dataset.pixel_mask`` False: dead, hot, saturated) are filled from their
valid neighbours in the mean intensity first, so that they do not shape the estimate.

Examples
--------
>>> from engine.backends.propagation import Propagator
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> ds = simulate(SimulationConfig(object="grf", n_positions=16, N=32, step=6, seed=0))
>>> mean = mean_intensity(ds.diffraction)
>>> p = probe_from_mean_intensity(mean, Propagator.far_field(32))
>>> p.shape, bool(abs(p[16, 16]) > abs(p[0, 0]))
((32, 32), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.backends import get_backend
from engine.backends.propagation import Propagator
from engine.errors import InputError
from engine.io.streaming import fill_masked, iter_batches

# fraction of the autocorrelation's (or the intensity's) power inside the radius taken as
# its extent: a statement about the beam, not about any one simulated probe
ENCLOSED_POWER = 0.9
# the autocorrelation's extent (twice the beam's) is taken where it holds this fraction: its
# tails are the beam's edge against itself, weak but part of the beam
AUTOCORRELATION_POWER = 0.99
SUPPORT_MARGIN = 1.5  # the data start's support radius, in beam radii: the tails fit in
SUPPORT_ITERATIONS = 50  # error-reduction passes of the far-field data start


def radius_grid(N: int) -> np.ndarray:  # noqa: N803
    """Distance (pixels) of each pixel of an N × N grid from its centre (N//2, N//2)."""
    c = np.arange(N) - N // 2
    return np.sqrt(c[:, None] ** 2 + c[None, :] ** 2)


def soft_disk(N: int, radius: float) -> np.ndarray:  # noqa: N803
    """A disk of ``radius`` pixels about the centre, its edge one pixel wide."""
    return np.clip(radius - radius_grid(N) + 0.5, 0.0, 1.0)


def enclosed_radius(image: np.ndarray, fraction: float = ENCLOSED_POWER) -> float:
    """Radius (pixels, about the array centre) holding ``fraction`` of ``image``'s sum."""
    w = np.abs(np.asarray(image, dtype=np.float64))
    r = radius_grid(w.shape[-1]).ravel()
    order = np.argsort(r)
    cum = np.cumsum(w.ravel()[order])
    if not cum[-1] > 0:
        raise InputError("diffraction", "some non-zero intensity to size the beam", "all zero")
    return float(r[order][min(np.searchsorted(cum, fraction * cum[-1]), r.size - 1)])


def mean_intensity(diffraction: Any, mask: np.ndarray | None = None,
                   batch: int = 256) -> np.ndarray:
    """The mean of the patterns' intensities (amplitude²), streamed ``batch`` rows at a time
    from an array or a lazy stack; pixels where ``mask`` is False filled from their valid
    neighbours (:func:`engine.io.streaming.fill_masked`)."""
    if diffraction is None:
        raise InputError("probe from the data", "a dataset with diffraction patterns", "none")
    N = diffraction.shape[-1]
    total = np.zeros((N, N))
    for _, rows in iter_batches(diffraction, batch):
        a = rows.astype(np.float64)
        total += np.sum(a * a, axis=0)
    return fill_masked(total / max(len(diffraction), 1), mask)


def _near_back(amplitude: np.ndarray, propagator: Propagator) -> np.ndarray:
    be = get_backend("numpy")
    return np.asarray(propagator.bind(be).adjoint(amplitude.astype(np.complex128)))


def beam_radius_from_mean(mean: np.ndarray, propagator: Propagator) -> float:
    """The beam radius (pixels) a mean intensity implies: far field, half the extent of its
    autocorrelation F⁻¹(mean I); near field, the extent of the back-propagated mean
    amplitude's intensity."""
    if propagator.kind == "far":
        auto = np.fft.fftshift(np.abs(np.fft.ifft2(np.fft.ifftshift(mean))))
        return max(1.0, 0.5 * enclosed_radius(auto, AUTOCORRELATION_POWER))
    field = _near_back(np.sqrt(mean), propagator)
    return max(1.0, enclosed_radius(np.abs(field) ** 2))


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


def probe_from_mean_intensity(mean: np.ndarray, propagator: Propagator,
                              iterations: int = SUPPORT_ITERATIONS) -> np.ndarray:
    """The data-derived probe (N, N) complex128, unnormalised (module notes)."""
    mean = np.asarray(mean, np.float64)
    amplitude = np.sqrt(np.maximum(mean, 0.0))
    if propagator.kind == "near":
        return _near_back(amplitude, propagator)
    be = get_backend("numpy")
    support = soft_disk(mean.shape[-1], SUPPORT_MARGIN * beam_radius_from_mean(mean, propagator))
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
