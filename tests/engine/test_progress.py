"""The progress bar: ``\\r`` frames on a terminal, plain lines in a log."""

from __future__ import annotations

import io

import engine.cli.progress as progress
from engine.cli.progress import ProgressBar
from engine.events import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _feed(stream, monkeypatch, seconds_per_event=1.0, n=60):
    clock = iter(range(0, 10_000))
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock) * seconds_per_event)
    bar = ProgressBar(stream)
    for k in range(1, n + 1):
        bar(Progress(task="stitch", done=k, total=n))
    bar.close()
    return stream.getvalue()


def test_a_log_gets_plain_lines(monkeypatch):
    text = _feed(io.StringIO(), monkeypatch)
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    # 60 s of work: after the 2 s delay, one line per 10 s and the final one
    assert 5 <= len(lines) <= 8, lines
    assert lines[-1].startswith("stitch") and "60/60" in lines[-1]


def test_a_terminal_gets_frames(monkeypatch):
    text = _feed(_Terminal(), monkeypatch)
    assert text.count("\r") >= 50 and text.endswith("\n") and text.count("\n") == 1
