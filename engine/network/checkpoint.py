"""Per-epoch checkpoints for exact resume: safetensors + JSON, no pickle.

``<out>/checkpoint/`` holds ``model.safetensors`` (weights), ``optimizer.safetensors`` (Adam
moments and step counts, flattened) and ``state.json`` (epoch, step, history, config,
optimizer hyper-parameters). Written to a temporary directory renamed into place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.atomic import atomic_directory
from engine.errors import InputError

STATE = "state.json"
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
    with atomic_directory(target) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                  str(tmp / "model.safetensors"))
        tensors, rest = optimizer_tensors(opt)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / STATE).write_text(json.dumps({**state, "optimizer": rest}, indent=1))
    return target


def load_checkpoint(directory: str | os.PathLike[str], model: torch.nn.Module,
                    opt: torch.optim.Optimizer,
                    check: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Restore ``model`` and ``opt`` in place; return the saved state (epoch, history...).

    ``check`` sees the saved state before any weight is loaded: a checkpoint of another
    configuration is refused with its reason, not with a mismatch of tensor shapes.
    """
    d = Path(directory)
    if not (d / STATE).is_file():
        raise InputError("--resume", f"a checkpoint in {d}", "none found")
    try:
        state = json.loads((d / STATE).read_text())
        weights = load_file(str(d / "model.safetensors"))
        opt_tensors = load_file(str(d / "optimizer.safetensors"))
    except (json.JSONDecodeError, SafetensorError, OSError) as exc:
        raise InputError(f"checkpoint {d}", "readable safetensors and JSON files",
                         type(exc).__name__) from None
    if check is not None:
        check(state)
    device = next(model.parameters()).device
    model.load_state_dict({k: v.to(device) for k, v in weights.items()})
    restore_optimizer(opt, {k: v.to(device) if k.endswith(("exp_avg", "exp_avg_sq")) else v
                            for k, v in opt_tensors.items()}, state["optimizer"])
    return state
