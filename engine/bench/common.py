"""Timing and environment helpers shared by the benchmark suites."""

from __future__ import annotations

import os
import platform
import resource
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np


def environment(device: str = "cpu") -> dict[str, Any]:
    """Host, date, versions and (for CUDA) the card name: what a recorded figure needs."""
    import torch

    env: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        # other work on the machine skews CPU timings: record how busy it was
        "loadavg_1min": os.getloadavg()[0],
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["card"] = torch.cuda.get_device_name(torch.device(device))
    return env


def timeit(fn: Callable[[], Any], sync: Callable[[], None] = lambda: None, repeat: int = 5,
           warmup: int = 1, min_time: float = 0.0) -> float:
    """Best-of-``repeat`` wall time of ``fn()`` in seconds, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
