"""Network training and inference throughput (patterns/s) and peak memory.

Cases follow the issue: N = 64, gridsize 1 batch 16, gridsize 2 batch 16 and 64 (training),
and inference at a large batch; plus stitching of 4,096 patches. GPU levers are flags so
each can be measured alone: ``--precision bf16-mixed`` (autocast, physics stays fp32),
``--channels-last`` (NHWC convolutions, tensor cores), ``--compile`` (``torch.compile``,
fused kernels) and ``--cuda-graphs`` (``torch.compile(mode="reduce-overhead")``: the step
replayed as one CUDA graph, no per-kernel launch cost). ``--sweep-levers`` runs the
baseline and each lever added one at a time.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np
import torch

from ..backends.torch_backend import TorchBackend, resolve_device
from ..events import Callback, Progress
from ..models import (
    PhysicsModel,
    PtychoNet,
    flops_per_pattern,
    parameter_count,
)
from ..scaling import normalise_probe
from ..stitching import CanvasGeometry, Stitcher
from ..training.config import TrainConfig
from ..training.losses import poisson_nll
from .common import environment, peak_rss_mib

TRAIN_CASES = ((1, 16), (2, 16), (2, 64))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--N", type=int, default=64)
    p.add_argument("--base-channels", type=int, default=32)
    p.add_argument("--steps", type=int, default=20, help="timed training steps per case")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--infer-batch", type=int, default=256, help="groups per inference batch")
    p.add_argument("--infer-batches", type=int, default=4)
    p.add_argument("--stitch-patches", type=int, default=4096)
    p.add_argument("--precision", default="32", choices=("32", "bf16-mixed"))
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--cuda-graphs", action="store_true")
    p.add_argument("--sweep-levers", action="store_true",
                   help="baseline, then each lever alone (GPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--quality", action="store_true",
                   help="also train on simulated lines and evaluate the reconstruction")
    p.add_argument("--quality-n", type=int, default=1024, help="scan positions")
    p.add_argument("--quality-gridsizes", default="1,2")
    p.add_argument("--quality-epochs", type=int, default=10)
    p.add_argument("--quality-batch", default="16,64", help="batch per gridsize")
    p.add_argument("--quality-steps", type=int, default=None,
                   help="optimiser-step budget per case (overrides --quality-epochs)")
    p.add_argument("--quality-lr", type=float, default=None,
                   help="peak learning rate (default: the training default)")


def _inputs(N: int, gridsize: int, batch: int, device: torch.device, seed: int = 0):
    rng = np.random.default_rng(seed)
    C = gridsize**2
    x = torch.as_tensor(rng.gamma(1.0, 1.0, (batch, C, N, N)).astype(np.float32), device=device)
    x = x * (N / 2) / torch.sqrt((x**2).sum(dim=(-2, -1), keepdim=True))  # X units
    g = np.arange(C)
    local = np.stack([g // gridsize, g % gridsize], 1) * 8.0
    local = local - local.mean(axis=0) + rng.uniform(0, 1, (batch, C, 2))
    return x, torch.as_tensor(local, dtype=torch.float64, device=device)


def _network(N: int, C: int, base_channels: int) -> PtychoNet:
    """The network ``ptycho train`` builds by default (timings describe what users train)."""
    from ..training.trainer import network_config

    cfg = TrainConfig(gridsize=math.isqrt(C), base_channels=base_channels)
    return PtychoNet(network_config(N, cfg))


def _model(N: int, C: int, args, device: torch.device) -> PhysicsModel:
    c = np.arange(N) - N / 2
    probe, _ = normalise_probe(np.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / (2 * (N / 6) ** 2))
                               .astype(np.complex64))
    net = _network(N, C, args.base_channels)
    model = PhysicsModel(net, probe, object_big=C > 1).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.compile or args.cuda_graphs:
        model.net.forward = torch.compile(
            model.net.forward, mode="reduce-overhead" if args.cuda_graphs else None)
    return model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, warmup: int, repeats: int, device: torch.device) -> float:
    """Seconds for ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (synchronised)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return time.perf_counter() - t0


def _peak(device: torch.device) -> dict[str, float]:
    if device.type == "cuda":
        return {"peak_gpu_mib": torch.cuda.max_memory_allocated(device) / 2**20}
    return {"peak_rss_mib": peak_rss_mib()}


def _autocast(args, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=args.precision == "bf16-mixed")


def train_rate(args, gridsize: int, batch: int, device: torch.device) -> dict[str, Any]:
    C = gridsize**2
    model = _model(args.N, C, args, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, off = _inputs(args.N, gridsize, batch, device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        with _autocast(args, device):
            _, pred = model(x, off)
        loss = poisson_nll(pred, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    dt = _timed(step, args.warmup, args.steps, device)
    return {"phase": "train", "gridsize": gridsize, "batch_groups": batch, "C": C,
            "patterns_per_s": args.steps * batch * C / dt, "step_ms": 1e3 * dt / args.steps,
            **_peak(device)}


@torch.no_grad()
def infer_rate(args, gridsize: int, device: torch.device) -> dict[str, Any]:
    C = gridsize**2
    model = _model(args.N, C, args, device).eval()
    x, off = _inputs(args.N, gridsize, args.infer_batch, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def run() -> None:
        with _autocast(args, device):
            model.patches(x, off)

    dt = _timed(run, 1, args.infer_batches, device)
    return {"phase": "inference", "gridsize": gridsize, "batch_groups": args.infer_batch,
            "C": C, "patterns_per_s": args.infer_batches * args.infer_batch * C / dt,
            **_peak(device)}


def stitch_time(args, device: torch.device) -> dict[str, Any]:
    n, N = args.stitch_patches, args.N
    rng = np.random.default_rng(2)
    side = int(np.ceil(np.sqrt(n)))
    yy, xx = np.divmod(np.arange(n), side)
    pos = np.stack([yy, xx], 1) * 4.0 + N / 2 + rng.uniform(0, 1, (n, 2))
    be = TorchBackend(str(device))
    patches = be.asarray((rng.standard_normal((n, N, N)) + 1j).astype(np.complex64))
    geo = CanvasGeometry.from_positions(pos, N)

    def run() -> None:
        st = Stitcher(geo, N, be)
        st.add(patches, pos)
        be.synchronize()

    run()
    t0 = time.perf_counter()
    run()
    return {"phase": "stitch", "patches": n, "ms": 1e3 * (time.perf_counter() - t0)}


def _levers(args) -> list[tuple[str, dict[str, Any]]]:
    if not args.sweep_levers:
        return [("as_given", {})]
    base = {"precision": "32", "channels_last": False, "compile": False, "cuda_graphs": False}
    return [("baseline", base), ("bf16", {**base, "precision": "bf16-mixed"}),
            ("channels_last", {**base, "channels_last": True}),
            ("compile", {**base, "compile": True}),
            ("cuda_graphs", {**base, "cuda_graphs": True})]


def _label(r: dict[str, Any]) -> str:
    if r["phase"] == "stitch":
        return f"stitch {r['patches']} patches (ms)"
    return f"{r['phase']} g{r['gridsize']} b{r['batch_groups']} {r['lever']} (patterns/s)"


def run(args: argparse.Namespace, emit: Callback) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    levers = [] if args.skip_throughput else _levers(args)
    total = len(levers) * (len(TRAIN_CASES) + 2) + 1
    done = 0
    results = []
    for name, overrides in levers:
        a = argparse.Namespace(**{**vars(args), **overrides})
        for g, b in TRAIN_CASES:
            results.append({"lever": name, **train_rate(a, g, b, device)})
            done += 1
            emit(Progress(task="bench pinn", done=done, total=total))
        for g in (1, 2):
            results.append({"lever": name, **infer_rate(a, g, device)})
            done += 1
            emit(Progress(task="bench pinn", done=done, total=total))
    results.append(stitch_time(args, device))
    emit(Progress(task="bench pinn", done=total, total=total))
    net = _network(args.N, 1, args.base_channels)
    out: dict[str, Any] = {
        "suite": "pinn", "environment": environment(str(device)),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "suite_module")},
        "model": {"N": args.N, "base_channels": args.base_channels,
                  "parameters_gridsize1": parameter_count(net),
                  "flops_per_pattern_gridsize1": flops_per_pattern(net)},
        "results": results,
        "summary": {_label(r): round(r.get("patterns_per_s", r.get("ms", 0.0)), 1)
                    for r in results},
    }
    if args.quality:
        from .pinn_quality import quality_run

        grids = [int(g) for g in args.quality_gridsizes.split(",")]
        batches = [int(b) for b in args.quality_batch.split(",")]
        out["quality"] = [quality_run(args.N, args.quality_n, g, args.quality_epochs,
                                      batches[min(i, len(batches) - 1)], args.base_channels,
                                      args.quality_lr, str(device), emit,
                                      steps=args.quality_steps)
                          for i, g in enumerate(grids)]
        out["summary"].update({
            f"quality g{q['config']['gridsize']} {k}": round(v, 4)
            for q in out["quality"] for k, v in q["whole"].items()})
    return out
