"""GUI tests need an X server (pytest-xvfb starts Xvfb); without one they skip, saying so."""

from __future__ import annotations

import os
import shutil

import pytest

HAVE_DISPLAY = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                    or shutil.which("Xvfb"))

try:
    import napari  # noqa: F401
    import pytestqt  # noqa: F401
    HAVE_GUI = True
except ImportError:
    HAVE_GUI = False


def pytest_collection_modifyitems(config, items):
    reason = None
    if not HAVE_GUI:
        reason = "GUI tests skipped: napari/pytest-qt not installed (make setup installs them)"
    elif not HAVE_DISPLAY:
        reason = ("GUI tests skipped: no X server (no DISPLAY and no Xvfb; "
                  "`apt-get install xvfb` or run `make test`, which installs it)")
    if reason:
        for item in items:
            if "tests/gui" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def small_lines():
    from ptycho_gui.samples import make_sample

    return make_sample("lines", n_positions=64, N=32)


@pytest.fixture
def workbench(make_napari_viewer):
    """A viewer with the workbench docked through the plugin manifest."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("ptycho-workbench", "Ptycho Workbench")
    return widget.workbench, widget, viewer


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # napari's make_napari_viewer reads item.rep_call at teardown (napari's own conftest
    # sets it; ours must too)
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
