"""The headless demo behind ``make run`` / ``ptycho demo``.

Simulate → forward model → stitch the truth → statistics → rPIE reconstruction → evaluation
→ report.

Writes ``report.png`` and ``report.json`` (plus the data, canvas and statistics files) into
the output directory.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from engine import api
from engine.atomic import write_json
from engine.backends import get_backend
from engine.data import write_npz
from engine.evaluation.metrics import to_jsonable
from engine.evaluation.report import write_overview_png

log = logging.getLogger(__name__)


def run_demo(out: str | Path, *, n_positions: int = 256, N: int = 64, gridsize: int = 2,
             backend: str = "torch", seed: int = 0, iterations: int = 15) -> dict:
    """Run the demo pipeline into ``out``; returns the report dictionary."""
    out = Path(out)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ds = api.simulate(api.SimulationConfig(object="asym", probe="disk", scan="raster",
                                           n_positions=n_positions, N=N, step=N / 8,
                                           jitter=0.0, nphotons=1e8, seed=seed))
    write_npz(out / "data.npz", ds)
    timings["simulate_s"] = time.perf_counter() - t0

    be = get_backend(backend, "auto")
    t0 = time.perf_counter()
    amp = be.to_numpy(be.forward(be.asarray(ds.object, complex=True),
                                 be.asarray(ds.probe, complex=True), ds.positions))
    timings["forward_s"] = time.perf_counter() - t0
    energy_in = float(np.mean(np.sum(np.abs(ds.probe * ds.patches) ** 2, axis=(1, 2))))
    energy_out = float(np.mean(np.sum(amp.astype(np.float64) ** 2, axis=(1, 2))))

    grouping = api.GroupingConfig(gridsize=gridsize, seed=seed)
    t0 = time.perf_counter()
    canvas = api.stitch(ds, api.StitchConfig(), grouping=grouping, backend=be)
    timings["stitch_s"] = time.perf_counter() - t0
    canvas.save(out / "canvas.npz")
    obj, cov = canvas.crop_object(ds.object.shape), canvas.crop_coverage(ds.object.shape)
    roundtrip = float(np.abs(obj[cov] - ds.object[cov]).max())

    stats = api.patch_stats(ds, grouping, backend=be, limit=2)
    stats.write(out / "analysis")

    t0 = time.perf_counter()
    recon = api.reconstruct(ds, api.RPIEOptions(iterations=iterations, batch_size=64),
                            backend=be)
    timings["reconstruct_s"] = time.perf_counter() - t0
    recon.save(out / "reconstruction")
    evaluation = to_jsonable(api.evaluate(recon.canvas, ds.object))
    write_json(out / "reconstruction" / "eval.json", evaluation)
    png = write_overview_png(out / "report.png", ds, canvas, recon=recon.canvas,
                             evaluation=evaluation,
                             title=f"demo: asym object, {ds.n} positions, gridsize {gridsize}, "
                                   f"{be.name} on {be.device}; rPIE {iterations} iterations")
    report = {
        "dataset": {"n": ds.n, "N": ds.N, "object_shape": list(ds.object.shape),
                    "simulation": ds.metadata["simulation"]},
        "backend": {"name": be.name, "device": be.device},
        "parseval": {"exit_wave_energy": energy_in, "far_field_energy": energy_out,
                     "relative_error": abs(energy_out - energy_in) / energy_in},
        "stitch_round_trip_max_error": roundtrip,
        "canvas": stats.records[-1]["canvas"],
        "patch_stats": {k: stats.records[-1][k] for k in
                        ("mean", "std", "var_zero_mean", "var_across_group", "n_patches")},
        "reconstruction": {
            "method": "rpie", "iterations": iterations,
            "phase_rms_rad": evaluation["phase"]["rms_error_rad"],
            "amplitude_ssim": evaluation["amplitude"]["ssim"],
            "amplitude_pearson_r": evaluation["amplitude"]["pearson_r"],
            "data_error": recon.errors[-1],
        },
        "timings": timings,
        "files": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        + ["report.json"],
        "report_png": str(png.relative_to(out)),
    }
    write_json(out / "report.json", report)
    return report
