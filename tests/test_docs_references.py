"""The repository documents its own conventions (docs/conventions.md): nothing in the code, the
help texts, the README, the docs or the notebooks may point to a contract a clone does not have
(a ``SPEC`` section or a ``../shared`` path)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("engine", "ptycho_gui", "plugins", "tests", "docs", "notebooks", "README.md")
SUFFIXES = {".py", ".md", ".ipynb", ".yaml", ".toml", ".txt"}
# ``SPEC`` as a word (``ObjectPosOriginCoordsMethods.SPECIFIED`` of pty-chi is not one)
OUTSIDE_REFERENCE = re.compile(r"\bSPEC\b|\.\./shared")


def _files() -> list[Path]:
    out = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += [p for p in sorted(path.rglob("*"))
                    if p.is_file() and p.suffix in SUFFIXES and ".ipynb_checkpoints" not in p.parts]
    return out


def test_no_reference_outside_the_repository():
    this = Path(__file__).resolve()
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()[:80]}"
            for p in _files() if p.resolve() != this
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if OUTSIDE_REFERENCE.search(line)]
    assert not hits, "cite docs/conventions.md instead:\n" + "\n".join(hits)


def test_the_scan_sees_the_code():
    # a scan that found no files would pass vacuously
    names = {p.name for p in _files()}
    assert {"data.py", "stitching.py", "README.md"} <= names
