"""Encoder–decoder CNN mapping a group of diffraction amplitudes to object patches.

Input: ``X = D / s`` of a group, (B, C, N, N) with C = gridsize²
(docs/conventions.md#intensity-scaling). Output: amplitude (softplus, positive, in X units) and
phase (π·tanh) of C patches (B, C, N, N). The diffraction and object domains are not aligned
pixel by pixel, so there are no skip connections: the encoder halves the resolution down to the
bottleneck (``bottleneck``; what ``ptycho train`` picks for each N is
:func:`default_bottleneck`) and the decoder grows back to N. Everything the decoder draws must
therefore pass through its own resampling, which is why learned resampling
(``upsample="shuffle"``, ``downsample="strided"``) reconstructs finer detail than fixed
nearest/average resampling.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from engine.errors import InputError
from engine.network.choices import (  # noqa: F401 - re-exported: model.SUPPORTED_N, ...
    DOWNSAMPLES,
    INPUT_TRANSFORMS,
    SUPPORTED_N,
    UPSAMPLES,
    Downsample,
    InputTransform,
    Upsample,
)

BOTTLENECK = 8  # the bottleneck of every bundle written before the option existed


def receptive_field(N: int, bottleneck: int) -> int:  # noqa: N803
    """Side, in input pixels, of what one bottleneck cell sees: per level two 3×3
    convolutions and a 2×2 resampling, then the bottleneck's own two convolutions."""
    rf, jump = 1, 1
    for _ in range(int(math.log2(N // bottleneck))):
        rf += 5 * jump  # 2 + 2 from the convolutions, 1 from the 2×2 resampling
        jump *= 2
    return rf + 4 * jump


def default_global_mixing(N: int, bottleneck: int) -> bool:  # noqa: N803
    """Whether ``ptycho train`` adds :class:`GlobalMixing` unless told: where a bottleneck
    cell sees less than the whole pattern (N = 64 with its 16×16 bottleneck sees 32×32).
    Every object pixel depends on every far-field pixel, and at N = 64 the layer raised
    held-out r at equal steps in all four pairs measured (two seeds at gridsize 2 and 1:
    0.65 → 0.71, 0.63 → 0.64, 0.71 → 0.78, 0.66 → 0.68; ``benchmarks/RESULTS.md``); at
    N = 32, where the cells already see the whole pattern, it did not help."""
    return receptive_field(N, bottleneck) < N


def default_bottleneck(N: int) -> int:  # noqa: N803
    """The bottleneck ``ptycho train`` uses unless told: two levels above it up to N = 64
    (8×8 at N = 32, 16×16 at N = 64: at N = 64 that learns fine detail faster than 8×8 or
    32×32, ``benchmarks/RESULTS.md``), and 16×16 beyond, where nothing has been measured."""
    return max(8, min(16, N // 4))


# a fixed first layer: far-field amplitudes span orders of magnitude (the zero-order peak
# against the speckle), which a compressive map hands to the convolutions evenly
# (InputTransform and its tuple live in engine.network.choices, torch-free)


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the network.

    Parameters
    ----------
    N : pattern size, a power of two >= 16 (32...256 supported and tested).
    C : channels per group (gridsize²).
    base_channels : feature maps of the first level; doubled each level, capped at
        ``max_channels``.
    max_channels : cap on feature maps.
    input_transform : fixed map applied to X first: ``sqrt``, ``log1p`` or ``none``.
    norm : GroupNorm after every convolution (per sample, so training and inference agree;
        it speeds up the short trainings CPUs afford several-fold).
    upsample : ``nearest`` (copy each cell into a 2×2 block) or ``shuffle`` (a learned 1×1
        convolution to 4× the feature maps, rearranged into the 2×2 block: each of the four
        sub-pixels gets its own weights, so the decoder can place detail inside a block; with
        no skip connections that detail has nowhere else to come from).
    downsample : ``avg`` (2×2 average pooling) or ``strided`` (a learned 2×2 convolution of
        stride 2): the speckle that encodes fine object detail varies pixel to pixel, and an
        average over a 2×2 block discards it before the narrow first levels could encode it.
    bottleneck : side of the coarsest level, a power of two from 4 to N/2; the depth is
        log2(N / bottleneck). A larger bottleneck is shallower and cheaper; at N = 64 a 16×16
        bottleneck learns fine detail faster than 8×8 (``benchmarks/RESULTS.md``).
    global_mixing : add :class:`GlobalMixing` after the bottleneck, so that every cell
        sees the whole pattern (off in every bundle written before the option existed).
    """

    N: int = 64
    C: int = 1
    base_channels: int = 32
    max_channels: int = 256
    input_transform: InputTransform = "none"
    norm: bool = True
    upsample: Upsample = "nearest"
    downsample: Downsample = "avg"
    bottleneck: int = BOTTLENECK
    global_mixing: bool = False

    def __post_init__(self) -> None:
        if self.input_transform not in INPUT_TRANSFORMS:
            raise InputError("input_transform", f"one of {INPUT_TRANSFORMS}",
                             repr(self.input_transform))
        if self.upsample not in UPSAMPLES:
            raise InputError("upsample", f"one of {UPSAMPLES}", repr(self.upsample))
        if self.downsample not in DOWNSAMPLES:
            raise InputError("downsample", f"one of {DOWNSAMPLES}", repr(self.downsample))
        if self.N < 16 or self.N & (self.N - 1):
            raise InputError("N", "a power of two >= 16 (32, 64, 128, 256)", str(self.N))
        b = self.bottleneck
        if not (isinstance(b, int) and 4 <= b <= self.N // 2 and not b & (b - 1)):
            raise InputError("bottleneck", f"a power of two from 4 to N/2 = {self.N // 2}",
                             str(b))
        if self.C < 1:
            raise InputError("C", "an integer >= 1", str(self.C))
        if self.base_channels < 1 or self.max_channels < self.base_channels:
            raise InputError("base_channels", "1 <= base_channels <= max_channels",
                             f"{self.base_channels}, {self.max_channels}")

    @property
    def depth(self) -> int:
        """Number of 2× poolings: N / 2**depth = bottleneck."""
        return int(math.log2(self.N // self.bottleneck))

    def to_dict(self) -> dict:
        return asdict(self)


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, max(1, channels // 4)), channels)


def _block(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in ((cin, cout), (cout, cout)):
        layers.append(nn.Conv2d(a, b, 3, padding=1))
        if norm:
            layers.append(_group_norm(b))
        layers.append(nn.LeakyReLU(0.1, inplace=True))
    return nn.Sequential(*layers)


def _downsample(channels: int, kind: str) -> nn.Module:
    if kind == "avg":
        return nn.AvgPool2d(2)
    return nn.Conv2d(channels, channels, 2, stride=2)


def _upsample(channels: int, kind: str) -> nn.Module:
    if kind == "nearest":
        return nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(nn.Conv2d(channels, 4 * channels, 1), nn.PixelShuffle(2))


class GlobalMixing(nn.Module):
    """A residual learned linear map across all cells of the bottleneck, per feature map.

    The far field is a global transform of the object: each object pixel depends on every
    detector pixel, but a shallow encoder's cells each see only part of the pattern
    (:func:`receptive_field`). This layer (token mixing, as in MLP-Mixer) lets every cell
    draw on all of them, for side⁴ weights (65,536 at a 16×16 bottleneck) and a few percent
    of the network's FLOPs. Zero-initialised, so it starts as the identity.
    """

    def __init__(self, side: int, channels: int, norm: bool) -> None:
        super().__init__()
        self.norm = _group_norm(channels) if norm else nn.Identity()
        self.mix = nn.Linear(side * side, side * side)
        nn.init.zeros_(self.mix.weight)
        nn.init.zeros_(self.mix.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, C, H, W = h.shape  # noqa: N806
        return h + self.mix(self.norm(h).reshape(B, C, H * W)).reshape(B, C, H, W)


class PtychoNet(nn.Module):
    """The encoder–decoder; :meth:`forward` returns ``(amplitude, phase)`` (B, C, N, N)."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        widths = [min(config.base_channels * 2**i, config.max_channels)
                  for i in range(config.depth + 1)]
        enc, cin = [], config.C
        for w in widths[:-1]:
            enc += [_block(cin, w, config.norm), _downsample(w, config.downsample)]
            cin = w
        self.encoder = nn.Sequential(*enc)
        self.bottleneck = _block(cin, widths[-1], config.norm)
        dec, cin = [], widths[-1]
        for w in reversed(widths[:-1]):
            dec += [_upsample(cin, config.upsample), _block(cin, w, config.norm)]
            cin = w
        self.decoder = nn.Sequential(*dec)
        self.amplitude_head = nn.Conv2d(cin, config.C, 3, padding=1)
        self.phase_head = nn.Conv2d(cin, config.C, 3, padding=1)
        # start near a unit-amplitude, flat-phase object: the mean amplitude in X units
        # is ~1 by construction of s (docs/conventions.md#intensity-scaling), so training begins at
        # the right scale
        nn.init.zeros_(self.amplitude_head.weight)
        nn.init.constant_(self.amplitude_head.bias, math.log(math.e - 1.0))
        nn.init.zeros_(self.phase_head.bias)
        self.phase_head.weight.data.mul_(0.1)
        # made last, so the other layers start as they would without it (same seed)
        self.mixing = GlobalMixing(config.bottleneck, widths[-1], config.norm) \
            if config.global_mixing else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # a network cast to bf16 (inference) takes its input in its own dtype; else a no-op
        x = x.to(self.amplitude_head.weight.dtype)
        t = self.config.input_transform
        if t == "sqrt":
            x = torch.sqrt(x.clamp_min(0) + 1e-6)
        elif t == "log1p":
            x = torch.log1p(x.clamp_min(0))
        h = self.bottleneck(self.encoder(x))
        if self.mixing is not None:
            h = self.mixing(h)
        h = self.decoder(h)
        amplitude = nn.functional.softplus(self.amplitude_head(h))
        phase = math.pi * torch.tanh(self.phase_head(h))
        return amplitude, phase


def parameter_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def flops_per_pattern(model: PtychoNet) -> int:
    """Forward FLOPs of the network for one pattern (one group divided by C)."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = model.config
    p = next(model.parameters())
    x = torch.zeros((1, cfg.C, cfg.N, cfg.N), dtype=p.dtype, device=p.device)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return int(counter.get_total_flops() // cfg.C)


def activation_bytes(model: PtychoNet) -> int:
    """Bytes of the outputs of every leaf layer in one group's forward pass (fp32).

    What backpropagation keeps per group, at most: the basis of a training-memory estimate.
    """
    cfg = model.config
    p = next(model.parameters())
    total = 0

    def count(_module: nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal total
        for t in output if isinstance(output, tuple | list) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * 4

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model(torch.zeros((1, cfg.C, cfg.N, cfg.N), dtype=p.dtype, device=p.device))
    finally:
        for h in handles:
            h.remove()
    return int(total)
