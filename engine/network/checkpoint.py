"""Per-epoch checkpoints for exact resume: safetensors + JSON, no pickle.

``<out>/checkpoint/`` holds ``model.safetensors`` (weights), ``optimizer.safetensors`` (Adam
moments and step counts, flattened) and ``state.json`` (epoch, step, history, config,
optimizer hyper-parameters) plus the sha256 and size of the two safetensors files, verified
before anything is restored (like a bundle's). Written whole into a staging directory swapped
into place (:func:`engine.atomic.atomic_directory`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from engine import schema
from engine.atomic import atomic_directory
from engine.errors import InputError

STATE = "state.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
IMPLEMENTATION_KEYS = ("fused", "capturable", "foreach", "differentiable")


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (safetensors) and JSON-able rest."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"{pid}.{key}"] = t.detach().cpu().contiguous()
    # a captured step keeps its learning rate in a device tensor (engine.network.graphs)
    groups = [{k: float(v) if isinstance(v, torch.Tensor) else v for k, v in g.items()}
              for g in sd["param_groups"]]
    return tensors, {"param_groups": groups}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                      rest: dict) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, t in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = t
    # how the update runs (fused, capturable, ...) belongs to this run, not the saved one:
    # a checkpoint written on a GPU resumes on a CPU and the other way round
    groups = [{**saved, **{k: current[k] for k in IMPLEMENTATION_KEYS if k in current}}
              for saved, current in zip(rest["param_groups"], opt.param_groups, strict=True)]
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(directory: str | os.PathLike[str], model: torch.nn.Module,
                    opt: torch.optim.Optimizer, state: dict[str, Any]) -> Path:
    target = Path(directory)
    tensors, rest = optimizer_tensors(opt)
    files = {MODEL: st_save({k: v.detach().cpu().contiguous()
                             for k, v in model.state_dict().items()}),
             OPTIMIZER: st_save(tensors)}
    digests = {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
               for name, data in files.items()}
    body = {**state, "optimizer": rest, "files": digests}
    body["manifest_sha256"] = _state_digest(body)  # state.json vouches for itself too
    files[STATE] = json.dumps(body, indent=1).encode()
    with atomic_directory(target) as tmp:
        for name, data in files.items():  # state.json last: it vouches for the others
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    return target


STATE_LIMIT = 64 << 20  # state.json: configuration and history, never near this
SLACK = 1 << 20  # safetensors' JSON header


def _state_digest(state: dict[str, Any]) -> str:
    """sha256 of ``state`` without its own digest (keys sorted), as ``bundle.json``'s."""
    body = {k: v for k, v in state.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _verified(d: Path, name: str, info: Any, limit: int) -> bytes:
    """The bytes of ``d/name`` if they match the digest ``state.json`` recorded; its size
    is checked against the record and ``limit`` before it is read."""
    want = info.get("sha256", "?")[:12] if isinstance(info, dict) else "?"
    size = (d / name).stat().st_size
    if not isinstance(info, dict) or size != info.get("size") or size > limit:
        raise InputError(f"checkpoint {d / name}", f"the size recorded in {STATE} (at most "
                         f"{limit} bytes for this network)", f"{size} bytes (refused unread)")
    with open(d / name, "rb") as fh:
        data = fh.read(limit + 1)
    sha = hashlib.sha256(data).hexdigest()
    if len(data) != info.get("size") or sha != info.get("sha256"):
        raise InputError(f"checkpoint {d / name}", f"the sha256 {want}... recorded in {STATE}",
                         f"{len(data)} bytes with sha256 {sha[:12]}... (corrupted or altered)")
    return data


def check_state(state: Any, where: str) -> None:
    """Refuse a ``state.json`` whose fields no training writes (one line naming the field):
    epoch within 0..the configuration's epochs, as many history records, a step count,
    a configuration and the optimiser's groups.

    Examples
    --------
    >>> check_state({"epoch": -1, "step": 0, "history": [], "config": {"epochs": 2},
    ...              "optimizer": {"param_groups": [{}]}, "files": {}}, "state.json")
    Traceback (most recent call last):
    ...
    engine.errors.InputError: state.json: field 'epoch': expected an integer in [0, 2], got -1
    """
    schema.files_table(state, where)
    config = schema.mapping(state, "config", where)
    epochs = schema.number(config, "epochs", f"{where}: config", integer=True, lo=1)
    epoch = schema.number(state, "epoch", where, integer=True, lo=0, hi=epochs)
    schema.number(state, "step", where, integer=True, lo=0)
    history = schema.listing(state, "history", where)
    if len(history) != epoch:
        raise InputError(f"{where}: field 'history'", f"{epoch} records (one per epoch)",
                         f"{len(history)}")
    optimizer = schema.mapping(state, "optimizer", where)
    schema.listing(optimizer, "param_groups", f"{where}: optimizer")
    if not isinstance(state.get("data_digest", ""), str):
        raise InputError(f"{where}: field 'data_digest'", "a hex digest",
                         repr(state["data_digest"]))


def verify_checkpoint(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a training checkpoint without a model (``ptycho inventory --check``): the
    digest of ``state.json``, its fields (:func:`check_state`), the digests of the tensor
    files and that every tensor is finite. Returns the state; refuses with one line.
    """
    d = Path(directory)
    where = f"checkpoint {d / STATE}"
    try:
        if (d / STATE).stat().st_size > STATE_LIMIT:
            raise InputError(where, f"at most {STATE_LIMIT} bytes", "more (refused unread)")
        state = json.loads((d / STATE).read_text())
        if not isinstance(state, dict) or state.get("manifest_sha256") != _state_digest(state):
            raise InputError(where, "content matching its manifest_sha256",
                             "a mismatch (edited, corrupted or written by an older version)")
        check_state(state, where)
        for name in (MODEL, OPTIMIZER):
            info = state["files"].get(name)
            limit = info["size"] if isinstance(info, dict) else 0
            for key, t in st_load(_verified(d, name, info, limit)).items():
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    raise InputError(f"checkpoint {d / name}: '{key}'", "finite values",
                                     "NaN or infinite")
    except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, OSError) as exc:
        raise InputError(f"checkpoint {d}", "readable safetensors and JSON files",
                         type(exc).__name__) from None
    return state


def load_checkpoint(directory: str | os.PathLike[str], model: torch.nn.Module,
                    opt: torch.optim.Optimizer,
                    check: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Restore ``model`` and ``opt`` in place; return the saved state (epoch, history...).

    ``check`` sees the saved state before any weight is loaded: a checkpoint of another
    configuration is refused with its reason, not with a mismatch of tensor shapes.
    """
    d = Path(directory)
    if not (d / STATE).is_file():
        raise InputError("resume", f"a checkpoint in {d}", "none found")
    where = f"checkpoint {d / STATE}"
    n_params = sum(p.numel() for p in model.parameters())
    try:
        if (d / STATE).stat().st_size > STATE_LIMIT:
            raise InputError(where, f"at most {STATE_LIMIT} bytes", "more (refused unread)")
        state = json.loads((d / STATE).read_text())
        if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
            raise InputError(f"checkpoint {d}", f"a {STATE} with the digests of its files "
                             "(written by this version)", "none (an older or edited checkpoint)")
        if state.get("manifest_sha256") != _state_digest(state):
            raise InputError(where, "content matching its manifest_sha256",
                             "a mismatch (edited or corrupted)")
        check_state(state, where)
        weights = st_load(_verified(d, MODEL, state["files"].get(MODEL), 4 * n_params + SLACK))
        opt_tensors = st_load(_verified(d, OPTIMIZER, state["files"].get(OPTIMIZER),
                                        12 * n_params + SLACK))
    except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, OSError) as exc:
        raise InputError(f"checkpoint {d}", "readable safetensors and JSON files",
                         type(exc).__name__) from None
    if check is not None:  # another configuration: refused by its reason, not by a shape
        check(state)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for k, t in weights.items():
        if k in shapes and tuple(t.shape) != shapes[k]:
            raise InputError(f"checkpoint {d / MODEL}: '{k}'", f"shape {shapes[k]}",
                             f"shape {tuple(t.shape)}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InputError(f"checkpoint {d / MODEL}: '{k}'", "finite values",
                             "NaN or infinite")
    if set(weights) != set(shapes):
        raise InputError(f"checkpoint {d / MODEL}", "the tensors of this network",
                         f"{len(set(shapes) - set(weights))} missing, "
                         f"{len(set(weights) - set(shapes))} unexpected")
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device) for k, v in weights.items()})
    try:
        restore_optimizer(opt, {k: v.to(device) if k.endswith(("exp_avg", "exp_avg_sq"))
                                else v for k, v in opt_tensors.items()}, state["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        raise InputError(f"checkpoint {d / OPTIMIZER}", "the optimiser state of this network",
                         f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}") from None
    return state
