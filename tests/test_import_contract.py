"""Dependencies point one way: plugins -> ptycho_gui -> engine; the engine stays headless."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine

FORBIDDEN = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "superqt",
             "matplotlib.pyplot")


def _engine_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "engine."))


def test_engine_imports_no_gui_at_import_time():
    modules = _engine_modules()
    assert "engine.physics.stitching" in modules and "engine.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine imported {out.stdout.strip()}"


def test_layer_contracts_with_import_linter():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("import-linter is a dev dependency; `make setup` installs it")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([exe, "--no-cache", str(root / "pyproject.toml")], cwd=root,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "KEPT" in out.stdout and "BROKEN" not in out.stdout


def test_engine_never_prints():
    """Progress goes through events; only engine/cli (and the bench suites' CLI) print."""
    root = Path(engine.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("cli/"):
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("print(") or "sys.stdout.write" in line:
                offenders.append(f"{rel}:{i}")
    assert not offenders, offenders
