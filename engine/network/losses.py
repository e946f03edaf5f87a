"""Training losses (docs/conventions.md#intensity-scaling): Poisson NLL on counts, MAE on normalised
amplitudes, supervised.

All three are written in X units (``X = D / s``) so that their value and gradients do not
depend on the photon count: the Poisson NLL with λ = (s·Â)², k = D² = (s·X)² equals
``s² · (Â² − X² log Â²) + const``; dividing by s² (a constant for a data set) leaves the
statistics unchanged and makes the optimiser see the same problem at any dose — which is
what keeps "counts × 100 ⇒ same reconstruction" true end to end.
"""

from __future__ import annotations

import torch

from engine.network.choices import LOSSES, LossName  # noqa: F401 - re-exported

_EPS = 1e-12


def _mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mean over every pixel, or over the valid pixels of a (N, N) 0/1 ``mask`` (a
    masked pixel is predicted, never fitted: it adds nothing, and the mean is per valid
    pixel so a mask does not rescale the loss)."""
    if mask is None:
        return torch.mean(values)
    return torch.mean(values * mask) / torch.mean(mask)


def poisson_nll(pred: torch.Tensor, x: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """Poisson deviance per pixel of counts, divided by s².

    ``pred`` and ``x`` are predicted and measured amplitudes in X units. The value is
    ``mean(λ − k − k·log(λ/k)) / s²`` with λ = (s·pred)², k = (s·x)², ≥ 0 and 0 at a perfect
    fit; its gradient is that of the count NLL ``λ − k log λ`` divided by s².
    """
    lam = pred.float() ** 2
    k = x.float() ** 2
    return _mean(lam - k - k * (torch.log(lam + _EPS) - torch.log(k + _EPS)), mask)


def poisson_nll_counts(pred: torch.Tensor, diffraction: torch.Tensor, s: float) -> torch.Tensor:
    """The literal count NLL ``mean(λ − k log λ)``, λ = (s·pred)², k = D² (for checks)."""
    lam = (s * pred.double()) ** 2
    k = diffraction.double() ** 2
    return torch.mean(lam - k * torch.log(lam + _EPS))


def mae_amplitude(pred: torch.Tensor, x: torch.Tensor,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error between predicted and measured amplitudes, X units (over the
    valid pixels of ``mask``)."""
    return _mean(torch.abs(pred.float() - x.float()), mask)


def supervised(obj: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |O − Y'| of complex patches, Y' the ground truth brought into X units.

    The complex distance needs no phase unwrapping and weighs phase by amplitude, as the
    measurement does.
    """
    return torch.mean(torch.abs(obj - target))


def compute_loss(name: str, obj: torch.Tensor, pred: torch.Tensor, x: torch.Tensor,
                 target: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """Dispatch on ``name`` (one of :data:`LOSSES`); ``mask`` ((N, N) 0/1, 1 = valid
    detector pixel) leaves masked pixels out of the data losses (the supervised loss
    compares objects, not data)."""
    if name == "poisson":
        return poisson_nll(pred, x, mask)
    if name == "mae":
        return mae_amplitude(pred, x, mask)
    if target is None:
        raise ValueError("the supervised loss needs ground-truth patches")
    return supervised(obj, target)
