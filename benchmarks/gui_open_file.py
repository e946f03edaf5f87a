"""Opening a CXI file in the workbench's napari reader (File › Open): the time to the
layers, the rows it reads, the time to show one pattern from the lazy dask layer and the
resident memory, for files of growing size. Writes benchmarks/results/gui-open-cxi-cpu.json.

Run: ``PYTHONPATH=. python benchmarks/gui_open_file.py [GiB ...]`` (default 0.25 1 4).
Each size runs in a fresh process (``--one PATH``) so the memory figures are its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

N = 128
ROWS_PER_CHUNK = 16


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write(path: Path, gib: float) -> int:
    """A CXI file of ``gib`` GiB of uint32 patterns (the layout of the project's writer,
    grown to n rows written a block at a time, chunked by 16 rows)."""
    import h5py

    from engine import api
    from engine.geometry import Geometry

    n = int(gib * 2**30 / (4 * N * N))
    g = Geometry(wavelength=1.55e-10, distance=2.0, detector_pixel=(75e-6, 75e-6))
    small = api.simulate(api.SimulationConfig(object="asym", n_positions=16, N=N, step=12))
    seed = api.save_dataset(path.with_suffix(".seed.cxi"), small, geometry=g)
    side = int(np.ceil(np.sqrt(n)))
    step = 12 * 1.55e-10 * 2.0 / (N * 75e-6)  # 12 object pixels in metres
    yy, xx = np.divmod(np.arange(n), side)
    with h5py.File(seed) as src, h5py.File(path, "w") as dst:
        for key in src:
            if key != "entry_1":
                src.copy(key, dst)
        e = dst.create_group("entry_1")
        for key in src["entry_1"]:
            if key not in ("instrument_1", "sample_1", "ptycho_workbench"):  # no truth
                src["entry_1"].copy(key, e)
        inst = e.create_group("instrument_1")
        inst.copy(src["entry_1/instrument_1/source_1"], "source_1")
        det = inst.create_group("detector_1")
        for key in src["entry_1/instrument_1/detector_1"]:
            if key != "data":
                src["entry_1/instrument_1/detector_1"].copy(key, det)
        data = det.create_dataset("data", (n, N, N), np.uint32,
                                  chunks=(ROWS_PER_CHUNK, N, N))
        block = np.asarray(small.diffraction, np.float64) ** 2
        block = np.resize(np.round(block).astype(np.uint32), (256, N, N))
        for i in range(0, n, 256):
            data[i:i + 256] = block[: min(256, n - i)]
        t = np.stack([xx * step, yy * step, np.zeros(n)], axis=1)
        e.create_group("sample_1/geometry_1").create_dataset("translation", data=t)
    seed.unlink()
    return n


def one(path: str) -> dict:
    from ptycho_gui import io

    rss0 = rss_mb()
    t0 = time.perf_counter()
    layers = io.read(path)
    t_open = time.perf_counter() - t0
    data, kwargs, _ = layers[0]
    stack = kwargs["metadata"]["dataset"].diffraction
    rows_open = stack.rows_read
    k = len(stack) // 2 + 3
    t0 = time.perf_counter()
    np.asarray(data[k])
    t_show = time.perf_counter() - t0
    import resource

    return {"open_s": t_open, "rows_read_open": rows_open, "show_one_s": t_show,
            "rows_read_show": stack.rows_read - rows_open, "chunk_rows": data.chunks[0][0],
            "rss_before_mb": rss0, "rss_after_mb": rss_mb(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "scale_nm": list(kwargs["scale"][1:])}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(one(argv[1])))
        return 0
    sizes = [float(a) for a in argv] or [0.25, 1.0, 4.0]
    rows = []
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        for gib in sizes:
            path = Path(d) / f"scan-{gib:g}.cxi"
            n = write(path, gib)
            out = subprocess.run([sys.executable, __file__, "--one", str(path)],
                                 capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr[-2000:])
            row = {"gib": gib, "file_mb": path.stat().st_size / 2**20, "n": n, "N": N,
                   **json.loads(out.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(row, flush=True)
            path.unlink()
    result = {"benchmark": "gui open CXI (napari reader, lazy dask layer)",
              "date": str(date(2026, 12, 7)), "machine": "2-core CPU, shared with other jobs",
              "rows": rows}
    out_path = Path(__file__).parent / "results" / "gui-open-cxi-cpu.json"
    out_path.write_text(json.dumps(result, indent=1))
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
