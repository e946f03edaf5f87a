"""Atomic file and directory writes: a failed or killed write never loses the previous output.

Files are written under a hidden temporary name beside the target and renamed over it.
Directories (model bundles, training checkpoints) are written whole into a hidden staging
directory, marked complete by a rename, then swapped with the old directory in one atomic
step (Linux ``renameat2(RENAME_EXCHANGE)``). Where the file system cannot exchange, the old
directory is moved aside and the new one renamed in; a kill between those two renames leaves
both under hidden names, and :func:`recover_directory` (run before every write and by readers
that find the target missing) puts the complete one back. Outputs honour the umask as a
plain ``open`` would (files 0666 & ~umask, directories 0777 & ~umask).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from engine.errors import OutputError, os_reason

# Fault-injection hook for tests: called with the name of each step of a directory swap
# ("staged", "ready", "moved_aside", "swapped"); a test makes it kill the process.
_fault_hook: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if _fault_hook is not None:
        _fault_hook(name)


def _token() -> str:
    return f"{os.getpid()}-{secrets.token_hex(4)}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A hidden temporary file beside ``path``, created empty, renamed over ``path`` only
    when the block succeeds (after an fsync); on any exception it is removed and ``path``
    is untouched. For writers that need a path rather than a handle (HDF5). The file gets
    the mode a plain ``open`` would give (0666 less the umask).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.bin"
    >>> with atomic_path(p) as tmp:
    ...     _ = tmp.write_bytes(b"done")
    >>> p.read_bytes()
    b'done'
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{_token()}.tmp")
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise OutputError(target, os_reason(exc)) from None
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(target, os_reason(exc)) from None
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    The temporary file lives in the same directory so that the final ``os.replace`` is an
    atomic rename on POSIX; on any exception it is removed and ``path`` is untouched. The
    file gets the mode a plain ``open`` would give (0666 less the umask).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_open(p, "w") as fh:
    ...     _ = fh.write("done")
    >>> p.read_text()
    'done'
    """
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        yield fh


def _names(target: Path) -> tuple[str, str, str]:
    """Prefixes of the hidden siblings of ``target``: staging, complete-new, moved-aside."""
    return f".{target.name}.tmp-", f".{target.name}.ready-", f".{target.name}.old-"


def _siblings(target: Path, prefix: str) -> list[Path]:
    if not target.parent.is_dir():
        return []
    found = [p for p in target.parent.iterdir() if p.name.startswith(prefix)]
    return sorted(found, key=lambda p: p.stat().st_mtime_ns if p.exists() else 0)


def leftover_directory(path: str | os.PathLike[str]) -> Path | None:
    """The complete copy of a missing directory ``path`` left by a killed swap, if any.

    A reader that finds ``path`` missing can read this instead (newest complete new copy
    first, then the moved-aside old one); :func:`recover_directory` renames it into place.
    """
    target = Path(path)
    if target.exists():
        return None
    _, ready, old = _names(target)
    for prefix in (ready, old):
        found = _siblings(target, prefix)
        if found:
            return found[-1]
    return None


def recover_directory(path: str | os.PathLike[str]) -> None:
    """Finish or undo a directory swap that a kill interrupted; remove its leftovers.

    If ``path`` is missing, the newest complete copy (a new one that was about to be renamed
    in, else the old one moved aside) is renamed into place. Every other hidden sibling of
    the swap (staging directories, old copies) is removed.
    """
    target = Path(path)
    survivor = leftover_directory(target)
    if survivor is not None:
        os.replace(survivor, target)
    for prefix in _names(target):
        for p in _siblings(target, prefix):
            shutil.rmtree(p, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the platform or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def swap_directory(ready: Path, target: Path,
                   exchange: Callable[[Path, Path], bool] | None = None) -> None:
    """Put the complete directory ``ready`` at ``target``; ``target`` is never missing.

    ``exchange`` is the atomic swap (a stand-in in tests exercises the fallback). If a rename
    fails, the old directory stays at ``target`` and :class:`OutputError` says why.
    """
    if not target.exists():
        os.replace(ready, target)
        _step("swapped")
        return
    if (exchange or _exchange)(ready, target):  # ``ready`` now holds the old directory
        _step("swapped")
        shutil.rmtree(ready, ignore_errors=True)
        return
    old = target.with_name(f"{_names(target)[2]}{_token()}")
    os.replace(target, old)
    _step("moved_aside")
    try:
        os.replace(ready, target)
    except OSError as exc:
        os.replace(old, target)  # put the previous directory back before reporting
        raise OutputError(target, os_reason(exc)) from None
    _step("swapped")
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a staging directory beside ``path``; on success it replaces ``path`` whole.

    Leftovers of an earlier killed swap are recovered first. The staging directory is
    renamed to a "complete" name once the body returns, then swapped with ``path`` in one
    atomic step, so at every instant ``path`` holds either the previous directory or the
    complete new one (see the module docstring for file systems that cannot swap).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "bundle"
    >>> with atomic_directory(d) as tmp:
    ...     _ = (tmp / "a.txt").write_text("new")
    >>> sorted(p.name for p in d.parent.iterdir())
    ['bundle']
    """
    target = Path(path)
    staging_prefix, ready_prefix, _ = _names(target)
    token = _token()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover_directory(target)
        tmp = target.with_name(f"{staging_prefix}{token}")
        tmp.mkdir()
        _step("staging")
    except OSError as exc:
        raise OutputError(target, os_reason(exc)) from None
    try:
        yield tmp
        _fsync_dir(tmp)
        _step("staged")
        ready = target.with_name(f"{ready_prefix}{token}")
        os.replace(tmp, ready)
        _step("ready")
        try:
            swap_directory(ready, target)
        except BaseException:
            shutil.rmtree(ready, ignore_errors=True)
            raise
        _fsync_dir(target.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(target, os_reason(exc)) from None
        raise


def json_text(obj: Any) -> str:
    """``obj`` as indented JSON text; NaN (not valid JSON) is written as ``null``."""
    return json.dumps(_nan_to_none(obj), indent=2, sort_keys=False)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically. NaN is written as ``null``."""
    text = json_text(obj)
    with atomic_open(path, "w") as fh:
        fh.write(text + "\n")
    return Path(path)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:  # NaN is not valid JSON
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj
