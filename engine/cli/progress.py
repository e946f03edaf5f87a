"""A terminal progress bar fed by engine events (stderr, shown only for work over ~2 s).

On a terminal the bar redraws one line (``\r`` frames); when stderr is a file or a pipe
(a log, a batch job) it writes plain lines instead, one every ``interval`` seconds and at
the end, so the log stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from engine.events import Event, Progress, StatsSnapshot, Step


def stats_line(event: Event) -> str | None:
    """The console line of a logged statistics record (a :class:`StatsSnapshot` whose
    record names its batch), e.g. ``patch stats (train batch 0): mean=0.51 std=0.2 ...``."""
    if not isinstance(event, StatsSnapshot) or "batch" not in event.record:
        return None
    r = event.record

    def g(key: str) -> str:
        v = r.get(key)
        return "null" if v is None else f"{v:.6g}"

    return (f"patch stats ({event.phase} batch {r['batch']}): mean={g('mean')} std={g('std')} "
            f"var_zero_mean={g('var_zero_mean')} var_across_group={g('var_across_group')} "
            f"min={g('min')} max={g('max')}")


class ProgressBar:
    """Renders :class:`~engine.events.Progress` (and step counts) on one terminal line.

    Nothing is drawn during the first ``delay`` seconds, so quick commands stay quiet.
    """

    def __init__(self, stream: TextIO | None = None, delay: float = 2.0, width: int = 30,
                 interval: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.delay = delay
        self.width = width
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        # how often a non-terminal gets a line; a terminal redraws every 0.1 s
        self.interval = interval if not self.tty else 0.1
        self.start: float | None = None  # the clock starts at the first event, not at imports
        self._last = 0.0
        self._drawn = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            self.update(event.task, event.done, event.total)
        elif isinstance(event, Step) and event.total > 0:
            extra = "  ".join(f"{k} {v:.4g}" for k, v in
                              {"loss": event.loss, "epoch": event.epoch, **event.metrics}.items())
            self.update("step", event.step, event.total, extra)

    def update(self, task: str, done: int, total: int, extra: str = "") -> None:
        now = time.monotonic()
        if self.start is None:
            self.start = now
        elapsed = now - self.start
        final = total > 0 and done >= total
        if elapsed < self.delay or (now - self._last < self.interval and not final):
            return
        self._last = now
        if total > 0:
            frac = min(done / total, 1.0)
            fill = int(frac * self.width)
            eta = elapsed / frac - elapsed if frac > 0 else float("nan")
            line = (f"{task:<10} [{'#' * fill}{'.' * (self.width - fill)}] {done}/{total} "
                    f"{elapsed:6.1f}s eta {eta:5.1f}s {extra}")
        else:
            line = f"{task:<10} {done} done {elapsed:6.1f}s {extra}"
        if self.tty:
            self.stream.write("\r" + line)
            self._drawn = True
        else:
            self.stream.write(line.rstrip() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
