"""Lazy HDF5 reading against the in-memory array, and a streamed ``inspect``: patterns per
second and resident memory. Writes benchmarks/results/io-read-cpu.json.

Run: ``PYTHONPATH=. python benchmarks/io_read.py [n] [N]`` (default 2048 patterns of
128 x 128). The full memory-versus-file-size sweep is ``ptycho bench io``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import h5py
import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    from engine import api
    from engine.io.lazy import H5Stack

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
    N = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    rng = np.random.default_rng(0)
    d = Path(tempfile.mkdtemp())
    path = d / "big.cxi"
    with h5py.File(path, "w") as f:
        f["cxi_version"] = 160
        det = f.create_group("entry_1/instrument_1/detector_1")
        data = det.create_dataset("data", (n, N, N), np.uint32, chunks=(16, N, N))
        for s in range(0, n, 256):
            data[s:s + 256] = rng.poisson(5.0, (min(256, n - s), N, N))
        det["distance"], det["x_pixel_size"], det["y_pixel_size"] = 2.0, 75e-6, 75e-6
        f["entry_1/instrument_1/source_1/energy"] = 1.28e-15
        side = int(np.ceil(np.sqrt(n)))
        yy, xx = np.divmod(np.arange(n), side)
        f["entry_1/sample_1/geometry_1/translation"] = np.stack(
            [xx * 1e-6, yy * 1e-6, np.zeros(n)], 1)
    size_mb = path.stat().st_size / 2**20
    base = rss_mb()
    t = time.perf_counter()
    ds = api.load_dataset(path, lazy=True)
    open_s = time.perf_counter() - t
    after_open = rss_mb()
    stack = ds.diffraction
    order = rng.permutation(n)
    t = time.perf_counter()
    for s in range(0, n, 64):
        stack[np.sort(order[s:s + 64])]
    lazy_random = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for s in range(0, n, 64):
        stack[s:s + 64]
    lazy_seq = n / (time.perf_counter() - t)
    peak_lazy = rss_mb()
    t = time.perf_counter()
    report = api.inspect(path)
    inspect_s = time.perf_counter() - t
    full = H5Stack(path, "entry_1/instrument_1/detector_1/data")[:]
    t = time.perf_counter()
    for s in range(0, n, 64):
        np.ascontiguousarray(full[np.sort(order[s:s + 64])])
    mem_random = n / (time.perf_counter() - t)
    out = {
        "date": str(date.today()), "machine": "2-core CPU, shared with other jobs",
        "load_average": os.getloadavg(), "n": n, "N": N, "file_mb": round(size_mb, 1),
        "chunks": [16, N, N], "dtype": "uint32 counts",
        "open_s (geometry, positions, mean-pattern probe: one streamed pass)": round(open_s, 3),
        "rss_mb": {"before": round(base, 1), "after_open": round(after_open, 1),
                   "after_lazy_reads": round(peak_lazy, 1),
                   "peak_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
        "patterns_per_s": {"lazy_random_batches_64": round(lazy_random),
                           "lazy_sequential_batches_64": round(lazy_seq),
                           "memory_random_batches_64": round(mem_random)},
        "inspect_s": round(inspect_s, 3), "inspect_photons_median": report.photons["median"],
    }
    res = Path(__file__).parent / "results" / "io-read-cpu.json"
    res.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
