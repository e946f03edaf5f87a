"""The workbench's Qt-free core: the merged run request, the run-kind registry, the event
table and the scriptable Workbench's answers to bad input (no viewer, no Qt: these always
run)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from engine import api, events
from engine.errors import InputError, PtychoError
from ptycho_gui import Workbench, WorkbenchModel
from ptycho_gui.kinds import KINDS, LIVE_SNAPSHOT_S
from ptycho_gui.live import EVENT_TABLE, LiveFeed, handler_for
from ptycho_gui.requests import merge_request

# -- one merged request ------------------------------------------------------------------------
# (kind, panel, workbench settings, explicit settings, expectations): every combination that
# went wrong when two settings stores were merged under "a default value means unset"
CASES = [
    # the panel's numpy overrides the workbench's torch
    ("lsqml", {"backend": "numpy"}, {"backend": "torch"}, {"backend"},
     {"backend": "numpy"}),
    ("epie", {}, {"backend": "torch"}, {"backend"}, {"backend": "torch"}),
    ("refine", {"backend": "numpy"}, {"backend": "torch"}, {"backend"}, {"backend": "numpy"}),
    # a value equal to the TrainConfig default is still an explicit choice over the preset
    ("train", {"lr_schedule": "constant", "preset": "quality"}, {}, set(),
     {"options.lr_schedule": "constant", "options.epochs": 80, "preset": "quality"}),
    ("train", {"preset": "quality"}, {}, set(), {"options.lr_schedule": "cosine"}),
    # the workbench's gridsize reaches training; the panel's wins when it gives one
    ("train", {}, {"gridsize": 3}, {"gridsize"}, {"options.gridsize": 3}),
    ("train", {"gridsize": 1}, {"gridsize": 3}, {"gridsize"}, {"options.gridsize": 1}),
    ("refine", {"train_epochs": 2}, {"gridsize": 2}, {"gridsize"},
     {"train_options.gridsize": 2, "train_options.epochs": 2}),
    # a setting nobody set does not override the preset or the engine's default
    ("train", {}, {"gridsize": 1}, set(), {"options.gridsize": 1, "preset": "quick",
                                           "options.base_channels": 8}),
    # infer's scaling: the bundle's by default (as `ptycho infer`), the workbench's when set
    ("infer", {}, {"scaling": "data"}, set(), {"options.scaling.mode": "bundle"}),
    ("infer", {}, {"scaling": "data"}, {"scaling"}, {"options.scaling.mode": "data"}),
    ("infer", {}, {"scaling": "fixed", "scale_value": 3.0}, {"scaling", "scale_value"},
     {"options.scaling.mode": "fixed", "options.scaling.value": 3.0}),
    ("infer", {"scaling": "fixed=2.5"}, {"scaling": "data"}, {"scaling"},
     {"options.scaling.value": 2.5}),
    # device: auto everywhere, resolved; an explicit cpu stays cpu
    ("lsqml", {}, {"device": "auto"}, set(), {"device": "auto", "resolved_device": "cpu"}),
    ("train", {"device": "cpu"}, {"device": "auto"}, {"device"},
     {"resolved_device": "cpu", "options.accelerator": "cpu"}),
    # the bundle: the panel's, else the workbench's, else the last trained
    ("infer", {"bundle": "a"}, {"bundle": "b"}, {"bundle"}, {"bundle": "a"}),
    ("infer", {}, {"bundle": "b"}, {"bundle"}, {"bundle": "b"}),
    ("infer", {}, {}, set(), {"bundle": "last"}),
]


def _get(obj, dotted):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize(("kind", "panel", "settings", "explicit", "expect"), CASES)
def test_merged_request(kind, panel, settings, explicit, expect, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    req = merge_request(kind, panel, settings, explicit, n_positions=64, bundle="last")
    for key, value in expect.items():
        assert _get(req, key) == value, (key, req.describe())
    for key in panel:  # where each value came from is said
        assert req.sources.get(key, "panel") == "panel"


def test_bad_panel_values_are_named():
    with pytest.raises(InputError, match="no_such_option"):
        merge_request("lsqml", {"no_such_option": 3}, {})
    with pytest.raises(InputError, match="^lr"):
        merge_request("train", {"lr": -1.0}, {})
    with pytest.raises(InputError, match="preset"):
        merge_request("train", {"preset": "fastest"}, {})
    with pytest.raises(InputError, match="bundle"):
        merge_request("infer", {}, {})


def test_default_training_on_a_gpu_machine_takes_the_gpu_and_the_standard_preset(
        monkeypatch):
    """Device resolution mocked to CUDA: a default training from the workbench (device
    auto, nothing edited) runs on the GPU with the standard preset, as `ptycho train`."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    wb = Workbench(auto_preview=False)
    wb.load("lines", n_positions=36, N=32)
    assert wb.device == "auto"
    req = wb.request("train")
    assert req.resolved_device == "cuda" and req.device == "auto"
    assert req.preset == "standard"
    assert req.options.accelerator == "cuda" and req.options.base_channels == 32
    assert req.options == api.training_config("standard", "cuda", n_positions=36,
                                              snapshot_every=1, accelerator="cuda",
                                              snapshot_seconds=LIVE_SNAPSHOT_S)
    # the solvers on torch go to the GPU too; numpy stays on the CPU
    wb.set(backend="torch")
    assert wb.request("lsqml").solver_device() == "cuda"
    assert wb.request("lsqml", backend="numpy").solver_device() == "cpu"


# -- the registry ------------------------------------------------------------------------------
def test_a_toy_run_kind_is_one_registry_entry(tmp_path):
    """A new kind touches one file: its registry entry and its job (here, this test)."""
    from ptycho_gui.kinds import Outcome, RunKind, register

    def toy_job(data, request, *, out, truth, emit, control, previous=None):
        emit(events.RunStarted(kind="toy", config={}))
        canvas = api.stitch(data, api.StitchConfig())
        for k in range(request.options.iterations):
            control.checkpoint()
            emit(events.Step(step=k + 1, total=request.options.iterations, loss=1.0 / (k + 1)))
        (out / "toy.txt").write_text("done")
        return Outcome(canvas, None, None, {"epochs": request.options.iterations}, False)

    register(RunKind("toy", "toy stitch", lambda: api.EPIEOptions, {"backend": "backend"},
                     (), toy_job))
    try:
        wb = Workbench(runs_root=tmp_path, auto_preview=False)
        wb.load("lines", n_positions=16, N=32)
        seen = []
        wb.runs.listeners_update.append(lambda s: seen.append(s.step))
        rec = wb.start("toy", iterations=3)
        assert wb.wait(60)
        assert rec.status == "finished" and rec.metrics == {"epochs": 3}
        assert (rec.out / "toy.txt").read_text() == "done" and rec.out.parent == tmp_path
        assert seen[-1] == 3 and wb.runs.feed.state.fraction == 1.0
        assert rec.canvas is not None and wb.history[-1] is rec
    finally:
        KINDS.pop("toy")


# -- the event table ---------------------------------------------------------------------------
def test_event_table_maps_engine_classes_to_updates():
    # every concrete event class of the engine has an entry (or a base with one)
    concrete = [c for c in vars(events).values() if isinstance(c, type)
                and issubclass(c, events.Event) and c is not events.Event]
    assert all(handler_for(c) is not None for c in concrete), [
        c.__name__ for c in concrete if handler_for(c) is None]
    assert all(k in vars(events).values() for k in EVENT_TABLE)  # classes, not names

    feed = LiveFeed("train")
    canvas = np.full((8, 8), np.nan, complex)
    canvas[2:6, 2:6] = 1 + 1j
    amp = np.ones((2, 4, 4, 4), np.float32)
    for e in (events.RunStarted(kind="train", config={}),
              events.Step(step=1, total=4, epoch=1, loss=0.5),
              events.Step(step=2, total=4, epoch=1, loss=float("nan")),
              events.Validation(epoch=1, metrics={"loss": 0.25}),
              events.StatsSnapshot(phase="train", record={"mean": 1.0, "std": 0.1}),
              events.PatchGridSnapshot(amplitude=amp, phase=amp, gridsize=2),
              events.CanvasSnapshot(canvas=canvas, origin=(3, 4), label="epoch 1"),
              events.ProbeSnapshot(probe=np.ones((4, 4), complex)),
              events.Epoch(epoch=1, metrics={"patterns_per_s": 12.0})):
        assert feed.apply(e)
    s = feed.state
    assert (s.phase, s.step, s.total, s.epoch) == ("train", 2, 4, 1)
    assert s.loss == [(1, 0.5)]  # a NaN loss is not plotted
    assert s.val_loss == [(2, 0.25)] and s.stats[0][1]["mean"] == 1.0
    assert s.patches[2] == 2 and s.patches[1] is not None
    assert s.canvas.origin == (3, 4) and s.canvas.coverage.sum() == 16
    assert s.canvas_label == "epoch 1" and s.probe.shape == (4, 4) and s.rate == 12.0
    assert s.fraction == pytest.approx(0.5)
    # a subclass finds its base's entry; an unknown event changes nothing
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class LateStep(events.Step):
        pass

    assert feed.apply(LateStep(step=3, total=4, loss=0.1)) and feed.state.step == 3

    @dataclass(frozen=True)
    class Unknown(events.Event):
        pass

    version = feed.state.version
    assert not feed.apply(Unknown()) and feed.state.version == version
    feed.apply(events.Finished(summary={}))
    assert feed.state.ended == "finished" and feed.state.fraction == 1.0


def test_a_malformed_event_is_logged_not_swallowed(caplog, tmp_path):
    from ptycho_gui.services import RunService

    model = WorkbenchModel(runs_root=tmp_path)
    service = RunService(model)

    class Run:
        def events(self):
            yield events.Step(step="not a number")  # int() fails in the handler
            yield events.Step(step=2, total=2, loss=1.0)

    feed = LiveFeed("train")
    with caplog.at_level(logging.ERROR):
        service._consume(Run(), feed)
    assert "could not apply Step" in caplog.text
    assert feed.state.step == 2  # the feed went on


# -- Workbench.set / load: bad input (issue 21 item 11) ----------------------------------------
BAD_SETTINGS = [
    ({"crop": 40}, "crop"),  # larger than N = 32
    ({"n_groups": 17}, "n_groups"),  # more groups than the 16 positions
    ({"gridsize": 5}, "gridsize"),
    ({"gridsize": 5, "n_groups": 2}, "gridsize"),  # 25 per group > 16 positions
    ({"neighbor_count": 30, "gridsize": 2}, "neighbor_count"),
    ({"bundle": "/no/such/bundle"}, "bundle"),
    ({"scaling": "bundle"}, "scaling"),  # no bundle to take it from
    ({"backend": "jax"}, "backend"),
    ({"device": "tpu"}, "device"),
    ({"no_such_setting": 1}, "no_such_setting"),
    ({"window": "hann"}, "window"),
    ({"gridsize": "2"}, "gridsize"),
    ({"scale_value": -1.0}, "scale_value"),
]


@pytest.fixture
def tiny_wb(tmp_path):
    wb = Workbench(runs_root=tmp_path)
    wb.load("lines", n_positions=16, N=32)
    assert wb.last_error is None
    return wb


@pytest.mark.parametrize(("settings", "name"), BAD_SETTINGS)
def test_set_with_a_bad_value_changes_nothing_and_names_it(tiny_wb, settings, name, tmp_path):
    if name == "bundle":  # a directory that exists but holds no bundle
        settings = {"bundle": str(tmp_path)}
    wb = tiny_wb
    before, result = wb.settings(), wb.result
    assert wb.set(**settings) is False
    assert wb.settings() == before and wb.result is result
    text = wb.last_error
    assert text.startswith(name) and "\n" not in text, text
    # the error does not repeat on the next, valid set
    assert wb.set(gridsize=2) is True and wb.last_error is None
    assert wb.result.groups.C == 4


BAD_LOADS = [
    (("lines",), {"foo": 1}, "foo"),
    ((42,), {}, "source"),
    (("linez",), {}, "lines"),  # names the samples, not "file missing"
    (("lines",), {"n_positions": -3}, "n_positions"),
    (("/no/such/file.npz",), {}, "file.npz"),
]


@pytest.mark.parametrize(("args", "kwargs", "said"), BAD_LOADS)
def test_load_with_bad_input_raises_one_line(args, kwargs, said):
    wb = Workbench()
    with pytest.raises(PtychoError) as info:
        wb.load(*args, **kwargs)
    text = str(info.value)
    assert said in text and "\n" not in text, text
    assert wb.data is None  # nothing half-loaded


def test_fixed_scaling_waits_for_its_value(tiny_wb):
    wb = tiny_wb
    assert wb.set(scaling="fixed")  # no error, no snap back
    assert wb.settings()["scaling"] == "fixed" and wb.last_error is None
    assert wb.result.scale.source == "data"  # the preview waits
    assert wb.set(scale_value=wb.result.scale.value * 10)
    assert wb.result.scale.source == "fixed" and wb.result.scale.mismatch


@pytest.mark.parametrize("module", ["ptycho_gui.model", "ptycho_gui.requests",
                                    "ptycho_gui.kinds", "ptycho_gui.live",
                                    "ptycho_gui.executors", "ptycho_gui.report",
                                    "ptycho_gui.painter", "ptycho_gui.workbench",
                                    "ptycho_gui.services"])
def test_the_docstring_examples_run(module, tmp_path, monkeypatch):
    import doctest
    import importlib

    monkeypatch.chdir(tmp_path)  # nothing an example writes lands in the checkout
    failures, tried = doctest.testmod(importlib.import_module(module), verbose=False)
    assert tried >= 1 and failures == 0


# -- several devices ---------------------------------------------------------------------------
def test_the_device_count_reaches_the_request_only_where_it_means_something(monkeypatch):
    """A solver run takes a rank count (one per GPU on a torch-on-CUDA run, CPU processes
    otherwise) bounded by what the machine has; kinds without one refuse it, naming it."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(api, "available_ranks", lambda device="cpu": 4 if device == "cuda"
                        else 2)
    req = merge_request("lsqml", {"devices": 4, "backend": "torch"}, {})
    assert req.devices == 4 and "4 ranks" in req.describe()
    assert merge_request("epie", {}, {}).devices == 1
    with pytest.raises(InputError, match="devices: expected at most 4 .the GPUs"):
        merge_request("lsqml", {"devices": 5, "backend": "torch"}, {})
    with pytest.raises(InputError, match="devices: expected at most 2 .the CPU cores"):
        merge_request("rpie", {"devices": 3, "backend": "numpy"}, {})
    with pytest.raises(InputError, match="devices: expected 1 for 'infer'"):
        merge_request("infer", {"devices": 2}, {}, bundle="b")
    # training has its own devices (Lightning Fabric's), an option of TrainConfig
    assert merge_request("train", {"devices": 2}, {}).options.devices == 2
    with pytest.raises(InputError, match="devices: expected a whole number"):
        merge_request("lsqml", {"devices": "2"}, {})


def test_a_two_rank_solver_run_from_the_workbench_is_the_engines(tmp_path, monkeypatch):
    """The run panel's device count runs the solver on two processes (gloo on the CPU):
    the workbench's result is the engine's two-rank result, and as good as one rank's
    (the ranks' global batches differ from one process's order, so not equal to it)."""
    monkeypatch.setattr(api, "available_ranks", lambda device="cpu": 2)
    wb = Workbench(runs_root=tmp_path, auto_preview=False)
    wb.load("lines", n_positions=36, N=16)
    opts = {"iterations": 2, "batch_size": 12, "backend": "numpy", "device": "cpu"}
    one = wb.start("lsqml", **opts)
    assert wb.wait(300) and one.status == "finished", one.error
    two = wb.start("lsqml", devices=2, **opts)
    assert wb.wait(300) and two.status == "finished", two.error
    assert two.request.devices == 2
    engine = api.reconstruct(wb.data, two.request.options, backend="numpy", device="cpu",
                             devices=2)
    np.testing.assert_allclose(two.recon.object, engine.object, rtol=1e-9, atol=1e-12)
    # a different but equally good batch order: the final errors agree to a few per cent
    assert two.recon.errors[-1] == pytest.approx(one.recon.errors[-1], rel=0.1)
    wb.close()
