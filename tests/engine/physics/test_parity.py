"""Backend parity: torch (float32/complex64) against the NumPy float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from engine.backends import get_backend
from engine.physics.stats import patch_statistics
from tests.conftest import TORCH_DEVICE, rel_err

TOL = 1e-5  # relative, torch single precision against the float64 reference


@pytest.fixture(scope="module")
def pair():
    return get_backend("numpy"), get_backend("torch", TORCH_DEVICE)


def _cplx(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


@pytest.mark.parametrize("n", [1, 3, 64])
def test_extract_parity(pair, n):
    nb, tb = pair
    rng = np.random.default_rng(n)
    obj = _cplx(rng, (90, 100))
    tl = np.stack([rng.uniform(0, 57, n), rng.uniform(0, 67, n)], 1)
    assert rel_err(tb.to_numpy(tb.extract(tb.asarray(obj), tl, 32)), nb.extract(obj, tl, 32)) < TOL
    real = obj.real
    got = tb.to_numpy(tb.extract(tb.asarray(real), tl, 32))
    assert rel_err(got, nb.extract(real, tl, 32)) < TOL


@pytest.mark.parametrize("n", [1, 5, 33])
def test_scatter_parity(pair, n):
    nb, tb = pair
    rng = np.random.default_rng(10 + n)
    x = _cplx(rng, (n, 16, 16))
    tl = rng.uniform(0, 40, (n, 2))
    a = nb.zeros((60, 60), complex=True)
    nb.scatter_add(a, x, tl)
    b = tb.zeros((60, 60), complex=True)
    tb.scatter_add(b, tb.asarray(x), tl)
    assert rel_err(tb.to_numpy(b), a) < TOL
    wa, wb = nb.zeros((60, 60)), tb.zeros((60, 60))
    nb.scatter_add(wa, np.ones((1, 16, 16)), tl)
    tb.scatter_add(wb, tb.asarray(np.ones((1, 16, 16))), tl)
    assert rel_err(tb.to_numpy(wb), wa) < TOL


def test_physics_ops_parity(pair):
    nb, tb = pair
    rng = np.random.default_rng(7)
    psi = _cplx(rng, (6, 32, 32))
    probe = _cplx(rng, (32, 32))
    assert rel_err(tb.to_numpy(tb.illuminate(tb.asarray(probe), tb.asarray(psi))),
                   nb.illuminate(probe, psi)) < TOL
    assert rel_err(tb.to_numpy(tb.propagate(tb.asarray(psi))), nb.propagate(psi)) < TOL
    assert rel_err(tb.to_numpy(tb.backpropagate(tb.asarray(psi))), nb.backpropagate(psi)) < TOL
    assert rel_err(tb.to_numpy(tb.amplitude(tb.asarray(psi))), nb.amplitude(psi)) < TOL
    obj = _cplx(rng, (80, 80))
    pos = rng.uniform(16, 63, (11, 2))
    assert rel_err(tb.to_numpy(tb.forward(tb.asarray(obj), tb.asarray(probe), pos)),
                   nb.forward(obj, probe, pos)) < TOL


@pytest.mark.parametrize("gridsize", [1, 2])
def test_statistics_parity(pair, gridsize):
    nb, tb = pair
    rng = np.random.default_rng(8)
    C = gridsize**2
    amp = np.abs(_cplx(rng, (5, C, 16, 16)))
    offsets = rng.uniform(-4, 4, (5, C, 2))
    a = patch_statistics(amp, offsets, nb)
    b = patch_statistics(amp, offsets, tb)
    for key in ("mean", "std", "var_zero_mean"):
        assert abs(a[key] - b[key]) <= TOL * abs(a[key])
    if C == 1:
        assert a["var_across_group"] is None and b["var_across_group"] is None
    else:
        assert abs(a["var_across_group"] - b["var_across_group"]) <= 1e-4 * a["var_across_group"]


def test_chunked_forward_parity(pair):
    """More positions than one CPU chunk: the pieces are reassembled in order (a GPU forwards
    the same positions in one piece, which must agree too)."""
    nb, tb = pair
    assert (tb.forward_chunk is not None) == (tb.torch_device.type == "cpu")
    rng = np.random.default_rng(9)
    obj, probe = _cplx(rng, (60, 60)), _cplx(rng, (16, 16))
    n = (tb.forward_chunk or 256) + 37
    pos = rng.uniform(8, 51, (n, 2))
    got = tb.to_numpy(tb.forward(tb.asarray(obj), tb.asarray(probe), pos))
    assert got.shape == (n, 16, 16)
    assert rel_err(got, nb.forward(obj, probe, pos)) < TOL


@pytest.mark.parametrize("edge", [False, True])
def test_gather_scatter_index_paths_agree(pair, edge):
    """Host corners well inside take the base-plus-offsets index; corners on the last valid
    row/column (or given as a tensor) take the clamped one; both match the reference."""
    import torch

    nb, tb = pair
    rng = np.random.default_rng(7)
    obj = _cplx(rng, (60, 50))
    tl = np.stack([rng.uniform(0, 27, 9), rng.uniform(0, 17, 9)], 1)
    if edge:
        # a window flush with the last row and column: its zero-weight +1 partner (row 60)
        # lies outside, so the index takes the clamped path
        tl[0] = (60 - 32, 50 - 32)
    else:
        tl[0] = (60 - 32 - 0.5, 50 - 32 - 0.5)  # the +1 partner is the last row: inside
    for corners in (tl, torch.as_tensor(tl, device=tb.torch_device)):
        got = tb.to_numpy(tb.extract(tb.asarray(obj), corners, 32))
        assert rel_err(got, nb.extract(obj, tl, 32)) < TOL
    x = _cplx(rng, (9, 32, 32))
    ref = np.zeros(obj.shape, complex)
    nb.scatter_add(ref, x, tl)
    out = tb.zeros(obj.shape, complex=True)
    tb.scatter_add(out, tb.asarray(x), tl)
    assert rel_err(tb.to_numpy(out), ref) < TOL


def test_scatter_with_autograd_matches_plain(pair):
    """The differentiable adjoint (training) and the buffered one (solvers) agree, and the
    gradient of <c, scatter(x)> is extract(c)."""
    import torch

    _, tb = pair
    rng = np.random.default_rng(8)
    tl = np.stack([rng.uniform(0, 27, 6), rng.uniform(0, 17, 6)], 1)
    x = tb.asarray(_cplx(rng, (6, 32, 32)))
    plain = tb.zeros((60, 50), complex=True)
    with torch.no_grad():
        tb.scatter_add(plain, x, tl)
    xg = x.clone().requires_grad_(True)
    tracked = tb.zeros((60, 50), complex=True)
    tb.scatter_add(tracked, xg, tl)
    assert rel_err(tb.to_numpy(tracked), tb.to_numpy(plain)) < TOL
    c = tb.asarray(_cplx(rng, (60, 50)))
    (tracked * c.conj()).real.sum().backward()
    assert rel_err(tb.to_numpy(xg.grad), tb.to_numpy(tb.extract(c, tl, 32))) < TOL
