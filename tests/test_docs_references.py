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


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_cited_section_of_the_conventions_exists():
    doc = (ROOT / "docs" / "conventions.md").read_text(encoding="utf-8")
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", doc, flags=re.MULTILINE)}
    cited = {}
    for p in _files():
        for m in re.finditer(r"conventions\.md#([\w-]+)((?:, #[\w-]+)*)", p.read_text("utf-8")):
            for a in [m.group(1)] + re.findall(r"#([\w-]+)", m.group(2)):
                cited.setdefault(a, str(p.relative_to(ROOT)))
    for m in re.finditer(r"\]\(#([\w-]+)\)", doc):  # the page's own links
        cited.setdefault(m.group(1), "docs/conventions.md")
    assert len(cited) >= 8, cited
    missing = {a: where for a, where in cited.items() if a not in anchors}
    assert not missing, f"sections cited but absent from docs/conventions.md: {missing}"
