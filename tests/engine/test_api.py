"""engine.api: one calling convention, continuation in memory, scoped process state, the
notebook-sized flow of the engine API issue, and the events the live views read."""

from __future__ import annotations

import doctest
import hashlib
import os
import threading

import numpy as np
import pytest
import torch

from engine import api, runs
from engine.events import (
    TERMINAL,
    CanvasSnapshot,
    Epoch,
    PatchGridSnapshot,
    ProbeSnapshot,
    Step,
    Stopped,
)
from engine.network.bundles import WEIGHTS
from tests.conftest import single_torch_thread

_one_thread = pytest.fixture(scope="module", autouse=True)(single_torch_thread)


@pytest.fixture(scope="module")
def ds():
    return api.simulate(api.SimulationConfig(object="asym", n_positions=64, N=32, step=5,
                                             nphotons=1e6, seed=2))


def tiny(**kw) -> api.TrainConfig:
    base = dict(epochs=1, batch_size=8, base_channels=4, lr=3e-3, deterministic=True)
    return api.TrainConfig(**{**base, **kw})


def _digest(bundle) -> str:
    return hashlib.sha256((bundle / WEIGHTS).read_bytes()).hexdigest()


# -- reconstruct: ten more iterations from memory ------------------------------------------

@pytest.mark.parametrize("options", [
    api.LSQMLOptions(iterations=10, batch_size=16, update_probe=True, seed=4),
    api.EPIEOptions(iterations=10, batch_size=8, seed=4),
])
def test_five_then_five_more_from_memory_equal_ten(ds, options):
    straight = api.reconstruct(ds, options, snapshot_every=0)
    first = api.reconstruct(ds, options.replace(iterations=5), snapshot_every=0)
    more = api.reconstruct(ds, options.replace(iterations=5), previous=first,
                           snapshot_every=0)
    assert more.epochs == 10 and more.options.iterations == 10
    np.testing.assert_allclose(more.object, straight.object, rtol=0, atol=1e-12)
    np.testing.assert_allclose(more.probe, straight.probe, rtol=0, atol=1e-12)
    np.testing.assert_allclose(more.errors, straight.errors, rtol=1e-12)
    # the first result is not changed by continuing from it
    assert first.epochs == 5 and len(first.history) == 5


def test_continuing_checks_the_grid_and_refuses_a_checkpoint_too(ds, tmp_path):
    first = api.reconstruct(ds, api.EPIEOptions(iterations=1, batch_size=16))
    other = api.simulate(api.SimulationConfig(object="asym", n_positions=36, N=32, step=5))
    with pytest.raises(api.InputError, match="previous"):
        api.reconstruct(other, api.EPIEOptions(iterations=1), previous=first)
    with pytest.raises(api.InputError, match="previous"):
        api.reconstruct(ds, api.EPIEOptions(iterations=1), previous=first,
                        resume=str(tmp_path))


# -- one device keyword --------------------------------------------------------------------

def test_the_device_keyword_overrides_the_options(ds, tmp_path):
    # options that name a device this machine lacks: the keyword decides
    cfg = tiny(accelerator="cuda") if not torch.cuda.is_available() else tiny()
    result = api.train(ds, cfg, out=tmp_path / "run", device="cpu")
    assert not result.stopped
    infer_opts = api.InferConfig(device="cuda" if not torch.cuda.is_available() else "cpu")
    res = api.infer(ds, result.bundle, infer_opts, device="cpu", out=tmp_path / "inf")
    assert (tmp_path / "inf" / "recon.npz").is_file()
    assert api.load_canvas(tmp_path / "inf" / "recon.npz").canvas.shape == \
        res.canvas.canvas.shape
    assert "cpu" in api.available_devices()


def test_plan_training_is_what_train_does_and_moves_no_generator(ds, tmp_path):
    cfg = tiny(epochs=2, gridsize=2)
    state = torch.get_rng_state()
    plan = api.plan_training(ds, cfg)
    assert torch.equal(torch.get_rng_state(), state)
    steps = []
    api.train(ds, cfg, out=tmp_path, emit=lambda e: steps.append(e)
              if isinstance(e, Step) else None)
    assert plan["total_steps"] == len(steps) == steps[-1].total
    assert plan["C"] == 4 and plan["parameters"] > 0
    assert plan["memory_estimate_bytes"] > 16 * plan["parameters"]


# -- no process-wide side effects ----------------------------------------------------------

def _train_alone(ds, cfg, out):
    canvases = []
    result = api.train(ds, cfg, out=out, emit=lambda e: canvases.append(e.canvas)
                       if isinstance(e, CanvasSnapshot) else None)
    return _digest(result.bundle), canvases[-1]


def test_interleaved_runs_and_previews_equal_each_alone(ds, tmp_path):
    cfg_a = tiny(epochs=2, seed=0, snapshot_every=1)
    cfg_b = tiny(epochs=1, seed=7, gridsize=2, base_channels=6, batch_size=4, snapshot_every=1)
    solver = api.LSQMLOptions(iterations=3, batch_size=16, seed=1)
    alone_a = _train_alone(ds, cfg_a, tmp_path / "a0")
    alone_b = _train_alone(ds, cfg_b, tmp_path / "b0")
    alone_r = api.reconstruct(ds, solver).canvas.canvas
    preview = api.stitch(ds, grouping=api.GroupingConfig(gridsize=2)).canvas
    stats = api.patch_stats(ds, api.GroupingConfig(gridsize=2)).records[-1]

    # the same three at once on worker threads, with previews on this thread meanwhile
    rng_before = torch.get_rng_state()
    run_a = runs.start(api.train, ds, cfg_a, out=tmp_path / "a1")
    run_b = runs.start(api.train, ds, cfg_b, out=tmp_path / "b1")
    run_r = runs.start(api.reconstruct, ds, solver)
    seen = {}
    watchers = [threading.Thread(target=lambda n=name, r=run: seen.__setitem__(
        n, [e.canvas for e in r.events(timeout=600) if isinstance(e, CanvasSnapshot)]))
        for name, run in (("a", run_a), ("b", run_b), ("r", run_r))]
    for w in watchers:
        w.start()
    for _ in range(3):
        np.testing.assert_array_equal(
            api.stitch(ds, grouping=api.GroupingConfig(gridsize=2)).canvas, preview)
        assert api.patch_stats(ds, api.GroupingConfig(gridsize=2)).records[-1] == stats
    a, b, r = (run.result(timeout=600) for run in (run_a, run_b, run_r))
    for w in watchers:
        w.join(60)
    assert (_digest(a.bundle), _digest(b.bundle)) == (alone_a[0], alone_b[0])
    assert alone_a[0] != alone_b[0]
    np.testing.assert_array_equal(r.canvas.canvas, alone_r)
    np.testing.assert_array_equal(seen["a"][-1], alone_a[1])
    np.testing.assert_array_equal(seen["b"][-1], alone_b[1])
    # and after them, one after the other in this thread, the same again
    assert _train_alone(ds, cfg_b, tmp_path / "b2")[0] == alone_b[0]
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_a_run_leaves_the_generators_and_flags_as_it_found_them(ds, tmp_path):
    torch.manual_seed(1234)
    # NumPy's legacy global generator: the engine must leave it alone like torch's
    np.random.seed(99)  # noqa: NPY002
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(),  # noqa: NPY002
              torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    api.train(ds, tiny(deterministic=True, snapshot_every=1), out=tmp_path)
    api.reconstruct(ds, api.EPIEOptions(iterations=1, batch_size=16))
    after = (torch.get_rng_state(), np.random.get_state()[1],  # noqa: NPY002
             torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
             os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    assert torch.equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU memory needs a CUDA device")
def test_a_training_gives_its_gpu_memory_back(ds, tmp_path):
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    api.train(ds, tiny(accelerator="cuda", base_channels=16, batch_size=32), out=tmp_path,
              device="cuda")
    run = runs.start(api.train, ds, tiny(epochs=50, base_channels=16), out=tmp_path / "s",
                     device="cuda")
    next(e for e in run.events(timeout=120) if isinstance(e, Step))
    run.stop()
    run.result(timeout=60)
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= base + 1024
    assert torch.cuda.memory_reserved() <= base + (64 << 20)


# -- the live views' events ----------------------------------------------------------------

def test_training_snapshots_show_the_whole_scan_and_the_batch(ds, tmp_path):
    events = []
    api.train(ds, tiny(epochs=2, gridsize=2, snapshot_every=2, snapshot_groups=3),
              out=tmp_path, emit=events.append)
    canvases = [e for e in events if isinstance(e, CanvasSnapshot)]
    grids = [e for e in events if isinstance(e, PatchGridSnapshot)]
    reference = api.stitch(ds)
    # epoch 1: the validation stripe; epoch 2 (a snapshot epoch): the whole scan
    assert [c.label for c in canvases] == ["validation, epoch 1", "epoch 2"]
    for c in canvases:
        assert c.canvas.shape == c.coverage.shape == reference.canvas.shape
        assert c.origin == tuple(reference.origin)
        np.testing.assert_array_equal(np.isnan(c.canvas), ~c.coverage)
    stripe, whole = canvases[0].coverage.mean(), canvases[1].coverage.mean()
    assert whole > 2 * stripe and whole >= 0.9 * reference.coverage.mean()
    assert len(grids) == 1 and grids[0].gridsize == 2
    assert grids[0].amplitude.shape == grids[0].phase.shape == (3, 4, 32, 32)
    assert np.all(grids[0].amplitude >= 0) and np.abs(grids[0].phase).max() <= np.pi + 1e-6
    steps = [e for e in events if isinstance(e, Step)]
    assert all(set(e.metrics) == set() and e.epoch in (1, 2) for e in steps)


def test_solver_and_inference_snapshots_are_nan_masked_canvases(ds, tmp_path):
    events = []
    result = api.reconstruct(ds, api.EPIEOptions(iterations=2, batch_size=16),
                             emit=events.append, snapshot_every=1)
    snaps = [e for e in events if isinstance(e, CanvasSnapshot)]
    assert len(snaps) == 2 and sum(isinstance(e, ProbeSnapshot) for e in events) == 2
    last = snaps[-1]
    np.testing.assert_array_equal(last.coverage, result.canvas.coverage)
    np.testing.assert_array_equal(np.isnan(last.canvas), ~last.coverage)
    assert 0 < last.coverage.mean() < 1  # the grid's rim is not illuminated
    np.testing.assert_array_equal(last.canvas, result.canvas.canvas)
    steps = [e for e in events if isinstance(e, Step)]
    assert [(e.step, e.total, e.epoch) for e in steps] == [(1, 2, 1), (2, 2, 2)]
    assert [e.loss for e in steps] == result.errors

    bundle = api.train(ds, tiny(), out=tmp_path).bundle
    seen = []
    inferred = api.infer(ds, bundle, emit=seen.append)
    snap = next(e for e in seen if isinstance(e, CanvasSnapshot))
    np.testing.assert_array_equal(snap.coverage, inferred.canvas.coverage)
    np.testing.assert_array_equal(np.isnan(snap.canvas), ~snap.coverage)


def test_patch_grids_of_a_preview_are_written_by_the_engine(ds, tmp_path):
    log = api.patch_stats(ds, api.GroupingConfig(gridsize=2), batch_size=8, limit=2)
    paths = log.write_grid(tmp_path / "grid.png")
    assert [p.name for p in paths] == ["grid.png", "grid_normalized.png"]
    assert all(p.stat().st_size > 0 for p in paths)


# -- the "Done when" script of the engine API issue -----------------------------------------

def test_notebook_flow_train_watch_stop_then_flip_gridsize_and_preview(ds, tmp_path):
    # previews before the training, to compare with afterwards
    before = {g: (api.stitch(ds, grouping=api.GroupingConfig(gridsize=g)).canvas,
                  api.patch_stats(ds, api.GroupingConfig(gridsize=g)).records)
              for g in (1, 2)}
    run = runs.start(api.train, ds, tiny(epochs=50, gridsize=1), out=tmp_path)
    watched, epochs_seen = [], threading.Event()

    def watch():
        for event in run.events(timeout=300):
            watched.append(event)
            if isinstance(event, Epoch) and event.epoch == 2:
                epochs_seen.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert epochs_seen.wait(300)
    run.stop()
    watcher.join(60)
    assert not watcher.is_alive()
    result = run.result(timeout=60)
    assert result.stopped and 2 <= len(result.history) < 50
    assert isinstance(watched[-1], Stopped)
    assert sum(isinstance(e, TERMINAL) for e in watched) == 1
    assert {e.run_id for e in watched} == {run.run_id}
    assert [e.epoch for e in watched if isinstance(e, Epoch)][:2] == [1, 2]
    # flip gridsize and preview again: nothing of the training leaks into the previews
    for g in (2, 1):
        canvas = api.stitch(ds, grouping=api.GroupingConfig(gridsize=g))
        np.testing.assert_array_equal(canvas.canvas, before[g][0])
        assert api.patch_stats(ds, api.GroupingConfig(gridsize=g)).records == before[g][1]
    assert api.load_dataset  # the bundle the stopped run left is whole and loads
    api.infer(ds, result.bundle)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["engine.api", "engine.runs"])
def test_the_docstring_examples_run(module):
    import importlib

    failures, tried = doctest.testmod(importlib.import_module(module), verbose=False)
    assert tried >= 5 and failures == 0
