"""Statistics files written by the original PtychoPINN tools, read as this project's
records (docs/migrating-from-ptychopinn.md).

Two layouts are recognised:

- the per-batch list of PtychoPINN's patch-statistics logger (``torch_patch_stats.json``):
  records with ``batch_idx``, ``batch_size``, ``global_mean``, ``global_std`` and
  ``var_zero_mean`` (and ``phase``, ``per_patch``);
- its debug dump's ``{"patch_amplitude": {...}, "canvas_amplitude": {...}}``.

Each becomes the records :func:`engine.physics.stats.summarise` pools: ``batch`` ←
``batch_idx``, ``mean`` ← ``global_mean``, ``std`` ← ``global_std``, ``n_patches`` ←
``batch_size`` (groups per batch: the pooling weights, exact while C is the same in every
batch). :func:`translate` says which naming it read, so a comparison can report it.

Examples
--------
>>> records, naming = translate([{"phase": "train", "batch_idx": 0, "batch_size": 4,
...                               "global_mean": 0.5, "global_std": 0.1,
...                               "var_zero_mean": 0.01}])
>>> naming, records[0]["mean"], records[0]["batch"]
('PtychoPINN (global_mean, global_std, var_zero_mean, batch_idx, batch_size)', 0.5, 0)
"""

from __future__ import annotations

from typing import Any

NATIVE = "ptycho-workbench (mean, std, var_zero_mean, batch, n_patches)"
LEGACY_BATCHES = "PtychoPINN (global_mean, global_std, var_zero_mean, batch_idx, batch_size)"
LEGACY_DEBUG = "PtychoPINN debug dump (patch_amplitude, canvas_amplitude)"
# the file the original logger writes, found in a directory after this project's own
LEGACY_FILES = ("torch_patch_stats.json", "analysis/torch_patch_stats.json")
# original key -> this project's key
RENAMED = {"batch_idx": "batch", "global_mean": "mean", "global_std": "std",
           "batch_size": "n_patches"}


def is_legacy_record(record: Any) -> bool:
    """A record of the original logger (``global_mean`` where this project has ``mean``)."""
    return isinstance(record, dict) and "global_mean" in record and "mean" not in record


def translate(data: Any) -> tuple[Any, str]:
    """``(records, naming)``: ``data`` (a parsed JSON document) with the original tools'
    keys renamed, and which naming it was in; anything else is returned unchanged with
    :data:`NATIVE` (the caller validates it)."""
    if isinstance(data, list) and data and all(is_legacy_record(r) for r in data):
        return [_record(r) for r in data], LEGACY_BATCHES
    if isinstance(data, dict) and isinstance(data.get("patch_amplitude"), dict):
        record: dict[str, Any] = {"phase": data.get("phase", "inference"), "batch": "all",
                                  **data["patch_amplitude"]}
        if isinstance(data.get("canvas_amplitude"), dict):
            record["canvas"] = dict(data["canvas_amplitude"])
        return [record], LEGACY_DEBUG
    return data, NATIVE


def _record(r: dict[str, Any]) -> dict[str, Any]:
    out = {RENAMED.get(k, k): v for k, v in r.items()}
    out.setdefault("phase", "unknown")
    return out
