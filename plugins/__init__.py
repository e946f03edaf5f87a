"""The napari plugin: thin glue over :mod:`ptycho_gui` (none is registered yet)."""
