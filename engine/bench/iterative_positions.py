"""Position correction side by side with pty-chi (part of ``ptycho bench iterative``).

The problem: a raster scan (default 144 positions, N = 32, step N/8, 10⁵ photons) of a
smooth object with the known probe; the solvers are given the positions with a random
error (1.5 px RMS), a 2 % scale and a 1° rotation, and run LSQ-ML with position correction
for the same epochs from a flat object (same batch size, start epoch and per-epoch step
limit). Figures: the positions' RMS error against the truth after removing the common
offset, the registered phase RMS of the object, and the time per epoch; plus each solver's
LSQ-ML from the true positions (what a perfect correction would reach). pty-chi runs its
gradient correction (``PositionCorrectionTypes.GRADIENT``, Fourier differentiation, its
update clipped to our per-epoch limit) at its default position step size 0.3 and at a
larger one (``--positions-ptychi-steps``), since its default moves slowly.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

import numpy as np

from engine.data import Dataset
from engine.events import Callback, Progress
from engine.iterative import options_for, reconstruct
from engine.simulation.simulate import SimulationConfig, simulate

RANDOM_RMS_PX = 1.5
SCALE_ERROR = 0.02
ROTATION_DEG = 1.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--positions", action="store_true",
                   help="also run the position-correction comparison with pty-chi")
    p.add_argument("--positions-only", action="store_true",
                   help="run only the position-correction comparison")
    p.add_argument("--positions-n", type=int, default=144,
                   help="position correction: scan positions (default 144)")
    p.add_argument("--positions-N", type=int, default=32,
                   help="position correction: pattern size (default 32)")
    p.add_argument("--positions-epochs", type=int, default=40,
                   help="position correction: epochs (default 40)")
    p.add_argument("--positions-batch", type=int, default=32,
                   help="position correction: LSQ-ML positions per update (default 32)")
    p.add_argument("--positions-ptychi-steps", default="0.3,3",
                   help="position correction: pty-chi position step sizes to run, comma-"
                        "separated (0.3 is its default; a larger one moves faster)")


def perturb(ds: Dataset, seed: int) -> Dataset:
    """``ds`` with its positions off by the benchmark's errors (module docstring)."""
    true = ds.positions
    centre = true.mean(axis=0)
    t = np.deg2rad(ROTATION_DEG)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    pos = (true - centre) @ ((1 + SCALE_ERROR) * rot).T + centre
    pos = pos + np.random.default_rng(seed).normal(0, RANDOM_RMS_PX / np.sqrt(2), pos.shape)
    return replace(ds, ycoords=pos[:, 0], xcoords=pos[:, 1])


def position_rms(positions: np.ndarray, truth: np.ndarray) -> float:
    """RMS distance (px) to the truth after removing the common offset."""
    d = np.asarray(positions) - truth
    d = d - d.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(d**2, axis=1))))


def run(args: argparse.Namespace, emit: Callback, device: str) -> dict[str, Any]:
    """The comparison's records and summary."""
    from engine.bench.iterative import _phase_errors, _ptychi, _rates

    ds = simulate(SimulationConfig(object="grf", probe="disk", scan="raster",
                                   n_positions=args.positions_n, N=args.positions_N,
                                   step=args.positions_N / 8, nphotons=1e5, seed=args.seed))
    given = perturb(ds, args.seed + 1)
    epochs, batch = args.positions_epochs, args.positions_batch
    opts = options_for("lsqml", iterations=epochs, batch_size=batch,
                       position_correction=True)
    jobs = [("ours", b) for b in args.backends.split(",") if b]
    if not args.no_ptychi:
        jobs += [("pty-chi", float(v)) for v in args.positions_ptychi_steps.split(",") if v]
    records: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    ref = reconstruct(ds, opts.replace(position_correction=False), snapshot_every=0)
    records.append({"solver": "ptycho-workbench", "backend": "numpy",
                    "case": "true positions, no correction", "epochs": epochs,
                    "seconds": time.perf_counter() - t0, **_phase_errors(ref.canvas, ds.object),
                    "positions_rms_px": 0.0})
    if not args.no_ptychi:  # pty-chi from the true positions: its own yardstick
        try:
            t0 = time.perf_counter()
            rec, sec = _ptychi(ds, "lsqml", batch, epochs, device)
            records.append({**rec, "case": "true positions, no correction",
                            "seconds": time.perf_counter() - t0, "positions_rms_px": 0.0,
                            **_rates([sec], ds.n)})
        except Exception as exc:  # recorded, not fatal: the comparison is optional
            records.append({"solver": "pty-chi", "error": f"{type(exc).__name__}: {exc}"[:500]})
    for k, (solver, backend) in enumerate(jobs):
        emit(Progress(task="bench iterative positions", done=k, total=len(jobs),
                      message=f"{solver} {backend}"))
        t0 = time.perf_counter()
        if solver == "ours":
            res = reconstruct(given, opts, backend=backend,
                              device=device if backend == "torch" else "cpu",
                              snapshot_every=0)
            rec = {"solver": "ptycho-workbench", "backend": backend,
                   **_phase_errors(res.canvas, ds.object), "positions": res.positions}
            sec = [r["seconds"] for r in res.history]
        else:
            try:
                rec, sec = _ptychi(given, "lsqml", batch, epochs, device,
                                   correction={"start": opts.position_start,
                                               "limit": opts.position_step_limit,
                                               "step_size": backend})
                rec["position_step_size"] = backend
            except Exception as exc:  # recorded, not fatal: the comparison is optional
                records.append({"solver": "pty-chi", "error":
                                f"{type(exc).__name__}: {exc}"[:500]})
                continue
        wall = time.perf_counter() - t0
        positions = rec.pop("positions")
        records.append({**{k: v for k, v in rec.items() if k != "options"},
                        "case": "given perturbed positions, corrected", "epochs": epochs,
                        "seconds": wall, "positions_rms_px": position_rms(positions,
                                                                           ds.positions),
                        **_rates([sec], ds.n)})
    return {"problem": {"object": "grf", "probe": "disk (known)", "scan": "raster",
                        "n": ds.n, "N": ds.N, "step": ds.N / 8, "nphotons": 1e5,
                        "seed": args.seed, "errors": {"random_rms_px": RANDOM_RMS_PX,
                                                      "scale": SCALE_ERROR,
                                                      "rotation_deg": ROTATION_DEG},
                        "initial_positions_rms_px": position_rms(given.positions,
                                                                 ds.positions),
                        "method": "lsqml", "batch_size": batch, "epochs": epochs,
                        "position_start": opts.position_start,
                        "position_step_limit_px": opts.position_step_limit},
            "runs": records, "summary": summary(records)}


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per solver: position RMS, phase RMS, epoch time; and our speed over pty-chi's."""
    out: dict[str, Any] = {}
    for r in records:
        if "error" in r:
            continue
        theirs = r["solver"].startswith("pty-chi")
        if r["case"].startswith("true"):
            key = "pty-chi reference (true positions)" if theirs else \
                "reference (true positions)"
        else:
            key = f"pty-chi step {r['position_step_size']:g}" if theirs else r["backend"]
        out[key] = {"positions_rms_px": round(r["positions_rms_px"], 4),
                    "phase_rms_rad": round(r["phase_rms_rad"], 4)}
        if "epoch_seconds_median" in r:
            out[key]["epoch_seconds_median"] = round(r["epoch_seconds_median"], 4)
    theirs = [v["epoch_seconds_median"] for k, v in out.items()
              if k.startswith("pty-chi step")]
    if theirs:
        ref = float(np.median(theirs))
        for key in ("numpy", "torch"):
            if key in out:
                out[key]["speed_over_ptychi"] = round(ref / out[key]["epoch_seconds_median"],
                                                      2)
    return out
