"""The workbench's preview per setting flip: time for every preview layer to be recomputed.

A flip of one setting (gridsize, scaling, backend, crop, window) recomputes the whole preview
(grouping, patch grids, stitched canvas, statistics). Measured at N = 64 and 4,096 positions
by default, each flip timed best-of-``repeat`` after a warm-up, on the numpy and the torch
backend. The target is 1 s per flip on a 2-core CPU. Layer drawing in napari is not included
(it is measured in the GUI, not here).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from engine.bench.common import environment, peak_rss_mib
from engine.events import Callback, Progress
from engine.preview import PreviewCache, PreviewOptions, preview
from engine.simulation.simulate import SimulationConfig, simulate

TARGET_S = 1.0

# each flip: the settings after it (applied on top of the previous flip's)
FLIPS: list[tuple[str, dict[str, Any]]] = [
    ("gridsize 1", {"gridsize": 1}),
    ("gridsize 2", {"gridsize": 2}),
    ("gridsize 3", {"gridsize": 3}),
    ("gridsize 4", {"gridsize": 4}),
    ("gridsize 2 (back)", {"gridsize": 2}),
    ("scaling fixed", {"scaling": "fixed", "scale_value": 1.0}),
    ("scaling data", {"scaling": "data", "scale_value": None}),
    ("crop N", {"crop": 64}),
    ("window probe", {"window": "probe"}),
    ("window uniform, crop auto", {"window": "uniform", "crop": None}),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--N", type=int, default=64, help="pattern size")
    p.add_argument("--n", type=int, default=4096, help="scan positions")
    p.add_argument("--backends", default="numpy,torch", help="comma-separated backends")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--repeat", type=int, default=3, help="timed repeats (the best is kept)")


def _flip_times(ds, backend: str, device: str, repeat: int, emit: Callback | None,
                done: list[int], total: int) -> list[dict[str, Any]]:
    cache = PreviewCache()
    opts = PreviewOptions()
    preview(ds, opts, backend=backend, device=device, cache=cache)  # warm-up: patches cached
    rows = []
    for label, change in FLIPS:
        opts = opts.replace(**change)
        if opts.crop is not None:
            opts = opts.replace(crop=min(opts.crop, ds.N))
        best, stages = float("inf"), {}
        for _ in range(repeat):
            t0 = time.perf_counter()
            p = preview(ds, opts, backend=backend, device=device, cache=cache)
            dt = time.perf_counter() - t0
            if dt < best:
                best, stages = dt, dict(p.timings)
        rows.append({"flip": label, "backend": backend, "seconds": round(best, 4),
                     "within_target": best <= TARGET_S,
                     "stages": {k: round(v, 4) for k, v in stages.items()},
                     "groups": p.groups.n_groups, "C": p.groups.C,
                     "stats_batches": len(p.stats["batches"])})
        done[0] += 1
        if emit:
            emit(Progress(task="bench gui", done=done[0], total=total,
                          message=f"{backend} {label}: {best:.3f} s"))
    return rows


def run(args: argparse.Namespace, emit: Callback | None = None) -> dict[str, Any]:
    ds = simulate(SimulationConfig(object="lines", probe="disk", scan="raster",
                                   n_positions=args.n, N=args.N, step=args.N / 8,
                                   nphotons=1e6, seed=0))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    done = [0]
    total = len(backends) * len(FLIPS)
    rows = []
    for be in backends:
        rows += _flip_times(ds, be, args.device, args.repeat, emit, done, total)
    summary = {}
    for be in backends:
        t = np.array([r["seconds"] for r in rows if r["backend"] == be])
        summary[be] = {"max_s": float(t.max()), "median_s": float(np.median(t)),
                       "flips_within_target": int((t <= TARGET_S).sum()), "flips": int(t.size)}
    return {"suite": "gui", "environment": environment(args.device),
            "problem": {"N": args.N, "n": args.n, "object": "lines"}, "target_s": TARGET_S,
            "flips": rows, "summary": summary, "peak_rss_mib": round(peak_rss_mib(), 1)}
