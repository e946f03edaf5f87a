"""Headless ptychography engine: data, physics, backends, stitching, statistics.

Never imports Qt, napari or ``matplotlib.pyplot``; progress reaches callers through
callbacks and events (:mod:`engine.events`).
"""

__version__ = "0.1.0"
