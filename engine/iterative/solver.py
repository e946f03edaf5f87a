"""The reconstruction loop shared by every method: batches, events, control, checkpoints.

Examples
--------
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> ds = simulate(SimulationConfig(object="grf", n_positions=16, N=32, step=6, seed=0))
>>> res = reconstruct(ds, EPIEOptions(iterations=2, batch_size=4))
>>> res.epochs, res.canvas.canvas.shape == res.object.shape
(2, True)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from engine.backends import Backend, get_backend
from engine.backends.propagation import Propagator
from engine.data import Dataset, is_lazy
from engine.errors import InputError
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
    StopRequested,
)
from engine.iterative import xp
from engine.iterative.init import initial_object
from engine.iterative.lsqml import lsqml_step
from engine.iterative.model import Problem, batch_model, illumination
from engine.iterative.modes import initial_modes, orthogonalise, power_factor
from engine.iterative.options import EPIEOptions, SolverOptions
from engine.iterative.pie import pie_step
from engine.iterative.positions import PositionCorrector
from engine.iterative.probe_init import initial_probe
from engine.iterative.result import ReconResult
from engine.iterative.state import SolverState, load_checkpoint, save_checkpoint
from engine.physics.scaling import intensity_scale, normalise_probe
from engine.physics.stitching import Canvas, CanvasGeometry, place_on_grid

# pixels with less than this fraction of the peak illumination are not covered (NaN)
COVERAGE_THRESHOLD = 1e-3
# with position correction the grid gets this margin (px) plus a fraction of its half size,
# so that positions can move outward (by a random error or a scale error of the scan)
POSITION_MARGIN_PX = 4
POSITION_MARGIN_FRACTION = 0.03

__all__ = ["EPIEOptions", "reconstruct", "check_data_support"]


def _steps() -> dict[str, Callable[..., tuple[Any, Any, Any]]]:
    return {"epie": pie_step, "rpie": pie_step, "lsqml": lsqml_step}


def check_data_support(options: SolverOptions, n: int, N: int, grid_pixels: int) -> None:  # noqa: N803
    """Refuse a problem the data cannot constrain, naming what is short.

    The unknowns (the object's grid pixels, plus K·N² probe values unless a single probe
    mode is held fixed) must be fewer than the measured intensities n·N², and each probe
    mode needs at least one measured pattern. Three different shortfalls, three messages: too few
    positions for the object alone, too few to refine the probe, too many modes.
    """
    K, NN = options.probe_modes, N * N
    measured = n * NN
    if grid_pixels >= measured:
        raise InputError("data", f"more measured pixels than object unknowns ({n} position(s) "
                         f"x {N}x{N} = {measured} measured pixels for a {grid_pixels}-pixel "
                         "object grid): more, overlapping scan positions", f"{n} position(s)")
    if not (options.update_probe or K > 1):
        return  # one fixed probe mode adds no unknowns
    most = min(n, (measured - grid_pixels - 1) // NN)
    if most < 1 and K > 1:
        raise InputError("probe_modes", f"1 with {n} position(s): modes are refined, and each "
                         f"adds {NN} unknowns to the object's {grid_pixels}, not fewer than the "
                         f"{measured} measured pixels", str(K))
    if most < 1:
        raise InputError("update_probe", f"a fixed probe with {n} position(s): refining it adds "
                         f"{NN} unknowns to the object's {grid_pixels}, not fewer than the "
                         f"{measured} measured pixels", "True")
    if K > most:
        raise InputError("probe_modes", f"at most {most} (each mode needs a measured pattern, "
                         f"and object {grid_pixels} + modes x {N}x{N} unknowns must stay fewer "
                         f"than the {measured} measured pixels)", str(K))


@contextlib.contextmanager
def _no_grad(be: Backend) -> Iterator[None]:
    if be.name == "torch":
        import torch

        with torch.no_grad():
            yield
    else:
        yield


def _batches(order: np.ndarray, size: int) -> list[np.ndarray]:
    return [order[i:i + size] for i in range(0, order.shape[0], size)]


def _model_energy(problem: Problem, obj: Any, probe: Any, batch: int = 256) -> float:
    total = 0.0
    for idx in _batches(np.arange(problem.n), batch):
        m = batch_model(problem, obj, probe, problem.top_left[idx])
        power = xp.abs2(m.far)
        # over the valid pixels only: the data's energy it is matched to leaves the masked out
        total += xp.to_float(xp.sum_axes(power if problem.mask is None else power * problem.mask,
                                         (0, 1, 2, 3)))
    return total / problem.n


def _illumination_canvas(problem: Problem, probe: Any, shape: tuple[int, int]) -> np.ndarray:
    be = problem.backend
    illum = illumination(probe)[None]
    w = be.zeros(shape)
    for idx in _batches(np.arange(problem.n), 1024):
        be.scatter_add(w, illum, problem.top_left[idx])
    return be.to_numpy(w).astype(np.float64)


def position_geometry(geometry: CanvasGeometry) -> CanvasGeometry:
    """The grid of a position-corrected run: ``geometry`` with room for the positions to
    move (:data:`POSITION_MARGIN_PX` plus :data:`POSITION_MARGIN_FRACTION` of its half
    size on every side)."""
    m = POSITION_MARGIN_PX + int(np.ceil(POSITION_MARGIN_FRACTION * max(geometry.shape) / 2))
    return CanvasGeometry(origin=(geometry.origin[0] - m, geometry.origin[1] - m),
                          shape=(geometry.shape[0] + 2 * m, geometry.shape[1] + 2 * m))


def _start_state(dataset: Dataset, options: SolverOptions, init: Any, resume: Any,
                 geometry: CanvasGeometry, probe0: np.ndarray,
                 previous: ReconResult | None = None) -> tuple[SolverState, bool]:
    if previous is not None:
        obj = np.array(previous.object)
        base = CanvasGeometry.from_positions(dataset.positions, dataset.N)
        if obj.shape != geometry.shape and previous.positions is None \
                and options.position_correction and obj.shape == base.shape \
                and tuple(previous.canvas.origin) == tuple(base.origin):
            # position correction switched on: the grid grows by its margin (flat there)
            obj = place_on_grid(obj, base.origin, geometry.origin, geometry.shape,
                                1.0 + 0.0j, np.complex128)
        if obj.shape != geometry.shape \
                or previous.probe.shape[0] != options.probe_modes:
            raise InputError("previous", f"a result on this data's grid {geometry.shape} with "
                             f"{options.probe_modes} probe modes",
                             f"{previous.object.shape}, {previous.probe.shape[0]} modes")
        rng = np.random.default_rng(options.seed)
        if previous.rng_state is not None:
            rng.bit_generator.state = previous.rng_state
        state = SolverState(obj, np.array(previous.probe),
                            previous.epochs, rng, list(previous.history), geometry.origin)
        if previous.positions is not None:  # kept (and fixed) if correction is now off
            state.positions = np.array(previous.positions, dtype=np.float64)
            state.position_velocity = previous.position_velocity
        return state, True
    if resume is not None:
        state, saved, _ = load_checkpoint(resume)
        if saved.method != options.method or state.object.shape != geometry.shape \
                or state.probe.shape[0] != options.probe_modes \
                or state.probe.shape[-2:] != np.shape(probe0)[-2:]:  # a forged N
            raise InputError(f"resume {resume}", f"a checkpoint of method {options.method}, "
                             f"object {geometry.shape}, {options.probe_modes} probe modes",
                             f"{saved.method}, {state.object.shape}, {state.probe.shape[0]}")
        return state, True
    obj = initial_object(init, dataset, geometry)
    modes = initial_modes(probe0, options.probe_modes)
    return SolverState(obj, modes, 0, np.random.default_rng(options.seed), [],
                       geometry.origin), False


def reconstruct(dataset: Dataset, options: SolverOptions, *, backend: Backend | str = "numpy",
                device: str = "auto", init: Any = "flat",
                emit: Callable[[Event], None] | None = None, control: RunControl | None = None,
                checkpoint_dir: str | None = None, checkpoint_every: int = 1,
                resume: str | None = None, snapshot_every: int = 1,
                previous: ReconResult | None = None,
                load: Callable[[str], Dataset] | None = None,
                snapshot_seconds: float = 0.0) -> ReconResult:
    """Reconstruct object and probe from ``dataset`` with the method of ``options``.

    Parameters
    ----------
    dataset : measured amplitudes, positions and the initial probe (``probeGuess``).
    options : :class:`EPIEOptions`, :class:`RPIEOptions` or :class:`LSQMLOptions`.
    backend, device : the compute backend (``"numpy"`` reference, ``"torch"`` cpu/cuda).
    init : initial object, see :func:`engine.iterative.init.initial_object`.
    emit : receives RunStarted, Progress (per batch), Step and Epoch (per epoch: ``Step``
        with ``loss`` = the epoch's data error and ``total`` = the last epoch; ``Epoch``
        with ``error``, ``seconds``, ``patterns_per_s``), CanvasSnapshot (the object on its
        canvas, NaN where unilluminated) and ProbeSnapshot every ``snapshot_every`` epochs
        (with ``options.position_correction`` also PositionsSnapshot, and the history
        gains the positions' figures: docs/iterative.md#position-correction), then
        Finished, Stopped or Failed.
    control : pause/stop between batches; a stopped run returns what it has with
        ``stopped=True``.
    checkpoint_dir : write a checkpoint every ``checkpoint_every`` epochs (and on the last).
    resume : a checkpoint directory to continue from (``options.iterations`` is the total).
    previous : a result in memory to continue from (object, probe, epoch count, history and
        batch-order generator): ``options.iterations`` more epochs, so 5 then 5 more equal 10
        in one go. The result's ``options.iterations`` is the total.
    load : reads a probe file that is not NPZ for ``options.probe_init = "file:PATH"``
        (the API passes its ``load_dataset``).
    snapshot_seconds : also within an epoch, a CanvasSnapshot and a ProbeSnapshot after the
        first batch and then at most one every this many seconds (0: only at epoch ends),
        so a live view has a canvas long before the first epoch ends.

    The propagation (far field, or near field from ``dataset.geometry``) is
    ``options.propagation``'s (docs/conventions.md#propagation); the starting probe is
    ``options.probe_init``'s (:func:`engine.iterative.probe_init.initial_probe`).
    """
    if dataset.diffraction is None:
        raise InputError("dataset", "measured 'diffraction' to reconstruct from", "none")
    if not (isinstance(checkpoint_every, int) and checkpoint_every >= 1):
        raise InputError("checkpoint_every", "an integer >= 1", repr(checkpoint_every))
    if not (isinstance(snapshot_every, int) and snapshot_every >= 0):
        raise InputError("snapshot_every", "an integer >= 0 (0: no snapshots)",
                         repr(snapshot_every))
    if isinstance(snapshot_seconds, bool) or not isinstance(snapshot_seconds, int | float) \
            or not snapshot_seconds >= 0:
        raise InputError("snapshot_seconds", "a number of seconds >= 0 (0: epoch ends only)",
                         repr(snapshot_seconds))
    be = get_backend(backend, device) if isinstance(backend, str) else backend
    N, pos = dataset.N, dataset.positions
    geometry = CanvasGeometry.from_positions(pos, N)
    check_data_support(options, dataset.n, N, geometry.shape[0] * geometry.shape[1])
    if options.position_correction or (previous is not None
                                       and previous.positions is not None):
        geometry = position_geometry(geometry)
    mask = dataset.pixel_mask
    scale = intensity_scale(dataset.diffraction, mask, batch=options.batch_size)
    propagator = Propagator.from_geometry(dataset.geometry, N, options.propagation)
    start_probe = dataset.probe
    if options.probe_init != "given" and previous is None and resume is None:
        start_probe = initial_probe(dataset, options.probe_init, propagator, load=load)
    probe0, probe_factor = normalise_probe(start_probe)
    top_left = pos - N / 2 - np.asarray(geometry.origin, float)
    if is_lazy(dataset.diffraction):
        # streamed: each batch reads its rows; Σ_valid X² has mean (N/2)² by the scale's
        # definition, so the energy needs no second pass over the file
        problem = Problem.create(be, None, top_left, (N / 2) ** 2, mask=mask,
                                 stack=dataset.diffraction, stack_scale=scale,
                                 propagator=propagator)
    else:
        X = dataset.diffraction.astype(np.float64) / scale
        energy = X * X if mask is None else X * X * mask
        problem = Problem.create(be, be.asarray(X), top_left,
                                 float(np.mean(np.sum(energy, axis=(1, 2)))), mask=mask,
                                 propagator=propagator)
    if previous is not None:
        if resume is not None:
            raise InputError("previous", "either a previous result or a checkpoint to "
                             "resume, not both", "both")
        options = options.replace(iterations=previous.epochs + options.iterations)
    state, resumed = _start_state(dataset, options, init, resume, geometry, probe0, previous)
    emit = emit or (lambda event: None)
    emit(RunStarted(kind="reconstruct", config={
        **options.to_dict(), "backend": be.name, "device": be.device, "n": dataset.n, "N": N,
        "grid": list(geometry.shape), "origin": list(geometry.origin),
        "resumed_at": state.epoch if resumed else None, **propagator.describe()}))
    try:
        with _no_grad(be):
            return _run(problem, options, be, state, resumed, geometry, scale, probe_factor,
                        emit, control, checkpoint_dir, checkpoint_every, snapshot_every,
                        float(snapshot_seconds))
    except Exception as exc:
        emit(Failed.from_exception(exc))
        raise
    finally:
        problem.close()


def _run(problem: Problem, options: SolverOptions, be: Backend, state: SolverState,
         resumed: bool, geometry: CanvasGeometry, scale: float, probe_factor: float,
         emit: Callable[[Event], None], control: RunControl | None, checkpoint_dir: str | None,
         checkpoint_every: int, snapshot_every: int,
         snapshot_seconds: float = 0.0) -> ReconResult:
    step = _steps()[options.method]
    N = problem.N
    to_corner = N / 2 + np.asarray(geometry.origin, float)  # centre - corner, object coords
    initial_positions = problem.top_left + to_corner
    corrector = None
    if options.position_correction:
        H, W = geometry.shape
        corrector = PositionCorrector(problem.top_left, options, (H - N - 1.0, W - N - 1.0))
        if state.positions is not None:  # a resumed or continued run: its moved positions
            _set_corners(problem, state.positions - to_corner)
            if state.position_velocity is not None:
                corrector.velocity = np.array(state.position_velocity, dtype=np.float64)
    elif state.positions is not None:  # correction switched off: the corrected positions stay
        _set_corners(problem, state.positions - to_corner)
    obj = be.asarray(state.object, complex=True)
    probe = problem.to_frame(be.asarray(state.probe, complex=True))
    if not resumed and options.rescale_init:
        obj = obj * power_factor(_model_energy(problem, obj, probe), problem.mean_energy)
    n, total_energy = problem.n, problem.mean_energy * problem.n
    batch_size = min(options.batch_size, n)
    stopped = False
    # within-epoch snapshots (snapshot_seconds): the first after the first batch; each costs
    # a canvas, so the next waits at least four times what the last one cost
    next_snapshot = time.perf_counter() if snapshot_seconds > 0 else float("inf")
    while state.epoch < options.iterations:
        epoch = state.epoch
        order = (state.rng.permutation(n) if options.batch_order == "random"
                 else np.arange(n))
        update_probe = options.update_probe and epoch >= options.probe_update_start
        batches = _batches(problem.epoch_order(order), batch_size)
        problem.plan_reads(batches)  # a lazy stack reads each next batch meanwhile
        moving = corrector if corrector is not None and corrector.active(epoch) else None
        if moving is not None:
            moving.begin_epoch(problem)
        extra = {} if moving is None else {"corrector": moving}
        be.synchronize()
        t0 = time.perf_counter()
        err = 0.0  # a backend scalar while the epoch runs: no synchronisation per batch
        try:
            for i, idx in enumerate(batches):
                if control is not None:
                    control.checkpoint()
                obj, probe, e = step(problem, obj, probe, idx, options, update_probe, **extra)
                err = err + e
                emit(Progress(task="reconstruct", done=i + 1, total=len(batches),
                              message=f"epoch {epoch + 1}"))
                now = time.perf_counter()
                if now >= next_snapshot and i + 1 < len(batches):
                    emit(CanvasSnapshot.of(_masked(problem, obj, probe, geometry),
                                           f"{options.method}, epoch {epoch + 1}, batch "
                                           f"{i + 1}/{len(batches)}"))
                    emit(ProbeSnapshot(probe=be.to_numpy(problem.from_frame(probe)).astype(
                        np.complex64)))
                    cost = time.perf_counter() - now
                    next_snapshot = now + max(snapshot_seconds, 4 * cost)
        except StopRequested:
            stopped = True
            break
        if update_probe:
            obj, probe = _constrain_probe(be, obj, probe, options, problem.mean_energy)
        moved = moving.end_epoch(problem) if moving is not None else {}
        be.synchronize()
        seconds = time.perf_counter() - t0
        record = {"epoch": epoch + 1, "error": xp.to_float(err) / total_energy,
                  "seconds": seconds,
                  "patterns_per_s": n / seconds if seconds > 0 else float("inf"), **moved}
        state.history.append(record)
        state.epoch = epoch + 1
        emit(Step(step=state.epoch, total=options.iterations, epoch=state.epoch,
                  loss=float(record["error"])))
        emit(Epoch(epoch=epoch + 1, metrics={k: float(v) for k, v in record.items()
                                             if k != "epoch"}))
        if snapshot_every and (state.epoch % snapshot_every == 0
                               or state.epoch == options.iterations):
            emit(CanvasSnapshot.of(_masked(problem, obj, probe, geometry),
                                   f"{options.method}, epoch {state.epoch}"))
            emit(ProbeSnapshot(probe=be.to_numpy(problem.from_frame(probe)).astype(np.complex64)))
            if corrector is not None:
                emit(PositionsSnapshot(epoch=state.epoch, initial=initial_positions.copy(),
                                       current=corrector.current(problem) + to_corner))
        if checkpoint_dir is not None and (state.epoch % checkpoint_every == 0
                                           or state.epoch == options.iterations):
            state.object, state.probe = be.to_numpy(obj), be.to_numpy(problem.from_frame(probe))
            if corrector is not None:
                state.positions = corrector.current(problem) + to_corner
                state.position_velocity = corrector.velocity.copy()
            save_checkpoint(checkpoint_dir, state, options, {"intensity_scale": scale})
    obj_np = be.to_numpy(obj).astype(np.complex128)
    probe_np = be.to_numpy(problem.from_frame(probe)).astype(np.complex128)
    result = ReconResult(
        canvas=_masked(problem, obj, probe, geometry, obj_np),
        object=obj_np, probe=probe_np, history=list(state.history), options=options,
        epochs=state.epoch, stopped=stopped, intensity_scale=scale, probe_factor=probe_factor,
        info={"backend": be.name, "device": be.device,
              **(problem.near.propagator.describe() if problem.near is not None
                 else {"propagation": "far"})},
        rng_state=state.rng.bit_generator.state,
        positions=_final_positions(problem, corrector, state, to_corner),
        initial_positions=None if state.positions is None and corrector is None
        else initial_positions,
        position_velocity=None if corrector is None else corrector.velocity.copy())
    emit(Stopped(summary=result.summary()) if stopped else Finished(summary=result.summary()))
    return result


def _final_positions(problem: Problem, corrector: PositionCorrector | None,
                     state: SolverState, to_corner: np.ndarray) -> np.ndarray | None:
    """The run's window centres at the end (object coordinates), or ``None`` for a run
    that never corrected positions."""
    if corrector is not None:
        return corrector.current(problem) + to_corner
    return None if state.positions is None else problem.top_left + to_corner


def _set_corners(problem: Problem, corners: np.ndarray) -> None:
    """Put the windows at ``corners`` (n, 2) (host and, when batches index on the device,
    the device copy)."""
    problem.top_left[...] = corners
    if problem.device_top_left is not None:
        import torch

        problem.device_top_left.copy_(torch.as_tensor(corners))


def _masked(problem: Problem, obj: Any, probe: Any, geometry: CanvasGeometry,
            obj_np: np.ndarray | None = None) -> Canvas:
    """The object as a canvas: NaN where the probe's illumination is below the threshold."""
    be = problem.backend
    if obj_np is None:
        obj_np = be.to_numpy(obj)
    weight = _illumination_canvas(problem, probe, geometry.shape)
    coverage = weight > COVERAGE_THRESHOLD * weight.max()
    canvas = np.full(geometry.shape, np.nan, dtype=np.complex64)
    canvas[coverage] = obj_np[coverage]
    return Canvas(canvas, coverage, geometry.origin, weight.astype(np.float32))


def _constrain_probe(be: Backend, obj: Any, probe: Any, options: SolverOptions,
                     target: float) -> tuple[Any, Any]:
    """Mode orthogonalisation and the probe-power constraint (exit waves unchanged)."""
    if options.orthogonalise_modes and probe.shape[0] > 1:
        probe = be.asarray(orthogonalise(be.to_numpy(probe)), complex=True)
    if options.probe_power_constraint:
        c = power_factor(xp.to_float(xp.sum_axes(xp.abs2(probe), (0, 1, 2))), target)
        probe, obj = probe * c, obj * (1.0 / c)
    return obj, probe

