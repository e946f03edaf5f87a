"""ePIE, rPIE and LSQ-ML on several ranks (processes, devices) through ``torch.distributed``.

The replicated design (docs/iterative.md#several-devices): every rank holds the whole object
and probe and owns a spatially compact tile of the scan positions (:func:`partition`, a
recursive bisection of the positions along their longer extent: deterministic, sizes
differing by at most one). A rank reads only its own patterns, lazily, from the file
(``Dataset.subset`` of the lazy stack, reopened in the rank by path).

Batch schedule (:func:`epoch_batches`): each epoch draws one permutation of all positions
from the run's generator (the same on every rank); each tile's positions, in that order, are
cut into the epoch's ``ceil(n / batch_size)`` batches, and global batch b is the union of
the tiles' b-th shares. A rank computes its share of the batch, and the update's sums over
the batch (object and probe numerators and denominators, LSQ-ML's probe step) are summed
over the ranks with ``all_reduce`` before the update (:meth:`Reducer.__call__`), so every
rank applies the update of the global batch and the replicas stay equal. One rank holding
every tile (``parts``) runs the same batches: N ranks equal one rank with the same
partition up to the order of the floating-point sums.

Position correction: each rank moves its own positions within the epoch; at its end the
moves are summed over the ranks (each rank contributes only its rows), and the momentum,
the centroid removal and the affine fit run on the gathered positions on every rank.

Rank 0 emits the events (global figures: the error is summed over the ranks) and writes
the checkpoints (atomically, the global state); a checkpoint resumes on any number of
ranks. :func:`launch` spawns the ranks (gloo on CPU, NCCL on GPUs), forwards rank 0's
events and watches the processes: a rank that dies ends the run on every rank within
seconds with one line naming it.

Examples
--------
>>> import numpy as np
>>> pos = np.array([[r, c] for r in range(4) for c in range(4)], float)
>>> [sorted(p.tolist()) for p in partition(pos, 2)]
[[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15]]
"""

from __future__ import annotations

import datetime
import math
import os
import queue as queue_module
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.backends import Backend, get_backend
from engine.backends.propagation import Propagator
from engine.data import Dataset, read_rows
from engine.errors import InputError, PtychoError
from engine.events import (
    CanvasSnapshot,
    Epoch,
    Event,
    Failed,
    Finished,
    PositionsSnapshot,
    ProbeSnapshot,
    Progress,
    RunControl,
    RunStarted,
    Step,
    Stopped,
)
from engine.iterative import xp
from engine.iterative.model import Problem
from engine.iterative.modes import power_factor
from engine.iterative.options import SolverOptions
from engine.iterative.positions import PositionCorrector
from engine.iterative.result import ReconResult
from engine.iterative.state import SolverState, save_checkpoint
from engine.physics.scaling import normalise_probe, valid_energy
from engine.physics.stitching import CanvasGeometry

__all__ = ["RankFailed", "Reducer", "epoch_batches", "launch", "partition",
           "reconstruct_distributed", "run_rank"]

# seconds a collective waits for a silent peer before the process group gives up
COLLECTIVE_TIMEOUT_S = 30.0
# seconds the launcher gives the other ranks to end after one failed, before killing them
TERMINATE_GRACE_S = 2.0


class RankFailed(PtychoError):
    """A rank of a distributed run ended abnormally; the run was stopped on every rank."""


def partition(positions: np.ndarray, parts: int) -> list[np.ndarray]:
    """Split the scan positions (n, 2) into ``parts`` spatially compact tiles.

    Recursive bisection: the positions are cut across their longer extent (ties broken by
    the other coordinate, then the index), in the ratio of the ranks on each side, so the
    tiles are deterministic, compact and balanced (sizes differ by at most one).

    Returns
    -------
    list of sorted int64 index arrays, one per tile.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if not (isinstance(parts, int) and 1 <= parts <= pos.shape[0]):
        raise InputError("devices", f"an integer from 1 to the {pos.shape[0]} positions",
                         repr(parts))
    out: list[np.ndarray] = []

    def split(idx: np.ndarray, k: int) -> None:
        if k == 1:
            out.append(np.sort(idx))
            return
        p = pos[idx]
        axis = 0 if np.ptp(p[:, 0]) >= np.ptp(p[:, 1]) else 1
        order = np.lexsort((idx, p[:, 1 - axis], p[:, axis]))
        left = k // 2
        cut = int(round(idx.shape[0] * left / k))
        split(idx[order[:cut]], left)
        split(idx[order[cut:]], k - left)

    split(np.arange(pos.shape[0]), parts)
    return out


def epoch_batches(order: np.ndarray, tiles: list[np.ndarray], batch_size: int
                  ) -> list[list[np.ndarray]]:
    """An epoch's global batches as the tiles' shares: ``[b][tile]`` index arrays.

    Each tile's positions, in the epoch's ``order``, are cut into ``ceil(n / batch_size)``
    near-equal consecutive shares; global batch b is the union of the tiles' b-th shares.
    """
    n = order.shape[0]
    count = math.ceil(n / batch_size)
    owner = np.empty(n, dtype=np.int64)
    for t, idx in enumerate(tiles):
        owner[idx] = t
    shares = [np.array_split(order[owner[order] == t], count) for t in range(len(tiles))]
    return [[shares[t][b] for t in range(len(tiles))] for b in range(count)]


def check_schedule(n: int, tiles: list[np.ndarray], batch_size: int) -> None:
    """Refuse a batch size that leaves a tile without a position in some batch."""
    smallest = min(t.shape[0] for t in tiles)
    if math.ceil(n / min(batch_size, n)) > smallest:
        need = math.ceil(n / smallest)
        raise InputError("batch_size", f"at least {need} with {len(tiles)} ranks (each "
                         f"rank's {smallest} positions are shared out over the epoch's "
                         "batches)", str(batch_size))


class Reducer:
    """Sums backend arrays over the ranks of the default process group (``all_reduce``).

    NumPy arrays travel as CPU tensors sharing their memory; complex arrays as their real
    view. One rank (no process group): the identity.
    """

    def __init__(self, world: int) -> None:
        self.world = world

    def __call__(self, x: Any) -> Any:
        if self.world == 1:
            return x
        import torch
        import torch.distributed as dist

        if isinstance(x, torch.Tensor):
            t = x.contiguous().clone()
            dist.all_reduce(torch.view_as_real(t) if t.is_complex() else t)
            return t
        return _host_all_reduce(np.array(x, copy=True), dist.ReduceOp.SUM)

    def max(self, x: Any) -> Any:
        """The largest value of a real array over the ranks."""
        if self.world == 1:
            return x
        import torch
        import torch.distributed as dist

        if isinstance(x, torch.Tensor):
            t = x.contiguous().clone()
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            return t
        return _host_all_reduce(np.array(x, copy=True), dist.ReduceOp.MAX)

    def max_flags(self, *flags: bool) -> list[bool]:
        """The flags OR-ed over the ranks (one collective)."""
        if self.world == 1:
            return list(flags)
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(f) for f in flags], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v > 0) for v in t.cpu().tolist()]


def _host_all_reduce(a: np.ndarray, op: Any) -> np.ndarray:
    """All-reduce a host array in place (a NumPy backend's, or a host figure of a GPU
    run: NCCL reduces only device tensors, so those travel through the rank's GPU)."""
    import torch
    import torch.distributed as dist

    t = torch.from_numpy(a.reshape(-1) if a.ndim == 0 else a)
    t = torch.view_as_real(t) if t.is_complex() else t
    if dist.get_backend() == "nccl":
        on_device = t.cuda()
        dist.all_reduce(on_device, op=op)
        t.copy_(on_device.cpu())
    else:
        dist.all_reduce(t, op=op)
    return a


class _OwnRows:
    """A rank's patterns addressed by global position index: only its own rows exist."""

    def __init__(self, stack: Any, owned: np.ndarray, n: int) -> None:
        self.stack = stack
        self.local = np.full(n, -1, dtype=np.int64)
        self.local[owned] = np.arange(owned.shape[0])
        N = stack.shape[-1]
        self.shape = (n, N, N)
        self.dtype = np.float32

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = self.local[np.asarray(index)]
        if np.any(rows < 0):  # a schedule error: a rank asked for a position it does not own
            raise IndexError("a rank read a position outside its share")
        return read_rows(self.stack, rows)


@dataclass
class Start:
    """What the launcher prepares once for every rank: the starting state and the grid."""

    state: SolverState
    resumed: bool
    geometry: CanvasGeometry
    probe_factor: float


def prepare(dataset: Dataset, options: SolverOptions, *, init: Any = "flat",
            resume: str | None = None, previous: ReconResult | None = None,
            load: Callable[[str], Dataset] | None = None) -> tuple[SolverOptions, Start]:
    """The single-process checks and the starting state (object, probe, epoch, generator),
    without reading the patterns (a data-derived starting probe reads them here)."""
    from engine.iterative.probe_init import initial_probe
    from engine.iterative.solver import _start_state, check_data_support, position_geometry

    if dataset.diffraction is None:
        raise InputError("dataset", "measured 'diffraction' to reconstruct from", "none")
    N, pos = dataset.N, dataset.positions
    geometry = CanvasGeometry.from_positions(pos, N)
    check_data_support(options, dataset.n, N, geometry.shape[0] * geometry.shape[1])
    if options.position_correction or (previous is not None
                                       and previous.positions is not None):
        geometry = position_geometry(geometry)
    start_probe = dataset.probe
    if options.probe_init != "given" and previous is None and resume is None:
        propagator = Propagator.from_geometry(dataset.geometry, N, options.propagation)
        start_probe = initial_probe(dataset, options.probe_init, propagator, load=load)
    probe0, probe_factor = normalise_probe(start_probe)
    if previous is not None:
        if resume is not None:
            raise InputError("previous", "either a previous result or a checkpoint to "
                             "resume, not both", "both")
        options = options.replace(iterations=previous.epochs + options.iterations)
    state, resumed = _start_state(dataset, options, init, resume, geometry, probe0, previous)
    return options, Start(state, resumed, geometry, probe_factor)


def run_rank(dataset: Dataset, options: SolverOptions, start: Start, *, rank: int = 0,
             world: int = 1, parts: int | None = None, backend: Backend | str = "numpy",
             device: str = "auto", emit: Callable[[Event], None] | None = None,
             flags: Callable[[], tuple[bool, bool]] | None = None,
             wait: Callable[[], None] | None = None, checkpoint_dir: str | None = None,
             checkpoint_every: int = 1, snapshot_every: int = 1) -> ReconResult:
    """Run rank ``rank`` of ``world`` (the default process group is set up when
    ``world > 1``) over ``parts`` tiles (default ``world``; rank r owns the tiles
    t ≡ r mod ``world``).

    ``flags`` returns this rank's (stop, pause) requests, OR-ed over the ranks between
    batches; while paused every rank calls ``wait``. Every rank returns the result (the
    replicas are equal); only rank 0 emits events and writes checkpoints.
    """
    from engine.iterative.solver import _constrain_probe, _masked, _model_energy, _no_grad

    be = get_backend(backend, device) if isinstance(backend, str) else backend
    parts = world if parts is None else parts
    tiles = partition(dataset.positions, parts)
    n, N = dataset.n, dataset.N
    batch_size = min(options.batch_size, n)
    check_schedule(n, tiles, batch_size)
    mine = [t for t in range(parts) if t % world == rank]
    owned = np.sort(np.concatenate([tiles[t] for t in mine]))
    reduce = Reducer(world)
    own = dataset.subset(owned)  # lazy: the rank's rows only, read a batch at a time
    mask = dataset.pixel_mask
    energy = valid_energy(own.diffraction, mask, batch=options.batch_size) * owned.shape[0]
    total = float(reduce(np.array([energy]))[0])
    if not total > 0:
        raise InputError("diffraction", "some non-zero amplitude to set the intensity scale",
                         "all zero")
    scale = math.sqrt(total / n / (N / 2) ** 2)
    propagator = Propagator.from_geometry(dataset.geometry, N, options.propagation)
    geometry, state = start.geometry, start.state
    top_left = dataset.positions - N / 2 - np.asarray(geometry.origin, float)
    problem = Problem.create(be, None, top_left, (N / 2) ** 2, mask=mask,
                             stack=_OwnRows(own.diffraction, owned, n), stack_scale=scale,
                             propagator=propagator)
    emit = emit if (emit is not None and rank == 0) else (lambda event: None)
    emit(RunStarted(kind="reconstruct", config={
        **options.to_dict(), "backend": be.name, "device": be.device, "n": n, "N": N,
        "grid": list(geometry.shape), "origin": list(geometry.origin),
        "resumed_at": state.epoch if start.resumed else None, "devices": world,
        "tiles": [int(t.shape[0]) for t in tiles], "pid": os.getpid(),
        **propagator.describe()}))
    try:
        with _no_grad(be):
            return _loop(problem, options, be, start, tiles, owned, reduce, scale, emit,
                         flags, wait, checkpoint_dir, checkpoint_every, snapshot_every,
                         rank, _constrain_probe, _masked, _model_energy)
    except Exception as exc:
        if world == 1:  # with several ranks the launcher reports the failure, once
            emit(Failed.from_exception(exc))
        raise


def _loop(problem: Problem, options: SolverOptions, be: Backend, start: Start,
          tiles: list[np.ndarray], owned: np.ndarray, reduce: Reducer, scale: float,
          emit: Callable[[Event], None], flags: Callable[[], tuple[bool, bool]] | None,
          wait: Callable[[], None] | None, checkpoint_dir: str | None,
          checkpoint_every: int, snapshot_every: int, rank: int,
          constrain: Callable[..., Any], masked: Callable[..., Any],
          model_energy: Callable[..., float]) -> ReconResult:
    from engine.iterative.solver import _final_positions, _set_corners, _steps

    step = _steps()[options.method]
    state, geometry = start.state, start.geometry
    N, n = problem.N, problem.n
    to_corner = N / 2 + np.asarray(geometry.origin, float)
    initial_positions = problem.top_left + to_corner
    corrector = None
    if options.position_correction:
        H, W = geometry.shape
        corrector = PositionCorrector(problem.top_left, options, (H - N - 1.0, W - N - 1.0),
                                      batch_max=reduce.max)
        if state.positions is not None:
            _set_corners(problem, state.positions - to_corner)
            if state.position_velocity is not None:
                corrector.velocity = np.array(state.position_velocity, dtype=np.float64)
    elif state.positions is not None:
        _set_corners(problem, state.positions - to_corner)
    mine = np.zeros(n, dtype=bool)
    mine[owned] = True
    obj = be.asarray(state.object, complex=True)
    probe = problem.to_frame(be.asarray(state.probe, complex=True))
    if not start.resumed and options.rescale_init:  # the model only: every rank alike
        obj = obj * power_factor(model_energy(problem, obj, probe), problem.mean_energy)
    total_energy = problem.mean_energy * n
    stopped = False
    while state.epoch < options.iterations:
        epoch = state.epoch
        order = (state.rng.permutation(n) if options.batch_order == "random"
                 else np.arange(n))
        batches = epoch_batches(order, tiles, min(options.batch_size, n))
        update_probe = options.update_probe and epoch >= options.probe_update_start
        moving = corrector if corrector is not None and corrector.active(epoch) else None
        if moving is not None:
            moving.begin_epoch(problem)
        extra = {} if moving is None else {"corrector": moving}
        be.synchronize()
        t0 = time.perf_counter()
        err = 0.0
        for i, shares in enumerate(batches):
            if flags is not None:
                stop, pause = reduce.max_flags(*flags())
                while pause and not stop:  # every rank waits, no collective pending
                    if wait is not None:
                        wait()
                    stop, pause = reduce.max_flags(*flags())
                if stop:
                    stopped = True
                    break
            idx = np.concatenate([shares[t] for t in range(len(tiles))
                                  if t % reduce.world == rank])
            obj, probe, e = step(problem, obj, probe, idx, options, update_probe,
                                 reduce=reduce, **extra)
            err = err + e
            emit(Progress(task="reconstruct", done=i + 1, total=len(batches),
                          message=f"epoch {epoch + 1}"))
        if stopped:
            break
        if update_probe:
            obj, probe = constrain(be, obj, probe, options, problem.mean_energy)
        moved: dict[str, float] = {}
        if moving is not None:
            cur = moving.current(problem)
            delta = np.where(mine[:, None], cur - moving.epoch_start, 0.0)
            _set_corners(problem, moving.epoch_start + reduce(delta))
            moved = moving.end_epoch(problem)
        error = float(reduce(np.array([xp.to_float(err)]))[0]) / total_energy
        be.synchronize()
        seconds = time.perf_counter() - t0
        record = {"epoch": epoch + 1, "error": error, "seconds": seconds,
                  "patterns_per_s": n / seconds if seconds > 0 else float("inf"), **moved}
        state.history.append(record)
        state.epoch = epoch + 1
        emit(Step(step=state.epoch, total=options.iterations, epoch=state.epoch,
                  loss=float(record["error"])))
        emit(Epoch(epoch=epoch + 1, metrics={k: float(v) for k, v in record.items()
                                             if k != "epoch"}))
        if rank == 0 and snapshot_every and (state.epoch % snapshot_every == 0
                                             or state.epoch == options.iterations):
            emit(CanvasSnapshot.of(masked(problem, obj, probe, geometry),
                                   f"{options.method}, epoch {state.epoch}"))
            emit(ProbeSnapshot(probe=be.to_numpy(problem.from_frame(probe)).astype(np.complex64)))
            if corrector is not None:
                emit(PositionsSnapshot(epoch=state.epoch, initial=initial_positions.copy(),
                                       current=corrector.current(problem) + to_corner))
        if rank == 0 and checkpoint_dir is not None and (
                state.epoch % checkpoint_every == 0 or state.epoch == options.iterations):
            state.object, state.probe = be.to_numpy(obj), be.to_numpy(problem.from_frame(probe))
            if corrector is not None:
                state.positions = corrector.current(problem) + to_corner
                state.position_velocity = corrector.velocity.copy()
            save_checkpoint(checkpoint_dir, state, options, {"intensity_scale": scale,
                                                             "devices": reduce.world})
    obj_np = be.to_numpy(obj).astype(np.complex128)
    probe_np = be.to_numpy(problem.from_frame(probe)).astype(np.complex128)
    result = ReconResult(
        canvas=masked(problem, obj, probe, geometry, obj_np),
        object=obj_np, probe=probe_np, history=list(state.history), options=options,
        epochs=state.epoch, stopped=stopped, intensity_scale=scale,
        probe_factor=start.probe_factor,
        info={"backend": be.name, "device": be.device, "devices": reduce.world,
              **(problem.near.propagator.describe() if problem.near is not None
                 else {"propagation": "far"})},
        rng_state=state.rng.bit_generator.state,
        positions=_final_positions(problem, corrector, state, to_corner),
        initial_positions=None if state.positions is None and corrector is None
        else initial_positions,
        position_velocity=None if corrector is None else corrector.velocity.copy())
    emit(Stopped(summary=result.summary()) if stopped else Finished(summary=result.summary()))
    return result


# ------------------------------------------------------------------ launching the ranks


def _rank_main(rank: int, world: int, store: str, job: dict[str, Any], out: Any,
               stop: Any, pause: Any) -> None:
    """A spawned rank: join the group, run, send rank 0's events and result to the parent."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(job["threads"])
    gpu = job["device"].startswith("cuda")
    device = f"cuda:{rank}" if gpu else job["device"]
    try:
        if gpu:
            torch.cuda.set_device(rank)
        dist.init_process_group("nccl" if gpu else "gloo", init_method=f"file://{store}",
                                rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=job["timeout"]))
        send = (lambda event: out.put(("event", rank, event))) if rank == 0 else None
        result = run_rank(job["dataset"], job["options"], job["start"], rank=rank,
                          world=world, backend=job["backend"], device=device, emit=send,
                          flags=lambda: (stop.is_set(), pause.is_set()),
                          wait=lambda: time.sleep(0.05),
                          checkpoint_dir=job["checkpoint_dir"],
                          checkpoint_every=job["checkpoint_every"],
                          snapshot_every=job["snapshot_every"])
        if rank == 0:
            out.put(("result", rank, result))
        dist.barrier()
        dist.destroy_process_group()
    except BaseException as exc:  # noqa: BLE001 - reported to the launcher, then exit 1
        try:
            out.put(("error", rank, exc))
        except Exception:  # an unpicklable exception: its text
            out.put(("error", rank, RuntimeError(f"{type(exc).__name__}: {exc}")))
        out.put(("trace", rank, traceback.format_exc()))
        out.close()
        out.join_thread()
        os._exit(1)


def launch(dataset: Dataset, options: SolverOptions, devices: int, *,
           backend: str = "numpy", device: str = "cpu", init: Any = "flat",
           emit: Callable[[Event], None] | None = None, control: RunControl | None = None,
           checkpoint_dir: str | None = None, checkpoint_every: int = 1,
           resume: str | None = None, snapshot_every: int = 1,
           previous: ReconResult | None = None,
           load: Callable[[str], Dataset] | None = None, threads: int | None = None,
           timeout: float = COLLECTIVE_TIMEOUT_S) -> ReconResult:
    """Spawn ``devices`` ranks (processes) that reconstruct together; rank 0's result.

    ``device`` ``"cpu"``: gloo, ``threads`` torch threads per rank (default: the CPU count
    shared out); ``"cuda"``: NCCL, rank r on ``cuda:r``. Rank 0's events reach ``emit``
    here; ``control`` pauses and stops every rank between batches. A rank that dies (a
    signal, an error) ends every rank within seconds and raises :class:`RankFailed` (or
    the rank's own :class:`~engine.errors.InputError`) naming it; the last checkpoint
    resumes, on any number of ranks.

    Examples
    --------
    >>> from engine.simulation.simulate import SimulationConfig, simulate
    >>> from engine.iterative.options import LSQMLOptions
    >>> ds = simulate(SimulationConfig(object="grf", n_positions=16, N=16, step=4, seed=0))
    >>> launch(ds, LSQMLOptions(iterations=1, batch_size=8), 2).epochs  # doctest: +SKIP
    1
    """
    import multiprocessing as mp

    if not (isinstance(devices, int) and devices >= 2):
        raise InputError("devices", "an integer >= 2 to launch ranks", repr(devices))
    if device == "auto":
        device = "cpu"
    if device.startswith("cuda"):
        import torch

        if backend != "torch":
            raise InputError("backend", "torch for ranks on GPUs", backend)
        if torch.cuda.device_count() < devices:
            raise InputError("devices", f"at most the {torch.cuda.device_count()} GPUs here",
                             str(devices))
    elif device != "cpu":
        raise InputError("device", "cpu or cuda with several devices", device)
    options, start = prepare(dataset, options, init=init, resume=resume, previous=previous,
                             load=load)
    tiles = partition(dataset.positions, devices)
    check_schedule(dataset.n, tiles, min(options.batch_size, dataset.n))
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // devices)
    job = {"dataset": dataset, "options": options, "start": start, "backend": backend,
           "device": device, "threads": threads, "timeout": timeout,
           "checkpoint_dir": checkpoint_dir, "checkpoint_every": checkpoint_every,
           "snapshot_every": snapshot_every}
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    stop, pause = ctx.Event(), ctx.Event()
    emit = emit or (lambda event: None)
    with tempfile.TemporaryDirectory(prefix="ptycho-ranks-") as tmp:
        store = os.path.join(tmp, "store")
        procs = [ctx.Process(target=_rank_main, name=f"ptycho-rank-{r}", daemon=True,
                             args=(r, devices, store, job, out, stop, pause))
                 for r in range(devices)]
        for p in procs:
            p.start()
        try:
            return _watch(procs, out, emit, control, stop, pause, checkpoint_dir)
        finally:
            _end(procs)
            out.close()


def _watch(procs: list[Any], out: Any, emit: Callable[[Event], None],
           control: RunControl | None, stop: Any, pause: Any,
           checkpoint_dir: str | None) -> ReconResult:
    """Forward events until rank 0's result; end every rank when one fails."""
    result: ReconResult | None = None
    errors: dict[int, BaseException] = {}
    failed_at: float | None = None
    while True:
        if control is not None:
            if control.stop_requested:
                stop.set()
            if control.paused:
                pause.set()
            else:
                pause.clear()
        try:
            kind, rank, payload = out.get(timeout=0.1)
        except queue_module.Empty:
            kind = None
        if kind == "event":
            emit(payload)
        elif kind == "result":
            result = payload
        elif kind == "error":
            errors.setdefault(rank, payload)
            failed_at = failed_at or time.monotonic()
        codes = [p.exitcode for p in procs]
        if result is not None and all(c == 0 for c in codes):
            return result
        if any(c not in (None, 0) for c in codes):
            failed_at = failed_at or time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > 0.5:
            break
    # a rank that ended without reporting an error died (a signal, os._exit, out of memory);
    # the others then fail in their collectives: name the one that died
    codes = [p.exitcode for p in procs]
    dead = [r for r, c in enumerate(codes) if c not in (None, 0) and r not in errors]
    where = ("" if checkpoint_dir is None
             else f"; the last checkpoint in {checkpoint_dir} resumes it")
    error: BaseException
    if dead:
        r = dead[0]
        how = f"signal {-codes[r]}" if codes[r] < 0 else f"exit code {codes[r]}"
        error = RankFailed(f"rank {r} of {len(procs)} died ({how}); the run was stopped on "
                           f"every rank{where}")
    else:
        r = min(errors)
        error = errors[r]
        if not isinstance(error, PtychoError):
            first = str(error).splitlines()[0] if str(error) else ""
            error = RankFailed(f"rank {r} of {len(procs)} failed ({type(error).__name__}: "
                               f"{first}); the run was stopped on every rank{where}")
    emit(Failed.from_exception(error))
    raise error


def _end(procs: list[Any]) -> None:
    """Terminate the ranks still running (a grace period, then kill) and reap them all."""
    deadline = time.monotonic() + TERMINATE_GRACE_S
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=max(0.1, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def reconstruct_distributed(dataset: Dataset, options: SolverOptions, devices: int, *,
                            backend: str = "numpy", device: str = "auto", init: Any = "flat",
                            emit: Callable[[Event], None] | None = None,
                            control: RunControl | None = None,
                            checkpoint_dir: str | None = None, checkpoint_every: int = 1,
                            resume: str | None = None, snapshot_every: int = 1,
                            previous: ReconResult | None = None,
                            load: Callable[[str], Dataset] | None = None,
                            threads: int | None = None) -> ReconResult:
    """``api.reconstruct(..., devices=N)``: this process as one rank when ``torchrun`` set
    ``WORLD_SIZE`` (``devices`` 1 or that size), else :func:`launch` of ``devices`` ranks."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if not (isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1):
        raise InputError("devices", "an integer >= 1", repr(devices))
    if world > 1:
        if devices not in (1, world):
            raise InputError("devices", f"1 or torchrun's WORLD_SIZE {world}", str(devices))
        return _in_group(dataset, options, world, backend=backend, device=device, init=init,
                         emit=emit, control=control, checkpoint_dir=checkpoint_dir,
                         checkpoint_every=checkpoint_every, resume=resume,
                         snapshot_every=snapshot_every, previous=previous, load=load,
                         threads=threads)
    if devices == 1:
        from engine.iterative.solver import reconstruct

        return reconstruct(dataset, options, backend=backend, device=device, init=init,
                           emit=emit, control=control, checkpoint_dir=checkpoint_dir,
                           checkpoint_every=checkpoint_every, resume=resume,
                           snapshot_every=snapshot_every, previous=previous, load=load)
    return launch(dataset, options, devices, backend=backend, device=device, init=init,
                  emit=emit, control=control, checkpoint_dir=checkpoint_dir,
                  checkpoint_every=checkpoint_every, resume=resume,
                  snapshot_every=snapshot_every, previous=previous, load=load,
                  threads=threads)


def _in_group(dataset: Dataset, options: SolverOptions, world: int, *, backend: str,
              device: str, init: Any, emit: Callable[[Event], None] | None,
              control: RunControl | None, checkpoint_dir: str | None, checkpoint_every: int,
              resume: str | None, snapshot_every: int, previous: ReconResult | None,
              load: Callable[[str], Dataset] | None, threads: int | None) -> ReconResult:
    """One rank of a ``torchrun`` launch (``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``...)."""
    import torch
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    gpu = device.startswith("cuda") or (device == "auto" and backend == "torch"
                                        and torch.cuda.is_available())
    if threads:
        torch.set_num_threads(threads)
    if gpu:
        torch.cuda.set_device(local)
    own_group = not dist.is_initialized()  # a group set up here is also ended here
    if own_group:
        dist.init_process_group("nccl" if gpu else "gloo",
                                timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    try:
        options, start = prepare(dataset, options, init=init, resume=resume,
                                 previous=previous, load=load)
        flags = None if control is None else (lambda: (control.stop_requested,
                                                       control.paused))
        return run_rank(dataset, options, start, rank=rank, world=world, backend=backend,
                        device=f"cuda:{local}" if gpu else "cpu", emit=emit, flags=flags,
                        wait=lambda: time.sleep(0.05), checkpoint_dir=checkpoint_dir,
                        checkpoint_every=checkpoint_every, snapshot_every=snapshot_every)
    finally:
        if own_group:
            dist.destroy_process_group()
