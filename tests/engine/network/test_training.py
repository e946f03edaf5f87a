"""Training machinery: determinism, exact resume, checkpoints, stop, events, config."""

from __future__ import annotations

import json

import pytest

from engine.errors import InputError
from engine.events import (
    CanvasSnapshot,
    Epoch,
    Finished,
    RunControl,
    RunStarted,
    StatsSnapshot,
    Step,
    Validation,
)
from engine.network.batches import region_split
from engine.network.bundles import load_bundle
from engine.network.config import TrainConfig
from engine.network.trainer import _Budget, train

from .conftest import tiny_config


def _losses(result):
    return [(h["loss"], h.get("val_loss")) for h in result.history]


def test_deterministic_runs_give_bit_identical_losses(tiny_ds, tmp_path):
    cfg = tiny_config(epochs=2)
    a = train(tiny_ds, cfg, tmp_path / "a")
    b = train(tiny_ds, cfg, tmp_path / "b")
    assert _losses(a) == _losses(b)
    assert (tmp_path / "a/bundle/weights.safetensors").read_bytes() == \
        (tmp_path / "b/bundle/weights.safetensors").read_bytes()


def test_resume_continues_exactly(tiny_ds, tmp_path):
    full = train(tiny_ds, tiny_config(epochs=2, gridsize=2, neighbor_count=4), tmp_path / "full")
    train(tiny_ds, tiny_config(epochs=1, gridsize=2, neighbor_count=4), tmp_path / "part")
    resumed = train(tiny_ds, tiny_config(epochs=2, gridsize=2, neighbor_count=4),
                    tmp_path / "part", resume=True)
    assert _losses(resumed) == _losses(full)
    assert (tmp_path / "part/bundle/weights.safetensors").read_bytes() == \
        (tmp_path / "full/bundle/weights.safetensors").read_bytes()


def test_resume_refuses_a_changed_config(tiny_ds, tmp_path):
    train(tiny_ds, tiny_config(epochs=1), tmp_path)
    with pytest.raises(InputError, match="lr"):
        train(tiny_ds, tiny_config(epochs=2, lr=1e-2), tmp_path, resume=True)


def test_resume_reads_a_checkpoint_that_predates_an_option(tiny_ds, tmp_path):
    """A checkpoint written before ``bottleneck`` existed was trained at 8×8, and one
    written before ``global_mixing`` without it."""
    train(tiny_ds, tiny_config(epochs=1), tmp_path)
    state_file = tmp_path / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    del state["config"]["bottleneck"], state["config"]["global_mixing"]
    from engine.network.checkpoint import _state_digest

    state["manifest_sha256"] = _state_digest(state)  # as that version would have written it
    state_file.write_text(json.dumps(state))
    with pytest.raises(InputError, match="bottleneck"):
        train(tiny_ds, tiny_config(epochs=2, bottleneck=4), tmp_path, resume=True)
    with pytest.raises(InputError, match="global_mixing"):
        train(tiny_ds, tiny_config(epochs=2, global_mixing=True), tmp_path, resume=True)
    # "auto" at N = 32 means none: the same network, so it resumes
    resumed = train(tiny_ds, tiny_config(epochs=2), tmp_path, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def test_stop_leaves_the_last_good_bundle(tiny_ds, tmp_path):
    control = RunControl()
    seen = []

    def emit(event):
        seen.append(event)
        if isinstance(event, Step) and event.epoch == 2:
            control.stop()  # killed in the middle of epoch 2

    result = train(tiny_ds, tiny_config(epochs=3), tmp_path, emit=emit, control=control)
    assert result.stopped
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.meta["metrics"]["epochs"] == 1
    state = json.loads((tmp_path / "checkpoint/state.json").read_text())
    assert state["epoch"] == 1


def test_failed_bundle_write_keeps_the_previous_one(tiny_ds, tmp_path, monkeypatch):
    train(tiny_ds, tiny_config(epochs=1), tmp_path)
    before = (tmp_path / "bundle/weights.safetensors").read_bytes()
    import engine.network.bundles as bundles

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(bundles, "st_save", boom)
    with pytest.raises(OSError):
        train(tiny_ds, tiny_config(epochs=1, seed=5), tmp_path, overwrite=True)
    assert (tmp_path / "bundle/weights.safetensors").read_bytes() == before
    load_bundle(tmp_path / "bundle")


def test_event_stream(tiny_ds, tmp_path):
    events = []
    train(tiny_ds, tiny_config(epochs=2), tmp_path, emit=events.append)
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is Finished
    steps = [e for e in events if isinstance(e, Step)]
    assert [e.step for e in steps] == list(range(1, len(steps) + 1))
    assert steps[-1].total == len(steps) and steps[-1].epoch == 2
    assert all("epoch" not in e.metrics and "total_steps" not in e.metrics for e in steps)
    for k in (Epoch, Validation, StatsSnapshot, CanvasSnapshot):
        assert kinds.count(k) == 2
    snap = next(e for e in events if isinstance(e, StatsSnapshot))
    assert snap.sample_patches.ndim == 4 and snap.record["var_zero_mean"] >= 0


def test_split_is_by_region():
    import numpy as np

    yy, xx = np.mgrid[0:10, 0:10]
    pos = np.stack([yy.ravel(), xx.ravel()], 1).astype(float)
    tr, va = region_split(pos, 0.2)
    assert len(va) == 20 and pos[va, 1].min() > pos[tr, 1].max()


def test_config_round_trips_and_validates():
    cfg = TrainConfig(gridsize=2, n_groups=10, precision="bf16-mixed")
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.use_object_big and not TrainConfig(gridsize=1).use_object_big
    # errors name the field, not a command-line flag (the CLI maps them)
    for bad, match in ((dict(loss="l2"), "loss"), (dict(epochs=0), "epochs"),
                       (dict(gridsize=2, neighbor_count=1), "neighbor_count"),
                       (dict(precision="fp8"), "precision"), (dict(lr=-1.0), "lr"),
                       (dict(lr_schedule="step"), "lr_schedule"),
                       (dict(warmup_fraction=1.0), "warmup_fraction"),
                       (dict(bottleneck=12), "bottleneck"), (dict(bottleneck=2), "bottleneck")):
        with pytest.raises(InputError, match=f"^{match}: expected"):
            TrainConfig(**bad)
    with pytest.raises(InputError, match="keys"):
        TrainConfig.from_dict({"epochz": 3})


def test_supervised_needs_ground_truth(tiny_ds, tmp_path):
    from dataclasses import replace

    with pytest.raises(InputError, match="Y"):
        train(replace(tiny_ds, patches=None), tiny_config(loss="supervised"), tmp_path)
    result = train(tiny_ds, tiny_config(loss="supervised", epochs=2), tmp_path / "ok")
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_pause_holds_the_loop_and_resume_changes_nothing(tiny_ds, tmp_path):
    """While paused the loop takes no step (no Step event arrives, however long the pause);
    after resume the run is the uninterrupted one. Without the loop's pause check the steps
    would go on while paused, and this fails."""
    import threading

    control = RunControl()
    steps: list[int] = []
    paused, stepped_while_paused = threading.Event(), threading.Event()

    def emit(event):
        if not isinstance(event, Step):
            return
        steps.append(event.step)
        if event.step == 2:
            control.pause()
            paused.set()
        elif control.paused:
            stepped_while_paused.set()

    cfg = tiny_config(epochs=2)
    out: dict = {}
    worker = threading.Thread(
        target=lambda: out.update(result=train(tiny_ds, cfg, tmp_path / "p", emit=emit,
                                               control=control)))
    worker.start()
    try:
        assert paused.wait(120), "the run never reached step 2"
        # a second is many steps of this network: a loop that ignored the pause would emit them
        assert not stepped_while_paused.wait(1.0), f"steps taken while paused: {steps}"
        assert worker.is_alive() and steps[-1] == 2
    finally:
        control.resume()
        worker.join(120)
    plain = train(tiny_ds, cfg, tmp_path / "q")
    result = out["result"]
    assert not result.stopped and steps == list(range(1, len(steps) + 1)) and len(steps) > 3
    assert _losses(result) == _losses(plain)


def test_object_big_off_trains_and_infers_at_gridsize_2(tiny_ds, tmp_path):
    from engine.network.inference import infer_canvas

    result = train(tiny_ds, tiny_config(gridsize=2, neighbor_count=4, object_big=False),
                   tmp_path)
    bundle = load_bundle(result.bundle)
    assert bundle.meta["object_big"] is False and bundle.gridsize == 2
    canvas = infer_canvas(result.bundle, tiny_ds)
    assert canvas.coverage.any()
    assert bool((abs(canvas.canvas[canvas.coverage]) > 0).all())


def test_cosine_schedule_warms_up_peaks_and_decays():
    cfg = TrainConfig(lr=1e-2, lr_schedule="cosine", warmup_fraction=0.1)
    lrs = [cfg.lr_at(k, 100) for k in range(100)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[9] == pytest.approx(1e-2)
    assert max(lrs) == pytest.approx(1e-2) and lrs[-1] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs[9:-1], lrs[10:], strict=True))
    assert TrainConfig(lr=1e-2).lr_at(99, 100) == 1e-2


def test_resume_continues_exactly_on_the_cosine_schedule(tiny_ds, tmp_path):
    """The rate is a function of the step, so a run stopped in epoch 2 and resumed follows
    the uninterrupted run bit for bit."""
    cfg = tiny_config(epochs=3, lr_schedule="cosine", warmup_fraction=0.2)
    full = train(tiny_ds, cfg, tmp_path / "full")
    control = RunControl()

    def emit(event):
        if isinstance(event, Step) and event.epoch == 2:
            control.stop()

    train(tiny_ds, cfg, tmp_path / "part", emit=emit, control=control)
    resumed = train(tiny_ds, cfg, tmp_path / "part", resume=True)
    assert _losses(resumed) == _losses(full)
    assert (tmp_path / "part/bundle/weights.safetensors").read_bytes() == \
        (tmp_path / "full/bundle/weights.safetensors").read_bytes()


def test_time_budget_plans_whole_epochs_that_fit():
    clock = _Budget(10.0, per_epoch=5, total=100)
    assert clock.replan(5, used=2.0) == 25     # 2 s an epoch: 4 more fit in the 8 s left
    assert clock.replan(10, used=4.5) == 20    # the mean grew to 2.25 s: 2 more fit
    assert clock.replan(15, used=4.8) == 30    # faster again: the plan grows back
    assert clock.replan(30, used=11.0) == 30   # over the limit: stop here
    assert _Budget(None, 5, 100).replan(5, used=1e9) == 100
    assert _Budget(1e9, 5, 100).replan(5, used=1.0) == 100  # never beyond the epochs


def test_time_limited_training_stops_after_the_epoch_that_spends_it(tiny_ds, tmp_path):
    events = []
    result = train(tiny_ds, tiny_config(epochs=50, time_limit=1e-3), tmp_path,
                   emit=events.append)
    assert [h["epoch"] for h in result.history] == [1]
    assert not result.stopped and load_bundle(tmp_path / "bundle").meta["metrics"]["epochs"] == 1
    assert isinstance(events[-1], Finished)
    with pytest.raises(InputError, match="^time_limit: expected"):
        TrainConfig(time_limit=0.0)


def test_checkpoint_every_writes_every_kth_and_the_last_epoch(tiny_ds, tmp_path, monkeypatch):
    import engine.network.trainer as trainer

    written = []
    real = trainer.save_checkpoint
    monkeypatch.setattr(trainer, "save_checkpoint",
                        lambda d, m, o, state: (written.append(state["epoch"]),
                                                real(d, m, o, state)))
    train(tiny_ds, tiny_config(epochs=5, checkpoint_every=2), tmp_path)
    assert written == [2, 4, 5]
    assert load_bundle(tmp_path / "bundle").meta["metrics"]["epochs"] == 5
    with pytest.raises(InputError, match="^checkpoint_every: expected"):
        TrainConfig(checkpoint_every=0)


@pytest.mark.parametrize("g", [1, 2])
def test_validation_loss_is_the_mean_over_held_out_groups(tiny_ds, g):
    """The one-pass validation (loss, canvas and statistics together) gives the loss of a
    plain loop over the validation groups."""
    import numpy as np
    import torch

    from engine.network.batches import prepare
    from engine.network.losses import compute_loss
    from engine.network.predict import batch_slices, group_batch
    from engine.network.trainer import _validate, build_model

    cfg = tiny_config(gridsize=g, neighbor_count=4 if g > 1 else None, batch_size=3)
    prep = prepare(tiny_ds, g, cfg.neighbor_count, None, cfg.val_fraction, 0, False)
    model = build_model(tiny_ds.N, cfg, prep.probe)
    x = torch.from_numpy(prep.x)
    loss, canvas, stats = _validate(model, x, None, prep, cfg)
    total = 0.0
    with torch.no_grad():
        for sl in batch_slices(prep.val.n_groups, 2):
            xb, off, _ = group_batch(x, prep.val, np.arange(sl.start, sl.stop))
            obj, pred = model(xb, off)
            total += float(compute_loss("poisson", obj, pred, xb)) * xb.shape[0]
    assert loss == pytest.approx(total / prep.val.n_groups, rel=1e-5)
    assert np.isfinite(canvas.canvas[canvas.coverage]).all() and stats["record"]


def test_cpu_inference_model_is_channels_last_and_predicts_the_same(tiny_ds, tmp_path):
    import numpy as np
    import torch

    from engine.network.inference import load_model
    from engine.network.model import NetworkConfig, PtychoNet
    from engine.network.physics import PhysicsModel

    train(tiny_ds, tiny_config(epochs=1, gridsize=2, neighbor_count=4), tmp_path)
    bundle = load_bundle(tmp_path / "bundle")
    model = load_model(bundle, torch.device("cpu"))
    conv = model.net.amplitude_head.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    net = PtychoNet(NetworkConfig(**bundle.meta["network"]))
    net.load_state_dict(bundle.weights)
    plain = PhysicsModel(net, bundle.probe, True).eval()
    rng = np.random.default_rng(1)
    x = torch.as_tensor(rng.gamma(1.0, 1.0, (3, 4, 32, 32)).astype(np.float32))
    off = torch.as_tensor(rng.uniform(-3, 3, (3, 4, 2)))
    with torch.no_grad():
        torch.testing.assert_close(model.patches(x, off), plain.patches(x, off),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.safetensors"])
def test_resume_refuses_a_corrupted_checkpoint(tiny_ds, tmp_path, name):
    train(tiny_ds, tiny_config(epochs=1), tmp_path)
    f = tmp_path / "checkpoint" / name
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the tensor data
    f.write_bytes(bytes(data))
    with pytest.raises(InputError, match=f"{name}.*sha256.*corrupted") as info:
        train(tiny_ds, tiny_config(epochs=2), tmp_path, resume=True)
    assert "\n" not in str(info.value)


def test_resume_refuses_a_checkpoint_without_digests(tiny_ds, tmp_path):
    train(tiny_ds, tiny_config(epochs=1), tmp_path)
    state_file = tmp_path / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    del state["files"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(InputError, match="digests"):
        train(tiny_ds, tiny_config(epochs=2), tmp_path, resume=True)
