"""Run kinds in one registry: what each kind is called, what it takes, what it runs.

A :class:`RunKind` names its key and label, its engine options class, the workbench
settings it takes (and under which option name), the run panel's extra controls it shows,
and its job (a function run on the engine's worker thread). Adding a kind is one
:func:`register` call plus its job; the run panel, :func:`~ptycho_gui.requests.merge_request`
and the run service read everything else from here.

Examples
--------
>>> [k for k in KINDS]
['train', 'infer', 'epie', 'rpie', 'lsqml', 'refine', 'resolution']
>>> KINDS["lsqml"].takes["backend"], KINDS["lsqml"].controls
('backend', ('init', 'probe', 'devices'))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import api
from engine.errors import InputError


@dataclass
class Outcome:
    """What a job returns: numpy results only (device memory is released at return)."""

    canvas: Any
    probe: np.ndarray | None
    bundle: Path | None
    metrics: dict[str, Any]
    stopped: bool
    recon: Any = None  # a solver's ReconResult, what "more iterations" continues
    warnings: list[str] = field(default_factory=list)
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


# live views: a canvas after the first steps, then at most one every this many seconds
# within an epoch (the engine's snapshot_seconds), besides one at every epoch end
LIVE_SNAPSHOT_S = 2.0

# a job: job(data, request, *, out, truth, emit, control, previous=None) -> Outcome
Job = Callable[..., Outcome]


@dataclass(frozen=True)
class RunKind:
    """One kind of run.

    Attributes
    ----------
    key, label : the kind's name in code and the words a user reads.
    options : a function returning the engine options class (called when needed: the
        network's classes import torch).
    takes : workbench setting -> option name, for the settings the kind inherits.
    controls : the run panel's extra controls it shows (``init``, ``probe`` (the
        starting probe), ``bundle``, ``preset``, ``devices`` (the rank count, shown on a
        machine with several GPUs)).
    job : what runs on the worker thread.
    build : ``build(typed_values, request_context) -> options`` when the options are not
        simply ``options()(**typed_values)`` (training builds on a preset).
    patterns_per_step : patterns a step processes, for the rate (from the options).
    """

    key: str
    label: str
    options: Callable[[], type]
    takes: dict[str, str]
    controls: tuple[str, ...]
    job: Job
    build: Callable[..., Any] | None = None
    patterns_per_step: Callable[[Any], float] = lambda o: float(getattr(o, "batch_size", 1))


KINDS: dict[str, RunKind] = {}


def register(kind: RunKind) -> RunKind:
    """Add ``kind`` to the registry (replacing one of the same key)."""
    KINDS[kind.key] = kind
    return kind


def get_kind(key: str) -> RunKind:
    if key not in KINDS:
        raise InputError("kind", f"one of {', '.join(KINDS)}", repr(key))
    return KINDS[key]


# -- the jobs (worker thread) ------------------------------------------------------------------
def figures(evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """Amplitude SSIM and phase RMS of an evaluation (``{}`` without one)."""
    if not evaluation:
        return {}
    phase = evaluation.get("phase") or {}
    return {"amplitude_ssim": float(evaluation["amplitude"]["ssim"]),
            "phase_rms_rad": None if not phase else float(phase["rms_error_rad"])}


def _evaluate(canvas: Any, truth: Any, out: Path | None) -> dict[str, Any]:
    if truth is None or canvas is None or out is None:
        return {}
    return figures(api.write_evaluation(canvas, truth, out / "evaluation.json",
                                        recon=str(out / "recon.npz"),
                                        truth_label="objectGuess of the data"))


def _inference_warnings(inference: Any) -> list[str]:
    out = []
    if getattr(inference, "collapsed", False):
        out.append("the network's output is nearly flat (collapsed): train longer or check "
                   "the intensity scale")
    return out


def train_job(data: api.Dataset, request: Any, *, out: Path, truth: Any, emit: Any,
              control: Any, previous: Any = None) -> Outcome:
    """``ptycho train`` then ``ptycho infer`` of the whole scan into ``out/network``."""
    res = api.train_then_infer(data, request.options, out=out, device=request.resolved_device,
                               truth=truth, emit=emit, control=control)
    metrics = dict(res.trained.metrics)
    metrics.pop("train_patch_stats", None)
    bundle = res.trained.bundle
    if res.stopped:
        return Outcome(None, None, bundle if Path(bundle).is_dir() else None, metrics, True)
    metrics.update(figures(res.evaluation))
    inference = res.inference
    return Outcome(inference.canvas, np.asarray(inference.bundle.probe), bundle, metrics,
                   False, warnings=_inference_warnings(inference))


def infer_job(data: api.Dataset, request: Any, *, out: Path, truth: Any, emit: Any,
              control: Any, previous: Any = None) -> Outcome:
    inference = api.infer(data, request.bundle, request.options, out=out,
                          device=request.resolved_device, emit=emit, control=control)
    metrics = {"intensity_scale": inference.scale, "scale_source": inference.scale_source}
    metrics.update(_evaluate(inference.canvas, truth, out))
    return Outcome(inference.canvas, np.asarray(inference.bundle.probe), Path(request.bundle),
                   metrics, False, warnings=_inference_warnings(inference))


def solve_job(data: api.Dataset, request: Any, *, out: Path, truth: Any, emit: Any,
              control: Any, previous: Any = None) -> Outcome:
    kwargs: dict[str, Any] = {"checkpoint_dir": str(out / "checkpoint"),
                              "checkpoint_every": request.checkpoint_every}
    if previous is not None:
        kwargs["previous"] = previous
    if request.devices > 1:  # ranks in their own processes; events come from rank 0
        kwargs["devices"] = request.devices
    result = api.reconstruct(data, request.options, init=request.init_source(),
                             backend=request.backend, device=request.solver_device(),
                             emit=emit, control=control, snapshot_seconds=LIVE_SNAPSHOT_S,
                             **kwargs)
    result.save(out)
    metrics = {k: v for k, v in result.summary().items() if k in (
        "epochs", "final_error", "stopped", "method", "backend", "device")}
    if not result.stopped:  # a stop answers at once; `ptycho evaluate` can score it later
        metrics.update(_evaluate(result.canvas, truth, out))
    return Outcome(result.canvas, result.probe, None, metrics, result.stopped, recon=result)


def refine_job(data: api.Dataset, request: Any, *, out: Path, truth: Any, emit: Any,
               control: Any, previous: Any = None) -> Outcome:
    res = api.network_then_refine(data, request.options, bundle=request.bundle,
                                  train_options=request.train_options, out=out,
                                  backend=request.backend, device=request.solver_device(),
                                  emit=emit, control=control,
                                  checkpoint_every=request.checkpoint_every)
    metrics = {k: v for k, v in res.summary().items() if k != "bundle"}
    if res.recon is not None:
        metrics["epochs"] = res.recon.epochs
        metrics["final_error"] = res.recon.errors[-1] if res.recon.history else None
    if res.network_canvas is not None and truth is not None:
        net = _evaluate(res.network_canvas, truth, out / api.NETWORK_FOLDER)
        metrics.update({f"network_{k}": v for k, v in net.items()})
    metrics.update(_evaluate(res.canvas, truth, out if res.recon is not None else None))
    probe = None if res.recon is None else res.recon.probe
    return Outcome(res.canvas, probe, res.bundle, metrics, res.stopped, recon=res.recon)


def resolution_job(data: api.Dataset, request: Any, *, out: Path, truth: Any, emit: Any,
                   control: Any, previous: Any = None) -> Outcome:
    """The half-split FRC (``ptycho evaluate --halves``) with the panel's solver options:
    both halves reconstructed, the curve and ``resolution.json``/``frc.png`` in ``out``;
    the first half's canvas is the run's."""
    res = api.resolution(data, request.options, backend=request.backend,
                         device=request.solver_device(), init=request.init_source(),
                         emit=emit, control=control, out=out)
    metrics = {"resolution_px": float(res.resolution_px),
               "resolution_nm": None if res.resolution_nm is None else float(res.resolution_nm),
               "crossing_cycles_per_px": float(res.crossing),
               "reached_nyquist": bool(res.reached_nyquist), "split": res.split}
    curves = {"frc": [(float(f), float(v)) for f, v in zip(res.frequency, res.frc,
                                                            strict=True)],
              "frc_threshold": [(float(f), float(v)) for f, v in zip(
                  res.frequency, res.threshold, strict=True)]}
    first = res.results[0]
    return Outcome(first.canvas, first.probe, None, metrics, False, curves=curves)


def _train_options() -> type:
    return api.TrainConfig


def _infer_options() -> type:
    return api.InferConfig


def build_training(values: dict[str, Any], ctx: Any) -> Any:
    """The TrainConfig ``ptycho train`` builds: the preset (the device's when none is
    given) with the given fields over it; the live views want the whole scan's canvas every
    epoch (the engine's default emits only the validation stripe) and from the first steps
    on (``snapshot_seconds``)."""
    values = {"snapshot_every": 1, "snapshot_seconds": LIVE_SNAPSHOT_S, **values}
    values.setdefault("accelerator", "cuda" if ctx.resolved_device.startswith("cuda")
                      else "cpu")
    return api.training_config(ctx.preset, ctx.resolved_device,
                               n_positions=ctx.n_positions, **values)


GRIDDING = {"gridsize": "gridsize", "neighbor_count": "neighbor_count"}
SOLVER_TAKES = {"backend": "backend", "device": "device", "bundle": "bundle"}

register(RunKind("train", "train network", _train_options,
                 {**GRIDDING, "device": "device"}, ("preset",), train_job,
                 build=build_training,
                 patterns_per_step=lambda o: float(o.batch_size * o.gridsize ** 2)))
register(RunKind("infer", "infer with a bundle", _infer_options,
                 {"scaling": "scaling", "scale_value": "scale_value", "device": "device",
                  "bundle": "bundle"}, ("bundle",), infer_job))
register(RunKind("epie", "ePIE", lambda: api.EPIEOptions, SOLVER_TAKES,
                 ("init", "probe", "devices"), solve_job))
register(RunKind("rpie", "rPIE", lambda: api.RPIEOptions, SOLVER_TAKES,
                 ("init", "probe", "devices"), solve_job))
register(RunKind("lsqml", "LSQ-ML", lambda: api.LSQMLOptions, SOLVER_TAKES,
                 ("init", "probe", "devices"), solve_job))
register(RunKind("refine", "network then refine", lambda: api.LSQMLOptions,
                 {"gridsize": "train_gridsize", "neighbor_count": "train_neighbor_count",
                  **SOLVER_TAKES}, ("bundle", "preset"), refine_job))
register(RunKind("resolution", "resolution (half-split FRC)", lambda: api.LSQMLOptions,
                 SOLVER_TAKES, ("init", "probe"), resolution_job))

__all__ = ["KINDS", "Outcome", "RunKind", "get_kind", "register"]
