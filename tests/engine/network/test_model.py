"""The network and its differentiable forward model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.backends import get_backend
from engine.errors import InputError
from engine.network.model import NetworkConfig, PtychoNet, flops_per_pattern, parameter_count
from engine.network.physics import PhysicsModel, group_extent, merge_reextract
from engine.physics.scaling import normalise_probe


@pytest.mark.parametrize("N", [32, 64, 128, 256])
def test_depth_follows_n_and_heads_are_bounded(N):
    net = PtychoNet(NetworkConfig(N=N, C=4, base_channels=4, max_channels=16))
    assert N // 2**net.config.depth == 8
    x = torch.rand(2, 4, N, N) * 5
    with torch.no_grad():
        net.phase_head.weight.normal_(0, 10)  # drive tanh into saturation
        amp, phase = net(x)
    assert amp.shape == phase.shape == (2, 4, N, N)
    assert float(amp.min()) > 0
    assert float(phase.abs().max()) <= math.pi + 1e-6


def test_initial_amplitude_is_one_in_x_units():
    amp, phase = PtychoNet(NetworkConfig(N=32, C=1, base_channels=4))(torch.rand(3, 1, 32, 32))
    assert torch.allclose(amp, torch.ones_like(amp), atol=1e-5)


def test_size_figures_grow_with_n():
    small = PtychoNet(NetworkConfig(N=32, C=1, base_channels=8))
    big = PtychoNet(NetworkConfig(N=64, C=1, base_channels=8))
    assert parameter_count(big) > parameter_count(small) > 1000
    assert flops_per_pattern(big) > 3 * flops_per_pattern(small) > 0


@pytest.mark.parametrize("N, bottleneck, depth", [(64, 16, 2), (64, 32, 1), (32, 4, 3),
                                                (128, 16, 3)])
def test_bottleneck_sets_the_depth(N, bottleneck, depth):
    net = PtychoNet(NetworkConfig(N=N, C=4, base_channels=4, bottleneck=bottleneck))
    assert net.config.depth == depth
    strided = [m for m in net.encoder.modules()
               if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == 0  # the default downsampling of NetworkConfig is pooling
    with torch.no_grad():
        h = net.encoder(torch.rand(1, 4, N, N))
        amp, _ = net(torch.rand(1, 4, N, N))
    assert h.shape[-2:] == (bottleneck, bottleneck)
    assert amp.shape == (1, 4, N, N)


@pytest.mark.parametrize("bottleneck", [2, 12, 64])
def test_bad_bottleneck_is_refused(bottleneck):
    with pytest.raises(InputError, match="bottleneck"):
        NetworkConfig(N=64, bottleneck=bottleneck)


def test_a_shallower_network_is_cheaper():
    deep = PtychoNet(NetworkConfig(N=64, C=1, base_channels=8))
    shallow = PtychoNet(NetworkConfig(N=64, C=1, base_channels=8, bottleneck=16))
    assert flops_per_pattern(shallow) < flops_per_pattern(deep)
    assert parameter_count(shallow) < parameter_count(deep)


@pytest.mark.parametrize("N, bottleneck, rf, mixing", [(32, 8, 32, False), (64, 16, 32, True),
                                                     (64, 8, 68, False), (128, 16, 68, True)])
def test_global_mixing_is_on_where_a_bottleneck_cell_sees_part_of_the_pattern(
        N, bottleneck, rf, mixing):
    from engine.network.model import default_global_mixing, receptive_field

    assert receptive_field(N, bottleneck) == rf
    assert default_global_mixing(N, bottleneck) is mixing


def test_global_mixing_reaches_across_the_pattern_and_starts_as_the_identity():
    """Without it, a far-field pixel in one corner cannot reach the object pixel in the
    other at N = 64 (the cells see 32×32); with it, every pixel can. Zero-initialised and
    made last, it leaves a fresh network's output as it was."""
    cfg = NetworkConfig(N=64, C=1, base_channels=4, bottleneck=16, norm=False)
    nets = {}
    for mixing in (False, True):
        torch.manual_seed(0)
        nets[mixing] = PtychoNet(NetworkConfig(**{**cfg.to_dict(), "global_mixing": mixing}))
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        # the amplitude head starts at zero weights: the phase is what shows the path
        assert torch.equal(nets[False](x)[1], nets[True](x)[1])
        nets[True].mixing.mix.weight.normal_(0, 0.1)
        poked = x.clone()
        poked[..., 0, 0] += 10.0
        for mixing, reaches in ((False, False), (True, True)):
            a, b = nets[mixing](x)[1], nets[mixing](poked)[1]
            assert bool(a[..., 63, 63] != b[..., 63, 63]) is reaches
            assert bool(a[..., 0, 0] != b[..., 0, 0])  # the near corner always moves
    extra = parameter_count(nets[True]) - parameter_count(nets[False])
    assert extra == 256 * 256 + 256  # one side⁴ map and its bias; no norm here
    # network descriptions written before the option mean no mixing
    assert NetworkConfig(**{k: v for k, v in cfg.to_dict().items()
                            if k != "global_mixing"}).global_mixing is False


@pytest.mark.parametrize("N", [12, 48, 0])
def test_bad_n_is_refused(N):
    with pytest.raises(InputError, match="N"):
        NetworkConfig(N=N)


def _group_patches(obj, positions, N):
    be = get_backend("torch", "cpu")
    p = be.extract(be.asarray(obj, complex=True), positions.reshape(-1, 2) - N / 2, N)
    return p.reshape(positions.shape[0], positions.shape[1], N, N)


def test_object_big_keeps_consistent_patches():
    """Patches cut from one object at the group's positions survive merge + re-extract."""
    rng = np.random.default_rng(0)
    N = 16
    obj = (rng.uniform(0.3, 1, (60, 60)) * np.exp(1j * rng.uniform(-1, 1, (60, 60))))
    pos = np.array([[[20, 20], [20, 26], [27, 20], [27, 26]],
                    [[30.5, 30.25], [30.5, 36.25], [36.5, 30.25], [36.5, 36.25]]], float)
    patches = _group_patches(obj, pos, N)
    local = torch.as_tensor(pos - pos.mean(axis=1, keepdims=True))
    merged = merge_reextract(get_backend("torch", "cpu"), patches, local)
    np.testing.assert_allclose(merged.numpy(), patches.numpy(), atol=1e-5)


def test_object_big_averages_conflicting_patches_and_passes_gradients():
    N = 16
    pos = np.array([[[20, 20], [20, 24], [24, 20], [24, 24]]], float)
    local = torch.as_tensor(pos - pos.mean(axis=1, keepdims=True))
    values = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    patches = (values[None, :, None, None] * torch.ones(1, 4, N, N)).to(torch.complex64)
    merged = merge_reextract(get_backend("torch", "cpu"), patches, local)
    # the pixel every channel covers is the mean of all four
    centre = merged[0, 0, N // 2 + 2, N // 2 + 2]
    assert abs(complex(centre.detach()) - 2.5) < 1e-5
    spread = merged.real.std(dim=1).mean()
    assert spread < patches.real.std(dim=1).mean()
    merged.real.sum().backward()
    assert values.grad is not None and float(values.grad.abs().min()) > 0


def test_host_extent_gives_the_device_measured_merge():
    """The host-computed local canvas (no device sync) changes nothing, nor does a larger one
    or a batch of fewer groups; it is the largest of the groups' own canvases."""
    rng = np.random.default_rng(3)
    N = 16
    local = rng.uniform(-9, 9, (5, 4, 2))
    patches = torch.as_tensor((rng.uniform(0.2, 1, (5, 4, N, N))
                               * np.exp(1j * rng.uniform(-1, 1, (5, 4, N, N))))
                              .astype(np.complex64))
    be, off = get_backend("torch", "cpu"), torch.as_tensor(local)
    want = merge_reextract(be, patches, off)
    h, w = group_extent(local, N)
    each = np.array([group_extent(local[i:i + 1], N) for i in range(len(local))])
    assert (h, w) == tuple(each.max(axis=0)) and (h, w) != tuple(each.min(axis=0))
    for extent in ((h, w), (h + 7, w + 3)):
        got = merge_reextract(be, patches, off, extent)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(merge_reextract(be, patches[1:3], off[1:3], (h, w)), want[1:3],
                               rtol=0, atol=0)
    with pytest.raises(ValueError, match="local_offsets"):
        group_extent(np.zeros((0, 4, 2)), N)


def test_physics_diffraction_matches_the_backend_forward_model():
    rng = np.random.default_rng(1)
    N = 32
    probe, _ = normalise_probe(np.exp(1j * rng.uniform(-1, 1, (N, N))).astype(np.complex64))
    patch = (rng.uniform(0.2, 1, (2, 1, N, N)) * np.exp(1j * rng.uniform(-1, 1, (2, 1, N, N))))
    model = PhysicsModel(PtychoNet(NetworkConfig(N=N, C=1, base_channels=4)), probe, False)
    got = model.diffraction(torch.as_tensor(patch.astype(np.complex64)))
    nb = get_backend("numpy")
    want = nb.amplitude(nb.propagate(nb.illuminate(probe, patch)))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("g", [1, 2])
def test_ground_truth_patches_explain_the_data(pinn_ds, g):
    """The truth, brought into X units, fed through the trainer's own forward model and loss
    fits the measured patterns to the Poisson noise floor, far better than a flat object.

    Any slip of units (probe factor, intensity scale, Y→X factor), of the fftshift or of the
    extraction convention between simulation and training shows up here as a misfit.
    """
    from engine.network.batches import prepare
    from engine.network.losses import poisson_nll

    prep = prepare(pinn_ds, g, None, 64, 0.0, 0, True)
    model = PhysicsModel(PtychoNet(NetworkConfig(N=pinn_ds.N, C=g * g, base_channels=4)),
                         prep.probe, g > 1)
    idx = torch.as_tensor(prep.train.indices)
    x, truth = torch.from_numpy(prep.x)[idx], torch.from_numpy(prep.target)[idx]
    off = torch.as_tensor(prep.train.local_offsets)
    with torch.no_grad():
        merged = merge_reextract(model.backend(), truth, off)
        fit = float(poisson_nll(model.diffraction(merged), x))
        flat = float(poisson_nll(model.diffraction(torch.ones_like(truth)), x))
        # the noise floor: the deviance of the noise-free amplitudes against the counts
        ideal = float(poisson_nll(model.diffraction(truth), x))
    assert fit < 1.05 * ideal + 1e-9
    assert fit < 0.1 * flat, (fit, flat)



def test_upsample_modes_and_older_bundles():
    """``shuffle`` gives each sub-pixel of a 2×2 block its own weights; a network description
    without the key (bundles written before the option) still means ``nearest``."""
    torch.manual_seed(0)
    cfg = NetworkConfig(N=32, C=4, base_channels=4, upsample="shuffle")
    net = PtychoNet(cfg)
    amp, phase = net(torch.rand(2, 4, 32, 32))
    assert amp.shape == phase.shape == (2, 4, 32, 32)
    assert any(isinstance(m, torch.nn.PixelShuffle) for m in net.modules())
    old = {k: v for k, v in cfg.to_dict().items() if k not in ("upsample", "bottleneck")}
    assert NetworkConfig(**old).upsample == "nearest"
    # bundles written before the bottleneck option were 8×8 whatever N
    assert NetworkConfig(**{**old, "N": 64}).bottleneck == 8
    with pytest.raises(InputError, match="upsample"):
        NetworkConfig(upsample="bicubic")
