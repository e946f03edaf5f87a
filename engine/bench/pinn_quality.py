"""Reconstruction quality of a short training, recorded beside the throughput figures.

Simulates ``lines`` (N, n positions), trains at each gridsize under a fixed step budget,
infers on the whole scan with the bundle's scale and evaluates the stitched canvas against
the truth (docs/conventions.md#evaluation-metrics) on the whole covered region and on the
held-out (validation) stripe.
Optionally an iterative solver runs on the same data, from a flat start (the baseline a user
compares against) and from the network's canvas (the network as a solver's initialiser),
scored the same way.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import InputError
from engine.evaluation.metrics import evaluate_canvas
from engine.events import Callback, Progress, Step
from engine.iterative import SolverOptions, options_for, reconstruct
from engine.network.batches import region_split
from engine.network.config import TrainConfig
from engine.network.inference import InferConfig, infer
from engine.network.trainer import train
from engine.physics.stitching import Canvas, StitchConfig
from engine.simulation.simulate import SimulationConfig, simulate


def _figures(canvas: Canvas, truth: np.ndarray) -> dict[str, Any]:
    ev = evaluate_canvas(canvas, truth)
    return {"amplitude_pearson_r": ev["amplitude"]["pearson_r"],
            "amplitude_ssim": ev["amplitude"]["ssim"],
            "phase_rms_rad": ev["phase"]["rms_error_rad"],
            "phase_ssim": ev["phase"]["ssim"]}


def _masked(canvas: Canvas, keep: np.ndarray) -> Canvas:
    cov = canvas.coverage & keep
    return Canvas(np.where(cov, canvas.canvas, np.nan).astype(canvas.canvas.dtype), cov,
                  canvas.origin, np.where(cov, canvas.weight, 0).astype(np.float32))


def quality_run(N: int, n_positions: int, gridsize: int, epochs: int, batch_size: int,
                base_channels: int, lr: float | None, device: str, emit: Callback,
                seed: int = 0, steps: int | None = None, seconds: float | None = None,
                simulation: dict[str, Any] | None = None,
                stitch: list[dict[str, Any]] | None = None,
                refine: dict[str, Any] | None = None,
                **train_options: Any) -> dict[str, Any]:
    """Train, infer and evaluate one case.

    ``steps`` (optimiser steps) overrides ``epochs`` with the number of whole epochs closest
    to that budget, so that gridsizes and batch sizes compare at equal step counts;
    ``seconds`` limits the training's wall time (``TrainConfig.time_limit``; ``epochs`` or
    ``steps`` stay the upper bound); ``lr=None`` and absent ``train_options`` take
    :class:`TrainConfig`'s defaults; ``simulation`` overrides other
    :class:`~engine.simulation.simulate.SimulationConfig` fields (``step``, ``nphotons``,
    ``object``...);
    ``stitch`` lists changes (``crop``, ``window``) to inference's default
    :class:`~engine.physics.stitching.StitchConfig`, each scored on the same bundle beside it;
    ``refine`` (``{"method": "lsqml", "epochs": [1, 5], ...}``: a method, one or more epoch
    counts and other options of :func:`engine.iterative.options_for`) runs that solver on the
    same data for each epoch count, from flat and from the network's canvas.
    """
    variants = [_stitch_config(v) for v in (stitch or [])]
    solvers = _refine_options(refine)
    sim = SimulationConfig(**{"object": "lines", **(simulation or {}), "N": N,
                              "n_positions": n_positions, "seed": seed})
    ds = simulate(sim)
    options = dict(train_options, **({} if lr is None else {"lr": lr}),
                   **({} if seconds is None else {"time_limit": seconds}))
    cfg = TrainConfig(gridsize=gridsize, batch_size=batch_size, epochs=epochs,
                      base_channels=base_channels, seed=seed,
                      accelerator="cpu" if device == "cpu" else "auto", **options)
    if steps is not None:
        n_train = region_split(ds.positions, cfg.val_fraction)[0].size
        per_epoch = -(-n_train // batch_size)
        cfg = dataclasses.replace(cfg, epochs=max(1, round(steps / per_epoch)))
    # only the final bundle is used: per-epoch writes would dominate short GPU epochs
    cfg = dataclasses.replace(cfg, checkpoint_every=cfg.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(ds, cfg, Path(tmp), emit=lambda e: emit(Progress(
            task=f"quality g{gridsize}", done=e.step, total=e.total))
            if isinstance(e, Step) else None)
        train_s = time.perf_counter() - t0
        res = infer(result.bundle, ds, InferConfig(device=device))
        others = [(v, infer(result.bundle, ds, InferConfig(device=device, stitch=v)).canvas)
                  for v in variants]
    canvas = res.canvas
    # the held-out stripe: columns right of the last training position (plus the N/4 that
    # the default crop reaches), whatever the crop of the canvas scored
    tr, va = region_split(ds.positions, cfg.val_fraction)
    x_cut = ds.positions[tr, 1].max() + N / 4
    flat = Canvas(np.where(canvas.coverage, 1 + 0j, np.nan).astype(np.complex64),
                  canvas.coverage, canvas.origin, canvas.weight)
    return {
        "data": sim.to_dict(),
        "config": cfg.to_dict(), "network": res.bundle.meta["network"], "train_seconds": train_s,
        "steps": result.metrics.get("steps"), "history": result.history,
        "stitch": dataclasses.asdict(InferConfig().stitch),
        **_scores(canvas, ds.object, x_cut, bool(va.size)),
        "flat_object_baseline": _figures(flat, ds.object),
        "stitch_variants": [{"stitch": dataclasses.asdict(v),
                             **_variant_scores(c, ds.object, x_cut, bool(va.size))}
                            for v, c in others],
        "intensity_scale": res.scale,
        "refine": [_refined(ds, opts, init, canvas, device, x_cut, bool(va.size))
                   for opts in solvers for init in ("flat", "network")],
    }


def _refine_options(refine: dict[str, Any] | None) -> list[SolverOptions]:
    """One solver options object per epoch count of a ``refine`` request (checked up front,
    so that a typo fails before the training and not after it)."""
    if refine is None:
        return []
    if not isinstance(refine, dict) or "epochs" not in refine:
        raise InputError("refine", "an object with 'epochs' (and optionally 'method' and "
                         "solver options)", repr(refine))
    values = dict(refine)
    method = values.pop("method", "lsqml")
    epochs = values.pop("epochs")
    epochs = epochs if isinstance(epochs, list) else [epochs]
    if not epochs:
        raise InputError("refine epochs", "one or more epoch counts", "[]")
    return [options_for(method, **{**values, "iterations": e}) for e in epochs]


def _refined(ds: Any, options: SolverOptions, init: str, network: Canvas, device: str,
             x_cut: float, held_out: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    result = reconstruct(ds, options, backend="torch", device=device,
                         init=network if init == "network" else "flat", snapshot_every=0)
    return {"method": options.method, "epochs": options.iterations, "init": init,
            "seconds": time.perf_counter() - t0, "options": options.to_dict(),
            **_scores(result.canvas, ds.object, x_cut, held_out)}


def _stitch_config(fields: Any) -> StitchConfig:
    if not isinstance(fields, dict):
        raise InputError("stitch", "a list of objects of StitchConfig fields", repr(fields))
    try:
        # fields over inference's own default, so {"crop": 16} keeps its window
        return dataclasses.replace(InferConfig().stitch, **fields)
    except TypeError:
        raise InputError("stitch", "StitchConfig fields (crop, window, eps)",
                         str(sorted(fields))) from None


def _variant_scores(canvas: Canvas, truth: np.ndarray, x_cut: float, held_out: bool
                    ) -> dict[str, Any]:
    # a variant that cannot be scored (a crop too small to register) must not lose the case
    try:
        return _scores(canvas, truth, x_cut, held_out)
    except InputError as exc:
        return {"whole": None, "held_out": None, "error": str(exc)}


def _scores(canvas: Canvas, truth: np.ndarray, x_cut: float, held_out: bool
            ) -> dict[str, Any]:
    """Figures on the whole canvas and on the held-out stripe (``None`` without one)."""
    cols = canvas.origin[1] + np.arange(canvas.canvas.shape[1])
    # nothing is held out without a validation region (the canvas's edge is not a stripe)
    held = (cols[None, :] > x_cut) & held_out & canvas.coverage
    return {"whole": _figures(canvas, truth),
            "held_out": _figures(_masked(canvas, held), truth) if held.any() else None}
