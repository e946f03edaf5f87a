"""Events and cooperative control."""

from __future__ import annotations

import threading
import time

import pytest

from engine.events import EventBus, Progress, RunControl, Step, StopRequested, progress_emitter


def test_bus_fan_out_and_unsubscribe():
    bus = EventBus()
    a, b = [], []
    un_a = bus.subscribe(a.append)
    bus.subscribe(b.append)
    bus.emit(Step(step=1, metrics={"loss": 1.0}))
    un_a()
    bus.emit(Step(step=2, metrics={"loss": 0.5}))
    assert [e.step for e in a] == [1] and [e.step for e in b] == [1, 2]


def test_progress_emitter():
    seen = []
    progress_emitter(seen.append, "stitch")(3, 4)
    assert seen[0] == Progress(task="stitch", done=3, total=4, time=seen[0].time)
    assert progress_emitter(None, "x") is None


def test_pause_blocks_until_resume_and_stop_raises():
    ctl = RunControl()
    ctl.checkpoint()  # running: returns at once
    ctl.pause()
    reached = threading.Event()

    def loop():
        try:
            ctl.checkpoint()
            reached.set()
            ctl.checkpoint()
        except StopRequested:
            pass

    t = threading.Thread(target=loop)
    t.start()
    time.sleep(0.1)
    assert not reached.is_set() and ctl.paused
    ctl.resume()
    t.join(2)
    assert reached.is_set()
    ctl.stop()
    with pytest.raises(StopRequested):
        ctl.checkpoint()
