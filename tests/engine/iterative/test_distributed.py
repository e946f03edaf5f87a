"""Several ranks (gloo processes on the CPU) reconstruct as one rank does.

N ranks against one rank holding the same N tiles (same seed, same batch partition): the
object, probe, positions and error history agree to 1e-9 (relative; they differ only by
the order of the floating-point sums, ~1e-15 measured). A rank killed mid-run ends every
rank with one line naming it, and its last checkpoint resumes on another number of ranks.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import api
from engine.data import Dataset
from engine.errors import InputError
from engine.events import Epoch, Failed, RunStarted, Stopped
from engine.iterative import distributed as dist_mod
from engine.iterative.distributed import (
    RankFailed,
    epoch_batches,
    launch,
    partition,
    prepare,
    run_rank,
)
from engine.iterative.options import LSQMLOptions, RPIEOptions
from engine.iterative.solver import reconstruct
from engine.iterative.state import load_checkpoint
from engine.simulation.simulate import SimulationConfig, simulate
from tests.engine.lazy_stack import CountingStack

# N ranks against one rank with the same tiles: only the order of the sums differs
TOLERANCE = 1e-9


class LoggingStack(CountingStack):
    """A counting stack that also appends the file rows it reads to ``<log>/<pid>.txt``
    (the ranks are other processes: their reads are counted in files)."""

    def __init__(self, array: np.ndarray, log: str, rows: np.ndarray | None = None) -> None:
        super().__init__(array, None, rows)
        self.log = log

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = np.atleast_1d(self._rows[index])
        with open(os.path.join(self.log, f"{os.getpid()}.txt"), "a") as f:
            f.write(" ".join(str(int(r)) for r in rows) + "\n")
        return super().__getitem__(index)

    def subset(self, index: np.ndarray) -> LoggingStack:
        return LoggingStack(self._array, self.log, self._rows[np.asarray(index)])


@pytest.fixture(scope="module")
def data() -> Dataset:
    """32 positions of 16x16 patterns with noise."""
    return simulate(SimulationConfig(object="grf", probe="disk", scan="raster",
                                     n_positions=32, N=16, step=3, nphotons=1e5, seed=4))


def _reads(log: Path) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for f in log.glob("*.txt"):
        out[int(f.stem)] = {int(v) for v in f.read_text().split()}
    return out


def _one_rank(data: Dataset, options: Any, parts: int, resume: str | None = None) -> Any:
    """The reference: one process holding all ``parts`` tiles."""
    opts, start = prepare(data, options, resume=resume)
    return run_rank(data, opts, start, world=1, parts=parts)


def _assert_same(a: Any, b: Any) -> None:
    scale = np.abs(b.object).max()
    assert np.abs(a.object - b.object).max() <= TOLERANCE * scale
    assert np.abs(a.probe - b.probe).max() <= TOLERANCE * np.abs(b.probe).max()
    np.testing.assert_allclose([r["error"] for r in a.history],
                               [r["error"] for r in b.history], rtol=TOLERANCE)
    if b.positions is not None:
        np.testing.assert_allclose(a.positions, b.positions, atol=TOLERANCE * 100)


def test_partition_is_compact_balanced_and_deterministic(data: Dataset) -> None:
    for parts in (2, 3, 5):
        tiles = partition(data.positions, parts)
        sizes = [t.size for t in tiles]
        assert max(sizes) - min(sizes) <= 1
        assert np.array_equal(np.sort(np.concatenate(tiles)), np.arange(data.n))
        assert all(np.array_equal(a, b) for a, b in zip(tiles, partition(data.positions, parts),
                                                        strict=True))
    # compact: two halves of the raster are separated along the longer extent, so their
    # bounding boxes do not overlap
    a, b = (data.positions[t] for t in partition(data.positions, 2))
    axis = int(np.argmax(np.ptp(data.positions, axis=0)))
    assert a[:, axis].max() <= b[:, axis].min() or b[:, axis].max() <= a[:, axis].min()


def test_a_global_batch_is_the_union_of_the_tiles_shares(data: Dataset) -> None:
    tiles = partition(data.positions, 3)
    order = np.random.default_rng(0).permutation(data.n)
    batches = epoch_batches(order, tiles, 8)
    assert len(batches) == 4
    for shares in batches:
        for t, share in enumerate(shares):
            assert share.size >= 1 and np.isin(share, tiles[t]).all()
    everything = np.concatenate([s for shares in batches for s in shares])
    assert np.array_equal(np.sort(everything), np.arange(data.n))
    with pytest.raises(InputError, match="batch_size"):
        _one_rank(data, LSQMLOptions(iterations=1, batch_size=2), parts=20)


def test_one_tile_is_the_single_process_solver(data: Dataset) -> None:
    options = LSQMLOptions(iterations=3, batch_size=8, update_probe=True)
    _assert_same(_one_rank(data, options, parts=1), reconstruct(data, options))


def test_two_ranks_equal_one_and_read_only_their_share(data: Dataset, tmp_path: Path) -> None:
    log = tmp_path / "reads"
    log.mkdir()
    lazy = dataclasses.replace(
        data, diffraction=LoggingStack(np.asarray(data.diffraction), str(log)))
    options = LSQMLOptions(iterations=4, batch_size=8, update_probe=True,
                           position_correction=True, position_start=1, position_affine=True,
                           affine_residual_limit=0.5)
    events: list[Any] = []
    two = launch(lazy, options, 2, emit=events.append, threads=1)
    reads = _reads(log)
    assert os.getpid() not in reads  # the launcher read no pattern
    tiles = [set(t.tolist()) for t in partition(data.positions, 2)]
    assert sorted(reads.values(), key=min) == sorted(tiles, key=min)
    assert sum(isinstance(e, RunStarted) for e in events) == 1
    assert [e.epoch for e in events if isinstance(e, Epoch)] == [1, 2, 3, 4]
    one = _one_rank(data, options, parts=2)
    _assert_same(two, one)
    assert two.positions is not None and np.abs(two.positions - one.initial_positions).max() > 0


def test_three_ranks_equal_one_through_the_api(data: Dataset, tmp_path: Path) -> None:
    options = RPIEOptions(iterations=3, batch_size=6, update_probe=True)
    three = api.reconstruct(data, options, devices=3, threads=1, out=tmp_path / "run")
    assert (tmp_path / "run" / "recon.npz").is_file()
    assert load_checkpoint(tmp_path / "run" / "checkpoint")[0].epoch == 3
    _assert_same(three, _one_rank(data, options, parts=3))


def _ranks() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("ptycho-rank-")]


def test_a_dying_rank_ends_every_rank_and_the_checkpoint_resumes_on_three(
        data: Dataset, tmp_path: Path) -> None:
    options = LSQMLOptions(iterations=2000, batch_size=8, update_probe=True)
    killed: list[float] = []
    events: list[Any] = []

    def emit(event: Any) -> None:
        events.append(event)
        if isinstance(event, Epoch) and event.epoch >= 2 and not killed:
            victim = next(p for p in _ranks() if p.name == "ptycho-rank-1")
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(time.monotonic())

    with pytest.raises(RankFailed) as info:
        launch(data, options, 2, emit=emit, threads=1, checkpoint_dir=str(tmp_path))
    took = time.monotonic() - killed[0]
    message = str(info.value)
    assert "rank 1 of 2 died (signal 9)" in message and "\n" not in message
    assert took < 15.0  # the watchdog ends it within seconds, not the collective timeout
    assert not _ranks()  # every rank reaped
    assert isinstance(events[-1], Failed) and "rank 1" in events[-1].message
    epoch = load_checkpoint(tmp_path)[0].epoch
    assert 1 <= epoch < options.iterations
    more = options.replace(iterations=epoch + 2)
    resumed = launch(data, more, 3, threads=1, resume=str(tmp_path))
    assert resumed.epochs == epoch + 2 and len(resumed.history) == epoch + 2
    _assert_same(resumed, _one_rank(data, more, parts=3, resume=str(tmp_path)))


def test_a_stop_request_ends_the_ranks_at_a_batch_boundary(data: Dataset) -> None:
    calls: list[int] = []

    def flags() -> tuple[bool, bool]:
        calls.append(1)
        return len(calls) > 4, False  # 4 batches an epoch: stop before the second epoch

    events: list[Any] = []
    opts, start = prepare(data, LSQMLOptions(iterations=3, batch_size=8))
    result = run_rank(data, opts, start, world=1, parts=2, flags=flags, emit=events.append)
    assert result.stopped and result.epochs == 1
    assert isinstance(events[-1], Stopped)


def test_devices_must_be_a_count(data: Dataset) -> None:
    with pytest.raises(InputError, match="devices"):
        api.reconstruct(data, LSQMLOptions(iterations=1), devices=0)
    with pytest.raises(InputError, match="devices"):
        dist_mod.launch(data, LSQMLOptions(iterations=1), 1)


def test_cli_refuses_a_device_count_below_one(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    path = tmp_path / "d.npz"
    api.save_dataset(path, simulate(SimulationConfig(n_positions=16, N=16, step=4)))
    assert main(["reconstruct", str(path), "--devices", "0", "--out",
                 str(tmp_path / "r")]) == 2
    assert "--devices" in capsys.readouterr().err


def test_bench_compares_rank_counts_side_by_side() -> None:
    import argparse
    import json

    from engine.bench import iterative, iterative_devices

    parser = argparse.ArgumentParser()
    iterative.add_arguments(parser)
    args = parser.parse_args(["--n", "16", "--N", "16", "--epochs", "2", "--devices", "1,2",
                              "--devices-backend", "numpy", "--batch-lsqml", "8"])
    out = iterative.run(args, lambda event: None)
    json.dumps(out)  # JSON-ready
    rows = out["devices"]["rows"]
    assert [r["devices"] for r in rows] == [1, 2]
    assert rows[0]["speedup_over_one"] == 1.0 and rows[1]["speedup_over_one"] > 0
    for r in rows:
        assert len(r["epoch_seconds"]) == 1 and len(r["epoch_seconds"][0]) == 2
        assert 0 <= r["phase_rms_rad"] < 1
    with pytest.raises(InputError, match="--devices"):
        iterative_devices.counts("0,2")


def test_a_pause_holds_the_ranks_and_changes_nothing(data: Dataset) -> None:
    options = LSQMLOptions(iterations=2, batch_size=8)
    requests = iter([(False, False)] * 2 + [(False, True)] * 3)
    waits: list[int] = []

    def flags() -> tuple[bool, bool]:
        return next(requests, (False, False))

    opts, start = prepare(data, options)
    paused = run_rank(data, opts, start, world=1, parts=2, flags=flags,
                      wait=lambda: waits.append(1))
    assert len(waits) == 3  # waited while the pause was requested, between batches
    _assert_same(paused, _one_rank(data, options, parts=2))


def test_a_stop_through_the_launcher_stops_every_rank(data: Dataset) -> None:
    from engine.events import RunControl

    control = RunControl()
    events: list[Any] = []

    def emit(event: Any) -> None:
        events.append(event)
        if isinstance(event, Epoch) and event.epoch >= 2:
            control.stop()

    result = launch(data, LSQMLOptions(iterations=2000, batch_size=8), 2, emit=emit,
                    control=control, threads=1)
    assert result.stopped and 2 <= result.epochs < 2000
    assert isinstance(events[-1], Stopped)
    assert not _ranks()
