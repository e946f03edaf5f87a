"""Exceptions the engine raises for bad input.

Every message is one line naming the offending input and what was expected, so the
command line can print it as-is and a notebook user sees the cause without a traceback
dive.
"""

from __future__ import annotations


class PtychoError(Exception):
    """Base class of every error the engine raises on purpose."""


class InputError(PtychoError, ValueError):
    """An input (file, key, argument, array) is not what the engine expects."""

    def __init__(self, what: str, expected: str, got: str | None = None) -> None:
        msg = f"{what}: expected {expected}"
        if got is not None:
            msg += f", got {got}"
        super().__init__(msg.replace("\n", " "))
        self.what = what
        self.expected = expected
        self.got = got


class OutputError(PtychoError, OSError):
    """An output (file or directory) cannot be written: names the path and the reason."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: cannot write ({reason})".replace("\n", " "))
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:  # OSError's own __str__ would print the errno tuple
        return str(self.args[0])


class DivergedError(PtychoError, RuntimeError):
    """A run reached a NaN or infinite loss: stopped there, naming the step; the last
    checkpoint written before it (all finite) is kept, no bundle of NaN weights is written."""

    def __init__(self, what: str, step: int, value: float) -> None:
        super().__init__(f"{what}: the loss became {value} at step {step}; stopped there "
                         "(the last finite checkpoint is kept, no bundle was written from it)")
        self.step = step
        self.value = value


def os_reason(exc: OSError) -> str:
    """The human reason of an ``OSError`` (``'Read-only file system'``), never a traceback."""
    return exc.strerror or str(exc).split("\n")[0] or type(exc).__name__
