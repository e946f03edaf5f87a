"""Plain engine calls behind the command line and the GUI actions.

Each function takes a :class:`~engine.data.Dataset` and explicit configs and returns a
result object; the CLI, the napari widgets and notebooks call these same functions.

Examples
--------
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> ds = simulate(SimulationConfig(object="asym", n_positions=36, N=32, step=6, seed=0))
>>> canvas = stitch_dataset(ds, grouping=GroupingConfig(gridsize=2, n_groups=20))
>>> canvas.canvas.dtype.name
'complex64'
"""

from __future__ import annotations

import numpy as np

from engine.backends import Backend, get_backend
from engine.data import Dataset
from engine.errors import InputError
from engine.events import Callback, RunControl, StatsSnapshot, progress_emitter
from engine.physics.grouping import GroupingConfig, Groups, make_groups
from engine.physics.scaling import intensity_scale
from engine.physics.sources import Source, source_patches
from engine.physics.stats import PooledStats, StatsLog, patch_statistics
from engine.physics.stitching import Canvas, CanvasGeometry, StitchConfig, Stitcher


def _backend(backend: Backend | str, device: str) -> Backend:
    return get_backend(backend, device) if isinstance(backend, str) else backend


def stitch_dataset(ds: Dataset, *, source: Source = "truth", grouping: GroupingConfig | None = None,
                   stitch_config: StitchConfig | None = None, backend: Backend | str = "numpy",
                   device: str = "auto", batch_size: int = 1024,
                   emit: Callback | None = None, control: RunControl | None = None) -> Canvas:
    """Group the positions of ``ds``, take the patches of ``source``, stitch them.

    The canvas bounds come from all positions of ``ds`` so that any grouping gives the
    same canvas for the same patches. ``control`` is checked before every batch (a stop
    raises :class:`~engine.events.StopRequested`).
    """
    be = _backend(backend, device)
    groups = make_groups(ds.positions, grouping or GroupingConfig())
    patches = source_patches(ds, source, be)
    return _stitch_groups(patches, groups, ds, be, stitch_config, batch_size, emit, control)


def _stitch_groups(patches: np.ndarray, groups: Groups, ds: Dataset, be: Backend,
                   stitch_config: StitchConfig | None, batch_size: int,
                   emit: Callback | None, control: RunControl | None = None) -> Canvas:
    geometry = CanvasGeometry.from_positions(ds.positions, ds.N)
    st = Stitcher(geometry, ds.N, be, stitch_config, probe=ds.probe,
                  complex=bool(np.iscomplexobj(patches)))
    progress = progress_emitter(emit, "stitch")
    for sl in groups.batches(batch_size):
        if control is not None:
            control.checkpoint()
        st.add(patches[groups.indices[sl]], groups.positions[sl])
        if progress:
            progress(sl.stop, groups.n_groups)
    return st.result()


def stats_dataset(ds: Dataset, *, source: Source = "truth", grouping: GroupingConfig | None = None,
                  stitch_config: StitchConfig | None = None, backend: Backend | str = "numpy",
                  device: str = "auto", batch_size: int = 1024, phase: str = "truth",
                  limit: int | None = None, emit: Callback | None = None,
                  control: RunControl | None = None) -> StatsLog:
    """Statistics (docs/conventions.md#statistics) of the amplitude patches of ``source``, batch by
    batch.

    The returned log holds one record per batch (the first ``limit``) and a final record
    with ``batch = "all"`` over every group, carrying the stitched canvas statistics.
    ``control`` is checked before every batch (a stop raises
    :class:`~engine.events.StopRequested`).
    ``emit`` receives a :class:`~engine.events.StatsSnapshot` per kept batch record.
    """
    if limit is not None and not (isinstance(limit, int) and limit >= 1):
        raise InputError("limit", "an integer >= 1 (the batches recorded; none: all)",
                         repr(limit))
    be = _backend(backend, device)
    cfg = grouping or GroupingConfig()
    groups = make_groups(ds.positions, cfg)
    patches = source_patches(ds, source, be)
    # the statistics' one diffraction-side figure: over the valid detector pixels, streamed
    # from a lazy stack
    scale = (intensity_scale(ds.diffraction, ds.pixel_mask)
             if ds.diffraction is not None else None)
    log = StatsLog(phase=phase, gridsize=cfg.gridsize, backend=be.name, device=be.device,
                   intensity_scale=scale, limit=limit)
    pooled = PooledStats()
    progress = progress_emitter(emit, "stats")
    for i, sl in enumerate(groups.batches(batch_size)):
        if control is not None:
            control.checkpoint()
        amp = np.abs(patches[groups.indices[sl]])
        figures = patch_statistics(amp, groups.local_offsets[sl], be)
        pooled.add(figures)  # batches past the limit still count in the "all" record
        if log.wants(i):
            record = log.add(i, figures, amp)
            if emit is not None:
                emit(StatsSnapshot(phase=phase, record=record))
        if progress:
            progress(sl.stop, groups.n_groups)
    canvas = _stitch_groups(patches, groups, ds, be, stitch_config, batch_size, None, control)
    log.add("all", pooled.result(), canvas=canvas)
    return log
