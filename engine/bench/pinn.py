"""Network training and inference throughput (patterns/s) and peak memory.

Cases follow the issue: N = 64, gridsize 1 batch 16, gridsize 2 batch 16 and 64 (training),
and inference at a large batch; plus stitching of 4,096 patches. GPU levers are flags so
each can be measured alone: ``--precision bf16-mixed`` (autocast, physics stays fp32),
``--channels-last`` (NHWC convolutions, tensor cores), ``--cuda-graphs`` (the whole step,
forward, backward and the fused Adam update, captured once and replayed as one CUDA graph:
no per-kernel launch cost, no Python in the loop) and ``--compile`` (``torch.compile``,
fused kernels). ``--precision bf16`` casts the network itself to bfloat16, as
``ptycho infer --precision bf16`` does (inference only). ``--sweep-levers`` runs the
baseline, each of the first three alone and all three together, then the bf16 network for
inference alone, with CUDA graphs, and with channels-last too (``--compile`` adds the
compiled baseline and all-plus-compile: compiling each case's shapes takes minutes, so it is
not in the sweep by default).

Every step is free of host synchronisation (the group canvas is measured on the host with
:func:`~engine.network.physics.group_extent`), which is what makes the graph capture possible. A
case that fails records its error and the suite goes on; the JSON is rewritten after every
case, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np
import torch

from engine.atomic import write_json
from engine.backends.torch_backend import TorchBackend, resolve_device
from engine.bench.common import environment, peak_rss_mib
from engine.errors import InputError
from engine.events import Callback, Progress
from engine.network.config import GLOBAL_MIXING, TrainConfig
from engine.network.graphs import capture
from engine.network.model import PtychoNet, flops_per_pattern, parameter_count
from engine.network.physics import PhysicsModel, group_extent
from engine.network.step import train_step
from engine.physics.scaling import normalise_probe
from engine.physics.stitching import CanvasGeometry, Stitcher


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--N", type=int, default=64, help="pattern size")
    p.add_argument("--base-channels", type=int, default=32, help="network width")
    p.add_argument("--bottleneck", type=int, default=None,
                   help="side of the network's coarsest level (default: the training default)")
    p.add_argument("--global-mixing", choices=tuple(GLOBAL_MIXING), default="auto",
                   help="the bottleneck's global mixing layer (default: the training default)")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per case")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    p.add_argument("--infer-batch", type=int, default=256, help="groups per inference batch")
    p.add_argument("--infer-batches", type=int, default=4, help="timed inference batches")
    p.add_argument("--stitch-patches", type=int, default=4096,
                   help="patches of the stitching measurement")
    p.add_argument("--precision", default="32", choices=("32", "bf16-mixed", "bf16"),
                   help="bf16-mixed: autocast (training and inference); bf16: the network "
                        "cast to bfloat16, as `ptycho infer --precision bf16` (inference "
                        "only)")
    p.add_argument("--channels-last", action="store_true", help="GPU lever: NHWC convolutions")
    p.add_argument("--compile", action="store_true", help="GPU lever: torch.compile")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="GPU lever: each step replayed as one CUDA graph")
    p.add_argument("--sweep-levers", action="store_true",
                   help="baseline, each lever alone, then all together (GPU)")
    p.add_argument("--cases", default="g1b16,g2b16,g2b64",
                   help="training cases, comma-separated g<gridsize>b<batch>")
    p.add_argument("--profile", default=None, metavar="CASE",
                   help="also profile one training case (e.g. g2b64) with the levers as "
                        "given: the operators that take the step's time")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--skip-throughput", action="store_true",
                   help="skip the throughput cases (with --quality: quality only)")
    p.add_argument("--quality", action="store_true",
                   help="also train on simulated lines and evaluate the reconstruction")
    p.add_argument("--quality-n", type=int, default=1024, help="scan positions")
    p.add_argument("--quality-gridsizes", default="1,2", help="comma-separated gridsizes")
    p.add_argument("--quality-epochs", type=int, default=10, help="training epochs per case")
    p.add_argument("--quality-batch", default="16,64", help="batch per gridsize")
    p.add_argument("--quality-steps", type=int, default=None,
                   help="optimiser-step budget per case (overrides --quality-epochs)")
    p.add_argument("--quality-seconds", type=float, default=None,
                   help="training time budget per case (ptycho train --time-limit); "
                        "--precision, --channels-last and --cuda-graphs apply to the "
                        "quality runs too")
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


def _network(N: int, C: int, args) -> PtychoNet:
    """The network ``ptycho train`` builds (its defaults unless ``--base-channels`` or
    ``--bottleneck`` say otherwise): the timings describe what users train."""
    from engine.network.trainer import network_config

    mixing = GLOBAL_MIXING[getattr(args, "global_mixing", "auto")]
    cfg = TrainConfig(gridsize=math.isqrt(C), base_channels=args.base_channels,
                      bottleneck=getattr(args, "bottleneck", None), global_mixing=mixing)
    return PtychoNet(network_config(N, cfg))


def _model(N: int, C: int, args, device: torch.device) -> PhysicsModel:
    c = np.arange(N) - N / 2
    probe, _ = normalise_probe(np.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / (2 * (N / 6) ** 2))
                               .astype(np.complex64))
    net = _network(N, C, args)
    if args.precision == "bf16":  # inference's all-bf16 network (InferConfig.precision)
        net = net.to(torch.bfloat16)
    model = PhysicsModel(net, probe, object_big=C > 1).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.compile:
        model.net.forward = torch.compile(model.net.forward)
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
    # a captured graph replays the casts it recorded: autocast's weight cache must be off
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=args.precision == "bf16-mixed",
                          cache_enabled=not args.cuda_graphs)


def _case(args, gridsize: int, batch: int, device: torch.device):
    C = gridsize**2
    model = _model(args.N, C, args, device)
    x, off = _inputs(args.N, gridsize, batch, device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    extent = group_extent(off.cpu().numpy(), args.N) if C > 1 else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return model, x, off, extent


def _train_step(args, gridsize: int, batch: int, device: torch.device):
    """The trainer's step on fixed inputs (captured when ``args.cuda_graphs``)."""
    model, x, off, extent = _case(args, gridsize, batch, device)
    graphs = bool(args.cuda_graphs)
    # the trainer's optimiser: fused Adam on CUDA (capturable for graph replay)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4,
                           fused=True if device.type == "cuda" else None, capturable=graphs)

    def step() -> None:
        # in place under a graph: replays write into the gradients it was captured with
        train_step(model, opt, "poisson", x, off, extent, zero_in_place=graphs,
                   autocast=_autocast(args, device))

    return capture(step, device) if graphs else step


def train_rate(args, gridsize: int, batch: int, device: torch.device) -> dict[str, Any]:
    step = _train_step(args, gridsize, batch, device)
    dt = _timed(step, args.warmup, args.steps, device)
    C = gridsize**2
    return {"phase": "train", "gridsize": gridsize, "batch_groups": batch, "C": C,
            "patterns_per_s": args.steps * batch * C / dt, "step_ms": 1e3 * dt / args.steps,
            **_peak(device)}


def profile_step(args, gridsize: int, batch: int, device: torch.device,
                 steps: int = 10, top: int = 25) -> dict[str, Any]:
    """Where a training step's time goes: the ``top`` operators by self device time (self
    CPU time on a CPU) over ``steps`` steps, from ``torch.profiler``."""
    from torch.profiler import ProfilerActivity, profile

    step = _train_step(args, gridsize, batch, device)
    for _ in range(args.warmup):
        step()
    _sync(device)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        _sync(device)

    def own(e) -> float:  # µs; the attribute was renamed from self_cuda_time_total
        if not cuda:
            return e.self_cpu_time_total
        return getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0))

    events = sorted(prof.key_averages(), key=own, reverse=True)
    total = sum(own(e) for e in events) or 1.0
    rows = [{"op": e.key, "calls_per_step": e.count / steps, "ms_per_step": own(e) / 1e3 / steps,
             "share": own(e) / total} for e in events[:top] if own(e) > 0]
    return {"case": f"g{gridsize}b{batch}", "clock": "device" if cuda else "cpu",
            "total_ms_per_step": total / 1e3 / steps, "top": rows}


@torch.no_grad()
def infer_rate(args, gridsize: int, device: torch.device) -> dict[str, Any]:
    model, x, off, extent = _case(args, gridsize, args.infer_batch, device)
    model.eval()

    def forward() -> None:
        with _autocast(args, device):
            model.patches(x, off, extent)

    if args.cuda_graphs:
        forward = capture(forward, device)
    dt = _timed(forward, 1, args.infer_batches, device)
    C = gridsize**2
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


def _levers(args, device: torch.device) -> list[tuple[str, dict[str, Any]]]:
    if not args.sweep_levers:
        return [("as_given", {})]
    base = {"precision": "32", "channels_last": False, "compile": False, "cuda_graphs": False}
    every = {"precision": "bf16-mixed", "channels_last": True, "cuda_graphs": True}
    levers = [("baseline", base), ("bf16", {**base, "precision": "bf16-mixed"}),
              ("channels_last", {**base, "channels_last": True}),
              ("cuda_graphs", {**base, "cuda_graphs": True}),
              # the profile of the 16×16 network puts a fifth of the step in cuDNN's NCHW↔NHWC
              # transposes: channels-last inside the captured step is the pair to measure
              ("channels_last_graphs", {**base, "channels_last": True, "cuda_graphs": True}),
              ("all", {**base, **every})]
    # the network cast to bf16 (inference only): no casts inside the pass, and GroupNorm and
    # the activations read and write half the bytes, unlike autocast's fp32 GroupNorm
    levers += [("bf16_weights", {**base, "precision": "bf16"}),
               ("bf16_weights_graphs", {**base, "precision": "bf16", "cuda_graphs": True}),
               ("bf16_weights_all", {**base, "precision": "bf16", "channels_last": True,
                                     "cuda_graphs": True})]
    if args.compile:
        levers += [("compile", {**base, "compile": True}),
                   ("all_compile", {**base, **every, "cuda_graphs": False, "compile": True})]
    if device.type != "cuda":
        levers = [(n, o) for n, o in levers if not o["cuda_graphs"]]
    return levers


def _cases(text: str, option: str = "--cases") -> list[tuple[int, int]]:
    try:
        cases = [tuple(int(v) for v in c.strip().removeprefix("g").split("b"))
                 for c in text.split(",")]
        if any(len(c) != 2 or min(c) < 1 for c in cases):
            raise ValueError
    except ValueError:
        raise InputError(option, "g<gridsize>b<batch>[,...] (e.g. g1b16,g2b64)",
                         repr(text)) from None
    return cases  # type: ignore[return-value]


def _attempt(fn, *a) -> dict[str, Any]:
    """One case; a failure (out of memory, a capture the driver refuses) is recorded."""
    try:
        return fn(*a)
    except Exception as exc:  # noqa: BLE001 - the suite reports it and goes on
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500]}
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _label(r: dict[str, Any]) -> str:
    if r["phase"] == "stitch":
        return f"stitch {r['patches']} patches (ms)"
    return f"{r['phase']} g{r['gridsize']} b{r['batch_groups']} {r['lever']} (patterns/s)"


def _value(r: dict[str, Any]) -> float | str:
    if "error" in r:
        return r["error"]
    return round(r.get("patterns_per_s", r.get("ms", 0.0)), 1)


def run(args: argparse.Namespace, emit: Callback) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.cuda_graphs and device.type != "cuda":
        raise InputError("--cuda-graphs", "a CUDA device (--device cuda)", str(device))
    if device.type == "cuda":
        # fixed shapes: let cuDNN time its algorithms once per case (as the trainer does)
        torch.backends.cudnn.benchmark = True
    cases = _cases(args.cases)
    profiled = _cases(args.profile, "--profile") if args.profile else []
    if len(profiled) > 1:
        raise InputError("--profile", "one case (e.g. g2b64)", repr(args.profile))
    levers = [] if args.skip_throughput else _levers(args, device)
    if args.quality and args.precision == "bf16":
        raise InputError("--precision", "32 or bf16-mixed with --quality (bf16 casts the "
                         "network for inference only)", "bf16")
    # each lever's options, and the training cases it times (a bf16 network: inference only)
    plans = [(name, a, cases if a.precision != "bf16" else [])
             for name, a in ((n, argparse.Namespace(**{**vars(args), **o})) for n, o in levers)]
    total = sum(len(trained) + 2 for _, _, trained in plans) + (not args.skip_throughput)
    sizes = {1, 4} | {g * g for g, _ in cases + profiled}
    nets = {C: _network(args.N, C, args) for C in sizes}
    flops = {C: flops_per_pattern(net) for C, net in nets.items()}
    out: dict[str, Any] = {
        "suite": "pinn", "environment": environment(str(device)),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "suite_module")},
        "model": {"N": args.N, "base_channels": args.base_channels,
                  "bottleneck": nets[1].config.bottleneck,
                  "global_mixing": nets[1].config.global_mixing,
                  "parameters_gridsize1": parameter_count(nets[1]),
                  "flops_per_pattern_gridsize1": flops[1],
                  "flops_per_pattern_gridsize2": flops[4]},
        "results": [], "summary": {},
    }

    def record(r: dict[str, Any]) -> None:
        if "patterns_per_s" in r:  # the arithmetic rate: how far from the FLOP bound
            passes = 3 if r["phase"] == "train" else 1  # forward + two backward products
            r["tflop_per_s"] = passes * flops[r["C"]] * r["patterns_per_s"] / 1e12
        out["results"].append(r)
        out["summary"][_label(r)] = _value(r)
        emit(Progress(task="bench pinn", done=len(out["results"]), total=total))
        write_json(args.out, out)  # an interrupted run keeps every case so far

    for name, a, trained in plans:
        for g, b in trained:
            record({"lever": name, "phase": "train", "gridsize": g, "batch_groups": b,
                    **_attempt(train_rate, a, g, b, device)})
        for g in (1, 2):
            record({"lever": name, "phase": "inference", "gridsize": g,
                    "batch_groups": args.infer_batch, **_attempt(infer_rate, a, g, device)})
    if not args.skip_throughput:
        record({"phase": "stitch", "patches": args.stitch_patches,
                **_attempt(stitch_time, args, device)})
    for g, b in profiled:
        out["profile"] = _attempt(profile_step, args, g, b, device)
        write_json(args.out, out)
    if args.quality:
        from engine.bench.pinn_quality import quality_run

        grids = [int(g) for g in args.quality_gridsizes.split(",")]
        batches = [int(b) for b in args.quality_batch.split(",")]
        out["quality"] = []
        for i, g in enumerate(grids):
            q = quality_run(args.N, args.quality_n, g, args.quality_epochs,
                            batches[min(i, len(batches) - 1)], args.base_channels,
                            args.quality_lr, str(device), emit, steps=args.quality_steps,
                            seconds=args.quality_seconds, precision=args.precision,
                            channels_last=args.channels_last, cuda_graphs=args.cuda_graphs,
                            bottleneck=args.bottleneck,
                            global_mixing=GLOBAL_MIXING[args.global_mixing])
            out["quality"].append(q)
            for where in ("whole", "held_out"):
                prefix = f"quality g{g}" + (" held-out" if where == "held_out" else "")
                out["summary"].update({f"{prefix} {k}": round(v, 4)
                                       for k, v in (q[where] or {}).items()})
            write_json(args.out, out)
    return out
