"""Forged bundles and checkpoints are refused by what they say (issue 21, items 4-7).

Each case edits one field of a real run and recomputes every digest the file records, as
a forger would: the digests then match, and only the schema check can refuse it. The
refusal is one line naming the file and the field, from the loader, from ``ptycho infer``
/ ``ptycho train --resume`` (exit 2) and from ``ptycho inventory --check`` (exit 1). A
training that reaches a NaN loss stops naming the step and keeps its last finite state.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import engine.network.trainer as trainer
from engine.cli import main
from engine.data import write_npz
from engine.errors import DivergedError, InputError
from engine.iterative.options import EPIEOptions
from engine.iterative.solver import reconstruct
from engine.iterative.state import load_checkpoint as load_solver_checkpoint
from engine.network.bundles import _manifest_digest, load_bundle
from engine.network.checkpoint import _state_digest, verify_checkpoint
from engine.network.trainer import train
from tests.engine.network.conftest import tiny_config


@pytest.fixture(scope="module")
def run(tiny_ds, tmp_path_factory):
    """A complete training run (bundle and checkpoint) and its data file."""
    d = tmp_path_factory.mktemp("forgery")
    train(tiny_ds, tiny_config(epochs=2), d / "run")
    return d / "run", write_npz(d / "data.npz", tiny_ds)


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _forge_bundle(src, dst, edit_meta=None, edit_weights=None, edit_probe=None):
    """Copy the bundle ``src`` to ``dst`` with edits, every digest recomputed."""
    shutil.copytree(src, dst)
    meta = json.loads((dst / "bundle.json").read_text())
    for name, edit in (("weights.safetensors", edit_weights), ("probe.safetensors", edit_probe)):
        if edit is None:
            continue
        tensors = dict(st_load((dst / name).read_bytes()))
        edit(tensors)
        data = st_save(tensors)
        (dst / name).write_bytes(data)
        meta["files"][name] = {"sha256": _sha(data), "size": len(data)}
    if edit_meta is not None:
        edit_meta(meta)
    meta["manifest_sha256"] = _manifest_digest(meta)
    (dst / "bundle.json").write_text(json.dumps(meta))
    return dst


def _set(key, value):
    return lambda m: m.__setitem__(key, value)


def _nan_weight(t):
    k = next(iter(t))
    t[k] = torch.full_like(t[k], float("nan"))


def _wrong_shape(t):
    k = next(k for k, v in t.items() if v.ndim == 4)
    t[k] = torch.zeros((2 * t[k].shape[0], *t[k].shape[1:]))


BUNDLE_CASES = {
    "scale negative": ({"edit_meta": _set("intensity_scale", -1.0)}, "intensity_scale"),
    "scale NaN": ({"edit_meta": _set("intensity_scale", float("nan"))}, "intensity_scale"),
    "scale string": ({"edit_meta": _set("intensity_scale", "1.0")}, "intensity_scale"),
    "scale zero": ({"edit_meta": _set("intensity_scale", 0)}, "intensity_scale"),
    "probe_factor NaN": ({"edit_meta": _set("probe_factor", float("nan"))}, "probe_factor"),
    "object_big string": ({"edit_meta": _set("object_big", "yes")}, "object_big"),
    "gridsize disagrees": ({"edit_meta": _set("gridsize", 2)}, "gridsize"),
    "files a list": ({"edit_meta": _set("files", [])}, "'files'"),
    "key missing": ({"edit_meta": lambda m: m.pop("intensity_scale")}, "intensity_scale"),
    "N disagrees": ({"edit_meta": _set("N", 64)}, "network.N"),
    "weights NaN": ({"edit_weights": _nan_weight}, "finite"),
    "weight shape": ({"edit_weights": _wrong_shape}, "shape"),
    "probe without imag": ({"edit_probe": lambda t: t.pop("imag")}, "'imag'"),
    "probe 64x64": ({"edit_probe": lambda t: t.update(real=torch.zeros(64, 64),
                                                      imag=torch.zeros(64, 64))}, "(32, 32)"),
}


def _one_line(capsys, code, status):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == status and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("case", sorted(BUNDLE_CASES))
def test_a_forged_bundle_is_refused_naming_the_field(run, tmp_path, capsys, case):
    out, data = run
    edits, field = BUNDLE_CASES[case]
    forged = _forge_bundle(out / "bundle", tmp_path / "forged" / "bundle", **edits)
    with pytest.raises(InputError, match="bundle") as info:
        load_bundle(forged)
    assert field in str(info.value) and "\n" not in str(info.value)
    line = _one_line(capsys, main(["infer", str(forged), str(data), "--out",
                                   str(tmp_path / "inf")]), 2)
    assert field in line
    assert not (tmp_path / "inf").exists()  # the refused run's own directory is gone
    code = main(["inventory", str(tmp_path / "forged"), "--check"])
    captured = capsys.readouterr()
    assert code == 1 and field in captured.err and "Traceback" not in captured.err


def test_a_zipped_bundle_bomb_is_refused_unread(run, tmp_path):
    out, _ = run
    meta = json.loads((out / "bundle" / "bundle.json").read_text())
    bomb = b"\0" * (64 << 20)  # deflates to ~64 kB; the cap is the network's weight size
    meta["files"]["weights.safetensors"] = {"sha256": _sha(bomb), "size": len(bomb)}
    meta["manifest_sha256"] = _manifest_digest(meta)
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundle.json", json.dumps(meta))
        zf.writestr("weights.safetensors", bomb)
        zf.write(out / "bundle" / "probe.safetensors", "probe.safetensors")
    assert z.stat().st_size < 1 << 20
    with pytest.raises(InputError, match=r"files.weights.safetensors.size.*refused unread"):
        load_bundle(z)


def _forge_state(ck, edit, recompute=True):
    state = json.loads((ck / "state.json").read_text())
    edit(state)
    if recompute:
        state["manifest_sha256"] = _state_digest(state)
    (ck / "state.json").write_text(json.dumps(state))


def _nan_model(ck):
    state = json.loads((ck / "state.json").read_text())
    t = dict(st_load((ck / "model.safetensors").read_bytes()))
    k = next(iter(t))
    t[k] = torch.full_like(t[k], float("nan"))
    data = st_save(t)
    (ck / "model.safetensors").write_bytes(data)
    state["files"]["model.safetensors"] = {"sha256": _sha(data), "size": len(data)}
    state["manifest_sha256"] = _state_digest(state)
    (ck / "state.json").write_text(json.dumps(state))


STATE_CASES = {
    "epoch negative": (lambda s: s.__setitem__("epoch", -1), "'epoch'"),
    "epoch 1e6": (lambda s: s.__setitem__("epoch", 10**6), "'epoch'"),
    "epoch NaN": (lambda s: s.__setitem__("epoch", float("nan")), "'epoch'"),
    "epoch moved back": (lambda s: s.__setitem__("epoch", 1), "'history'"),
    "history not a list": (lambda s: s.__setitem__("history", {}), "'history'"),
    "step negative": (lambda s: s.__setitem__("step", -3), "'step'"),
    "config missing": (lambda s: s.pop("config"), "'config'"),
}


@pytest.mark.parametrize("case", sorted(STATE_CASES) + ["digest not recomputed", "NaN weights"])
def test_a_forged_training_checkpoint_is_refused(run, tmp_path, capsys, tiny_ds, case):
    out, data = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    ck = copy / "checkpoint"
    if case == "digest not recomputed":
        _forge_state(ck, lambda s: s.__setitem__("epoch", 1), recompute=False)
        field = "manifest_sha256"
    elif case == "NaN weights":
        _nan_model(ck)
        field = "finite"
    else:
        edit, field = STATE_CASES[case]
        _forge_state(ck, edit)
    with pytest.raises(InputError) as info:
        train(tiny_ds, tiny_config(epochs=3), copy, resume=True)
    assert field in str(info.value) and "state.json" in str(info.value) or field == "finite"
    line = _one_line(capsys, main(["train", str(data), "--out", str(copy), "--resume",
                                   "--epochs", "3", "--base-channels", "4", "--batch-size",
                                   "8", "--lr", "3e-3", "--accelerator", "cpu"]), 2)
    assert field in line
    code = main(["inventory", str(copy), "--check"])
    err = capsys.readouterr().err
    named = "MISMATCH checkpoint/state.json" if case == "digest not recomputed" else field
    assert code == 1 and named in err and "Traceback" not in err


def test_a_nan_loss_stops_training_and_keeps_the_last_finite_state(tiny_ds, tmp_path,
                                                                   monkeypatch):
    real = trainer.train_step
    calls = []

    def step(*a, **k):
        loss = real(*a, **k)
        calls.append(1)
        return torch.full_like(loss, float("nan")) if len(calls) >= 6 else loss

    monkeypatch.setattr(trainer, "train_step", step)
    with pytest.raises(DivergedError, match=r"loss became nan at step 6") as info:
        train(tiny_ds, tiny_config(epochs=4), tmp_path)
    assert "\n" not in str(info.value)
    # the last finite epoch's checkpoint and bundle, every tensor finite
    state = verify_checkpoint(tmp_path / "checkpoint")
    meta = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    weights = st_load((tmp_path / "bundle" / "weights.safetensors").read_bytes())
    assert all(bool(torch.isfinite(t).all()) for t in weights.values())
    assert state["epoch"] == meta["metrics"]["epochs"] and 1 <= state["epoch"] < 4
    assert all(math.isfinite(h["loss"]) for h in state["history"])
    # the run is marked incomplete (readers say so); resuming it is possible
    with pytest.raises(InputError, match="incomplete run"):
        load_bundle(tmp_path)


# ---- the solver's checkpoint.npz ---------------------------------------------------------

@pytest.fixture(scope="module")
def solver_run(tiny_ds, tmp_path_factory):
    d = tmp_path_factory.mktemp("solver") / "ck"
    reconstruct(tiny_ds, EPIEOptions(iterations=2), checkpoint_dir=str(d))
    return d


def _forge_npz(src, dst, **changes):
    dst.mkdir()
    with np.load(src / "checkpoint.npz", allow_pickle=False) as z:
        arrays = dict(z)
    state = json.loads(str(arrays["state"]))
    for k, v in changes.items():
        if k in state:
            state[k] = v
        else:
            arrays[k] = v(arrays[k])
    arrays["state"] = np.array(json.dumps(state))
    np.savez(dst / "checkpoint.npz", **arrays)
    return dst


def _nan_first(a):
    a = a.copy()
    a.flat[0] = np.nan
    return a


SOLVER_CASES = {
    "object NaN": ({"object": _nan_first}, "'object'"),
    "probe NaN": ({"probe": _nan_first}, "'probe'"),
    "probe 2-D": ({"probe": lambda a: a[0]}, "'probe'"),
    "epoch negative": ({"epoch": -1}, "'epoch'"),
    "epoch beyond iterations": ({"epoch": 10**9}, "'epoch'"),
    "history not a list": ({"history": "x"}, "'history'"),
}


@pytest.mark.parametrize("case", sorted(SOLVER_CASES))
def test_a_forged_solver_checkpoint_is_refused(solver_run, tmp_path, capsys, case):
    changes, field = SOLVER_CASES[case]
    forged = _forge_npz(solver_run, tmp_path / "ck", **changes)
    with pytest.raises(InputError) as info:
        load_solver_checkpoint(forged)
    assert field in str(info.value) and "checkpoint.npz" in str(info.value)


def test_a_pickled_solver_checkpoint_names_the_pickle(solver_run, tmp_path):
    import pickle

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "checkpoint.npz").write_bytes(pickle.dumps({"object": 1}))
    with pytest.raises(InputError, match=r"pickled data \(refused\)"):
        load_solver_checkpoint(raw)
    members = tmp_path / "members"
    members.mkdir()
    with np.load(solver_run / "checkpoint.npz", allow_pickle=False) as z:
        arrays = dict(z)
    arrays["object"] = np.array([{"a": 1}], dtype=object)
    np.savez(members / "checkpoint.npz", **arrays)
    with pytest.raises(InputError, match="key 'object'.*pickled objects are refused"):
        load_solver_checkpoint(members)
