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
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

from engine.atomic import write_json
from engine.errors import InputError, os_reason
from engine.rundir import readable_run

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
    inventory being written into the run directory) are left out. What cannot be read as a
    file (a dangling symbolic link, a FIFO, a socket, a device, a file without read
    permission) is listed with ``size``, ``sha1`` and ``sha256`` ``None`` and the reason in
    ``unreadable``: never skipped silently, never opened (a FIFO would block).
    """
    root = Path(run_dir)
    if not root.exists():
        raise InputError(str(root), "an existing run directory", "no such directory")
    root = readable_run(root)  # an overwrite in progress: the previous, complete run
    if not root.is_dir():
        raise InputError(str(root), "a run directory", "a file")
    skip = {Path(p).resolve() for p in (exclude or [])}
    entries = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            why = _unreadable(full)
            if why is None and full.resolve() in skip:
                continue
            if why is None:
                try:
                    size, sha1, sha256 = file_digests(full)
                except OSError as exc:
                    why = os_reason(exc)
            if why is not None:
                entries.append({"path": rel, "size": None, "sha1": None, "sha256": None,
                                "unreadable": why})
                continue
            entries.append({"path": rel, "size": size, "sha1": sha1, "sha256": sha256})
    entries.sort(key=lambda e: e["path"])
    return entries


def _unreadable(path: Path) -> str | None:
    """Why ``path`` cannot be hashed as a regular file, or ``None`` if it can."""
    try:
        st = os.stat(path)  # follows a link
    except FileNotFoundError:
        return "dangling symbolic link" if path.is_symlink() else "vanished"
    except OSError as exc:
        return os_reason(exc)
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISFIFO(st.st_mode):
        return "a FIFO (named pipe), not a file"
    if stat.S_ISSOCK(st.st_mode):
        return "a socket, not a file"
    return "not a regular file (a device or other special file)"


def write_inventory(path: str | os.PathLike[str], run_dir: str | os.PathLike[str],
                    entries: list[dict[str, Any]]) -> Path:
    """Atomic JSON: ``{"run_dir", "n_files", "total_bytes", "files": [entries]}``."""
    return write_json(path, {
        "run_dir": str(run_dir),
        "n_files": len(entries),
        "total_bytes": int(sum(e["size"] or 0 for e in entries)),
        "files": entries,
    })


def format_inventory(entries: list[dict[str, Any]]) -> str:
    """A fixed-width table: size, sha1, sha256, path; and a total line."""
    lines = [f"{'size':>12}  {'sha1':<40}  {'sha256':<64}  path"]
    lines += [f"{e['size']:>12}  {e['sha1']}  {e['sha256']}  {e['path']}"
              if e.get("unreadable") is None else
              f"{'-':>12}  {'-':<40}  {'-':<64}  {e['path']}  (unreadable: {e['unreadable']})"
              for e in entries]
    total = sum(e["size"] or 0 for e in entries)
    bad = sum(1 for e in entries if e.get("unreadable") is not None)
    lines.append(f"{len(entries)} files, {total} bytes"
                 + (f", {bad} unreadable" if bad else ""))
    return "\n".join(lines)


def _manifest_digest(meta: dict[str, Any]) -> str:
    """sha256 of a manifest's JSON without its own ``manifest_sha256`` (keys sorted): the
    rule bundle.json follows."""
    body = {k: v for k, v in meta.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _check_manifest(meta: dict[str, Any], where: str, read: Any,
                    prefix: str) -> tuple[int, list[dict]]:
    """Check a manifest's own digest and its ``files`` table; ``read(name)`` gives a listed
    file's bytes (``None`` when absent), ``prefix + name`` names it in a mismatch."""
    checked, bad = 0, []
    if "manifest_sha256" in meta:
        checked += 1
        got = _manifest_digest(meta)
        if got != meta["manifest_sha256"]:
            bad.append({"file": where, "listed_in": where, "expected": meta["manifest_sha256"],
                        "got": got, "reason": "manifest digest"})
    files = meta.get("files")
    if isinstance(files, dict):
        for name, info in sorted(files.items()):
            if not (isinstance(info, dict) and "sha256" in info):
                continue
            checked += 1
            data = read(name)
            file = prefix + name
            if data is None:
                bad.append({"file": file, "listed_in": where, "expected": info["sha256"],
                            "got": None, "reason": "missing"})
                continue
            got = hashlib.sha256(data).hexdigest()
            if got != info["sha256"] or ("size" in info and len(data) != info["size"]):
                bad.append({"file": file, "listed_in": where, "expected": info["sha256"],
                            "got": got, "reason": f"{len(data)} bytes"})
    return checked, bad


def check_digests(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Verify every digest a run directory records about itself.

    Digests are found in: JSON manifests with a ``files`` table of ``{name: {"sha256",
    "size"}}`` relative to the manifest's directory and an optional ``manifest_sha256`` of
    their own content (``bundle/bundle.json``, checkpoint manifests); the same inside zip
    files (``bundle.zip``); and inventory JSONs written by :func:`write_inventory` (their
    ``files`` list, relative to ``run_dir``).

    Returns ``{"checked": number of digests verified, "manifests": [where they were
    listed], "mismatches": [{"file", "listed_in", "expected", "got", "reason"}]}``.
    """
    root = readable_run(run_dir)
    entries = inventory(root)
    checked, bad, manifests = 0, [], []
    for e in entries:
        if e.get("unreadable") is not None:
            continue
        path = root / e["path"]
        if path.suffix == ".json":
            try:
                meta = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError, OSError):
                continue
            if not isinstance(meta, dict):
                continue
            if isinstance(meta.get("files"), dict):
                def read(name: str, base: Path = path.parent) -> bytes | None:
                    f = base / name
                    return f.read_bytes() if f.is_file() else None

                parent = Path(e["path"]).parent.as_posix()
                n, b = _check_manifest(meta, e["path"], read,
                                       "" if parent == "." else parent + "/")
            elif isinstance(meta.get("files"), list) and "n_files" in meta:
                n, b = _check_inventory(meta, e["path"], root)
            else:
                continue
            if n:
                manifests.append(e["path"])
            checked, bad = checked + n, bad + b
        elif path.suffix == ".zip" and zipfile.is_zipfile(path):
            n, b = _check_zip(path, e["path"])
            if n:
                manifests.append(e["path"])
            checked, bad = checked + n, bad + b
    return {"checked": checked, "manifests": manifests, "mismatches": bad}


def _check_zip(path: Path, where: str) -> tuple[int, list[dict]]:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            jsons = [n for n in names if n.endswith(".json")]
            checked, bad = 0, []
            for name in jsons:
                try:
                    meta = json.loads(z.read(name))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if not (isinstance(meta, dict) and isinstance(meta.get("files"), dict)):
                    continue
                prefix = name.rpartition("/")[0]

                def read(n: str, prefix: str = prefix) -> bytes | None:
                    full = f"{prefix}/{n}" if prefix else n
                    return z.read(full) if full in names else None

                n, b = _check_manifest(meta, f"{where}:{name}", read,
                                       f"{where}:{prefix + '/' if prefix else ''}")
                checked, bad = checked + n, bad + b
            return checked, bad
    except (zipfile.BadZipFile, OSError) as exc:
        return 1, [{"file": where, "listed_in": where, "expected": "a readable zip",
                    "got": type(exc).__name__, "reason": "unreadable"}]


def _check_inventory(meta: dict[str, Any], where: str, root: Path) -> tuple[int, list[dict]]:
    checked, bad = 0, []
    for e in meta["files"]:
        if not (isinstance(e, dict) and "path" in e and "sha256" in e):
            continue
        checked += 1
        f = root / e["path"]
        if not f.is_file():
            bad.append({"file": e["path"], "listed_in": where, "expected": e["sha256"],
                        "got": None, "reason": "missing"})
            continue
        size, _, sha256 = file_digests(f)
        if sha256 != e["sha256"]:
            bad.append({"file": e["path"], "listed_in": where, "expected": e["sha256"],
                        "got": sha256, "reason": f"{size} bytes"})
    return checked, bad


def format_mismatch(m: dict[str, Any]) -> str:
    """One line for one digest mismatch."""
    if m["got"] is None:
        return f"MISMATCH {m['file']}: missing (listed in {m['listed_in']})"
    return (f"MISMATCH {m['file']}: sha256 {m['got'][:16]}… ({m['reason']}), expected "
            f"{m['expected'][:16]}… (listed in {m['listed_in']})")
