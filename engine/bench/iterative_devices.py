"""Scaling of the iterative solvers over ranks: ``ptycho bench iterative --devices 1,2``.

Each device count runs the same problem and options side by side in one invocation (the
counts interleaved over ``--repeat``, so outside load hits them alike): one rank is the
single-process solver, N > 1 ranks are spawned processes (gloo on the CPU, one torch thread
each; NCCL on GPUs). Reported per count: the median seconds per epoch (the first epoch
apart), patterns/s, the speed-up over one rank and the result's phase RMS error. The batch
schedule of N ranks is the union of the tiles' shares (docs/iterative.md#several-devices),
so the error of each count is that of its own (equally good) batch partition.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.events import Callback, Progress


def counts(text: str) -> list[int]:
    """``"1,2"`` → ``[1, 2]`` (each at least 1)."""
    try:
        out = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise InputError("--devices", "comma-separated rank counts >= 1, e.g. 1,2", text)
    return out


def run(args: argparse.Namespace, emit: Callback, device: str) -> dict[str, Any]:
    """The scaling record of ``args.devices`` (the problem of ``args``: --n, --N, ...)."""
    import torch

    from engine.bench.iterative import _phase_errors, _problem
    from engine.iterative import options_for, reconstruct
    from engine.iterative.distributed import launch

    ranks = counts(args.devices)
    method = args.devices_method
    backend = args.devices_backend
    ds = _problem(args)
    batch = args.batch_lsqml if method == "lsqml" else args.batch_pie
    options = options_for(method, iterations=args.epochs, batch_size=batch)
    threads = args.torch_threads or 1
    seconds: dict[int, list[list[float]]] = {k: [] for k in ranks}
    errors: dict[int, dict[str, float]] = {}
    done, total = 0, len(ranks) * args.repeat
    for _ in range(args.repeat):
        for k in ranks:
            emit(Progress(task="bench iterative --devices", done=done, total=total,
                          message=f"{k} rank(s)"))
            done += 1
            if k == 1:
                before = torch.get_num_threads()
                torch.set_num_threads(threads)
                try:
                    result = reconstruct(ds, options, backend=backend, device=device,
                                         snapshot_every=0)
                finally:
                    torch.set_num_threads(before)
            else:
                result = launch(ds, options, k, backend=backend, device=device,
                                threads=threads, snapshot_every=0)
            seconds[k].append([r["seconds"] for r in result.history])
            errors[k] = {**_phase_errors(result.canvas, ds.object),
                         "final_error": result.errors[-1]}
    rows = []
    for k in ranks:
        steady = [t for run in seconds[k] for t in (run[1:] if len(run) > 1 else run)]
        rows.append({"devices": k, "epoch_seconds_median": float(np.median(steady)),
                     "patterns_per_s": ds.n / float(np.median(steady)),
                     "epoch_seconds": seconds[k], **errors[k]})
    base = next((r for r in rows if r["devices"] == 1), rows[0])
    for r in rows:
        r["speedup_over_one"] = base["epoch_seconds_median"] / r["epoch_seconds_median"]
    return {"method": method, "backend": backend, "device": device,
            "threads_per_rank": threads, "batch_size": batch, "epochs": args.epochs,
            "n": ds.n, "N": ds.N, "repeat": args.repeat,
            "load_average": list(os.getloadavg()), "cpu_count": os.cpu_count(),
            "rows": rows}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--devices", default=None,
                   help="rank counts to compare side by side, e.g. 1,2 (CPU processes, "
                        "--torch-threads each, default 1; GPUs with --device cuda)")
    p.add_argument("--devices-method", choices=("epie", "rpie", "lsqml"), default="lsqml",
                   help="solver of the --devices comparison")
    p.add_argument("--devices-backend", default="torch",
                   help="backend of the --devices comparison (numpy or torch)")
