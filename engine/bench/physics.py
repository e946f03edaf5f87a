"""Forward model and stitching throughput on each backend, against a bare batched FFT.

Measured at N = 64 and n = 4096 positions by default: extract + illuminate + propagate +
amplitude (patterns/s), the same batch through a bare FFT only (the ceiling), stitching
(patches/s, the time for 10,000 patches), peak memory and the torch/numpy parity error.
"""

from __future__ import annotations

import argparse
import gc
import math
import time
import tracemalloc
from typing import Any

import numpy as np

from engine.backends import get_backend
from engine.bench.common import environment, peak_rss_mib, timeit
from engine.events import Callback, Progress
from engine.physics.stitching import CanvasGeometry, StitchConfig, Stitcher


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    p.add_argument("--N", type=int, default=64, help="pattern size")
    p.add_argument("--n", type=int, default=4096, help="scan positions")
    p.add_argument("--stitch-patches", type=int, default=10_000,
                   help="patches of the stitching measurement")
    p.add_argument("--batch-size", type=int, default=4096, help="forward-model batch")
    p.add_argument("--repeat", type=int, default=3, help="timed repeats (the best is kept)")
    p.add_argument("--skip-numpy", action="store_true", help="measure the torch backend only")


def _problem(N: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    side = math.ceil(math.sqrt(n))
    step = 6.0
    H = int(side * step + N + 8)
    yy, xx = np.divmod(np.arange(n), side)
    pos = np.stack([yy, xx], 1) * step + N / 2 + 2 + rng.uniform(0, 1, (n, 2))
    obj = np.exp(1j * rng.uniform(-1, 1, (H, H))) * rng.uniform(0.5, 1, (H, H))
    c = np.arange(N) - N / 2
    probe = np.exp(-(c[:, None] ** 2 + c[None, :] ** 2) / (2 * (N / 8) ** 2)) + 0j
    return obj.astype(np.complex64), probe.astype(np.complex64), pos


def _forward_rates(name: str, device: str, obj, probe, pos, batch: int, repeat: int) -> dict:
    be = get_backend(name, device) if name == "torch" else get_backend(name, precision="single")
    o, p = be.asarray(obj, complex=True), be.asarray(probe, complex=True)
    n, N = pos.shape[0], probe.shape[0]
    chunks = [pos[i:i + batch] for i in range(0, n, batch)]
    psi = be.extract(o, chunks[0] - N / 2, N) * p  # a realistic exit-wave batch for the FFT

    def forward() -> None:
        for c in chunks:
            be.forward(o, p, c)

    def bare_fft(size: int) -> None:
        fft2 = np.fft.fft2
        if name == "torch":
            import torch

            fft2 = torch.fft.fft2
        for c in chunks:
            for i in range(0, len(c), size):
                fft2(psi[: min(size, len(c) - i)], norm="ortho")

    t_fwd = timeit(forward, be.synchronize, repeat=repeat)
    t_fft = timeit(lambda: bare_fft(batch), be.synchronize, repeat=repeat)
    # the FFT alone in cache-sized pieces too: the fairest ceiling on a CPU
    chunk = getattr(be, "forward_chunk", None) or batch
    t_fft_chunked = timeit(lambda: bare_fft(chunk), be.synchronize, repeat=repeat)
    return {"backend": name, "device": be.device, "batch": batch,
            "forward_patterns_per_s": n / t_fwd, "bare_fft_patterns_per_s": n / t_fft,
            "forward_over_fft": t_fft / t_fwd, "fft_chunk": chunk,
            "bare_fft_chunked_patterns_per_s": n / t_fft_chunked,
            "forward_over_chunked_fft": t_fft_chunked / t_fwd}


def _stitch_rate(name: str, device: str, n_patches: int, N: int, repeat: int) -> dict:
    rng = np.random.default_rng(1)
    side = math.ceil(math.sqrt(n_patches))
    yy, xx = np.divmod(np.arange(n_patches), side)
    pos = np.stack([yy, xx], 1) * 4.0 + N / 2 + rng.uniform(0, 1, (n_patches, 2))
    patches = (rng.standard_normal((n_patches, N, N)) + 1j).astype(np.complex64)
    be = get_backend(name, device) if name == "torch" else get_backend(name, precision="single")
    geom = CanvasGeometry.from_positions(pos, N)
    batch = 1024
    dev_patches = be.asarray(patches, complex=True)

    def run() -> None:
        st = Stitcher(geom, N, be, StitchConfig(crop=N // 2))
        for i in range(0, n_patches, batch):
            st.add(dev_patches[i:i + batch], pos[i:i + batch])
        be.synchronize()
        st.result()

    gc.collect()
    tracemalloc.start()
    t = timeit(run, be.synchronize, repeat=repeat)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    canvas_mib = geom.shape[0] * geom.shape[1] * 8 * 2 / 2**20
    out = {"backend": name, "device": be.device, "patches": n_patches, "crop": N // 2,
           "seconds": t, "patches_per_s": n_patches / t, "canvas_shape": list(geom.shape),
           "canvas_mib": canvas_mib, "input_patches_mib": patches.nbytes / 2**20,
           "host_peak_alloc_mib_during_stitch": peak / 2**20}
    if be.device.startswith("cuda"):
        import torch

        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run(args: argparse.Namespace, emit: Callback | None = None) -> dict[str, Any]:
    get_backend("torch", args.device)  # an unavailable device is refused before any stage
    obj, probe, pos = _problem(args.N, args.n)
    results: dict[str, Any] = {"suite": "physics", "env": environment(args.device),
                               "params": {"N": args.N, "n": args.n,
                                          "stitch_patches": args.stitch_patches}}
    backends = ([] if args.skip_numpy else [("numpy", "cpu")]) + [("torch", args.device)]
    steps = 2 * len(backends) + 1
    done = 0

    def tick(msg: str) -> None:
        nonlocal done
        done += 1
        if emit:
            emit(Progress(task="bench", done=done, total=steps, message=msg))

    results["forward"] = []
    results["stitch"] = []
    for name, dev in backends:
        results["forward"].append(_forward_rates(name, dev, obj, probe, pos, args.batch_size,
                                                 args.repeat))
        tick(f"forward {name}")
        results["stitch"].append(_stitch_rate(name, dev, args.stitch_patches, args.N,
                                              max(1, args.repeat - 1)))
        tick(f"stitch {name}")
    ref = get_backend("numpy").forward(obj.astype(np.complex128), probe.astype(np.complex128),
                                       pos[:512])
    tb = get_backend("torch", args.device)
    got = tb.to_numpy(tb.forward(tb.asarray(obj), tb.asarray(probe), pos[:512]))
    results["parity_max_rel_error_torch_vs_numpy64"] = float(np.abs(got - ref).max()
                                                             / np.abs(ref).max())
    tick("parity")
    results["peak_rss_mib"] = peak_rss_mib()
    torch_fwd = results["forward"][-1]
    torch_st = results["stitch"][-1]
    results["summary"] = {
        "device": torch_fwd["device"],
        "torch_forward_patterns_per_s": round(torch_fwd["forward_patterns_per_s"]),
        "torch_bare_fft_patterns_per_s": round(torch_fwd["bare_fft_patterns_per_s"]),
        "torch_forward_over_fft": round(torch_fwd["forward_over_fft"], 3),
        "torch_bare_fft_chunked_patterns_per_s": round(
            torch_fwd["bare_fft_chunked_patterns_per_s"]),
        "torch_forward_over_chunked_fft": round(torch_fwd["forward_over_chunked_fft"], 3),
        "torch_stitch_seconds_for_patches": round(torch_st["seconds"], 3),
        "stitch_patches": args.stitch_patches,
        "parity": results["parity_max_rel_error_torch_vs_numpy64"],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return results
