"""Iterative solvers: patterns/s per epoch and phase RMS after a fixed number of epochs.

Every method runs on numpy and torch, and pty-chi 2.2.0 (``PtychographyTask`` with its
``LSQMLOptions`` / ``EPIEOptions``) runs side by side in the same process on the same arrays
when it is installed. All runs start from a flat object with the known probe (no probe
refinement), so the figures compare the solvers and not their probe handling.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from typing import Any

import numpy as np

from engine.backends.propagation import Propagator
from engine.bench.common import environment, peak_rss_mib
from engine.errors import InputError
from engine.evaluation.metrics import phase_rms
from engine.events import Callback, Epoch, Progress
from engine.iterative import options_for, phase_rms_unregistered, reconstruct
from engine.physics.scaling import intensity_scale, normalise_probe
from engine.physics.stitching import Canvas, CanvasGeometry
from engine.simulation.simulate import SimulationConfig, simulate

PTYCHI_METHODS = {"lsqml": "LSQMLOptions", "epie": "EPIEOptions"}
PTYCHI_MARGIN = 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=1024, help="scan positions (raster)")
    p.add_argument("--N", type=int, default=64, help="pattern size")
    p.add_argument("--epochs", type=int, default=10, help="solver epochs per case")
    p.add_argument("--nphotons", type=float, default=1e6, help="mean counts per pattern")
    p.add_argument("--methods", default="epie,rpie,lsqml", help="comma-separated solvers")
    p.add_argument("--backends", default="numpy,torch", help="comma-separated backends")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda or auto")
    p.add_argument("--batch-lsqml", type=int, default=256, help="LSQ-ML positions per update")
    p.add_argument("--batch-pie", type=int, default=64, help="ePIE/rPIE positions per update")
    p.add_argument("--epie-normalisation", choices=("overlap", "peak"), default="peak",
                   help="our batched ePIE object step; peak (default) is the rule of "
                        "pty-chi's EPIEOptions, so the two run the same algorithm")
    p.add_argument("--no-ptychi", action="store_true", help="skip the pty-chi comparison")
    p.add_argument("--seed", type=int, default=0, help="simulation and batch-order seed")
    p.add_argument("--torch-threads", type=int, default=0,
                   help="torch intra-op threads for every torch run, ours and pty-chi's "
                        "(0: torch's default)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs per configuration, interleaved (steadier on a shared machine)")
    p.add_argument("--near-field", action="store_true",
                   help="add the near-field case: a Siemens star, zone-plate probe, 1e4 "
                        "photons, angular-spectrum propagation (docs/iterative.md)")
    p.add_argument("--near-field-epochs", type=int, default=50,
                   help="LSQ-ML epochs of the near-field case")
    p.add_argument("--near-field-batch", type=int, default=32,
                   help="LSQ-ML positions per update in the near-field case")
    from engine.bench import iterative_positions

    iterative_positions.add_arguments(p)
    from engine.bench import iterative_devices

    iterative_devices.add_arguments(p)


def _problem(args: argparse.Namespace):
    return simulate(SimulationConfig(object="grf", probe="disk", scan="raster",
                                     n_positions=args.n, N=args.N, step=args.N / 8,
                                     nphotons=args.nphotons, seed=args.seed))


def _rates(seconds: list[float], n: int) -> dict[str, float]:
    """Patterns/s from per-epoch wall times: median (steady state) and best epoch.

    ``seconds`` holds one list per repeat; the first epoch of each (warm-up) is reported
    apart. The best epoch is the least disturbed by other load on a shared machine.
    """
    steady = [t for run in seconds for t in (run[1:] if len(run) > 1 else run)]
    return {"patterns_per_s": n / float(np.median(steady)),
            "best_epoch_patterns_per_s": n / float(np.min(steady)),
            "first_epoch_patterns_per_s": n / float(np.median([run[0] for run in seconds])),
            "epoch_seconds_median": float(np.median(steady)),
            "epoch_seconds": seconds}


def _ours(ds, method: str, backend: str, device: str, batch: int, epochs: int,
          epie_normalisation: str = "overlap") -> tuple[dict, list[float]]:
    """One run of our solver: its record and its per-epoch wall times."""
    extra = {"batch_normalisation": epie_normalisation} if method == "epie" else {}
    options = options_for(method, iterations=epochs, batch_size=batch, **extra)
    result = reconstruct(ds, options, backend=backend, device=device, snapshot_every=0)
    return ({"solver": "ptycho-workbench", "method": method, "backend": backend,
             "device": result.info["device"], "batch_size": batch, "epochs": epochs,
             **_phase_errors(result.canvas, ds.object),
             "final_error": result.errors[-1], "options": options.to_dict()},
            [r["seconds"] for r in result.history])


def _phase_errors(canvas: Canvas, truth: np.ndarray) -> dict[str, float]:
    """The phase RMS of every report (registered; docs/metrics.md) and the solvers' own
    unregistered, well-illuminated one, which the records before this name carried."""
    return {"phase_rms_rad": phase_rms(canvas, truth),
            "phase_rms_unregistered_rad": phase_rms_unregistered(canvas, truth)}


def _import_ptychi():
    """pty-chi, importable next to the CPU torch wheel.

    Its torchvision dependency registers kernels for two operators whose schemas the CUDA
    wheel defines; defining the schemas first lets torchvision (and pty-chi) import.
    """
    import torch

    try:
        import ptychi.api  # noqa: F401
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
        lib = torch.library.Library("torchvision", "DEF")  # noqa: TOR901 - schemas only
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _import_ptychi.keep = lib  # the library must outlive the import
    import ptychi
    import ptychi.api as api
    from ptychi.api.task import PtychographyTask

    return ptychi, api, PtychographyTask


@contextlib.contextmanager
def _torch_defaults_kept():
    """Restore torch's process-wide default device and dtype after pty-chi.

    ``PtychographyTask`` calls ``torch.set_default_device``, which installs a Python
    function mode that intercepts every later torch call in the process (about 2x the
    dispatch cost of a small op); left in place it slowed our solvers' next runs by ~1.5x
    on a GPU, where a batch is bound by that overhead.
    """
    import torch

    device, dtype = torch.get_default_device(), torch.get_default_dtype()
    try:
        yield
    finally:
        torch.set_default_device(None if device.type == "cpu" else device)
        torch.set_default_dtype(dtype)


def _ptychi(ds, method: str, batch: int, epochs: int, device: str,
            correction: dict[str, Any] | None = None) -> tuple[dict, list[float]]:
    """pty-chi on the same arrays: our geometry, our normalised units, flat start, fixed probe.

    pty-chi's far field is an unnormalised FFT, so it is given intensities (N·X)² where X are
    our normalised amplitudes; its patch centre ``c`` is ``y − 0.5`` in our convention (the
    window of centre y spans y − N/2 … y + N/2 − 1), so the position origin is (−0.5, −0.5)
    on our canvas grid. ``correction`` (``start``, ``limit`` px) turns on pty-chi's
    gradient position correction; the record then holds the corrected ``positions`` in
    object coordinates.
    """
    import torch

    ptychi, api, PtychographyTask = _import_ptychi()
    N = ds.N
    geometry = CanvasGeometry.from_positions(ds.positions, N)
    pos = ds.positions - np.asarray(geometry.origin, float)
    X = ds.diffraction.astype(np.float64) / intensity_scale(ds.diffraction)
    probe, _ = normalise_probe(ds.probe)
    opts = getattr(api, PTYCHI_METHODS[method])()
    opts.data_options.data = torch.as_tensor((N * X) ** 2, dtype=torch.float32)
    # pty-chi wants one more row/column than our grid to place patches without padding
    shape = (geometry.shape[0] + PTYCHI_MARGIN, geometry.shape[1] + PTYCHI_MARGIN)
    opts.object_options.initial_guess = torch.ones((1, *shape), dtype=torch.complex64)
    opts.object_options.pixel_size_m = 1.0
    opts.object_options.optimizable = True
    opts.object_options.step_size = 1.0
    opts.object_options.patch_interpolation_method = api.PatchInterpolationMethods.BILINEAR
    opts.object_options.determine_position_origin_coords_by = (
        api.ObjectPosOriginCoordsMethods.SPECIFIED)
    opts.object_options.position_origin_coords = np.array([-0.5, -0.5])
    opts.probe_options.initial_guess = torch.as_tensor(probe[None, None])
    opts.probe_options.optimizable = False
    opts.probe_position_options.position_y_px = pos[:, 0]
    opts.probe_position_options.position_x_px = pos[:, 1]
    opts.probe_position_options.optimizable = correction is not None
    if correction is not None:
        opts.probe_position_options.optimization_plan.start = correction["start"]
        opts.probe_position_options.correction_options.update_magnitude_limit = (
            correction["limit"])
        if correction.get("step_size") is not None:
            opts.probe_position_options.step_size = correction["step_size"]
    opts.reconstructor_options.batch_size = batch
    opts.reconstructor_options.num_epochs = epochs
    opts.reconstructor_options.default_device = (
        api.Devices.GPU if device.startswith("cuda") else api.Devices.CPU)
    if method == "lsqml":
        opts.reconstructor_options.noise_model = api.NoiseModels.GAUSSIAN
    else:
        opts.object_options.alpha = 1.0
    with _torch_defaults_kept():
        t0 = time.perf_counter()
        task = PtychographyTask(opts)
        setup = time.perf_counter() - t0
        seconds = []
        for _ in range(epochs):
            t = time.perf_counter()
            task.run(n_epochs=1)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - t)
        obj = task.get_data_to_cpu("object", as_numpy=True)[0]
        if correction is not None:
            pos = np.asarray(task.get_data_to_cpu("probe_positions", as_numpy=True),
                             dtype=np.float64)
    obj = obj[:geometry.shape[0], :geometry.shape[1]]
    weight = np.zeros(geometry.shape)
    from engine.backends import get_backend

    be = get_backend("numpy")
    be.scatter_add(weight, (np.abs(probe) ** 2)[None], pos - N / 2)
    coverage = weight > 1e-3 * weight.max()
    canvas = Canvas(np.where(coverage, obj, np.nan).astype(np.complex64), coverage,
                    geometry.origin, weight.astype(np.float32))
    record = {"solver": f"pty-chi {ptychi.__version__}", "method": method, "backend": "torch",
              "device": device, "batch_size": batch, "epochs": epochs, "setup_s": setup,
              **_phase_errors(canvas, ds.object)}
    if correction is not None:
        record["positions"] = pos + np.asarray(geometry.origin, float)
    return record, seconds


def run(args: argparse.Namespace, emit: Callback) -> dict[str, Any]:
    import torch

    if args.repeat < 1:
        raise InputError("--repeat", "an integer >= 1", str(args.repeat))
    if args.torch_threads < 0:
        raise InputError("--torch-threads", "an integer >= 0", str(args.torch_threads))
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    positions = None
    if args.positions or args.positions_only:
        from engine.bench import iterative_positions

        positions = iterative_positions.run(args, emit, device)
    if args.devices:
        from engine.bench import iterative_devices

        return {"suite": "iterative",
                "environment": {**environment(device), "load_average": list(os.getloadavg())},
                "devices": iterative_devices.run(args, emit, device),
                "peak_rss_mib": peak_rss_mib()}
    if args.positions_only:
        return {"suite": "iterative",
                "environment": {**environment(device), "load_average": list(os.getloadavg())},
                "positions": positions, "peak_rss_mib": peak_rss_mib()}
    ds = _problem(args)
    methods = [m for m in args.methods.split(",") if m]
    backends = [b for b in args.backends.split(",") if b]
    jobs = [("ours", m, b) for m in methods for b in backends]
    if not args.no_ptychi:
        jobs += [("ptychi", m, "torch") for m in methods if m in PTYCHI_METHODS]
    ptychi_status: dict[str, Any] = {"requested": not args.no_ptychi}
    records: dict[int, dict] = {}
    seconds: dict[int, list[list[float]]] = {}
    total, done = len(jobs) * args.repeat, 0
    # repeats are interleaved so that a burst of outside load hits every solver alike
    for _ in range(args.repeat):
        for k, (solver, method, backend) in enumerate(jobs):
            batch = args.batch_lsqml if method == "lsqml" else args.batch_pie
            emit(Progress(task="bench iterative", done=done, total=total,
                          message=f"{solver} {method} on {backend}"))
            done += 1
            if solver == "ours":
                rec, sec = _ours(ds, method, backend, device if backend == "torch" else "cpu",
                                 batch, args.epochs, args.epie_normalisation)
            elif ptychi_status.get("ran") is False:
                continue
            else:
                try:
                    rec, sec = _ptychi(ds, method, batch, args.epochs, device)
                    ptychi_status["ran"] = True
                except Exception as exc:  # recorded, not fatal: the comparison is optional
                    ptychi_status.update(ran=False,
                                         error=f"{type(exc).__name__}: {exc}"[:500])
                    continue
            records[k] = rec
            seconds.setdefault(k, []).append(sec)
    runs = [{**records[k], "repeat": len(seconds[k]), **_rates(seconds[k], ds.n)}
            for k in sorted(records)]
    near = near_field_case(args, backends, device, emit) if args.near_field else None
    emit(Epoch(epoch=args.epochs, metrics={"runs": float(len(runs))}))
    return {
        "suite": "iterative",
        "environment": {**environment(device), "load_average": list(os.getloadavg())},
        "problem": {"object": "grf", "probe": "disk", "scan": "raster", "n": ds.n, "N": ds.N,
                    "step": args.N / 8, "nphotons": args.nphotons, "seed": args.seed,
                    "init": "flat", "probe_handling": "known, not refined", "epochs": args.epochs},
        "ptychi": ptychi_status,
        "runs": runs,
        "summary": _summary(runs),
        **({} if positions is None else {"positions": positions}),
        "peak_rss_mib": peak_rss_mib(),
        **({"near_field": near} if near is not None else {}),
    }


# the near-field case's geometry: 12.4 keV, 0.2 m, 1 µm pixels (pixel Fresnel number 0.05;
# N p²/(λz) = 3.2 at N = 64, the transfer function sampled without aliasing)
NEAR_FIELD_GEOMETRY = {"propagation": "near", "wavelength": 1e-10, "distance": 0.2,
                       "detector_pixel": 1e-6}


def near_field_case(args: argparse.Namespace, backends: list[str], device: str,
                    emit: Callback) -> dict[str, Any]:
    """Near-field LSQ-ML (Poisson) on a simulated Siemens star with a structured (zone-plate)
    probe at 1e4 photons per pattern: phase error against the truth and time per backend,
    and the same data reconstructed with the far-field model as the reference that fails."""
    cfg = SimulationConfig(object="siemens", probe="zone-plate", scan="raster",
                           n_positions=args.n, N=args.N, step=args.N / 8, nphotons=1e4,
                           seed=args.seed, **NEAR_FIELD_GEOMETRY)
    ds = simulate(cfg)
    runs = []
    cases = [(b, "auto") for b in backends] + [(backends[0], "far")]
    for i, (backend, propagation) in enumerate(cases):
        emit(Progress(task="bench iterative", done=i, total=len(cases),
                      message=f"near field: {propagation} model on {backend}"))
        options = options_for("lsqml", iterations=args.near_field_epochs,
                              batch_size=args.near_field_batch, noise="poisson",
                              propagation=propagation)
        t0 = time.perf_counter()
        result = reconstruct(ds, options, backend=backend,
                             device=device if backend == "torch" else "cpu", snapshot_every=0)
        runs.append({"backend": backend, "device": result.info["device"],
                     "model": result.info["propagation"], "epochs": args.near_field_epochs,
                     "seconds": time.perf_counter() - t0,
                     **_phase_errors(result.canvas, ds.object),
                     "phase_rms_well_lit_rad": phase_rms(result.canvas, ds.object,
                                                         min_weight=0.3),
                     "final_error": result.errors[-1],
                     **_rates([[r["seconds"] for r in result.history]], ds.n)})
    prop = Propagator.from_geometry(ds.geometry, ds.N)
    return {"problem": {**cfg.to_dict(), "fresnel_number_pixel": prop.fresnel_number,
                        "method": "lsqml", "noise": "poisson",
                        "batch_size": args.near_field_batch, "init": "flat",
                        "probe_handling": "known, not refined"},
            "runs": runs}


def _summary(runs: list[dict]) -> dict[str, Any]:
    """Per method: patterns/s and phase RMS of each solver, and our speed over pty-chi's."""
    out: dict[str, Any] = {}
    for r in runs:
        key = "pty-chi" if r["solver"].startswith("pty-chi") else r["backend"]
        out.setdefault(r["method"], {})[key] = {
            "patterns_per_s": round(r["patterns_per_s"], 1),
            "best_epoch_patterns_per_s": round(r["best_epoch_patterns_per_s"], 1),
            "phase_rms_rad": round(r["phase_rms_rad"], 4),
            "phase_rms_unregistered_rad": round(r["phase_rms_unregistered_rad"], 4)}
    for figures in out.values():
        if "pty-chi" in figures:
            ref = figures["pty-chi"]["patterns_per_s"]
            for key in ("numpy", "torch"):
                if key in figures:
                    figures[key]["speed_over_ptychi"] = round(
                        figures[key]["patterns_per_s"] / ref, 2)
                    figures[key]["best_epoch_speed_over_ptychi"] = round(
                        figures[key]["best_epoch_patterns_per_s"]
                        / figures["pty-chi"]["best_epoch_patterns_per_s"], 2)
    return out
