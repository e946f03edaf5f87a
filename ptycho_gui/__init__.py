"""The napari workbench: one model, its services, and thin views.

Layout (arrows are imports; nothing outside ``_qt`` imports Qt, magicgui, superqt,
matplotlib's Qt backend or private napari API, and the package calls the engine only
through ``engine.api``, ``engine.events``, ``engine.runs``, ``engine.errors`` and
``engine.options``; both are import contracts in ``pyproject.toml``):

- :mod:`~ptycho_gui.model`: :class:`WorkbenchModel`, every piece of state (dataset, settings,
  bundle, runs root, history, last preview and comparison); ``update()`` validates once.
- :mod:`~ptycho_gui.kinds`: the run kinds' registry (label, options class, settings taken,
  panel controls, engine job). :mod:`~ptycho_gui.requests`: one merged request per run.
- :mod:`~ptycho_gui.live`: the live state and the table from engine events to it.
- :mod:`~ptycho_gui.services`: the work in flight (previews; runs: start, pause, resume,
  stop, more). :mod:`~ptycho_gui.executors`: where that work runs (synchronous here; the Qt
  executor in :mod:`ptycho_gui._qt.executor`).
- :mod:`~ptycho_gui.painter`: the one layer painter (preview, compare, live, final layers).
- :mod:`~ptycho_gui.report`: the one error convention (errors raise; one adapter reports).
- :mod:`~ptycho_gui.workbench`: :class:`Workbench`, the scriptable face (model + services +
  painter); ``Workbench(viewer=None)`` runs synchronously for scripts and tests.
- :mod:`ptycho_gui._qt`: the dock widgets, the run panel, the curves, the form builder and
  the Qt executor.

``python -m ptycho_gui [DATA]`` opens napari with the workbench docked.
"""

from ptycho_gui.model import SETTINGS, WorkbenchModel
from ptycho_gui.workbench import Workbench

__all__ = ["SETTINGS", "Workbench", "WorkbenchModel"]
