"""The forward model of one batch and the Fourier-space (measurement) update.

Units are the intensity-normalised ones throughout (docs/conventions.md#intensity-scaling):
the solvers see ``X = D / s`` and a probe normalised to Σ|P|² = (N/2)², so a flat object of
modulus 1 already has the data's energy and one set of default steps fits every photon count
(the scaling's invariance test holds for the reconstruction as well).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.backends import Backend
from engine.backends.propagation import BoundPropagator, Propagator
from engine.backends.protocol import checkerboard
from engine.data import read_rows
from engine.iterative import xp
from engine.iterative.readahead import ReadAhead

Array = Any

# Newton steps of the per-pattern Poisson line search; the objective is convex in the step
NEWTON_STEPS = 6


@dataclass
class Problem:
    """The data a solver iterates on, already on the backend.

    Attributes
    ----------
    backend : where the arrays live.
    data : (n, N, N) measured amplitudes in normalised units (X = D / s).
    top_left : (n, 2) float64 window corners in object-array coordinates.
    mean_energy : mean Σ X² per pattern ((N/2)² by construction).
    frame : for even N, the checkerboard (-1)^(r+c) (N, N) on the backend. The solvers then
        iterate on the probe times the checkerboard, whose plain :meth:`Backend.fft2` is the
        centred far field of the probe itself: the fftshift of every batch (forward and
        back) folds into the probe once per run. ``None``: shifted transforms (odd N).
        Exit waves and their corrections carry the same factor, which cancels in every
        update (the object numerator conj(P)·χ, the probe numerator conj(O)·χ, |P|²).
    device_top_left : ``top_left`` as a float64 tensor on the device (GPU runs), else
        ``None``. Batches are then picked by device indices: a host array turned into a
        device tensor on every batch is a blocking copy that stops the host from queueing
        work ahead of the GPU.
    near : the near-field propagator on the backend (docs/conventions.md#propagation), or
        ``None`` for the far field. Near-field runs have no checkerboard frame: the
        detector plane is real space, nothing is centred.
    mask : (N, N) real 0/1 on the backend: 1 where a detector pixel is valid, 0 where it is
        masked (docs/conventions.md#detector-mask); ``None``: every pixel valid.
    stack, stack_scale : a lazy :class:`~engine.data.DiffractionStack` of amplitudes D and
        the scale s: ``data`` is then ``None`` and each batch reads its own rows, divides
        them by s and moves them to the backend (the patterns are never all in memory).
    """

    backend: Backend
    data: Array
    top_left: np.ndarray
    mean_energy: float
    frame: Array | None = None
    device_top_left: Array | None = None
    near: BoundPropagator | None = None
    mask: Array | None = None
    stack: Any = None
    stack_scale: float = 1.0
    ahead: ReadAhead | None = None

    @classmethod
    def create(cls, backend: Backend, data: Array, top_left: np.ndarray,
               mean_energy: float, *, device_indices: bool | None = None,
               propagator: Propagator | None = None, mask: np.ndarray | None = None,
               stack: Any = None, stack_scale: float = 1.0) -> Problem:
        """A problem in the checkerboard frame whenever the pattern size is even (far
        field).

        ``device_indices`` (default: on for a torch backend off the CPU) keeps the window
        corners on the device and batches by device indices. ``propagator``: the
        geometry's (default: the far field). ``mask`` ((N, N) bool, True = valid) leaves
        pixels out of every data term; ``stack`` (with ``data=None``) streams the patterns
        from a lazy stack a batch at a time.
        """
        N = int((data if stack is None else stack).shape[-1])
        near = None
        if propagator is not None and propagator.kind == "near":
            near = propagator.bind(backend)
        frame = backend.asarray(checkerboard(N)) if N % 2 == 0 and near is None else None
        device = getattr(backend, "torch_device", None)  # None: a host-only backend
        if device_indices is None:
            device_indices = device is not None and device.type != "cpu"
        on_device = None
        if device_indices and device is not None:
            import torch

            on_device = torch.as_tensor(np.asarray(top_left, dtype=np.float64), device=device)
        valid = None if mask is None else backend.asarray(np.asarray(mask, dtype=np.float64))
        return cls(backend, data, top_left, mean_energy, frame, on_device, near, valid, stack,
                   float(stack_scale), None if stack is None else ReadAhead(stack))

    def to_frame(self, probe: Array) -> Array:
        """The probe modes (K, N, N) as the solvers iterate on them."""
        return probe if self.frame is None else probe * self.frame

    def from_frame(self, probe: Array) -> Array:
        """Inverse of :meth:`to_frame` (the checkerboard is its own inverse)."""
        return self.to_frame(probe)

    def far_field(self, psi: Array) -> Array:
        """Detector-plane waves of exit waves formed with the solvers' probe: the centred
        far field, or the near-field propagation."""
        if self.near is not None:
            return self.near.forward(psi)
        return self.backend.propagate(psi) if self.frame is None else self.backend.fft2(psi)

    def exit_wave(self, dfar: Array) -> Array:
        """Adjoint of :meth:`far_field`: detector-plane corrections back to exit waves."""
        if self.near is not None:
            return self.near.adjoint(dfar)
        if self.frame is None:
            return self.backend.backpropagate(dfar)
        return self.backend.ifft2(dfar)

    @property
    def n(self) -> int:
        return int(self.top_left.shape[0])

    @property
    def N(self) -> int:  # noqa: N802 - the physics symbol
        return int((self.data if self.stack is None else self.stack).shape[-1])

    def epoch_order(self, order: np.ndarray) -> Array:
        """An epoch's position order as batches index with it (a device tensor when the
        corners live on the device: one copy per epoch instead of one per batch)."""
        if self.device_top_left is None:
            return order
        import torch

        return torch.as_tensor(order, device=self.device_top_left.device)

    def batch(self, idx: Array) -> tuple[Array, Array]:
        """The measured amplitudes and window corners of positions ``idx`` (host indices,
        or a slice of :meth:`epoch_order` on the device)."""
        if self.stack is not None:
            return self._read_batch(idx)
        data = self.data
        if self.device_top_left is not None and not isinstance(idx, np.ndarray):
            return data[idx], self.device_top_left[idx]
        if not isinstance(data, np.ndarray):
            import torch

            return data[torch.as_tensor(idx, device=data.device)], self.top_left[idx]
        return data[idx], self.top_left[idx]

    def plan_reads(self, batches: list[Array]) -> None:
        """This epoch's batches in order: a lazy stack reads each next batch while the
        current one computes (nothing to do for patterns already in memory)."""
        if self.ahead is not None:
            self.ahead.plan([b if isinstance(b, np.ndarray) else b.cpu().numpy()
                             for b in batches])

    def close(self) -> None:
        """Stop the read-ahead thread (a lazy stack's)."""
        if self.ahead is not None:
            self.ahead.close()

    def _read_batch(self, idx: Array) -> tuple[Array, Array]:
        """A lazy stack's rows ``idx``, scaled and moved to the backend: the only patterns
        in memory are this batch's."""
        host = idx if isinstance(idx, np.ndarray) else idx.cpu().numpy()
        raw = self.ahead.take(host) if self.ahead is not None else read_rows(self.stack, host)
        rows = raw.astype(np.float64) / self.stack_scale
        tl = self.device_top_left[idx] if self.device_top_left is not None \
            and not isinstance(idx, np.ndarray) else self.top_left[host]
        return self.backend.asarray(rows), tl


@dataclass
class BatchModel:
    """Object patches, exit waves and far fields of one batch (probe modes on axis 1)."""

    patches: Array  # (b, N, N)
    psi: Array  # (b, K, N, N)
    far: Array  # (b, K, N, N)


def batch_model(problem: Problem, obj: Array, probe: Array,
                top_left: np.ndarray) -> BatchModel:
    """Extract, illuminate with every mode, propagate (docs/conventions.md#forward-model steps
    1–3)."""
    be = problem.backend
    N = probe.shape[-1]
    patches = be.extract(obj, top_left, N)
    psi = be.illuminate(probe[None], patches[:, None])
    return BatchModel(patches, psi, problem.far_field(psi))


def fourier_residual(far: Array, measured: Array, noise: str = "gaussian",
                     eps: float = 1e-9, mask: Array | None = None) -> tuple[Array, Array]:
    """Far-field correction Ψ' − Ψ of every mode, and the batch's Σ (|Ψ| − X)² (0-d array).

    ``mask`` ((N, N) 0/1, 1 = valid): a masked pixel gets no correction (Ψ' = Ψ, the model
    keeps its own amplitude there: predicted, never fitted) and counts in no error sum.

    ``gaussian``: the modulus projection Ψ·X/|Ψ| (|Ψ|² summed over the incoherent modes),
    the maximum-likelihood target for amplitude noise. ``poisson``: a step β_j along the
    Poisson-likelihood gradient −ξΨ, ξ = 1 − X²/|Ψ|², with β_j minimising
    Σ I(1 − βξ)² − X² log(I(1 − βξ)²) per pattern (Odstrčil et al. 2018, eq. 18);
    pixel by pixel the optimum would be the modulus projection, so β_j ∈ (0, 1].
    """
    intensity = xp.sum_axes(xp.abs2(far), (1,), keepdims=True)  # (b, 1, N, N)
    amp = xp.sqrt(intensity)
    X = measured[:, None]
    sq = (amp - X) ** 2
    err = xp.sum_axes(sq if mask is None else sq * mask, (0, 1, 2, 3))
    if noise == "gaussian":
        factor = X / (amp + eps) - 1.0
        return far * (factor if mask is None else factor * mask), err
    d = X * X
    xi = 1.0 - d / (intensity + eps)
    if mask is not None:  # ξ = 0: no gradient, and no say in the step length β
        xi = xi * mask
    # the sums Newton needs, with the pattern-independent factors taken out once
    i_xi, d_xi = intensity * xi, d * xi
    i_xi2 = xp.sum_axes(i_xi * xi, (1, 2, 3), keepdims=True)
    d_xi2 = d_xi * xi
    beta = i_xi2 * 0.0 + 0.5
    for _ in range(NEWTON_STEPS):
        g = xp.maximum(1.0 - beta * xi, 1e-3)
        inv_g = 1.0 / g
        grad = xp.sum_axes(d_xi * inv_g - i_xi * g, (1, 2, 3), keepdims=True)
        hess = i_xi2 + xp.sum_axes(d_xi2 * inv_g * inv_g, (1, 2, 3), keepdims=True)
        beta = xp.clip(beta - grad / (hess + eps), 0.0, 1.0)
    return far * (-(beta * xi)), err


def exit_wave_update(problem: Problem, far: Array, measured: Array,
                     noise: str = "gaussian") -> tuple[Array, Array]:
    """Real-space exit-wave correction χ = F⁻¹(Ψ' − Ψ) (b, K, N, N) and the batch error."""
    dfar, err = fourier_residual(far, measured, noise, mask=problem.mask)
    return problem.exit_wave(dfar), err


def illumination(probe: Array) -> Array:
    """Σ_k |P_k|² of probe modes (K, N, N)."""
    return xp.sum_axes(xp.abs2(probe), (0,))


def object_numerator(probe: Array, chi: Array) -> Array:
    """Σ_k conj(P_k) χ_k per position (b, N, N)."""
    return xp.sum_axes(xp.conj(probe)[None] * chi, (1,))


def probe_numerator(patches: Array, chi: Array) -> Array:
    """Σ_j conj(O_j) χ_jk per mode (K, N, N)."""
    return xp.sum_axes(xp.conj(patches)[:, None] * chi, (0,))


def scatter(be: Backend, shape: tuple[int, int], values: Array, top_left: np.ndarray,
            *, complex: bool) -> Array:
    """A fresh canvas with ``values`` (b, N, N) (or (1, N, N), broadcast) added at the windows."""
    canvas = be.zeros(shape, complex=complex)
    be.scatter_add(canvas, values, top_left)
    return canvas
