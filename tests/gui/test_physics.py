"""The workbench side of measured-data physics (issue 19): live position correction, the
starting probe, the half-split FRC run kind, near-field samples; and the issue-20 leftovers
(an early live canvas, a stop acknowledged at the engine's end event). Tiny CPU problems;
run directories go to a temporary directory. Tests without ``make_napari_viewer`` need no
display (``Workbench(viewer=None)``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import api, events
from engine.errors import InputError
from ptycho_gui import Workbench
from ptycho_gui.live import LiveFeed
from ptycho_gui.painter import DISPLACEMENT, DISPLACEMENT_GAIN

# a corrected LSQ-ML run that moves positions from its first epoch
CORRECTED = {"iterations": 4, "batch_size": 12, "position_correction": True,
             "position_start": 0}


@pytest.fixture
def one_torch_thread():
    from tests.conftest import single_torch_thread

    yield from single_torch_thread()


@pytest.fixture
def near_wb(tmp_path):
    wb = Workbench(runs_root=tmp_path / "runs")
    wb.load("siemens", n_positions=36, N=32)
    assert wb.wait(60)
    yield wb
    wb.close()


def test_event_table_maps_positions_snapshot_to_a_positions_update():
    feed = LiveFeed("lsqml")
    initial = np.array([[10.0, 10.0], [10.0, 16.0]])
    current = initial + [[0.2, -0.1], [0.0, 0.3]]
    assert feed.apply(events.PositionsSnapshot(epoch=3, initial=initial, current=current))
    s = feed.snapshot()
    np.testing.assert_array_equal(s.positions, current)
    np.testing.assert_array_equal(s.initial_positions, initial)
    assert s.positions_epoch == 3


def test_corrected_lsqml_run_ends_with_moved_positions(near_wb):
    ds = near_wb.data
    rec = near_wb.start("lsqml", **CORRECTED)
    assert near_wb.wait(300) and rec.status == "finished", rec.error
    state = near_wb.runs.state()
    assert state.positions_epoch == CORRECTED["iterations"]
    np.testing.assert_allclose(state.initial_positions, ds.positions)
    moved = np.linalg.norm(state.positions - state.initial_positions, axis=1)
    assert moved.max() > 0.01 and moved.max() <= CORRECTED["iterations"] * 0.5 + 1e-9
    # the record holds the result's final corrected positions (the live ones agree)
    np.testing.assert_allclose(rec.positions, rec.recon.positions)
    np.testing.assert_allclose(rec.positions, state.positions)
    assert rec.recon.info["propagation"] == "near"  # the solver took the data's geometry


def test_propagation_is_stated_from_the_geometry(near_wb, tmp_path):
    assert near_wb.propagation_text().startswith("near field (z = 0.2 m")
    assert "Fresnel number 0.05" in near_wb.propagation_text()
    # the preview's forward check used the near-field propagator, and it fits the data
    forward = near_wb.result.forward
    assert forward["propagation"] == "near" and forward["misfit"] < 0.05, forward
    far = Workbench(runs_root=tmp_path / "far", auto_preview=False)
    far.load("lines", n_positions=16, N=32)
    assert far.propagation_text() == "far field"


def test_starting_probe_follows_the_choice_and_the_dataset(near_wb):
    ds = near_wb.data
    np.testing.assert_allclose(near_wb.starting_probe, api.initial_probe(ds, "given"))
    near_wb.show_starting_probe("gaussian")
    assert near_wb.wait(30) and near_wb.probe_init == "gaussian"
    gauss = api.initial_probe(ds, "gaussian")
    np.testing.assert_allclose(near_wb.starting_probe, gauss)
    assert not np.allclose(gauss, api.initial_probe(ds, "given"))
    with pytest.raises(InputError, match="probe_init"):
        near_wb.show_starting_probe("cone")
    assert near_wb.probe_init == "gaussian"  # a bad choice changes nothing
    near_wb.load("lines", n_positions=16, N=32)  # a new dataset: the choice's probe of it
    assert near_wb.wait(30)
    np.testing.assert_allclose(near_wb.starting_probe,
                               api.initial_probe(near_wb.data, "gaussian"))
    # the run takes the choice the panel sends as probe_init
    assert near_wb.request("lsqml", probe_init="data").options.probe_init == "data"


def test_resolution_run_kind_gives_the_curve_and_the_history_line(near_wb):
    rec = near_wb.start("resolution", iterations=3, batch_size=12)
    assert near_wb.wait(300) and rec.status == "finished", rec.error
    m = rec.metrics
    saved = json.loads((rec.out / "resolution.json").read_text())
    assert m["resolution_px"] == pytest.approx(saved["resolution_px"])
    assert m["resolution_nm"] == pytest.approx(m["resolution_px"] * 1e3)  # 1 µm pixels
    freq, frc = zip(*rec.curves["frc"], strict=True)
    assert len(freq) == len(rec.curves["frc_threshold"]) >= 4
    assert 0 < freq[0] < freq[-1] <= 0.5 + 1e-9 and max(frc) <= 1 + 1e-9
    at = "≤ " if m["reached_nyquist"] else ""
    assert f"resolution {at}{m['resolution_nm']:.1f} nm" in rec.row()
    assert (rec.out / "frc.png").is_file()


def test_stop_of_a_resolution_run_is_a_stopped_record(near_wb):
    rec = near_wb.start("resolution", iterations=200, batch_size=12)
    while near_wb.runs.running and near_wb.runs.state().step < 1:  # an epoch is done
        near_wb.runs.wait(0.05)
    near_wb.stop()
    assert near_wb.wait(120)
    assert rec.status == "stopped", rec.error


# -- with a viewer (Xvfb) ----------------------------------------------------------------------
def test_live_positions_layers_move_and_become_the_runs(workbench, tmp_path):
    wb, widget, viewer = workbench
    wb.load("siemens", n_positions=36, N=32)
    assert wb.wait(60)
    assert {"starting probe amplitude", "starting probe phase"} <= {x.name for x in viewer.layers}
    assert "near field" in widget.status.text()
    seen = []
    wb.runs.listeners_update.append(
        lambda s: seen.append(f"live {DISPLACEMENT}" in viewer.layers and s.positions_epoch))
    rec = wb.start("lsqml", **CORRECTED)
    assert wb.wait(300) and rec.status == "finished", rec.error
    assert any(seen), "the live displacement layer never appeared during the run"
    points = np.asarray(viewer.layers[f"{rec.name} positions"].data)
    vectors = np.asarray(viewer.layers[f"{rec.name} {DISPLACEMENT}"].data)
    np.testing.assert_allclose(points, rec.positions)
    np.testing.assert_allclose(vectors[:, 0], wb.data.positions)
    np.testing.assert_allclose(vectors[:, 1], DISPLACEMENT_GAIN * (rec.positions
                                                                  - wb.data.positions))
    assert np.abs(points - wb.data.positions).max() > 0.01


def test_run_panel_probe_choice_and_frc_plot(workbench):
    from qtpy.QtWidgets import QFormLayout

    wb, widget, viewer = workbench
    wb.auto_preview = False
    wb.load("siemens", n_positions=36, N=32)
    panel = widget.run_panel
    for kind in ("epie", "rpie", "lsqml", "resolution"):  # correction offered, in words
        panel.set_kind(kind)
        for name in ("position_correction", "position_affine"):
            labels = [f.labelForField(panel.form.fields[name].widget)
                      for f in panel.form.findChildren(QFormLayout)]
            assert [x.text() for x in labels if x is not None] == [name.replace("_", " ")]
    panel.set_kind("resolution")
    assert panel.probe_start.isVisibleTo(panel)
    panel.probe_start.setCurrentText("disk")
    panel.on_probe_start()
    assert wb.wait(30)
    assert viewer.layers["starting probe amplitude"].metadata["starting_probe"] == "disk"
    assert panel.options()["probe_init"] == "disk"
    panel.form.set_value("iterations", 2)
    panel.on_start()
    assert wb.wait(300)
    rec = wb.history[-1]
    assert rec.status == "finished" and rec.request.options.probe_init == "disk"
    assert widget.run_curves.frc is not None
    assert "resolution" in panel.history.item(panel.history.count() - 1).text()


# -- issue 20: a live canvas from the first steps ----------------------------------------------
def _recorded(monkeypatch):
    """The classes of the events the workbench's live feed applies, in order."""
    seen: list[type] = []
    apply = LiveFeed.apply

    def recording(self, event):
        seen.append(type(event))
        return apply(self, event)

    monkeypatch.setattr(LiveFeed, "apply", recording)
    return seen


def _first(seen: list[type], cls: type) -> int:
    assert cls in seen, [c.__name__ for c in seen]
    return seen.index(cls)


@pytest.mark.parametrize("kind, options", [
    ("lsqml", {"iterations": 2, "batch_size": 4}),
    ("train", {"epochs": 1, "batch_size": 4, "base_channels": 8, "seed": 0}),
])
def test_first_canvas_arrives_before_the_first_epoch_ends(near_wb, monkeypatch, request,
                                                          kind, options):
    if kind == "train":
        request.getfixturevalue("one_torch_thread")
        near_wb.load("lines", n_positions=36, N=32)
    seen = _recorded(monkeypatch)
    rec = near_wb.start(kind, **options)
    assert near_wb.wait(300) and rec.status == "finished", rec.error
    first_canvas = _first(seen, events.CanvasSnapshot)
    assert first_canvas < _first(seen, events.Epoch)


def test_snapshot_seconds_is_checked_and_zero_keeps_epoch_end_snapshots(near_wb):
    ds = near_wb.data
    with pytest.raises(InputError, match="snapshot_seconds"):
        api.reconstruct(ds, api.LSQMLOptions(iterations=1), snapshot_seconds=-1)
    seen: list = []
    api.reconstruct(ds, api.LSQMLOptions(iterations=2, batch_size=4), emit=seen.append)
    kinds = [type(e) for e in seen]
    assert kinds.count(events.CanvasSnapshot) == 2  # one per epoch end only
    assert _first(kinds, events.Epoch) < _first(kinds, events.CanvasSnapshot)
    # throttled within an epoch: the first after the first batch, not one per batch
    seen.clear()
    api.reconstruct(ds, api.LSQMLOptions(iterations=2, batch_size=4), emit=seen.append,
                    snapshot_seconds=30.0)
    kinds = [type(e) for e in seen]
    assert kinds[:3] == [events.RunStarted, events.Progress, events.CanvasSnapshot]
    batches = kinds.count(events.Progress)
    assert batches == 18 and kinds.count(events.CanvasSnapshot) < batches / 2


# -- issue 20: the stop answers at the engine's end event --------------------------------------
def test_stop_answers_at_the_end_event_and_the_files_follow(near_wb):
    order: list[tuple[str, str, bool]] = []
    runs = near_wb.runs
    runs.listeners_answered.append(
        lambda r: order.append(("answered", r.answered, (r.out / "recon.npz").exists())))
    runs.listeners_end.append(lambda r: order.append(("record", r.status, True)))
    rec = near_wb.start("lsqml", iterations=10_000, batch_size=12)
    while runs.running and runs.state().epoch < 2:
        runs.wait(0.05)
    near_wb.stop()
    assert near_wb.wait(120)
    assert [o[:2] for o in order] == [("answered", "stopped"), ("record", "stopped")]
    # nothing lost: the stopped run's directory holds its result, as many epochs as it did
    history = json.loads((rec.out / "history.json").read_text())
    assert rec.status == "stopped" and len(history["history"]) == rec.recon.epochs >= 2
    assert history["summary"]["stopped"] is True
    for name in ("recon.npz", "probe.npz", "options.json"):
        assert (rec.out / name).is_file(), name
