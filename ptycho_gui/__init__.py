"""The workbench: a scriptable controller (:class:`Workbench`) and thin Qt/magicgui views.

Depends on :mod:`engine` only (through :mod:`engine.api`); the napari plugin
(:mod:`plugins`) depends on this package. ``python -m ptycho_gui [DATA]`` opens napari with
the workbench docked.
"""

from ptycho_gui.workbench import SETTINGS, Workbench

__all__ = ["SETTINGS", "Workbench"]
