"""Run an engine action on a worker thread and watch it through its events.

(Being completed under the engine API issue: ``start(action, *args, **kwargs) -> Run``,
``Run.events()``, ``Run.control``, ``Run.stop()``, ``Run.result(timeout)``, a generator form
for napari's ``thread_worker`` and ``throttle(emit, every_s)``.)
"""

from __future__ import annotations
