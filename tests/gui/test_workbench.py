"""The workbench with a viewer (the Qt executor: previews on workers), driven through its
public methods as the widget's controls drive it."""

from __future__ import annotations

import numpy as np

from engine import api


def _flip(wb, **settings):
    assert wb.set(**settings)
    assert wb.wait(60)
    assert wb.last_error is None, wb.last_error
    return wb.result


def test_widget_docks_and_preview_layers_appear(workbench, small_lines):
    wb, widget, viewer = workbench
    wb.load(small_lines)
    assert wb.wait(60)
    for name in ("canvas amplitude", "canvas phase", "patch grid amplitude",
                 "patch grid amplitude (normalised)", "patch grid phase",
                 "patch grid inputs D/s", "group borders", "positions"):
        assert name in viewer.layers, name
    amp = viewer.layers["canvas amplitude"].data
    assert np.isnan(amp).any() and np.isfinite(amp).any()  # NaN outside the coverage
    assert widget.status.text().startswith("truth")
    # amplitude and phase side by side, the grids to their right, not on top
    a, ph = viewer.layers["canvas amplitude"], viewer.layers["canvas phase"]
    assert ph.translate[1] >= a.translate[1] + a.data.shape[1]
    assert ph.translate[0] == a.translate[0]
    grid = viewer.layers["patch grid amplitude"]
    assert grid.translate[1] > ph.translate[1] + ph.data.shape[1]


def test_gridsize_flip_changes_grouping_grid_and_statistics(workbench, small_lines):
    wb, widget, viewer = workbench
    wb.load(small_lines)
    assert wb.wait(60)
    shapes, vag = {}, {}
    for g in (1, 2, 3):
        p = _flip(wb, gridsize=g)
        assert p.groups.indices.shape[1] == g * g
        shapes[g] = viewer.layers["patch grid amplitude"].data.shape
        vag[g] = p.stats["all"]["var_across_group"]
        assert widget.form.value("gridsize") == g  # the view follows the workbench
        n_colours = len(np.unique(viewer.layers["positions"].face_color, axis=0))
        assert n_colours > 1  # positions coloured by group
    assert len(set(shapes.values())) == 3
    assert vag[1] is None
    _flip(wb, gridsize=1)
    assert dict(wb.stats_rows())["var_across_group"] == "undefined"
    assert widget.table.cell(3, 0) == "undefined"
    assert vag[2] is not None and np.isfinite(vag[2])


def test_backend_flip_gives_the_same_canvas(workbench, small_lines):
    wb, _, viewer = workbench
    wb.load(small_lines)
    assert wb.wait(60)
    _flip(wb, gridsize=2, backend="numpy")
    a = viewer.layers["canvas amplitude"].data.copy()
    ph_a = viewer.layers["canvas phase"].data.copy()
    _flip(wb, backend="torch")
    b = viewer.layers["canvas amplitude"].data
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b[np.isfinite(b)], a[np.isfinite(a)], atol=1e-5)
    np.testing.assert_allclose(viewer.layers["canvas phase"].data[np.isfinite(b)],
                               ph_a[np.isfinite(a)], atol=1e-5)


def test_data_scaling_is_invariant_to_counts_and_fixed_mismatch_warns(workbench, small_lines):
    wb, widget, viewer = workbench
    bright = small_lines.with_diffraction(small_lines.diffraction * 10.0)  # counts x 100
    wb.load(small_lines)
    assert wb.wait(60)
    ref = _flip(wb, gridsize=2, scaling="data")
    ref_inputs = viewer.layers["patch grid inputs D/s"].data.copy()
    wb.load(bright)
    assert wb.wait(60)
    p = _flip(wb, scaling="data")
    np.testing.assert_allclose(p.scale.value, 10 * ref.scale.value, rtol=1e-6)
    np.testing.assert_allclose(viewer.layers["patch grid inputs D/s"].data, ref_inputs,
                               rtol=1e-5, equal_nan=True)
    assert not p.scale.mismatch and "WARNING" not in widget.scale.text()
    p = _flip(wb, scaling="fixed", scale_value=ref.scale.value)  # the dim data's scale: 10x off
    assert p.scale.mismatch and p.scale.source == "fixed"
    assert "WARNING" in widget.scale.text() and "10x" in widget.scale.text()
    assert "e04040" in widget.scale.styleSheet()


def test_bad_setting_notifies_once_naming_it_and_widget_stays_usable(workbench, small_lines):
    from napari.utils.notifications import notification_manager

    wb, widget, _ = workbench
    wb.load(small_lines)
    assert wb.wait(60)
    before = len(notification_manager.records)
    assert not wb.set(gridsize=9)  # rejected before any computation
    assert wb.options.gridsize == 1 and wb.last_error.startswith("gridsize")
    assert not wb.set(n_groups=10_000)  # more groups than positions: said up front
    assert wb.options.n_groups is None and wb.last_error.startswith("n_groups")
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert [m.split(":")[0] for m in messages] == ["gridsize", "n_groups"]
    assert widget.status.text().startswith("error: n_groups")
    p = _flip(wb, gridsize=2)  # and the next setting works, without the old error
    assert p.groups.C == 4 and wb.last_error is None
    assert len(notification_manager.records) == before + 2


def test_newer_setting_cancels_older_preview(workbench, small_lines):
    wb, _, _ = workbench
    wb.load(small_lines)
    assert wb.wait(60)
    seen = []
    wb.previewed.connect(lambda p: seen.append(p.gridsize))
    for g in (2, 3, 1, 2):
        assert wb.set(gridsize=g)
    assert wb.wait(60)
    # every set happened before any result could be delivered: only the latest arrives
    assert seen == [2] and wb.result.gridsize == 2


def test_window_fits_a_1366x768_screen(workbench):
    _, widget, viewer = workbench
    hint = viewer.window._qt_window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768, (hint.width(), hint.height())
    assert [widget.tabs.tabText(i) for i in range(widget.tabs.count())] == [
        "Preview", "Run", "Compare", "Plots", "Data"]
    # labels in words, auto written as auto
    assert widget.form.fields["n_groups"].widget.placeholderText() == "auto"
    assert widget.device.currentText() == "auto"


def test_canvas_view_screenshot_is_not_blank(make_napari_viewer, small_lines):
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("ptycho-workbench", "Ptycho Workbench")
    wb = widget.workbench
    wb.load(small_lines)
    assert wb.wait(60)
    wb.focus("canvas amplitude", only=True)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    grey = shot[..., :3].astype(float).mean(axis=-1)
    assert (grey > 40).mean() > 0.03  # the lines show...
    assert grey.std() > 15  # ...as structure, not a flat background


def test_compare_two_canvases_gives_a_b_difference_and_table(workbench, small_lines, tmp_path):
    wb, widget, viewer = workbench
    wb.load(small_lines)
    assert wb.wait(60)
    truth = wb.result.canvas
    # B: the same object shifted by 2 px and dimmed by half, saved as a run directory
    shifted = api.Canvas(truth.canvas * 0.5, truth.coverage, (truth.origin[0] + 2,
                                                               truth.origin[1]), truth.weight)
    run = tmp_path / "run"
    run.mkdir()
    shifted.save(run / "recon.npz")
    wb.compare("canvas amplitude", run)
    assert wb.wait(60) and wb.last_error is None, wb.last_error
    assert widget.tabs.currentIndex() == 2  # the compare view is brought forward
    view = wb.comparison
    assert view.kind == "canvas"
    reg = view.report["alignment"]["registration"]
    assert abs(reg["shift_px"][0] + 2) < 0.1 and abs(reg["shift_px"][1]) < 0.1
    assert abs(view.report["amplitude"]["scale"] - 2.0) < 1e-3  # B scaled to A's mean
    diff = viewer.layers["compare A - B"].data
    assert np.nanmax(np.abs(diff)) < 0.05 * np.nanmax(viewer.layers["compare A"].data)
    assert widget.compare_table.verticalHeaderItem(0).text() == "MAE"
    assert [widget.compare_table.horizontalHeaderItem(j).text() for j in range(2)] == [
        "amplitude", "phase"]
    # brought into view: the compare layers are what is visible
    visible = {layer.name for layer in viewer.layers if layer.visible}
    assert "compare A - B" in visible and "canvas amplitude" not in visible
    # statistics files: the table of `ptycho compare` with its statuses
    from engine.atomic import write_json

    rec = {"batch": "all", "mean": 1.0, "std": 0.5, "var_zero_mean": 0.2,
           "var_across_group": None, "intensity_scale": 2.0, "n_patches": 10, "C": 1}
    write_json(tmp_path / "a.json", [rec])
    write_json(tmp_path / "b.json", [{**rec, "mean": 2.0}])
    wb.compare(tmp_path / "a.json", tmp_path / "b.json")
    assert wb.wait(60) and wb.last_error is None, wb.last_error
    status = {r[0]: r[-1] for r in wb.comparison.rows}
    assert status["mean"] == "differs" and status["std"] == "ok"
    assert status["var_across_group"] == "undefined"
    assert widget.compare_table.cell(0, widget.compare_table.columnCount() - 1) in (
        "differs", "ok")


def test_open_reads_off_the_gui_thread_and_reports_errors(workbench):
    import threading

    wb, widget, viewer = workbench
    threads = []
    original = wb._read

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    wb._read = spy
    wb.open("lines", n_positions=16, N=32)
    assert wb.wait(60) and wb.data is not None and wb.data.n == 16
    assert threads and threads[0] is not threading.main_thread()  # a worker read it
    assert "canvas amplitude" in viewer.layers
    wb.open("linez")
    assert wb.wait(60)
    assert "lines" in wb.last_error and widget.status.text().startswith("error:")
    assert wb.data.n == 16  # the loaded data stays
