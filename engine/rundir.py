"""Run directories: checked before work starts, one run at a time, never replaced silently.

Every action that writes a run (training, inference, a reconstruction) opens its output
directory with :func:`open_run`:

- the location must be writable *before* any work is done (:func:`check_writable`): a file
  where a directory is expected, a read-only file system or a path under ``/proc`` is a
  one-line :class:`~engine.errors.InputError` naming the path and the reason;
- the directory is locked (``flock``) for the run's duration, so a second run into it fails
  at once instead of both reporting success and the last writer winning;
- a directory that already holds a run is refused unless ``overwrite`` (or ``resume``)
  is given. With ``overwrite`` the previous run is moved aside into a hidden folder, removed
  when the new run succeeds and put back if it fails, so the directory never mixes the
  outputs of two runs (an old ``recon.npz`` beside a new checkpoint). A leftover of a
  killed run is removed the next time the directory is opened.

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
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.errors import InputError, os_reason

# What a run leaves behind: any of these makes a directory "hold a run"
RUN_MARKERS = ("bundle", "bundle.zip", "checkpoint", "recon.npz", "probe.npz",
               "history.json", "analysis", "debug")
ASIDE = ".replaced-"  # prefix of the hidden folder holding a run being replaced


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


def _move_aside(path: Path, keep: Iterable[str]) -> Path:
    aside = path / f"{ASIDE}{os.getpid()}-{secrets.token_hex(4)}"
    aside.mkdir()
    for entry in list(path.iterdir()):
        if entry != aside and entry.name not in keep and not entry.name.startswith(ASIDE):
            os.replace(entry, aside / entry.name)
    return aside


def _restore(path: Path, aside: Path, keep: Iterable[str]) -> None:
    """Undo a failed run: its outputs go, the previous run's come back."""
    for entry in list(path.iterdir()):
        if entry != aside and entry.name not in keep and not entry.name.startswith(ASIDE):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
    for entry in list(aside.iterdir()):
        os.replace(entry, path / entry.name)
    aside.rmdir()


def _remove_leftovers(path: Path) -> None:
    for entry in path.iterdir():
        if entry.name.startswith(ASIDE):
            shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def open_run(path: str | os.PathLike[str], *, overwrite: bool = False, resume: bool = False,
             keep: Iterable[str] = (), field: str = "out") -> Iterator[Path]:
    """Hold the run directory ``path`` for the duration of a run (see the module docstring).

    Parameters
    ----------
    path : the run directory (created if missing).
    overwrite : replace a run already in ``path`` (moved aside, removed on success).
    resume : the run continues the one in ``path``: its outputs stay, except that those not
        in ``keep`` are removed at the start (a resumed reconstruction keeps its
        ``checkpoint`` but not the previous ``recon.npz``, which it supersedes).
    keep : with ``resume``, the entries that stay in place; empty keeps everything.
    field : the options field that named ``path`` (for the messages).
    """
    target = check_writable(path, directory=True, field=field)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(field, "a writable directory", f"{target}: {os_reason(exc)}") from None
    fd = _lock(target, field)
    aside = None
    keep = tuple(keep)
    try:
        _remove_leftovers(target)
        present = holds_run(target)
        if present and not resume:
            if not overwrite:
                raise InputError(field, "a new or empty run directory (or overwrite to replace "
                                 "the run in it)", f"{target} holds a run ({', '.join(present)})")
            aside = _move_aside(target, ())
        elif present and resume and keep:
            aside = _move_aside(target, keep)
        try:
            yield target
        except BaseException:
            # a failed replacement puts the previous run back; a failed continuation keeps
            # its newer checkpoint and not the outputs that checkpoint superseded
            if aside is not None and not resume:
                _restore(target, aside, ())
                aside = None
            raise
        finally:
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
    finally:
        if fd is not None:
            os.close(fd)


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
