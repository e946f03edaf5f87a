"""NumPy/torch agreement, checkpoint and resume, pause/stop, events, initialisation."""

from __future__ import annotations

import dataclasses
import sys
import threading
import types

import numpy as np
import pytest

from engine.errors import InputError
from engine.events import (
    CanvasSnapshot,
    Epoch,
    EventBus,
    Finished,
    ProbeSnapshot,
    Progress,
    RunControl,
    RunStarted,
)
from engine.iterative import (
    EPIEOptions,
    LSQMLOptions,
    RPIEOptions,
    phase_rms_unregistered,
    reconstruct,
)
from engine.physics.stitching import Canvas

pytest.importorskip("torch")

PARITY = [
    EPIEOptions(iterations=5, batch_size=1, update_probe=True),
    EPIEOptions(iterations=5, batch_size=9, update_probe=True, probe_update_start=2),
    RPIEOptions(iterations=5, batch_size=9, update_probe=True, probe_modes=2),
    LSQMLOptions(iterations=5, batch_size=9, update_probe=True, noise="gaussian"),
    LSQMLOptions(iterations=5, batch_size=9, step_directions="global"),
    LSQMLOptions(iterations=5, batch_size=9, update_probe=True, noise="poisson", probe_modes=2),
]


@pytest.mark.parametrize("options", PARITY, ids=lambda o: f"{o.method}-b{o.batch_size}-"
                         f"m{o.probe_modes}-{getattr(o, 'noise', '')}"
                         f"-{getattr(o, 'step_directions', '')}")
def test_numpy_and_torch_agree_after_five_iterations(small32, options):
    ref = reconstruct(small32, options, backend="numpy")
    got = reconstruct(small32, options, backend="torch", device="cpu")
    scale = np.abs(ref.object).max()
    # complex64 against float64 after 5 epochs of updates
    assert np.abs(got.object - ref.object).max() < 2e-3 * scale
    assert np.abs(got.probe - ref.probe).max() < 2e-3 * np.abs(ref.probe).max()
    np.testing.assert_allclose(got.errors, ref.errors, rtol=2e-3)
    assert ref.errors[-1] < ref.errors[0]


def test_resume_equals_uninterrupted(small32, tmp_path):
    opts = RPIEOptions(iterations=5, batch_size=6, update_probe=True, probe_modes=2, seed=4)
    straight = reconstruct(small32, opts)
    ck = tmp_path / "ck"
    first = reconstruct(small32, opts.replace(iterations=3), checkpoint_dir=str(ck))
    assert first.epochs == 3
    resumed = reconstruct(small32, opts, resume=str(ck))
    np.testing.assert_array_equal(resumed.object, straight.object)
    np.testing.assert_array_equal(resumed.probe, straight.probe)
    assert [r["error"] for r in resumed.history] == straight.errors


def test_stop_returns_early_and_its_checkpoint_resumes_exactly(small32, tmp_path):
    opts = LSQMLOptions(iterations=5, batch_size=6, seed=1)
    control = RunControl()

    def stop_after_two(event):
        if isinstance(event, Epoch) and event.epoch == 2:
            control.stop()

    ck = tmp_path / "ck"
    stopped = reconstruct(small32, opts, emit=stop_after_two, control=control,
                          checkpoint_dir=str(ck))
    assert stopped.stopped and stopped.epochs == 2
    resumed = reconstruct(small32, opts, resume=str(ck))
    straight = reconstruct(small32, opts)
    assert resumed.epochs == 5 and not resumed.stopped
    np.testing.assert_array_equal(resumed.object, straight.object)


def test_pause_blocks_until_resumed(small32):
    control = RunControl()
    progressed = []

    def on_event(event):
        if isinstance(event, Progress):
            progressed.append(event.done)
            if len(progressed) == 1:
                control.pause()

    result = {}
    worker = threading.Thread(target=lambda: result.update(r=reconstruct(
        small32, EPIEOptions(iterations=1, batch_size=6), emit=on_event, control=control)))
    worker.start()
    worker.join(0.5)
    assert worker.is_alive() and len(progressed) == 1  # parked between batches
    control.resume()
    worker.join(30)
    assert not worker.is_alive() and result["r"].epochs == 1 and len(progressed) == 6


def test_event_stream(small32):
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    reconstruct(small32, EPIEOptions(iterations=3, batch_size=12, update_probe=True), emit=bus,
                snapshot_every=2)
    kinds = [type(e) for e in seen]
    assert kinds[0] is RunStarted and kinds[-1] is Finished
    epochs = [e for e in seen if isinstance(e, Epoch)]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert all(e.metrics["error"] > 0 and e.metrics["patterns_per_s"] > 0 for e in epochs)
    assert kinds.count(CanvasSnapshot) == 2 and kinds.count(ProbeSnapshot) == 2  # epochs 2, 3
    snap = next(e for e in seen if isinstance(e, CanvasSnapshot))
    assert snap.canvas.dtype == np.complex64 and snap.canvas.ndim == 2
    assert sum(k is Progress for k in kinds) == 3 * 3


def test_init_from_a_canvas_npz_starts_closer_than_flat(small32, tmp_path):
    opts = EPIEOptions(iterations=1, batch_size=6)
    good = reconstruct(small32, opts.replace(iterations=15))
    good.canvas.save(tmp_path / "recon.npz")
    from_canvas = reconstruct(small32, opts, init=str(tmp_path / "recon.npz"))
    flat = reconstruct(small32, opts)
    assert from_canvas.errors[0] < flat.errors[0] / 5
    assert phase_rms_unregistered(from_canvas.canvas, small32.object) < \
        phase_rms_unregistered(flat.canvas, small32.object)


def test_init_fill_continues_the_canvas_so_a_global_phase_changes_nothing(small32):
    """A network's canvas carries an arbitrary global phase (no pattern can see it) and does
    not cover the solver's whole grid: the uncovered rim must continue the canvas (nearest
    covered value), or the solver starts from a phase step at the rim and spreads it inward."""
    from engine.iterative.init import start_on_grid
    from engine.physics.stitching import CanvasGeometry

    geometry = CanvasGeometry.from_positions(small32.positions, small32.N)
    truth = start_on_grid(small32.object, (0, 0), geometry, "truth")
    inner = np.full(truth.shape, np.nan, dtype=np.complex128)
    inner[8:-8, 8:-8] = truth[8:-8, 8:-8]
    shifted = inner * np.exp(1.2j)
    placed = start_on_grid(shifted, geometry.origin, geometry, "canvas")
    rim = np.isnan(inner)
    assert np.isfinite(placed).all() and np.array_equal(placed[~rim], shifted[~rim])
    assert placed[0, 0] == shifted[8, 8] and placed[-1, 20] == shifted[-9, 20]
    # a canvas smaller than the grid, placed by its origin, is continued the same way
    small = start_on_grid(shifted[8:-8, 8:-8], (geometry.origin[0] + 8, geometry.origin[1] + 8),
                          geometry, "canvas")
    assert np.array_equal(small, placed)
    opts = EPIEOptions(iterations=3, batch_size=6)
    errors = [phase_rms_unregistered(reconstruct(small32, opts, init=Canvas(
        c.astype(np.complex64), ~rim, geometry.origin, (~rim).astype(np.float32))).canvas,
        small32.object) for c in (inner, shifted)]
    # the global phase is invisible to the data: same start up to it, same phase error
    assert errors[1] == pytest.approx(errors[0], abs=2e-3), errors


def test_init_from_bundle_calls_infer_canvas(small32, tmp_path, monkeypatch):
    bundle = tmp_path / "runs" / "a"
    bundle.mkdir(parents=True)
    calls = []

    def infer_canvas(bundle_dir, dataset):
        calls.append(bundle_dir)
        cov = np.ones(dataset.object.shape, bool)
        return Canvas(dataset.object.copy(), cov, (0, 0), cov.astype(np.float32))

    fake = types.ModuleType("engine.network.inference")
    fake.infer_canvas = infer_canvas
    monkeypatch.setitem(sys.modules, "engine.network.inference", fake)
    result = reconstruct(small32, EPIEOptions(iterations=1, batch_size=6), init=str(bundle))
    assert calls and result.errors[0] < 1e-3  # started from the (true) network canvas


def test_bad_init_path_is_one_line(small32):
    with pytest.raises(InputError, match="^init"):
        reconstruct(small32, EPIEOptions(iterations=1), init="no/such/file.npz")


def test_dataset_without_diffraction_is_refused(small32):
    with pytest.raises(InputError, match="diffraction"):
        reconstruct(dataclasses.replace(small32, diffraction=None), EPIEOptions(iterations=1))
