"""Losses in X units (docs/conventions.md#intensity-scaling): the count NLL up to the constant s²,
dose-invariant."""

from __future__ import annotations

import numpy as np
import torch

from engine.network.losses import (
    compute_loss,
    mae_amplitude,
    poisson_nll,
    poisson_nll_counts,
    supervised,
)


def _pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64) * 3
    pred = (x + 0.3 * torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)).requires_grad_()
    return pred, x


def test_poisson_gradient_is_count_nll_over_s_squared():
    pred, x = _pair()
    s = 37.0
    poisson_nll(pred, x).backward()
    g_x = pred.grad.clone()
    pred.grad = None
    poisson_nll_counts(pred, s * x, s).backward()
    np.testing.assert_allclose(g_x.numpy(), (pred.grad / s**2).float().numpy(), rtol=1e-5,
                               atol=1e-7)


def test_poisson_is_zero_at_a_perfect_fit_and_positive_elsewhere():
    pred, x = _pair()
    assert abs(float(poisson_nll(x, x))) < 1e-6
    assert float(poisson_nll(pred.detach(), x)) > 1e-3


def test_losses_do_not_depend_on_the_dose():
    """Counts × 100 ⇒ s × 10 ⇒ identical X ⇒ identical losses."""
    pred, x = _pair(1)
    d = x * 5.0
    for scale in (1.0, 10.0):
        dd = d * scale
        s = float(torch.sqrt((dd**2).sum(dim=(-2, -1)).mean() / 16))
        xx = dd / s
        value = float(poisson_nll(pred.detach(), xx))
        if scale == 1.0:
            ref = value
    assert abs(value - ref) < 1e-9 * max(1.0, abs(ref))


def test_mae_and_supervised():
    pred, x = _pair(2)
    assert float(mae_amplitude(x, x)) == 0.0
    assert abs(float(mae_amplitude(x + 0.5, x)) - 0.5) < 1e-9
    obj = torch.polar(torch.ones(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.3))
    target = torch.polar(torch.ones(1, 1, 4, 4), torch.full((1, 1, 4, 4), -0.3))
    assert abs(float(supervised(obj, target)) - 2 * np.sin(0.3)) < 1e-6
    assert float(compute_loss("supervised", obj, x, x, obj)) == 0.0
