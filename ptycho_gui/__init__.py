"""Qt/magicgui widgets and live-view controllers over the engine API.

Depends on :mod:`engine` only; the napari plugin (:mod:`plugins`) depends on this package.
No widget exists yet: the engine calls they will wrap are in :mod:`engine.physics.workflows`.
"""
