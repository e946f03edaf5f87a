"""A grid of network trainings on one simulated problem, each scored against the truth.

``ptycho bench pinn-sweep --grid GRID.json`` reads a list of cases, trains each on
simulated ``lines`` under a step and/or time budget, infers on the whole scan with the
bundle's scale and evaluates the stitched canvas (docs/conventions.md#evaluation-metrics),
whole and held-out stripe.
It is how a training recipe is chosen: same data, same budget, one change at a time.

The grid file::

    {"base": {"N": 64, "n_positions": 1024, "steps": 4000, "gridsize": 2,
              "batch_size": 64, "val_fraction": 0.0},
     "cases": [{"name": "w8", "base_channels": 8},
               {"name": "w8-lr3e-3", "base_channels": 8, "lr": 0.003}]}

Each case is ``base`` updated by the case. Keys: ``name``; the problem (``N``,
``n_positions``, ``seed``, and ``simulation``: other ``SimulationConfig`` fields such as
``{"step": 4}``); the budget (``steps``, ``seconds``, ``epochs``); ``tf32``
(cuDNN and matmul TF32 on or off for this case, CUDA); ``stitch``: a list of changes to
inference's reassembly (probe window, crop N/2), e.g. ``[{"window": "uniform"}, {"crop": 16}]``,
each also scored on the same bundle (no further training); ``refine``: an iterative solver on
the same data, e.g. ``{"method": "lsqml", "epochs": [1, 5]}``, from flat and from the
network's canvas, each scored the same way; every other key is a
:class:`~engine.network.config.TrainConfig` field. Cases run in order and the JSON is
rewritten after each, so a capped run keeps what it measured; a failing case records its
error and the sweep goes on.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from engine.atomic import write_json
from engine.backends.torch_backend import resolve_device
from engine.bench.common import environment
from engine.bench.pinn_quality import quality_run
from engine.errors import InputError
from engine.events import Callback

PROBLEM_KEYS = ("N", "n_positions", "seed", "steps", "seconds", "epochs", "tf32", "name",
                "simulation", "stitch", "refine")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", required=True, help="JSON file: {'base': {...}, 'cases': [...]}")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--only", default=None, help="comma-separated case names to run")
    p.add_argument("--budget", type=float, default=None,
                   help="stop starting new cases after this many seconds")


def load_grid(path: str | Path) -> list[dict[str, Any]]:
    """The cases of a grid file, each merged over ``base`` (see the module docstring)."""
    try:
        grid = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError("--grid", "a readable JSON file", f"{path} ({exc})") from None
    if not isinstance(grid, dict) or not isinstance(grid.get("cases"), list) \
            or not grid["cases"]:
        raise InputError("--grid", "an object with a non-empty 'cases' list", str(path))
    base = grid.get("base", {})
    cases = [{**base, **c} for c in grid["cases"]]
    names = [c.get("name") for c in cases]
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) < len(names):
        raise InputError("--grid", "a unique, non-empty 'name' for every case", str(names))
    return cases


def run_case(case: dict[str, Any], device: torch.device, emit: Callback) -> dict[str, Any]:
    """Train, infer and evaluate one case of a grid."""
    train_options = {k: v for k, v in case.items() if k not in PROBLEM_KEYS
                     and k not in ("gridsize", "batch_size", "base_channels", "lr")}
    tf32 = case.get("tf32")
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    if tf32 is not None:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
    try:
        return quality_run(int(case.get("N", 64)), int(case.get("n_positions", 1024)),
                           int(case.get("gridsize", 1)), int(case.get("epochs", 10)),
                           int(case.get("batch_size", 16)), int(case.get("base_channels", 32)),
                           case.get("lr"), str(device), emit, seed=int(case.get("seed", 0)),
                           steps=case.get("steps"), seconds=case.get("seconds"),
                           simulation=case.get("simulation"), stitch=case.get("stitch"),
                           refine=case.get("refine"), **train_options)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _summary(q: dict[str, Any]) -> dict[str, Any]:
    if "error" in q:
        return {"error": q["error"]}
    s = {"steps": q["steps"], "train_s": round(q["train_seconds"], 1)}
    for where in ("whole", "held_out"):
        for k, v in (q.get(where) or {}).items():
            s[f"{where} {k}"] = round(v, 4)
    for v in q.get("stitch_variants", []):
        _labelled(s, ",".join(f"{k}={v['stitch'][k]}" for k in ("window", "crop")), v)
    for r in q.get("refine", []):
        _labelled(s, f"{r['method']} {r['epochs']} from {r['init']}", r)
    return s


def _labelled(s: dict[str, Any], label: str, record: dict[str, Any]) -> None:
    """A variant's (or a solver run's) SSIM and phase figures, and its error if any."""
    for where in ("whole", "held_out"):
        for k in ("amplitude_ssim", "phase_rms_rad"):
            if record[where]:
                s[f"[{label}] {where} {k}"] = round(record[where][k], 4)
    if "error" in record:
        s[f"[{label}] error"] = record["error"]


def run(args: argparse.Namespace, emit: Callback) -> dict[str, Any]:
    device = resolve_device(args.device)
    cases = load_grid(args.grid)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {c["name"] for c in cases}
        if unknown:
            raise InputError("--only", "names of cases in the grid", str(sorted(unknown)))
        cases = [c for c in cases if c["name"] in wanted]
    out: dict[str, Any] = {
        "suite": "pinn-sweep", "environment": environment(str(device)),
        "settings": {"grid": str(args.grid), "budget": args.budget}, "cases": [],
        "summary": {},
    }
    t0 = time.perf_counter()
    for case in cases:
        if args.budget is not None and time.perf_counter() - t0 > args.budget:
            out["summary"][case["name"]] = {"skipped": "budget spent"}
            continue
        try:
            q = run_case(case, device, emit)
        except Exception as exc:  # noqa: BLE001 - recorded; the sweep goes on
            q = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500]}
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        q = {"case": case, **{k: v for k, v in q.items() if k != "history"},
             "history": q.get("history")}
        out["cases"].append(q)
        out["summary"][case["name"]] = _summary(q)
        write_json(args.out, out)
    return out
