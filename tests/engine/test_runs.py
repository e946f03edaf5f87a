"""engine.runs: actions on a worker thread, their event streams, stop, pause and throttling."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from engine import api, runs
from engine.errors import InputError
from engine.events import (
    TERMINAL,
    CanvasSnapshot,
    Epoch,
    Failed,
    Finished,
    Progress,
    RunStarted,
    Step,
    Stopped,
    StopRequested,
)
from tests.conftest import single_torch_thread

_one_thread = pytest.fixture(scope="module", autouse=True)(single_torch_thread)


@pytest.fixture(scope="module")
def ds():
    return api.simulate(api.SimulationConfig(object="grf", n_positions=64, N=32, step=5,
                                             nphotons=0, seed=3))


@pytest.fixture(scope="module")
def bundle(ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return api.train(ds, api.TrainConfig(epochs=1, batch_size=16, base_channels=4,
                                         deterministic=True), out=out, device="cpu").bundle


def _drain_on_thread(run: runs.Run) -> tuple[threading.Thread, list]:
    got: list = []
    t = threading.Thread(target=lambda: got.extend(run.events(timeout=60)))
    t.start()
    return t, got


def test_events_cross_threads_in_order_and_end_in_one_terminal(ds):
    run = runs.start(api.reconstruct, ds, api.EPIEOptions(iterations=3, batch_size=16),
                     snapshot_every=1)
    t, got = _drain_on_thread(run)
    t.join(60)
    assert not t.is_alive()
    assert isinstance(got[0], RunStarted) and isinstance(got[-1], Finished)
    assert sum(isinstance(e, TERMINAL) for e in got) == 1
    assert {e.run_id for e in got} == {run.run_id} and run.run_id
    assert [e.epoch for e in got if isinstance(e, Epoch)] == [1, 2, 3]
    assert [e.step for e in got if isinstance(e, Step)] == [1, 2, 3]
    assert [e.time for e in got] == sorted(e.time for e in got)
    progress = [(e.message, e.done) for e in got if isinstance(e, Progress)]
    assert progress == [(f"epoch {k}", d) for k in (1, 2, 3) for d in (1, 2, 3, 4)]
    result = run.result(timeout=1)
    assert run.done and result.epochs == 3
    assert got[-1].summary["epochs"] == 3


def test_an_action_without_events_of_its_own_still_ends_with_finished(ds):
    run = runs.start(api.stitch, ds, api.StitchConfig(), batch_size=16)
    got = list(run.events(timeout=60))
    assert isinstance(got[-1], Finished) and sum(isinstance(e, TERMINAL) for e in got) == 1
    assert [e.done for e in got if isinstance(e, Progress)] == [16, 32, 48, 64]
    np.testing.assert_array_equal(run.result().canvas, api.stitch(ds).canvas)
    assert list(run.events()) == []  # delivered once


def test_failure_is_one_failed_event_naming_the_field_and_result_raises(ds):
    no_data = api.Dataset(**{**ds.__dict__, "diffraction": None})
    run = runs.start(api.reconstruct, no_data, api.LSQMLOptions(iterations=1))
    got = list(run.events(timeout=60))
    assert isinstance(got[-1], Failed) and sum(isinstance(e, TERMINAL) for e in got) == 1
    assert got[-1].error_type == "InputError" and got[-1].field == "dataset"
    assert got[-1].error == f"InputError: {got[-1].message}"
    with pytest.raises(InputError):
        run.result(timeout=1)


def test_a_nested_actions_terminal_event_does_not_end_the_stream():
    def outer(*, emit, control):
        emit(Finished(summary={"inner": True}))  # e.g. an inference inside a reconstruction
        emit(Progress(task="outer", done=1, total=1))
        return "done"

    got = list(runs.start(outer).events(timeout=10))
    assert [type(e) for e in got] == [Progress, Finished]
    assert got[-1].summary == {"inner": True}


def _slowly(every_s: float = 0.02):
    """A user emit that makes each step of the workload take ``every_s``: a run of hundreds
    of steps then lasts many seconds whatever the machine, and a stop must cut it short."""
    def emit(event):
        if isinstance(event, Progress | Step):
            time.sleep(every_s)
    return emit


def _stop_after_first_step(run: runs.Run) -> tuple[list, int]:
    """The run's events, stopped after its first step; and how many steps still came after
    the stop (the stop is checked between steps, so at most the one in flight)."""
    events = run.events(timeout=60)
    got = []
    for e in events:
        got.append(e)
        if isinstance(e, Progress | Step):
            break
    run.stop()
    after = 0
    for e in events:
        got.append(e)
        after += isinstance(e, Progress | Step)
    return got, after


@pytest.mark.parametrize("action", ["stitch", "patch_stats", "reconstruct", "infer", "train",
                                    "simulate"])
def test_stop_ends_every_long_action_within_a_second(action, ds, bundle, tmp_path):
    calls = {
        # hundreds of batches of 1 group, each slowed to 20 ms: several seconds unstopped
        "stitch": (api.stitch, (ds, api.StitchConfig()), dict(batch_size=1)),
        "patch_stats": (api.patch_stats, (ds, api.GroupingConfig(gridsize=2)),
                        dict(batch_size=1)),
        "reconstruct": (api.reconstruct, (ds, api.EPIEOptions(iterations=50, batch_size=1)),
                        {}),
        "infer": (api.infer, (ds, bundle, api.InferConfig(batch_size=1)), {}),
        "train": (api.train, (ds, api.TrainConfig(epochs=50, batch_size=1, base_channels=4)),
                  dict(out=tmp_path / "t", device="cpu")),
        "simulate": (api.simulate, (api.SimulationConfig(n_positions=400, N=32, step=2),),
                     {}),
    }
    fn, args, kwargs = calls[action]
    if action == "simulate":
        # the simulator's batches are big: one pattern each makes it a many-step workload
        from engine.simulation.simulate import simulate as fn

        kwargs = dict(batch_size=1)
    run = runs.start(fn, *args, emit=_slowly(), **kwargs)
    got, after = _stop_after_first_step(run)
    assert isinstance(got[-1], Stopped), got[-1]
    assert sum(isinstance(e, TERMINAL) for e in got) == 1
    # hundreds of steps were left: the stop took effect at the next step boundary (a train
    # may report its step and its epoch's end; the time it takes is a benchmark's matter)
    assert after <= 3, f"{after} steps after the stop"
    if action in ("train", "reconstruct"):
        assert run.result(timeout=1).stopped
    else:
        with pytest.raises(StopRequested):
            run.result(timeout=1)
    if action == "train":  # a stop in epoch 1 leaves no half-written bundle
        assert not (tmp_path / "t" / "bundle").exists()


class _Watched(api.RunControl):
    """A RunControl that says when the worker has parked at a paused checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.parked = threading.Event()

    def checkpoint(self, timeout: float | None = None) -> bool:
        if self.paused:
            self.parked.set()
        return super().checkpoint(timeout)


def test_pause_parks_the_run_until_resume(ds):
    control = _Watched()
    moved = threading.Event()
    run = runs.start(api.stitch, ds, batch_size=1, control=control,
                     emit=lambda e: moved.set() if isinstance(e, Progress) else None)
    events = run.events(timeout=60)
    first = next(e for e in events if isinstance(e, Progress))
    run.pause()
    assert control.parked.wait(30), "the run never reached a checkpoint"
    list(_ready(run))  # what was emitted before it parked
    moved.clear()
    # parked: no batch completes while paused (checked over a window; a late one would set
    # `moved`), and the run is not done
    assert not moved.wait(0.3) and not run.done
    assert len(list(_ready(run))) == 0
    run.resume()
    rest = list(events)
    assert isinstance(rest[-1], Finished) and first.done == 1


def _ready(run: runs.Run):
    """The events queued right now, without waiting."""
    while True:
        try:
            item = run._queue.get_nowait()
        except queue.Empty:
            return
        if item is runs._END:
            run._queue.put(item)
            return
        yield item


def test_result_times_out_while_running_and_control_can_be_passed(ds):
    control = api.RunControl()
    control.pause()
    run = runs.start(api.stitch, ds, batch_size=1, control=control)
    assert run.control is control
    with pytest.raises(TimeoutError):
        run.result(timeout=0.2)
    run.stop()
    with pytest.raises(StopRequested):
        run.result(timeout=10)


def test_iterate_yields_the_events_and_returns_the_result(ds):
    gen = runs.iterate(api.stitch, ds, run_id="preview")
    seen = []
    with pytest.raises(StopIteration) as end:
        while True:
            seen.append(next(gen))
    assert isinstance(seen[-1], Finished) and {e.run_id for e in seen} == {"preview"}
    np.testing.assert_array_equal(end.value.value.canvas, api.stitch(ds).canvas)


def test_closing_the_generator_stops_the_run(ds):
    control = api.RunControl()
    gen = runs.iterate(api.stitch, ds, batch_size=1, control=control, emit=_slowly())
    next(gen)
    gen.close()
    assert control.stop_requested


def test_throttle_bounds_a_flood_and_keeps_every_pass_through_event_in_order():
    sink: queue.SimpleQueue = queue.SimpleQueue()
    every = 0.05
    emit = runs.throttle(sink.put, every)
    canvas = np.zeros((4, 4), np.complex64)
    t0 = time.monotonic()
    emit(RunStarted(kind="flood", config={}))
    for k in range(100_000):
        emit(Progress(task="x", done=k, total=100_000))
        if k % 10 == 0:
            emit(CanvasSnapshot(canvas=canvas, label=str(k)))
        if k % 20_000 == 19_999:
            emit(Epoch(epoch=k // 20_000 + 1, metrics={}))
    emit(Finished(summary={}))
    elapsed = time.monotonic() - t0
    got = []
    while not sink.empty():
        got.append(sink.get())
    # two coalesced kinds, each at most once per interval plus one held back per pass-through
    bound = 2 * (elapsed / every + 1) + 2 * 7 + 7
    assert len(got) <= bound, (len(got), bound)
    assert len(got) < 1000  # 110,000 events in
    assert [type(e) for e in got if not isinstance(e, Progress | CanvasSnapshot)] == \
        [RunStarted] + [Epoch] * 5 + [Finished]
    assert [e.epoch for e in got if isinstance(e, Epoch)] == [1, 2, 3, 4, 5]
    # the latest of each kind arrives before the terminal event
    assert [e.done for e in got if isinstance(e, Progress)][-1] == 99_999
    assert [e.label for e in got if isinstance(e, CanvasSnapshot)][-1] == "99990"
    assert [e.time for e in got] == sorted(e.time for e in got)


def test_a_throttled_run_has_a_bounded_queue():
    def flood(*, emit, control):
        for k in range(100_000):
            emit(Step(step=k + 1, total=100_000, loss=1.0))
        return k

    run = runs.start(flood, throttle_s=0.05)
    assert run.wait(60)
    got = list(run.events())
    assert isinstance(got[-1], Finished) and len(got) < 500
    assert [e.step for e in got if isinstance(e, Step)][-1] == 100_000


def test_an_emit_passed_to_start_sees_every_event_once_with_one_terminal():
    def flood(*, emit, control):
        for k in range(1000):
            emit(Progress(task="x", done=k, total=1000))
        emit(Finished(summary={"own": True}))

    recorded = []
    run = runs.start(flood, emit=recorded.append, throttle_s=60)
    delivered = list(run.events(timeout=30))
    assert [e.done for e in recorded if isinstance(e, Progress)] == list(range(1000))
    assert isinstance(recorded[-1], Finished) and recorded[-1].summary == {"own": True}
    assert sum(isinstance(e, TERMINAL) for e in recorded) == 1
    assert {e.run_id for e in recorded} == {run.run_id}
    assert len(delivered) == 3 and delivered[-1] == recorded[-1]  # throttled: first, last
