"""Events and cooperative control."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from engine.errors import InputError
from engine.events import (
    TERMINAL,
    CanvasSnapshot,
    EventBus,
    Failed,
    Finished,
    Progress,
    RunControl,
    Step,
    Stopped,
    StopRequested,
    progress_emitter,
)


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


def test_a_checkpoint_timeout_does_not_end_a_pause():
    ctl = RunControl()
    assert ctl.checkpoint(timeout=0.01) is True  # running
    ctl.pause()
    t0 = time.monotonic()
    assert ctl.checkpoint(timeout=0.05) is False  # still paused: the caller must wait again
    assert time.monotonic() - t0 >= 0.04 and ctl.paused
    ctl.resume()
    assert ctl.checkpoint(timeout=0.05) is True
    ctl.pause()
    ctl.stop()  # a stop wakes a paused loop and ends it
    with pytest.raises(StopRequested):
        ctl.checkpoint(timeout=5)


def test_event_fields():
    step = Step(step=3, total=10, epoch=1, loss=0.5)
    assert step.metrics == {} and step.run_id == ""
    assert Stopped(summary={"epochs": 2}) not in (Finished(summary={"epochs": 2}),)
    assert set(TERMINAL) == {Finished, Stopped, Failed}
    failed = Failed.from_exception(InputError("lr", "a finite learning rate > 0", "-1"))
    assert (failed.error_type, failed.field) == ("InputError", "lr")
    assert failed.error == "InputError: lr: expected a finite learning rate > 0, got -1"
    assert Failed.from_exception(RuntimeError("boom")).field is None

    class Canvas:  # any object with the canvas layout's three fields
        canvas = np.full((2, 3), np.nan, np.complex64)
        coverage = np.zeros((2, 3), bool)
        origin = (np.int64(4), 5)

    snap = CanvasSnapshot.of(Canvas(), "x", run_id="r")
    assert snap.origin == (4, 5) and type(snap.origin[0]) is int and snap.run_id == "r"
    assert snap.coverage.shape == snap.canvas.shape
