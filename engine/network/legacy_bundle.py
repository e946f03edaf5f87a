"""Recognising a PtychoPINN TensorFlow model bundle, to refuse it with a useful message.

PtychoPINN saves a trained model as ``wts.h5.zip``: a zip holding the Keras weights and
``params.dill``, the training configuration pickled with ``dill``. Unpickling runs whatever
code the file names, so a file from elsewhere cannot be opened safely, and its TensorFlow
weights do not fit this project's PyTorch network anyway. :func:`refuse_tensorflow_bundle`
recognises such a file (or a PtychoPINN output directory holding one) without unpickling
anything — it only lists the zip's member names — and raises an
:class:`~engine.errors.InputError` saying what it is, why it is not loaded and which command
retrains from the same data.

Examples
--------
>>> import tempfile, zipfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with zipfile.ZipFile(d / "wts.h5.zip", "w") as z:
...     z.writestr("diffraction_to_obj/params.dill", b"not unpickled")
>>> try:
...     refuse_tensorflow_bundle(d / "wts.h5.zip")
... except InputError as exc:
...     print(exc.got.split(":")[0])
a PtychoPINN TensorFlow bundle (wts.h5.zip holding params.dill)
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from engine.errors import InputError

BUNDLE_NAME = "wts.h5.zip"
PARAMS = "params.dill"
RETRAIN = ("retrain from the same data with 'ptycho train DATA.npz --out RUN' (PtychoPINN's "
           "NPZ layout is read as is; its flags --nepochs, --n_images, --gridsize, "
           "--output_dir... are accepted)")


def tensorflow_bundle(path: str | os.PathLike[str]) -> Path | None:
    """The ``wts.h5.zip`` that ``path`` is or holds (a PtychoPINN output directory), or
    ``None``. Only the zip's member names are read."""
    p = Path(path)
    candidates = [p] if p.is_file() else [p / BUNDLE_NAME, p / "bundle" / BUNDLE_NAME]
    for c in candidates:
        if not c.is_file() or not zipfile.is_zipfile(c):
            continue
        try:
            with zipfile.ZipFile(c) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            continue
        if any(Path(n).name == PARAMS for n in names):
            return c
    if p.is_dir() and (p / PARAMS).is_file():
        return p / PARAMS
    return None


def refuse_tensorflow_bundle(path: str | os.PathLike[str]) -> None:
    """Raise :class:`InputError` when ``path`` is (or holds) a PtychoPINN TensorFlow bundle."""
    found = tensorflow_bundle(path)
    if found is None:
        return
    raise InputError(
        str(path), "a ptycho-workbench model bundle (bundle.json with safetensors weights)",
        f"a PtychoPINN TensorFlow bundle ({found.name} holding {PARAMS}): its configuration "
        f"is a dill pickle, which runs arbitrary code when loaded, so it is not opened, and "
        f"its Keras weights do not fit this PyTorch network; {RETRAIN}")
