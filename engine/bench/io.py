"""Data larger than memory: peak memory and patterns/s of a reconstruction read from a file.

A simulated scan (``--base`` patterns at fixed positions) is written to a raw ``.npy`` stack
``r`` times over for each ``r`` of ``--repeats`` (the same positions revisited: the object,
and so what the method must hold, stays the same size while the file grows). Each case runs
in a fresh process: the stack read lazily (:class:`NpyStack`, ``pread`` of the rows each
batch asks for: no memory map, so the file's pages never count as the process's memory) or,
up to ``--in-memory-max``, loaded whole first. Reported per case: the file size, the peak
resident memory of the process, and the patterns per second of the epochs. Lazy memory must
stay flat as the file grows, and its throughput stay near the in-memory one.

The CXI files of issue 23 item 7 use the same lazy path once their reader hands a lazy
stack to ``api.reconstruct``; this suite measures the consumers with the simplest stack.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.common import environment, peak_rss_mib
from engine.events import Callback, Progress


class NpyStack:
    """A (n, N, N) float32 ``.npy`` file read a batch of rows at a time with ``os.pread``.

    Implements :class:`engine.data.DiffractionStack`: ``stack[index]`` (an int, a slice or
    an integer array) reads only those rows, each contiguous run of sorted rows in one call.
    """

    def __init__(self, path: str | os.PathLike[str], rows: np.ndarray | None = None) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(fh)
            self._offset = fh.tell()
        if fortran or dtype != np.float32 or len(shape) != 3:
            raise ValueError(f"{path}: a C-ordered (n, N, N) float32 .npy stack")
        self._all = shape[0]
        self._row = shape[1] * shape[2]
        self._frame = tuple(shape[1:])
        self._rows = np.arange(self._all) if rows is None else np.asarray(rows, np.int64)
        self.shape = (int(self._rows.size), *self._frame)
        self.dtype = np.dtype(np.float32)
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, int | np.integer):
            return self._read(self._rows[[int(index)]])[0]
        return self._read(self._rows[index])

    def subset(self, index: np.ndarray) -> NpyStack:
        return NpyStack(self.path, self._rows[np.asarray(index)])

    def _read(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64).reshape(-1)
        order = np.argsort(rows, kind="stable")
        out = np.empty((rows.size, self._row), np.float32)
        sorted_rows = rows[order]
        start = 0
        nbytes = self._row * 4
        while start < sorted_rows.size:  # one pread per run of consecutive rows
            stop = start + 1
            while stop < sorted_rows.size and sorted_rows[stop] == sorted_rows[stop - 1] + 1:
                stop += 1
            first, count = int(sorted_rows[start]), stop - start
            data = os.pread(self._fd, nbytes * count, self._offset + nbytes * first)
            out[order[start:stop]] = np.frombuffer(data, np.float32).reshape(count, -1)
            start = stop
        return out.reshape((rows.size, *self._frame))


def write_stack(path: Path, base: np.ndarray, repeats: int) -> int:
    """``base`` (n, N, N) written ``repeats`` times as one float32 ``.npy``; bytes written.
    Memory: one copy of ``base``."""
    base = np.ascontiguousarray(base, dtype=np.float32)
    shape = (base.shape[0] * repeats, *base.shape[1:])
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
        for _ in range(repeats):
            fh.write(base.tobytes())
    return path.stat().st_size


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--N", type=int, default=64, help="pattern size")
    p.add_argument("--base", type=int, default=512, help="patterns simulated (one scan)")
    p.add_argument("--repeats", default="1,4,16,64",
                   help="comma-separated: times the scan is written into each file")
    p.add_argument("--in-memory-max", type=int, default=16,
                   help="largest repeat also run with the stack loaded whole")
    p.add_argument("--method", choices=("lsqml", "epie", "rpie"), default="lsqml",
                   help="solver")
    p.add_argument("--epochs", type=int, default=1, help="epochs per case")
    p.add_argument("--batch-size", type=int, default=256, help="positions per update")
    p.add_argument("--dir", default=None, help="where the files go (default: a temporary "
                   "directory, removed afterwards)")


def _case(stack: str, scan: str, mode: str, method: str, epochs: int, batch: int) -> dict:
    """One reconstruction in this process (run by a child process; see :func:`run`)."""
    from engine.data import Dataset
    from engine.iterative import options_for, reconstruct

    with np.load(scan) as z:
        pos, probe = z["positions"], z["probe"]
    diffraction = NpyStack(stack)
    if mode == "memory":
        diffraction = np.load(stack)
    repeats = len(diffraction) // pos.shape[0]
    pos = np.tile(pos, (repeats, 1))
    ds = Dataset(diffraction=diffraction, xcoords=pos[:, 1].copy(), ycoords=pos[:, 0].copy(),
                 probe=probe)
    t0 = time.perf_counter()
    result = reconstruct(ds, options_for(method, iterations=epochs, batch_size=batch,
                                         update_probe=False), snapshot_every=0)
    wall = time.perf_counter() - t0
    rates = [h["patterns_per_s"] for h in result.history]
    return {"mode": mode, "patterns": len(diffraction), "wall_s": wall,
            "patterns_per_s": float(np.median(rates)), "peak_rss_mib": peak_rss_mib(),
            "final_error": float(result.errors[-1])}


def run(args: argparse.Namespace, emit: Callback) -> dict[str, Any]:
    from engine.simulation.simulate import SimulationConfig, simulate

    repeats = [int(r) for r in str(args.repeats).split(",") if r.strip()]
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="ptycho-bench-io-"))
    work.mkdir(parents=True, exist_ok=True)
    ds = simulate(SimulationConfig(object="grf", probe="disk", scan="raster",
                                   n_positions=args.base, N=args.N, step=args.N / 8,
                                   nphotons=1e6, seed=0))
    scan = work / "scan.npz"
    np.savez(scan, positions=ds.positions, probe=ds.probe)
    cases = []
    try:
        for i, r in enumerate(repeats):
            path = work / f"stack_x{r}.npy"
            size = write_stack(path, ds.diffraction, r)
            modes = ["lazy"] + (["memory"] if r <= args.in_memory_max else [])
            for mode in modes:
                answer = work / f"case_{mode}_x{r}.json"
                argv = [sys.executable, "-m", "engine.bench.io", str(answer), json.dumps(
                    [str(path), str(scan), mode, args.method, args.epochs, args.batch_size])]
                done = subprocess.run(argv, capture_output=True, text=True, check=False,
                                      env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                          [str(Path(__file__).resolve().parents[2]),
                                           os.environ.get("PYTHONPATH", "")])})
                if done.returncode != 0:
                    raise RuntimeError(f"bench io case {mode} x{r} failed: "
                                       f"{done.stderr.strip().splitlines()[-1:]}")
                case = {"repeats": r, "file_mib": size / 2**20,
                        **json.loads(answer.read_text())}
                answer.unlink()
                cases.append(case)
            path.unlink()
            emit(Progress(task="bench io", done=i + 1, total=len(repeats),
                          message=f"{size / 2**20:.0f} MiB"))
    finally:
        if not args.dir:
            for leftover in work.iterdir():
                leftover.unlink()
            work.rmdir()
    lazy = [c for c in cases if c["mode"] == "lazy"]
    summary = {
        "lazy_peak_rss_mib_by_file_mib": {f"{c['file_mib']:.1f}": round(c["peak_rss_mib"], 1)
                                          for c in lazy},
        "throughput_lazy_over_memory": {
            str(c["repeats"]): round(c["patterns_per_s"] / m["patterns_per_s"], 3)
            for c in lazy for m in cases
            if m["mode"] == "memory" and m["repeats"] == c["repeats"]},
    }
    return {"suite": "io", "environment": environment("cpu"),
            "config": {k: v for k, v in vars(args).items() if k not in ("out", "suite_module")},
            "cases": cases, "summary": summary}


if __name__ == "__main__":  # one case, in a fresh process (see run), answered in a file
    Path(sys.argv[1]).write_text(json.dumps(_case(*json.loads(sys.argv[2]))))
