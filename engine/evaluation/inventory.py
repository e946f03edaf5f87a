"""Evidence list of a run directory: every file with its size, SHA-1 and SHA-256.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a.txt").write_bytes(b"abc")
>>> [(e["path"], e["size"], e["sha1"][:8]) for e in inventory(d)]
[('a.txt', 3, 'a9993e36')]
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from engine.atomic import write_json
from engine.errors import InputError

CHUNK = 1 << 20


def file_digests(path: str | os.PathLike[str]) -> tuple[int, str, str]:
    """(size, sha1, sha256) of one file, read in 1 MiB chunks (memory stays flat)."""
    sha1, sha256, size = hashlib.sha1(), hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha1.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return size, sha1.hexdigest(), sha256.hexdigest()


def inventory(run_dir: str | os.PathLike[str], *,
              exclude: list[str | os.PathLike[str]] | None = None) -> list[dict[str, Any]]:
    """Every regular file under ``run_dir``, recursively, sorted by relative path.

    Each entry is ``{"path": POSIX path relative to run_dir, "size": bytes, "sha1", "sha256"}``.
    Symbolic links to files are followed (their content is hashed); directories reached by
    links are not entered, so a link cycle cannot loop. Files in ``exclude`` (e.g. the
    inventory being written into the run directory) are left out.
    """
    root = Path(run_dir)
    if not root.exists():
        raise InputError(str(root), "an existing run directory", "no such directory")
    if not root.is_dir():
        raise InputError(str(root), "a run directory", "a file")
    skip = {Path(p).resolve() for p in (exclude or [])}
    entries = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            if not full.is_file() or full.resolve() in skip:
                continue
            size, sha1, sha256 = file_digests(full)
            entries.append({"path": full.relative_to(root).as_posix(), "size": size,
                            "sha1": sha1, "sha256": sha256})
    entries.sort(key=lambda e: e["path"])
    return entries


def write_inventory(path: str | os.PathLike[str], run_dir: str | os.PathLike[str],
                    entries: list[dict[str, Any]]) -> Path:
    """Atomic JSON: ``{"run_dir", "n_files", "total_bytes", "files": [entries]}``."""
    return write_json(path, {
        "run_dir": str(run_dir),
        "n_files": len(entries),
        "total_bytes": int(sum(e["size"] for e in entries)),
        "files": entries,
    })


def format_inventory(entries: list[dict[str, Any]]) -> str:
    """A fixed-width table: size, sha1, sha256, path; and a total line."""
    lines = [f"{'size':>12}  {'sha1':<40}  {'sha256':<64}  path"]
    lines += [f"{e['size']:>12}  {e['sha1']}  {e['sha256']}  {e['path']}" for e in entries]
    total = sum(e["size"] for e in entries)
    lines.append(f"{len(entries)} files, {total} bytes")
    return "\n".join(lines)
