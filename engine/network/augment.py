"""Symmetry augmentation: new training samples that the probe's own symmetry makes exact.

When the probe is unchanged by a mirror or a transposition T of the patch grid (P∘T = P,
as for the simulated disk, zone-plate and Gaussian beams), the object O∘T gives the exit
wave (P·O)∘T, whose far field is the measured pattern transformed the same way (the DFT of
a reflected signal is the reflected DFT). So ``D∘T`` is the measurement of an object region
the scan never visited, and the self-supervised loss needs nothing else: the network sees
up to eight times the object content. For a group, the members' local offsets transform
with it (a mirror about the group's anchor). A probe without such a symmetry (a measured
one, usually) admits none, and asking for the augmentation then is an error.

Reflections act on the fftshifted grid of both domains as index ``i -> (N - i) mod N``:
the centre pixel N/2 (the probe's centre, the zero frequency) stays in place.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from engine.errors import InputError

# (transpose, flip rows, flip columns), applied in that order; the identity first
ELEMENTS: tuple[tuple[bool, bool, bool], ...] = tuple(itertools.product((False, True),
                                                                         repeat=3))


def _reflect(a, axis: int, xp):
    return xp.roll(xp.flip(a, axis), 1, axis) if xp is np else \
        torch.roll(torch.flip(a, (axis,)), 1, axis)


def transform_grid(a, element: tuple[bool, bool, bool]):
    """``a`` (..., N, N), NumPy or torch, under one element of :data:`ELEMENTS`."""
    xp = np if isinstance(a, np.ndarray) else torch
    t, fy, fx = element
    if t:
        a = a.swapaxes(-1, -2) if xp is np else a.transpose(-1, -2)
    if fy:
        a = _reflect(a, a.ndim - 2, xp)
    if fx:
        a = _reflect(a, a.ndim - 1, xp)
    return a


def transform_offsets(off: torch.Tensor, element: tuple[bool, bool, bool]) -> torch.Tensor:
    """Local offsets (..., 2) in (y, x) under the same element: the group mirrored about its
    anchor, so each member lands where its transformed pattern was measured."""
    t, fy, fx = element
    if t:
        off = off.flip(-1)
    # Python scalars, not a sign tensor: a host-to-device copy per batch would make the
    # training step wait for the GPU
    return torch.stack((off[..., 0] * (-1.0 if fy else 1.0),
                        off[..., 1] * (-1.0 if fx else 1.0)), dim=-1)


def probe_symmetries(probe: np.ndarray, tol: float = 1e-3) -> list[tuple[bool, bool, bool]]:
    """The elements that leave ``probe`` unchanged (relative difference ≤ ``tol``)."""
    p = np.asarray(probe)
    norm = float(np.linalg.norm(p)) or 1.0
    return [e for e in ELEMENTS if np.linalg.norm(transform_grid(p, e) - p) <= tol * norm]


class SymmetryAugmenter:
    """Applies one random probe symmetry per training batch (seeded: resumable).

    Parameters
    ----------
    probe : the (normalised) probe the model trains with.
    seed : the run's seed; the choice for batch ``b`` of epoch ``e`` depends on these alone.
    """

    def __init__(self, probe: np.ndarray, seed: int) -> None:
        self.elements = probe_symmetries(probe)
        if len(self.elements) < 2:
            raise InputError("augment", "a probe unchanged by a mirror or a transposition "
                             "(this probe has no such symmetry)", "symmetry")
        self.seed = seed

    def choices(self, epoch: int, n_batches: int) -> list[tuple[bool, bool, bool]]:
        rng = np.random.default_rng([self.seed, epoch, 0x5EED])
        return [self.elements[i] for i in rng.integers(0, len(self.elements), n_batches)]

    def offsets_union(self, local_offsets: np.ndarray) -> np.ndarray:
        """Every transformed copy of ``local_offsets`` (G, C, 2): what the group canvas
        (:func:`~engine.network.physics.group_extent`) must hold."""
        off = torch.as_tensor(np.asarray(local_offsets, dtype=np.float64))
        return np.concatenate([transform_offsets(off, e).numpy() for e in self.elements])

    @staticmethod
    def apply(element: tuple[bool, bool, bool], x: torch.Tensor, off: torch.Tensor,
              target: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if not any(element):
            return x, off, target
        return (transform_grid(x, element), transform_offsets(off, element),
                None if target is None else transform_grid(target, element))
