"""Statistics (docs/conventions.md#statistics) and stitched canvases of the network's patches
(training and inference).

Both phases call :func:`collect_stats` with the same definition of a patch (what the
forward model sees), so ``stats_train.json`` and ``stats_inference.json`` compare directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.backends.torch_backend import TorchBackend
from engine.events import Event, StatsSnapshot
from engine.network.physics import PhysicsModel
from engine.network.predict import positions_of, predict
from engine.physics.grouping import Groups
from engine.physics.stats import (
    PooledStats,
    StatsLog,
    canvas_statistics,
    collapse_check,
    patch_statistics,
)
from engine.physics.stitching import Canvas, CanvasGeometry, StitchConfig, Stitcher

log = logging.getLogger(__name__)


def check_collapse(record: dict[str, Any], where: str) -> dict[str, Any]:
    """The collapse guards (:func:`engine.physics.stats.collapse_check`) on ``record``; a
    collapse is logged as a warning with its figures. Returns the check with ``where``."""
    guard = {**collapse_check(record), "where": where}
    if guard["collapsed"]:
        log.warning("collapse guard (%s): network output collapsed: %s (mean %s, "
                    "var_zero_mean %s)", where, "; ".join(guard["reasons"]),
                    _g(guard["mean"]), _g(guard["var_zero_mean"]))
    return guard


def _g(value: float | None) -> str:
    return "missing" if value is None else f"{value:.4g}"


class StatsCollector:
    """Statistics of every batch of one phase: the first ``limit`` kept as records
    (docs/conventions.md#statistics), plus a ``batch: "all"`` record over the whole set
    (exact mean, std, var_zero_mean, min, max; the stitched canvas's statistics when
    given). ``emit`` receives a :class:`~engine.events.StatsSnapshot` per kept record."""

    def __init__(self, groups: Groups, s: float, phase: str, device: str, limit: int = 2,
                 emit: Callable[[Event], None] | None = None) -> None:
        self.groups = groups
        self.emit = emit
        self.be = TorchBackend(device)
        self.log = StatsLog(phase=phase, gridsize=groups.gridsize, backend="torch",
                            device=device, intensity_scale=s, limit=limit)
        self.pooled = PooledStats()
        self.batches = 0

    def add(self, sl: slice, obj: torch.Tensor) -> None:
        amp = obj.detach().abs()
        figures = patch_statistics(amp, self.groups.local_offsets[sl], self.be)
        self.pooled.add(figures)  # batches past the limit still count in the "all" record
        if self.log.wants(self.batches):
            rec = self.log.add(self.batches, figures, self.be.to_numpy(amp))
            if self.emit is not None:
                self.emit(StatsSnapshot(phase=self.log.phase, record=rec))
        self.batches += 1

    def finish(self, out_dir: Path | None, canvas: Canvas | None = None) -> dict[str, Any]:
        """The whole-set record (appended to the records, with ``canvas`` statistics when a
        canvas is given); files written to ``out_dir``."""
        g = self.groups
        whole = {"phase": self.log.phase, "batch": "all", "gridsize": g.gridsize, "C": g.C,
                 "backend": "torch", "device": self.log.device,
                 "intensity_scale": self.log.intensity_scale, **self.pooled.result()}
        if canvas is not None:
            whole["canvas"] = canvas_statistics(canvas)
        self.log.records.append(whole)
        if out_dir is not None:
            self.log.write(out_dir)
        return whole


def collect_stats(model: PhysicsModel, x: torch.Tensor, groups: Groups, batch_size: int,
                  s: float, phase: str, device: str, out_dir: Path | None,
                  limit: int = 2, emit: Callable[[Event], None] | None = None) -> dict[str, Any]:
    """Predict and stitch every group and return the whole-set statistics record, canvas
    statistics included (see :class:`StatsCollector`); ``stats_<phase>.json`` and patch
    grids go to ``out_dir``."""
    collector = StatsCollector(groups, s, phase, device, limit, emit)
    canvas, _ = stitch_groups(model, x, groups, batch_size, on_batch=collector.add)
    return collector.finish(out_dir, canvas)


# How a network's patches are reassembled unless told otherwise: weighted by the probe's
# |P|², the least-squares merge of their exit waves (what an iterative solver's object update
# does), which trusts the rim of the illumination less than its centre. Against the uniform
# window it raised SSIM on every simulated set measured and tied on the real object
# (benchmarks/RESULTS.md, "Stitching the network's patches").
NETWORK_STITCH = StitchConfig(window="probe")


def stitch_groups(model: PhysicsModel, x: torch.Tensor, groups: Groups, batch_size: int,
                  geometry: CanvasGeometry | None = None, config: StitchConfig | None = None,
                  on_batch=None, on_prediction=None) -> tuple[Canvas, dict[str, Any]]:
    """Predict every group and stitch the patches at their positions
    (docs/conventions.md#stitching).

    Returns the canvas and ``{"record": stats of the first batch, "samples": its patches}``.
    ``on_batch(slice, patches)`` sees every batch (statistics, debug dumps);
    ``on_prediction(slice, patches, predicted amplitudes, inputs)`` too, with what a loss
    needs (validation takes its loss from the same pass).
    """
    config = config or NETWORK_STITCH
    N = x.shape[-1]
    be = TorchBackend(str(x.device))
    geometry = geometry or CanvasGeometry.from_positions(groups.positions.reshape(-1, 2), N)
    # the probe window weighs each patch by the illumination the network was trained under;
    # only it needs the probe on the host (validation stitches every epoch)
    probe = None
    if config.window == "probe":
        probe = torch.complex(model.probe_real, model.probe_imag).cpu().numpy()
    st = Stitcher(geometry, N, be, config, probe=probe)
    first: dict[str, Any] = {}
    for sl, obj, pred, xb in predict(model, x, groups, batch_size,
                                     amplitudes=on_prediction is not None):
        if on_prediction is not None:
            on_prediction(sl, obj, pred, xb)
        st.add(obj.reshape(-1, N, N), positions_of(groups, sl))
        if not first:
            amp = obj.abs()
            first = {"record": patch_statistics(amp, groups.local_offsets[sl], be),
                     "samples": amp[:4].cpu().numpy()}
        if on_batch is not None:
            on_batch(sl, obj)
    return st.result(), first
