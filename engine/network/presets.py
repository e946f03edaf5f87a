"""Training recipes sized for the machine: ``quick``, ``standard`` and ``quality``.

A preset is a set of :class:`~engine.network.config.TrainConfig` values; options given
explicitly override it. Without a preset the device picks one: a CPU gets ``quick`` (a
width-8 network for about 1,000 optimiser steps, a few minutes on an idle 2-core CPU, which
reaches a useful, not a converged, network), a GPU ``standard`` (the defaults the GPU
benchmarks measured). What each gives, measured, is in the README ("Training recipes").

Examples
--------
>>> cfg = preset_config("quick", "cpu", n_positions=1024, gridsize=2)
>>> cfg.base_channels, cfg.epochs        # 819 training groups: 52 steps an epoch
(8, 19)
>>> preset_config("quick", "cpu", n_positions=1024, epochs=3).epochs   # explicit wins
3
>>> default_preset("cuda"), default_preset("cpu")
('standard', 'quick')
"""

from __future__ import annotations

from typing import Any

from engine.errors import InputError
from engine.network.config import TrainConfig

PRESETS = ("quick", "standard", "quality")

# Why these values (benchmarks/RESULTS.md):
# - quick: width 8 is what the CPU sweeps trained (a width-32 step costs ~4x more here), at
#   lr 1e-3 (the CPU quality runs), for a number of optimiser steps rather than a wall-clock
#   budget: on a shared CPU a time budget bought 104 steps and a flat network, while a step
#   count gives the same network whatever the load (the time is what --dry-run estimates).
# - standard: TrainConfig's defaults, the network of the GPU benchmark table.
# - quality: the same network for longer with a cosine decay, which raised held-out r on
#   the N = 32 proxy (0.860 -> 0.883).
_RECIPES: dict[str, dict[str, Any]] = {
    "quick": {"base_channels": 8, "batch_size": 16, "lr": 1e-3, "lr_schedule": "constant",
              "steps": 1000, "epochs": 20},
    "standard": {"base_channels": 32, "batch_size": 16, "lr": 5e-4,
                 "lr_schedule": "constant", "epochs": 20, "time_limit": None},
    "quality": {"base_channels": 32, "batch_size": 16, "lr": 5e-4, "lr_schedule": "cosine",
                "warmup_fraction": 0.05, "epochs": 80, "time_limit": None},
}


def is_gpu(device: str) -> bool:
    """``cuda``/``gpu``/``cuda:k``/``mps`` count as a GPU; ``cpu`` does not."""
    return device.split(":")[0] in ("cuda", "gpu", "mps")


def resolve_device(accelerator: str = "auto") -> str:
    """The device an ``accelerator`` setting trains on: ``auto`` asks torch."""
    if accelerator != "auto":
        return accelerator
    import torch  # only when a run is planned: --help must not pay for it

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_preset(device: str) -> str:
    """``quick`` on a CPU, ``standard`` on a GPU."""
    return "standard" if is_gpu(device) else "quick"


def preset_values(name: str, device: str = "cpu") -> dict[str, Any]:
    """The :class:`TrainConfig` values of preset ``name`` on ``device``.

    On a GPU, checkpoints are written every 5 epochs instead of every epoch: there an epoch
    is a few steps and writing it was two thirds of a measured run.
    """
    if name not in _RECIPES:
        raise InputError("preset", f"one of {', '.join(PRESETS)}", repr(name))
    values = dict(_RECIPES[name])
    if is_gpu(device):
        values["checkpoint_every"] = 5
    return values


def steps_per_epoch(n_positions: int, *, batch_size: int = 16, n_groups: int | None = None,
                    val_fraction: float = 0.2) -> int:
    """Optimiser steps of one epoch on ``n_positions`` (one process): the training region
    (all but the held-out stripe) gives one group per position, capped by ``n_groups``."""
    train = n_positions - int(round(val_fraction * n_positions))
    groups = train if n_groups is None else min(n_groups, train)
    return max(1, -(-groups // batch_size))


def preset_config(name: str | None, device: str = "cpu", *, n_positions: int | None = None,
                  **explicit: Any) -> TrainConfig:
    """A :class:`TrainConfig` from preset ``name`` (``None``: :func:`default_preset` of
    ``device``), with the ``explicit`` fields overriding it.

    ``explicit`` values of ``None`` count as not given (the command line's unset options).
    A recipe counted in optimiser steps (``quick``) becomes whole epochs on a data set of
    ``n_positions`` (without it, the recipe's ``epochs`` stands); explicit ``epochs`` win.
    """
    name = default_preset(device) if name is None else name
    values = preset_values(name, device)
    given = {k: v for k, v in explicit.items() if v is not None}
    steps = values.pop("steps", None)
    values.update(given)
    if steps is not None and "epochs" not in given and n_positions is not None:
        per_epoch = steps_per_epoch(n_positions, batch_size=values["batch_size"],
                                    n_groups=values.get("n_groups"),
                                    val_fraction=values.get("val_fraction", 0.2))
        values["epochs"] = max(1, round(steps / per_epoch))
    return TrainConfig(**values)
