"""Live runs from the workbench with a viewer (the Qt executor, the threaded path): train,
stop, pause, refine, more iterations, errors, event-loop latency and equality with the
command line (tiny CPU problems). Run directories go to a temporary directory."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("napari")

from engine import api  # noqa: E402
from engine.errors import InputError  # noqa: E402
from tests.conftest import single_torch_thread  # noqa: E402

# a few seconds of CPU training: 64 patterns of N = 32, a narrow network
TINY_TRAIN = {"epochs": 2, "batch_size": 8, "base_channels": 8, "seed": 0}


@pytest.fixture(autouse=True)
def _one_thread():
    yield from single_torch_thread()


@pytest.fixture(scope="module")
def tiny_ds():
    return api.simulate(api.SimulationConfig(object="asym", probe="disk", scan="raster",
                                             n_positions=64, N=32, step=5, jitter=0.4,
                                             nphotons=1e6, seed=3))


class Runs:
    """The workbench's run face as the old tests used it (start, wait, state...)."""

    def __init__(self, wb, viewer):
        self.wb, self.viewer = wb, viewer
        self.listeners_update = wb.runs.listeners_update

    def start(self, kind, **options):
        return self.wb.start(kind, **options)

    def wait(self, timeout):
        return self.wb.wait(timeout)

    def state(self):
        return self.wb.runs.state()

    def until(self, predicate, timeout):
        """Deliver updates until ``predicate(state)`` holds (True) or the run ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.wb.runs.running:
            if predicate(self.state()):
                return True
            self.wb.runs.wait(0.05)
        return predicate(self.state())

    def __getattr__(self, name):
        return getattr(self.wb, name)


@pytest.fixture
def runs(make_napari_viewer, tiny_ds, tmp_path):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("ptycho-workbench", "Ptycho Workbench")
    wb = widget.workbench
    wb.auto_preview = False  # the runs, not the preview, are under test
    wb.runs_root = tmp_path / "runs"
    wb.load(tiny_ds)
    yield Runs(wb, viewer)
    wb.close()


def _layer(viewer, name):
    assert name in viewer.layers, [layer.name for layer in viewer.layers]
    return np.asarray(viewer.layers[name].data)


def _non_degenerate(a, min_var=1e-8):
    v = a[np.isfinite(a)]
    assert v.size > 0.2 * a.size, "mostly NaN"
    assert np.var(v) > min_var, f"flat layer (variance {np.var(v):.2e})"


def test_tiny_training_runs_to_the_end_with_live_and_final_layers(runs):
    seen, live = [], []
    runs.listeners_update.append(lambda s: seen.append(s.step))
    runs.listeners_update.append(lambda s: live.append((s.phase, s.canvas_label, s.canvas,
                                                        s.patches)))
    rec = runs.start("train", **TINY_TRAIN)
    assert runs.wait(180)
    assert rec.status == "finished", rec.error
    # while training, the live canvas is the whole scan (not the validation stripe) and the
    # patch grid holds the current batch's predicted amplitude and phase
    epochs = [(c, p) for _, label, c, p in live if label.startswith("epoch")]
    assert epochs, "no whole-scan canvas snapshot during training"
    canvas, patches = epochs[-1]
    assert np.mean(np.asarray(canvas.coverage)) > 0.5
    assert patches is not None and patches[1] is not None
    assert patches[0].shape[1] == patches[2] ** 2  # C = gridsize² channels per group
    # live updates arrived while it ran, with the step advancing
    assert len(set(seen)) >= 3 and seen == sorted(seen)
    assert 0 < max(seen) <= rec.metrics["steps"]
    v = runs.viewer
    for suffix in ("amplitude", "phase", "patch grid", "patch grid (normalised)"):
        _non_degenerate(_layer(v, f"{rec.name} {suffix}"))
    amp = _layer(v, f"{rec.name} amplitude")
    assert np.isnan(amp).any(), "the canvas must be NaN outside the coverage"
    # amplitude and phase side by side, not on top of each other
    a, ph = v.layers[f"{rec.name} amplitude"], v.layers[f"{rec.name} phase"]
    assert ph.translate[1] >= a.translate[1] + a.data.shape[1]
    stats = v.layers[f"{rec.name} patch grid"].metadata["statistics"]
    assert stats and all(np.isfinite(s["mean"]) and s["std"] > 0 for s in stats)
    assert not any(name.startswith("live ") for name in [layer.name for layer in v.layers])
    # the run directory has the command line's layout and the evaluation of `ptycho evaluate`
    out = rec.out
    assert out.parent.name == "runs" and out.name.endswith("-train")
    # `ptycho train --out <run>` then `ptycho infer <run> <data> --out <run>/network`
    assert (out / "bundle" / "bundle.json").is_file() and (out / "checkpoint").is_dir()
    assert (out / "network" / "recon.npz").is_file()
    ev = json.loads((out / "network" / "evaluation.json").read_text())
    assert ev["amplitude"]["ssim"] == pytest.approx(rec.metrics["amplitude_ssim"])
    assert ev["phase"]["rms_error_rad"] == pytest.approx(rec.metrics["phase_rms_rad"])
    assert rec.duration > 0 and rec.metrics["val_loss"] > 0


def test_stop_mid_run_leaves_the_last_bundle_and_checkpoint(runs):
    from engine.network.bundles import load_bundle

    rec = runs.start("train", **{**TINY_TRAIN, "epochs": 200})
    assert runs.until(lambda s: s.epoch >= 2, 120)
    runs.stop()
    assert runs.wait(10)
    assert rec.status == "stopped"
    assert rec.metrics["epochs"] < 200
    bundle = load_bundle(rec.out)  # verifies every digest: consistent after a stop
    assert bundle.meta["metrics"]["epochs"] >= 1
    state = json.loads((rec.out / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == bundle.meta["metrics"]["epochs"]
    # the workbench takes the next run at once
    nxt = runs.start("lsqml", iterations=2, batch_size=32)
    assert runs.wait(60) and nxt.status == "finished"


def test_pause_then_resume(runs):
    import threading

    from engine import events

    steps = []
    moved = threading.Event()
    rec = runs.start("lsqml", iterations=400, batch_size=8)
    assert runs.until(lambda s: s.epoch >= 2, 60)
    control = runs.wb.runs._run.control
    runs.pause()
    # parked: the worker waits inside control.checkpoint(); we wait on the control's own
    # state, then count the batches that still arrive over a window (a progress event per
    # batch, seen unthrottled by a subscriber on the run)
    assert control.paused and runs.state().paused
    runs.wb.runs._run._user_emit = lambda e: (steps.append(e), moved.set()) if isinstance(
        e, events.Progress) else None
    moved.wait(0.2)  # the batch in flight ends
    moved.clear()
    count = len(steps)
    assert not moved.wait(1.0), "a paused run went on"  # nothing in a whole second
    assert len(steps) == count
    runs.resume()
    assert moved.wait(30), "the run did not resume"
    runs.stop()
    assert runs.wait(10) and rec.status == "stopped"


def test_network_then_refine(runs):
    rec = runs.start("refine", iterations=3, batch_size=16,
                     **{f"train_{k}": v for k, v in TINY_TRAIN.items()})
    assert runs.wait(240)
    assert rec.status == "finished", rec.error
    m = rec.metrics
    assert m["epochs"] == 3 and m["trained"]
    # the refinement improves on the network's own canvas
    assert m["amplitude_ssim"] > m["network_amplitude_ssim"]
    for path in ("bundle/bundle.json", "network/recon.npz", "network/evaluation.json",
                 "recon.npz", "probe.npz", "refine_checkpoint", "evaluation.json"):
        assert (rec.out / path).exists(), path
    _non_degenerate(_layer(runs.viewer, f"{rec.name} amplitude"))


def test_lsqml_then_five_more_iterations_continue_the_same_state(runs):
    first = runs.start("lsqml", iterations=3, batch_size=16)
    assert runs.wait(60) and first.status == "finished"
    more = runs.more(5)
    assert runs.wait(60) and more.status == "finished", more.error
    assert more.metrics["epochs"] == 8
    hist = json.loads((more.out / "history.json").read_text())["history"]
    assert [r["epoch"] for r in hist] == list(range(1, 9))
    first_hist = json.loads((first.out / "history.json").read_text())["history"]
    # the continuation carries the first run's epochs as they were, then goes on downhill
    assert [r["error"] for r in hist[:3]] == [r["error"] for r in first_hist]
    assert hist[-1]["error"] < hist[2]["error"]
    assert more.metrics["amplitude_ssim"] >= first.metrics["amplitude_ssim"] - 1e-3


def test_bad_option_is_named_and_the_workbench_stays_usable(runs, tmp_path):
    with pytest.raises(InputError, match="lr"):
        runs.start("train", lr=-1.0)
    with pytest.raises(InputError, match="no_such_option"):
        runs.start("lsqml", no_such_option=3)
    # an error inside the run: a failed record naming the input, then a good run
    bad = runs.start("infer", bundle=str(tmp_path / "missing"))
    assert runs.wait(60)
    assert bad.status == "failed" and "missing" in bad.error and bad.error_field
    good = runs.start("lsqml", iterations=2, batch_size=32)
    assert runs.wait(60) and good.status == "finished"


# The event loop's gaps during runs and the stop latency are measured, not asserted (a test
# never bounds wall-clock time; on a shared machine such a bound either skips or flakes):
# benchmarks/gui_latency.py, results in benchmarks/RESULTS.md.


def test_workbench_and_command_line_give_the_same_bundle_and_canvas(runs, tiny_ds, tmp_path):
    from engine.cli import main
    from engine.data import write_npz
    from engine.physics.stitching import Canvas

    data = write_npz(tmp_path / "data.npz", tiny_ds)
    runs.wb.load(data)
    opts = {"epochs": 2, "batch_size": 8, "base_channels": 8, "seed": 7}
    rec = runs.start("train", device="cpu", **opts)
    assert runs.wait(180) and rec.status == "finished"
    assert rec.out.parent == tmp_path / "runs"
    cli = tmp_path / "cli"
    assert main(["train", str(data), "--out", str(cli), "--epochs", "2", "--batch-size", "8",
                 "--base-channels", "8", "--seed", "7", "--accelerator", "cpu"]) == 0
    assert main(["infer", str(cli), str(data), "--out", str(cli / "network"),
                 "--device", "cpu"]) == 0

    def weights_digest(run):
        return json.loads((run / "bundle" / "bundle.json").read_text())["files"]

    assert weights_digest(rec.out) == weights_digest(cli)
    a = Canvas.load(rec.out / "network" / "recon.npz")
    b = Canvas.load(cli / "network" / "recon.npz")
    assert a.origin == b.origin
    np.testing.assert_array_equal(a.coverage, b.coverage)
    np.testing.assert_allclose(a.canvas[a.coverage], b.canvas[b.coverage], rtol=0, atol=1e-6)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="CUDA only")
def test_gpu_memory_is_released_at_run_end(runs):
    import torch

    before = torch.cuda.memory_allocated()
    rec = runs.start("train", device="cuda:0", **TINY_TRAIN)
    assert runs.wait(180) and rec.status == "finished"
    rec = runs.start("lsqml", iterations=2, batch_size=16, backend="torch", device="cuda:0")
    assert runs.wait(60) and rec.status == "finished"
    assert torch.cuda.memory_allocated() == before


def test_closing_the_viewer_stops_a_run_and_restores_the_switch_interval(runs):
    import sys

    interval = sys.getswitchinterval()
    rec = runs.start("lsqml", iterations=10_000, batch_size=8)
    assert sys.getswitchinterval() <= 0.001  # the GUI thread gets the lock quickly
    assert runs.until(lambda s: s.epoch >= 1, 30)
    run = runs.wb.runs._run
    runs.viewer.close()
    assert run.wait(5), "the run went on after the viewer closed"
    assert rec.out.is_dir()
    assert sys.getswitchinterval() == interval


def test_flip_and_rerun_five_times_through_the_workbench(workbench, small_lines):
    wb, widget, viewer = workbench
    wb.load(small_lines)
    assert wb.wait(60)
    tiny = {**TINY_TRAIN, "epochs": 1}
    runs = []
    for settings, kind, options in (({"gridsize": 1}, "train", tiny),
                                    ({"gridsize": 2}, "train", tiny),
                                    ({"backend": "numpy"}, "lsqml", {"iterations": 3}),
                                    ({"backend": "torch"}, "lsqml", {"iterations": 3}),
                                    ({"scaling": "data"}, "infer", {})):
        assert wb.set(**settings)
        assert wb.wait(60)
        if kind == "infer":
            wb.load_bundle(runs[1].out)
        runs.append(wb.start(kind, **options))
        assert wb.wait(240)
        assert runs[-1].status == "finished", runs[-1].error
    assert [r.name for r in wb.history] == ["train #1", "train #2", "lsqml #1", "lsqml #2",
                                            "infer #1"]
    # each run ran with the setting flipped before it
    assert runs[0].settings["gridsize"] == 1 and runs[1].settings["gridsize"] == 2
    assert runs[0].request.options.gridsize == 1 and runs[1].request.options.gridsize == 2
    assert runs[3].settings["backend"] == "torch" and runs[3].request.backend == "torch"
    assert runs[4].request.options.scaling.mode == "data"
    assert runs[4].request.sources["scaling"] == "workbench"
    assert runs[4].metrics["scale_source"].startswith("from data")
    # five results side by side in the history, each with its figures against the truth
    rows = [widget.run_panel.history.item(i).text() for i in range(5)]
    assert all("SSIM" in row for row in rows), rows
    for r in runs:
        _non_degenerate(_layer(viewer, f"{r.name} amplitude"))
    # backends agree (same seeded solver, same data)
    a = viewer.layers[f"{runs[2].name} amplitude"].data
    b = viewer.layers[f"{runs[3].name} amplitude"].data
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, equal_nan=True)


def test_run_panel_bad_option_then_run_then_compare(workbench, small_lines):
    wb, widget, viewer = workbench
    wb.load(small_lines)
    assert wb.wait(60)
    panel = widget.run_panel
    # the greyed training values are the preset that runs here (quick on a CPU), and the
    # workbench settings a run inherits are shown, not duplicated
    panel.set_kind("train")
    quick = api.training_config(None, "cpu", n_positions=wb.data.n)
    assert panel.form.fields["base_channels"].widget.placeholderText() == str(
        quick.base_channels)
    assert panel.form.fields["epochs"].widget.placeholderText() == str(quick.epochs)
    assert "gridsize" not in panel.form.fields and "gridsize 1" in panel.inherited.text()
    assert "device auto" in panel.inherited.text()
    panel.set_kind("lsqml")
    panel.form.set_value("iterations", "three")
    panel.on_start()
    assert "iterations" in panel.status.text() and panel.start_button.isEnabled()
    assert not wb.runs.running
    panel.form.set_value("iterations", 3)
    panel.form.set_value("batch_size", 16)
    panel.on_start()
    assert not panel.start_button.isEnabled()
    assert wb.wait(120)
    panel.set_kind("epie")
    panel.form.set_value("iterations", 3)
    panel.on_start()
    assert wb.wait(120)
    assert panel.history.count() == 2 and panel.start_button.isEnabled()
    panel.history.item(0).setSelected(True)
    panel.history.item(1).setSelected(True)
    assert panel.compare_button.isEnabled()
    panel.on_compare()
    assert wb.wait(120)
    assert "compare A - B" in viewer.layers
    assert wb.comparison is not None
