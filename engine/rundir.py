"""Run directories: checked before work starts, one run at a time, never replaced silently.

Every action that writes a run (training, inference, a reconstruction) opens its output
directory with :func:`open_run`:

- the location must be writable *before* any work is done (:func:`check_writable`): a file
  where a directory is expected, a read-only file system or a path under ``/proc`` is a
  one-line :class:`~engine.errors.InputError` naming the path and the reason;
- the directory is locked (``flock``) for the run's duration, so a second run into it fails
  at once instead of both reporting success and the last writer winning;
- a directory that already holds a run is refused unless ``overwrite`` (or ``resume``)
  is given. With ``overwrite`` the previous run is moved aside into a hidden folder and
  removed only once the new run has completed and its manifests were verified; until then
  readers (:func:`readable_run`) find the previous run there, and a failed run puts it
  back. The directory never mixes the outputs of two runs (an old ``recon.npz`` beside a
  new checkpoint);
- a run marks its state in :data:`MARKER`: "incomplete" from the start, "complete" once its
  last output is written. The next open of a directory after a kill (SIGKILL, power loss)
  puts a replaced run back when the run replacing it did not complete (and says so in one
  line), removes the temporary files of interrupted writes and finishes interrupted
  directory swaps; a command that is then refused deletes nothing. A directory the run
  created is removed again when the run is refused or fails before writing any output.

A new run directory of the workbench is :func:`new_run_dir`: ``runs/<timestamp>-<kind>``
beside the data (or under a configured root), in the layout the command line writes.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()) / "run"
>>> with open_run(d) as run:
...     _ = (run / "recon.npz").write_bytes(b"...")
>>> holds_run(d)
['recon.npz']
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from engine.atomic import recover_directory, write_json
from engine.errors import InputError, OutputError, os_reason

# What a run leaves behind: any of these makes a directory "hold a run"
RUN_MARKERS = ("bundle", "bundle.zip", "checkpoint", "recon.npz", "probe.npz",
               "history.json", "analysis", "debug")
ASIDE = ".replaced-"  # prefix of the hidden folder holding a run being replaced
MARKER = ".ptycho-run.json"  # the run's state: "incomplete" while it runs, "complete" at end

# Fault-injection hook for tests: called with the name of each step of a run's replacement
# ("moving", "moved_aside", "marked", "written", "verified", "completed", "cleaned")
_fault_hook: Callable[[str], None] | None = None


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe(directory: Path, target: Path, field: str, expected: str) -> None:
    """Create and remove a file in ``directory``: the only test a read-only mount,
    a full inode table or a pseudo file system like ``/proc`` cannot fool."""
    probe = directory / f".ptycho-write-test-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise InputError(field, expected, f"{target}: {os_reason(exc)}") from None
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_writable(path: str | os.PathLike[str], *, directory: bool,
                   field: str = "out") -> Path:
    """Refuse an output location that cannot be written, before any work is done.

    Parameters
    ----------
    path : the output file, or the output directory if ``directory``.
    directory : whether ``path`` is to be a directory (a run) or a file.
    field : the options field that named ``path`` (for the message).

    Nothing is created: the nearest existing ancestor must be a writable directory (a
    probe file is created and removed in it).

    Examples
    --------
    >>> check_writable("/proc/run", directory=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    engine.errors.InputError: out: expected a writable directory, got /proc/run: ...
    """
    target = Path(path)
    kind = "a writable directory" if directory else "a writable file path"
    if target.exists():
        if directory and not target.is_dir():
            raise InputError(field, kind, f"{target} is a file")
        if not directory and target.is_dir():
            raise InputError(field, kind, f"{target} is a directory")
    base = target if (directory and target.is_dir()) else _nearest_existing(target.parent)
    if not base.is_dir():
        raise InputError(field, kind, f"{target}: {base} is a file, not a directory")
    _probe(base, target, field, kind)
    return target


def holds_run(path: str | os.PathLike[str]) -> list[str]:
    """The run outputs (:data:`RUN_MARKERS`) present in ``path``."""
    p = Path(path)
    return [m for m in RUN_MARKERS if (p / m).exists() or (p / m).is_symlink()]


def _lock(path: Path, field: str) -> int | None:
    """An exclusive, non-blocking ``flock`` on the directory itself (no lock file to leave
    behind); released by the kernel when the process ends, however it ends."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise InputError(field, "a run directory no other run is writing",
                             f"{path} is in use by another run") from None
        return None  # a file system without locks (some network mounts): run unlocked
    return fd


def _fault(step: str) -> None:
    if _fault_hook is not None:
        _fault_hook(step)


def _read_marker(path: Path) -> dict[str, Any] | None:
    """The run's state marker (:data:`MARKER`), or ``None`` (no marker, or unreadable)."""
    try:
        meta = json.loads((path / MARKER).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_marker(path: Path, state: str, replaces: str | None) -> None:
    write_json(path / MARKER, {"state": state, "replaces": replaces, "pid": os.getpid(),
                               "time": time.strftime("%Y-%m-%dT%H:%M:%S")})


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            entry.unlink()


def _asides(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.name.startswith(ASIDE) and p.is_dir())


def _move_aside(path: Path, keep: Iterable[str]) -> Path:
    """Move the run in ``path`` (every entry but ``keep``) into a hidden folder; its marker
    goes first, so a kill in the middle never leaves a "complete" marker over a half-moved
    run."""
    aside = path / f"{ASIDE}{os.getpid()}-{secrets.token_hex(4)}"
    aside.mkdir()
    entries = [e for e in sorted(path.iterdir(), key=lambda e: (e.name != MARKER, e.name))
               if e.name not in keep and not e.name.startswith(ASIDE)]
    for k, entry in enumerate(entries):
        os.replace(entry, aside / entry.name)
        if k == 1:
            _fault("moving")  # the marker and one output moved, the rest not yet
    _fault("moved_aside")
    return aside


def _put_back(path: Path, aside: Path, new_outputs: bool) -> None:
    """Undo a replacement: the new run's outputs go (when ``new_outputs``: the move aside
    was complete), the previous run's come back."""
    if new_outputs:
        for entry in list(path.iterdir()):
            if not entry.name.startswith(ASIDE):
                _remove(entry)
    for entry in list(aside.iterdir()):
        dest = path / entry.name
        if dest.exists() or dest.is_symlink():
            _remove(dest)
        os.replace(entry, dest)
    aside.rmdir()


def _recover(path: Path) -> list[str]:
    """Finish or undo what a killed run left in ``path``; returns what was done (one line
    each). A replaced run comes back unless the replacing run was marked complete."""
    done = []
    for aside in _asides(path):
        marker = _read_marker(path)
        ours = marker is not None and marker.get("replaces") == aside.name
        if ours and marker.get("state") == "complete":
            shutil.rmtree(aside, ignore_errors=True)  # only the clean-up was cut short
            continue
        _put_back(path, aside, new_outputs=ours)
        done.append(f"{path}: the run it held was put back (the run replacing it with "
                    "overwrite did not complete)")
    _clean_temporaries(path)
    return done


_TEMP_FILE = re.compile(r"^\..+\.tmp$")  # engine.atomic.atomic_open's temporary files
_SWAP_DIR = re.compile(r"^\.(.+)\.(tmp|ready|old)-\d+-[0-9a-f]{8}$")  # atomic_directory's


def _clean_temporaries(path: Path) -> None:
    """Remove the temporary files of writes a kill cut short, and finish or undo the
    directory swaps it interrupted (:func:`engine.atomic.recover_directory`)."""
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        here = Path(dirpath)
        for name in filenames:
            if _TEMP_FILE.match(name):
                with contextlib.suppress(OSError):
                    (here / name).unlink()
        swapped = {m.group(1) for d in dirnames if (m := _SWAP_DIR.match(d))}
        for name in sorted(swapped):
            with contextlib.suppress(OSError):
                recover_directory(here / name)
        dirnames[:] = [d for d in dirnames if not _SWAP_DIR.match(d)
                       and not d.startswith(ASIDE) and (here / d).is_dir()]


def _verify(path: Path) -> None:
    """Check the manifests a finished run wrote (``bundle/bundle.json``,
    ``checkpoint/state.json``, ...): every file they list has its recorded size and
    sha256. A mismatch is an :class:`OutputError` (the previous run is then kept)."""
    for manifest in sorted(path.glob("*.json")) + sorted(path.glob("[!.]*/*.json")):
        try:
            meta = json.loads(manifest.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        files = meta.get("files") if isinstance(meta, dict) else None
        if not isinstance(files, dict):
            continue
        for name, info in files.items():
            if not (isinstance(info, dict) and "sha256" in info):
                continue
            f = manifest.parent / name
            try:
                data = f.read_bytes()
            except OSError as exc:
                raise OutputError(f, f"not readable back: {os_reason(exc)}") from None
            if hashlib.sha256(data).hexdigest() != info["sha256"]:
                raise OutputError(f, "its content does not match the digest in "
                                  f"{manifest.name} when read back")


def readable_run(path: str | os.PathLike[str]) -> Path:
    """Where a reader finds the complete run that ``path`` (a run directory or an entry of
    one, e.g. ``run/bundle``) stands for.

    A complete run (or a directory without a run marker: made by hand or by an earlier
    version) is itself. While an ``overwrite`` run replaces it, and after that run was
    killed, the previous run is read from where it was moved aside. An incomplete run
    with nothing to fall back on is an :class:`InputError` ("incomplete run").

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> readable_run(d) == d
    True
    """
    p = Path(path)
    for root, rel in ((p, None), (p.parent, p.name)):
        if not root.is_dir():
            continue
        marker = _read_marker(root)
        try:
            asides = _asides(root)
        except OSError:
            asides = []
        if asides and _recover_if_idle(root):  # a killed run's leftovers: undone now
            marker, asides = _read_marker(root), []
        if marker is None:
            if asides:  # a live run is moving the previous one aside (a few renames)
                raise InputError(str(root), "a complete run", "a run being replaced at this "
                                 "moment (try again)")
            continue
        if marker.get("state") == "complete":
            return p
        aside = marker.get("replaces")
        if isinstance(aside, str) and aside.startswith(ASIDE) and (root / aside).is_dir():
            return root / aside if rel is None else root / aside / rel
        raise InputError(str(root), "a complete run", "an incomplete run (stopped, killed or "
                         "still running: resume it, or run it again with overwrite)")
    return p


def _recover_if_idle(path: Path) -> bool:
    """Undo a killed run's replacement in ``path`` if no run holds it now (its lock is
    free); False when a live run holds it or the directory cannot be written."""
    try:
        fd = _lock(path, "run directory")
    except (InputError, OSError):
        return False
    try:
        for line in _recover(path):
            logging.getLogger(__name__).warning(line)
        return True
    except OSError:
        return False
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def open_run(path: str | os.PathLike[str], *, overwrite: bool = False, resume: bool = False,
             keep: Iterable[str] = (), field: str = "out",
             notify: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold the run directory ``path`` for the duration of a run (see the module docstring).

    Parameters
    ----------
    path : the run directory (created if missing; removed again if the run is refused or
        fails before writing any output).
    overwrite : replace a run already in ``path`` (moved aside, removed once the new run
        is complete and verified).
    resume : the run continues the one in ``path``: its outputs stay, except that those not
        in ``keep`` are removed at the start (a resumed reconstruction keeps its
        ``checkpoint`` but not the previous ``recon.npz``, which it supersedes).
    keep : with ``resume``, the entries that stay in place; empty keeps everything.
    field : the options field that named ``path`` (for the messages).
    notify : receives one line when a killed run's leftovers are undone (default: the
        ``engine.rundir`` logger's warning).
    """
    notify = notify or logging.getLogger(__name__).warning
    target = check_writable(path, directory=True, field=field)
    created = not target.exists()
    first_new = target  # the outermost folder this call creates (removed again if refused)
    while created and not first_new.parent.exists() and first_new.parent != first_new:
        first_new = first_new.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(field, "a writable directory", f"{target}: {os_reason(exc)}") from None
    fd = _lock(target, field)
    aside = None
    keep = tuple(keep)
    try:
        for line in _recover(target):
            notify(line)
        present = holds_run(target)
        before = _read_marker(target)
        if present and not resume:
            if not overwrite:
                state = _read_marker(target)
                what = ("an incomplete run" if state is not None
                        and state.get("state") != "complete" else "a run")
                raise InputError(field, "a new or empty run directory (or overwrite to replace "
                                 "the run in it)", f"{target} holds {what} ({', '.join(present)})")
            try:
                aside = _move_aside(target, ())
            except BaseException:
                for left in _asides(target):  # a half-moved run goes back at once
                    _put_back(target, left, new_outputs=False)
                raise
        elif present and resume and keep:
            for entry in list(target.iterdir()):  # superseded by the continued run: gone now
                if entry.name not in keep and entry.name != MARKER:
                    _remove(entry)
        try:
            _write_marker(target, "incomplete", None if aside is None else aside.name)
            _fault("marked")
            yield target
            _fault("written")
            if aside is not None and not holds_run(target):
                raise _NothingWritten  # nothing replaced the previous run: it stays
            _verify(target)
            _fault("verified")
            _write_marker(target, "complete", None if aside is None else aside.name)
            _fault("completed")
        except _NothingWritten:
            _put_back(target, aside, new_outputs=True)
            aside = None
        except BaseException as exc:
            # a failed replacement puts the previous run back; a failed continuation keeps
            # its newer checkpoint and not the outputs that checkpoint superseded
            if aside is not None:
                _put_back(target, aside, new_outputs=True)
                aside = None
            elif isinstance(exc, InputError) and before is not None:
                write_json(target / MARKER, before)  # refused: the run is as it was
            elif isinstance(exc, InputError):
                with contextlib.suppress(OSError):
                    (target / MARKER).unlink()
            raise
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
            _fault("cleaned")
    except BaseException:
        if created and not holds_run(target):
            shutil.rmtree(target, ignore_errors=True)  # refused or failed before any output
            p = target.parent
            while p != first_new.parent and p.is_relative_to(first_new):
                try:
                    p.rmdir()  # only while empty: the folders created for it
                except OSError:
                    break
                p = p.parent
        raise
    finally:
        if fd is not None:
            os.close(fd)


class _NothingWritten(Exception):
    """The body of :func:`open_run` returned without writing any output."""


# the folder beside the data that holds its runs when no root is configured
RUNS_FOLDER = "runs"

_KIND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def default_root(data_path: str | os.PathLike[str] | None) -> Path:
    """``<folder of the data>/runs``, or ``./runs`` for data that has no file (a sample)."""
    if data_path is None:
        return Path.cwd() / RUNS_FOLDER
    return Path(data_path).resolve().parent / RUNS_FOLDER


def new_run_dir(kind: str, *, data_path: str | os.PathLike[str] | None = None,
                root: str | os.PathLike[str] | None = None,
                now: float | None = None) -> Path:
    """Create and return a fresh, empty ``<root>/<YYYYmmdd-HHMMSS>-<kind>`` directory.

    Parameters
    ----------
    kind : what ran (``train``, ``infer``, ``lsqml``, ...): letters, digits, ``_.+-``.
    data_path : the dataset file; its folder's ``runs/`` is the default root.
    root : the folder that holds the runs (overrides ``data_path``).
    now : the timestamp (seconds since the epoch; default: now).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> a, b = new_run_dir("lsqml", root=root), new_run_dir("lsqml", root=root)
    >>> a.parent == root, a.name.endswith("-lsqml"), a != b, b.is_dir()
    (True, True, True, True)
    """
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise InputError("run kind", "letters, digits and _.+- (a folder name)", repr(kind))
    base = Path(root) if root is not None else default_root(data_path)
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    name, k = f"{stamp}-{kind}", 1
    while True:
        candidate = base / (name if k == 1 else f"{name}-{k}")
        try:
            candidate.mkdir()  # atomic: two runs started at once never share a directory
            return candidate
        except FileExistsError:
            k += 1
