"""Reading and writing the files a beamline writes and neighbouring tools exchange
(docs/formats.md): CXI, NeXus ``NXcxi_ptycho``, any HDF5 layout through a mapping file,
Ptychodus products; a lazy HDF5 diffraction stack; physical geometry from the file.

Modules: :mod:`~engine.io.detect` (what a file is), :mod:`~engine.io.readers` (one entry
point), :mod:`~engine.io.cxi`, :mod:`~engine.io.nexus`, :mod:`~engine.io.mapping`,
:mod:`~engine.io.product` (reconstructions: Ptychodus and CXI), :mod:`~engine.io.lazy`
(the stack), :mod:`~engine.io.placement` (metres to object pixels), :mod:`~engine.io.units`,
:mod:`~engine.io.streaming` (figures a batch at a time), :mod:`~engine.io.inspect`.
"""
