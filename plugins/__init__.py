"""The napari plugin ``ptycho-workbench``: thin glue over :mod:`ptycho_gui` (npe2 manifest
``napari.yaml``: a reader, two writers, three samples and the "Ptycho Workbench" widget)."""
