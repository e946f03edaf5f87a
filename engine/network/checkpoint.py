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
    files[STATE] = json.dumps({**state, "optimizer": rest, "files": digests}, indent=1).encode()
    with atomic_directory(target) as tmp:
        for name, data in files.items():  # state.json last: it vouches for the others
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    return target


def _verified(d: Path, name: str, info: Any) -> bytes:
    """The bytes of ``d/name`` if they match the digest ``state.json`` recorded."""
    data = (d / name).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if not isinstance(info, dict) or len(data) != info.get("size") or sha != info.get("sha256"):
        want = info.get("sha256", "?")[:12] if isinstance(info, dict) else "?"
        raise InputError(f"checkpoint {d / name}", f"the sha256 {want}... recorded in {STATE}",
                         f"{len(data)} bytes with sha256 {sha[:12]}... (corrupted or altered)")
    return data


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
    try:
        state = json.loads((d / STATE).read_text())
        if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
            raise InputError(f"checkpoint {d}", f"a {STATE} with the digests of its files "
                             "(written by this version)", "none (an older or edited checkpoint)")
        weights = st_load(_verified(d, MODEL, state["files"].get(MODEL)))
        opt_tensors = st_load(_verified(d, OPTIMIZER, state["files"].get(OPTIMIZER)))
    except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, OSError) as exc:
        raise InputError(f"checkpoint {d}", "readable safetensors and JSON files",
                         type(exc).__name__) from None
    if check is not None:
        check(state)
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device) for k, v in weights.items()})
    restore_optimizer(opt, {k: v.to(device) if k.endswith(("exp_avg", "exp_avg_sq")) else v
                            for k, v in opt_tensors.items()}, state["optimizer"])
    return state
