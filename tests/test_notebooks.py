"""The notebooks: committed without outputs, and each one runs end to end with inline figures.

Execution uses ``PTYCHO_FAST=1`` (smaller sizes, the same code path) and a hostile
``MPLBACKEND=Agg``, under which a notebook that relied on the default backend shows
``<Figure size ...>`` instead of a picture. Cells tagged ``figure`` must produce an
``image/png`` output; no cell may fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ("01_quickstart.ipynb", "02_gridsize_scaling_backend.ipynb",
            "03_network_vs_iterative.ipynb", "04_your_own_data.ipynb")


def _tagged(nb, tag: str) -> list:
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


def test_the_notebooks_are_there() -> None:
    assert [p.name for p in NOTEBOOKS] == sorted(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them before committing"
    assert _tagged(nb, "figure"), f"{path.name}: no cell tagged 'figure'"


def _kernel_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PTYCHO_FAST="1", MPLBACKEND="Agg", PTYCHO_NO_VIEWER="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_executes_with_inline_figures(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    env = _kernel_env()
    env["PTYCHO_NOTEBOOK_OUT"] = str(tmp_path)
    # no per-cell time limit: a loaded machine must not fail a correct notebook (each
    # notebook's PTYCHO_FAST sizes bound its run time instead)
    client = nbclient.NotebookClient(nb, timeout=None, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    blank = [nb.cells.index(c) for c in _tagged(nb, "figure")
             if not any("image/png" in o.get("data", {}) for o in c.outputs)]
    assert not blank, f"{path.name}: figure cells {blank} rendered no image/png"
    for cell in _tagged(nb, "napari"):
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert "skipped: PTYCHO_NO_VIEWER=1" in text
