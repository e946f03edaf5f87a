"""Data larger than memory: peak memory and patterns/s of a reconstruction read from CXI files.

A simulated scan (``--base`` patterns at fixed positions, 8 keV, 3 m, 75 µm pixels) is
written by the CXI writer (:func:`engine.io.cxi.write_cxi`) ``r`` times over into one file
for each ``r`` of ``--repeats`` (a :class:`TiledStack` hands the writer the same rows again:
the positions are revisited, so the object, and what the method must hold, stays the same
size while the file grows; generation costs one simulation). Each case runs in a fresh
process that reads the file with ``api.load_dataset``: lazily (``lazy=True``: an
:class:`engine.io.lazy.H5Stack`, a batch of rows read at a time) or, up to
``--in-memory-max``, loaded whole (``lazy=False``). Bad-pixel detection on load is off
(``bad_pixels=False``): the cases time the reconstruction, not a pass over the file.

``--large-gib G`` adds one file of at least G GiB (larger than the machine's memory, disk
allowing); a full epoch over it would take hours on this CPU, so that case reconstructs
``--sample-batches`` batches of ``--batch-size`` consecutive rows spread evenly over the
whole file (mode ``lazy-sampled``). Reported per case: the file size, the peak resident
memory of the process, and the patterns per second of the epochs. Every file is deleted
afterwards, also on an error or an interrupt (SIGINT, SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.common import environment, peak_rss_mib
from engine.events import Callback, Progress

# the geometry the files are written with (a hard X-ray far-field scan)
ENERGY_EV, DISTANCE_M, PIXEL_M = 8000.0, 3.0, 75e-6


class TiledStack:
    """An (n·r, N, N) lazy stack that is ``base`` (n, N, N) repeated ``r`` times: row ``i``
    is ``base[i % n]``. What the CXI writer streams a large file from with one copy of
    ``base`` in memory (:class:`engine.data.DiffractionStack`).

    Examples
    --------
    >>> base = np.arange(2 * 4, dtype=np.float32).reshape(2, 2, 2)
    >>> t = TiledStack(base, 3)
    >>> t.shape, float(t[[5, 0]][0, 0, 0]), len(t.subset(np.arange(4)))
    ((6, 2, 2), 4.0, 4)
    """

    def __init__(self, base: np.ndarray, repeats: int, rows: np.ndarray | None = None) -> None:
        self.base = np.ascontiguousarray(base, dtype=np.float32)
        self.repeats = int(repeats)
        total = self.base.shape[0] * self.repeats
        self._rows = np.arange(total) if rows is None else np.asarray(rows, np.int64)
        self.shape = (int(self._rows.size), *self.base.shape[1:])
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = self._rows[index]
        return self.base[np.asarray(rows) % self.base.shape[0]]

    def subset(self, index: np.ndarray) -> TiledStack:
        return TiledStack(self.base, self.repeats, self._rows[np.asarray(index)])


def write_tiled_cxi(path: Path, ds: Any, geometry: Any, repeats: int) -> int:
    """``ds`` (in memory) written ``repeats`` times over into one CXI file by the CXI
    writer; bytes on disk."""
    from engine.data import Dataset
    from engine.io.cxi import write_cxi

    pos = np.tile(ds.positions, (repeats, 1))
    tiled = Dataset(diffraction=TiledStack(ds.diffraction, repeats), xcoords=pos[:, 1].copy(),
                    ycoords=pos[:, 0].copy(), probe=ds.probe, geometry=geometry)
    write_cxi(path, tiled, batch=1024)
    return path.stat().st_size


def sampled_rows(n: int, batches: int, batch: int) -> np.ndarray:
    """Rows of ``batches`` runs of ``batch`` consecutive rows, their starts spread evenly
    from the first row to the last (the whole file is visited).

    Examples
    --------
    >>> sampled_rows(100, 3, 4).tolist()
    [0, 1, 2, 3, 48, 49, 50, 51, 96, 97, 98, 99]
    """
    batch = min(batch, n)
    starts = np.unique(np.linspace(0, n - batch, max(1, batches)).round().astype(np.int64))
    return (starts[:, None] + np.arange(batch)[None, :]).ravel()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--N", type=int, default=64, help="pattern size")
    p.add_argument("--base", type=int, default=512, help="patterns simulated (one scan)")
    p.add_argument("--repeats", default="1,4,16,64",
                   help="comma-separated: times the scan is written into each file")
    p.add_argument("--in-memory-max", type=int, default=16,
                   help="largest repeat also run with the file loaded whole")
    p.add_argument("--large-gib", type=float, default=0.0,
                   help="also write one file of at least this many GiB and reconstruct "
                        "--sample-batches batches spread over it (0: none)")
    p.add_argument("--sample-batches", type=int, default=16,
                   help="batches reconstructed from the --large-gib file")
    p.add_argument("--method", choices=("lsqml", "epie", "rpie"), default="lsqml",
                   help="solver")
    p.add_argument("--epochs", type=int, default=1, help="epochs per case")
    p.add_argument("--batch-size", type=int, default=256, help="positions per update")
    p.add_argument("--dir", default=None, help="where the files go (default: a temporary "
                   "directory); every file written is deleted afterwards")


def _case(path: str, mode: str, method: str, epochs: int, batch: int,
          sample_batches: int) -> dict:
    """One reconstruction in this process (run by a child process; see :func:`run`)."""
    from engine import api
    from engine.iterative import options_for, reconstruct

    t0 = time.perf_counter()
    ds = api.load_dataset(path, lazy=mode != "memory", bad_pixels=False)
    load_s = time.perf_counter() - t0
    if mode == "lazy-sampled":
        ds = ds.subset(sampled_rows(ds.n, sample_batches, batch))
    t0 = time.perf_counter()
    result = reconstruct(ds, options_for(method, iterations=epochs, batch_size=batch,
                                         update_probe=False), snapshot_every=0)
    wall = time.perf_counter() - t0
    rates = [h["patterns_per_s"] for h in result.history]
    return {"mode": mode, "patterns": ds.n, "lazy": type(ds.diffraction).__name__,
            "load_s": load_s, "wall_s": wall, "patterns_per_s": float(np.median(rates)),
            "peak_rss_mib": peak_rss_mib(), "final_error": float(result.errors[-1])}


def _child(answer: Path, path: Path, mode: str, args: argparse.Namespace) -> dict:
    argv = [sys.executable, "-m", "engine.bench.io", str(answer), json.dumps(
        [str(path), mode, args.method, args.epochs, args.batch_size, args.sample_batches])]
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(argv, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [root, os.environ.get("PYTHONPATH", "")])})
    if done.returncode != 0:
        raise RuntimeError(f"bench io case {mode} {path.name} failed: "
                           f"{done.stderr.strip().splitlines()[-1:]}")
    out = json.loads(answer.read_text())
    answer.unlink()
    return out


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through run's finally: the files go


def run(args: argparse.Namespace, emit: Callback) -> dict[str, Any]:
    from engine.geometry import Geometry, wavelength_from_energy
    from engine.simulation.simulate import SimulationConfig, simulate

    repeats = [int(r) for r in str(args.repeats).split(",") if r.strip()]
    ds = simulate(SimulationConfig(object="grf", probe="disk", scan="raster",
                                   n_positions=args.base, N=args.N, step=args.N / 8,
                                   nphotons=1e6, seed=0))
    geometry = Geometry(wavelength=wavelength_from_energy(ENERGY_EV, "eV"),
                        distance=DISTANCE_M, detector_pixel=(PIXEL_M, PIXEL_M))
    plan = [(r, "full") for r in repeats]
    if args.large_gib > 0:
        pattern_bytes = args.N * args.N * 4  # float32 counts
        large = math.ceil(args.large_gib * 2**30 / (args.base * pattern_bytes))
        plan.append((large, "sampled"))
    own = args.dir is None
    work = Path(tempfile.mkdtemp(prefix="ptycho-bench-io-")) if own else Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    previous = signal.signal(signal.SIGTERM, _terminate)
    cases = []
    written: list[Path] = []
    try:
        for i, (r, kind) in enumerate(plan):
            path = work / f"scan_x{r}.cxi"
            written.append(path)
            t0 = time.perf_counter()
            size = write_tiled_cxi(path, ds, geometry, r)
            write_s = time.perf_counter() - t0
            if kind == "sampled":
                modes = ["lazy-sampled"]
            else:
                modes = ["lazy"] + (["memory"] if r <= args.in_memory_max else [])
            for mode in modes:
                case = _child(work / f"case_{mode}_x{r}.json", path, mode, args)
                cases.append({"repeats": r, "file_mib": size / 2**20, "write_s": write_s,
                              **case})
            path.unlink()
            emit(Progress(task="bench io", done=i + 1, total=len(plan),
                          message=f"{size / 2**20:.0f} MiB"))
    finally:
        signal.signal(signal.SIGTERM, previous)
        for path in written:
            path.unlink(missing_ok=True)
        # answers, and an atomic writer's temporary file if its own clean-up never ran
        for leftover in [*work.glob("case_*.json"), *work.glob(".scan_x*.cxi.*.tmp")]:
            leftover.unlink(missing_ok=True)
        if own:
            shutil.rmtree(work, ignore_errors=True)
    lazy = [c for c in cases if c["mode"].startswith("lazy")]
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
            "geometry": {"energy_ev": ENERGY_EV, "distance_m": DISTANCE_M,
                         "detector_pixel_m": PIXEL_M},
            "cases": cases, "summary": summary}


if __name__ == "__main__":  # one case, in a fresh process (see run), answered in a file
    Path(sys.argv[1]).write_text(json.dumps(_case(*json.loads(sys.argv[2]))))
