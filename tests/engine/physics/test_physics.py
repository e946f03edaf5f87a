"""Forward model of docs/conventions.md#forward-model on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backends import get_backend
from tests.conftest import rel_err


def _random_object(rng, shape):
    return (rng.uniform(0.2, 1, shape) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape)))


@pytest.mark.parametrize("N", [8, 32, 64])
def test_parseval(backend, N):
    rng = np.random.default_rng(N)
    psi = backend.asarray(rng.standard_normal((5, N, N)) + 1j * rng.standard_normal((5, N, N)))
    Psi = backend.propagate(psi)
    e_in = (np.abs(backend.to_numpy(psi)) ** 2).sum(axis=(1, 2))
    e_out = (np.abs(backend.to_numpy(Psi)) ** 2).sum(axis=(1, 2))
    tol = 1e-12 if backend.name == "numpy" else 2e-6
    np.testing.assert_allclose(e_out, e_in, rtol=tol)
    back = backend.to_numpy(backend.backpropagate(Psi))
    assert rel_err(back, backend.to_numpy(psi)) < tol * 10


def test_propagate_is_centred_fft(numpy_backend):
    """The zero frequency lands at (N/2, N/2) and the scale is 1/N (orthonormal)."""
    N = 16
    flat = np.ones((1, N, N), complex)
    Psi = numpy_backend.propagate(flat)[0]
    assert abs(Psi[N // 2, N // 2] - N) < 1e-12  # Σ 1 / N = N² / N
    Psi[N // 2, N // 2] = 0
    assert np.abs(Psi).max() < 1e-12


def test_extract_integer_positions_is_plain_slicing(backend):
    rng = np.random.default_rng(0)
    obj = _random_object(rng, (40, 50))
    pos = np.array([[16.0, 16.0], [20.0, 30.0], [24.0, 34.0]])
    got = backend.to_numpy(backend.extract(backend.asarray(obj), pos - 16, 32))
    for j, (y, x) in enumerate(pos.astype(int)):
        np.testing.assert_allclose(got[j], obj[y - 16:y + 16, x - 16:x + 16], rtol=2e-6)


def test_subpixel_extraction_matches_analytic_shift(backend):
    """A smooth analytic object sampled at a sub-pixel offset, against the exact function."""
    H = W = 96

    def f(y, x):
        return np.exp(1j * (0.07 * x - 0.05 * y)) * (1.2 + np.cos(0.09 * y) * np.sin(0.06 * x))

    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    obj = f(yy, xx)
    pos = np.array([[40.3, 41.7], [50.55, 44.25], [47.0, 52.9]])
    got = backend.to_numpy(backend.extract(backend.asarray(obj), pos - 16, 32))
    r = np.arange(32)
    for j, (y, x) in enumerate(pos):
        exact = f(y - 16 + r[:, None], x - 16 + r[None, :])
        # bilinear error is bounded by h²/8 · max|f''| ≈ 0.01 here; a wrong sign or an
        # off-by-one in the offset would give errors of order |∇f| ≈ 0.2
        assert np.abs(got[j] - exact).max() < 0.006
    # and the error is not a constant offset: a half-pixel mistake would show here
    wrong = f(pos[0, 0] - 16 + r[:, None] + 0.5, pos[0, 1] - 16 + r[None, :])
    assert np.abs(got[0] - wrong).max() > 0.02


def test_scatter_add_is_adjoint_of_extract(backend):
    rng = np.random.default_rng(1)
    obj = _random_object(rng, (60, 70))
    tl = rng.uniform(0, 60 - 33, (7, 2))
    tl[:, 1] = rng.uniform(0, 70 - 33, 7)
    x = rng.standard_normal((7, 32, 32)) + 1j * rng.standard_normal((7, 32, 32))
    Ax = backend.to_numpy(backend.extract(backend.asarray(obj), tl, 32))
    canvas = backend.zeros((60, 70), complex=True)
    backend.scatter_add(canvas, backend.asarray(x), tl)
    lhs = np.vdot(Ax, x)
    rhs = np.vdot(obj, backend.to_numpy(canvas))
    assert abs(lhs - rhs) / abs(lhs) < (1e-12 if backend.name == "numpy" else 1e-5)


def test_shift_equivariance(backend):
    """Shifting the object by (dx, dy) equals shifting every position by (-dx, -dy)."""
    rng = np.random.default_rng(2)
    obj = _random_object(rng, (80, 80))
    probe = _random_object(rng, (32, 32))
    pos = rng.uniform(30, 45, (6, 2))
    dy, dx = 3, -5
    shifted = np.roll(obj, (dy, dx), axis=(0, 1))  # O'(r) = O(r - d)
    a = backend.forward(backend.asarray(shifted), backend.asarray(probe), pos + [dy, dx])
    b = backend.forward(backend.asarray(obj), backend.asarray(probe), pos)
    assert rel_err(backend.to_numpy(a), backend.to_numpy(b)) < 1e-5


def test_forward_equals_composition(backend):
    rng = np.random.default_rng(3)
    obj = backend.asarray(_random_object(rng, (70, 70)))
    probe = backend.asarray(_random_object(rng, (32, 32)))
    pos = rng.uniform(17, 52, (9, 2))
    composed = backend.amplitude(backend.propagate(backend.illuminate(
        probe, backend.extract(obj, pos - 16, 32))))
    fused = backend.forward(obj, probe, pos)
    assert rel_err(backend.to_numpy(fused), backend.to_numpy(composed)) < 1e-6


def test_torch_forward_is_differentiable(torch_backend):
    import torch

    rng = np.random.default_rng(4)
    obj = torch_backend.asarray(_random_object(rng, (50, 50))).requires_grad_(True)
    probe = torch_backend.asarray(_random_object(rng, (16, 16)))
    amp = torch_backend.forward(obj, probe, rng.uniform(9, 40, (4, 2)))
    amp.sum().backward()
    assert obj.grad is not None and torch.isfinite(obj.grad).all() and obj.grad.abs().sum() > 0


def test_odd_N_uses_explicit_shift(torch_backend, numpy_backend):
    rng = np.random.default_rng(5)
    obj = _random_object(rng, (40, 40))
    probe = _random_object(rng, (15, 15))
    pos = rng.uniform(10, 30, (3, 2))
    a = torch_backend.to_numpy(torch_backend.forward(torch_backend.asarray(obj),
                                                     torch_backend.asarray(probe), pos))
    b = numpy_backend.forward(obj, probe, pos)
    assert rel_err(a, b) < 1e-5


def test_unknown_backend_and_device_errors():
    from engine.errors import InputError

    with pytest.raises(InputError, match="backend: expected one of"):
        get_backend("jax")
    with pytest.raises(InputError, match="device"):
        get_backend("numpy", "cuda")
    with pytest.raises(InputError, match="device"):
        get_backend("torch", "tpu")
