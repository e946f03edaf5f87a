"""The physics-informed network end to end.

``model`` (the encoder–decoder CNN), ``physics`` (its differentiable forward model),
``predict`` (grouped prediction), ``patch_stats`` (statistics of predicted patches),
``config``/``batches``/``losses``/``augment``/``graphs``/``checkpoint``/``trainer`` (training),
``bundles`` (the saved model) and ``inference``.

The common names are re-exported lazily, so importing a torch-free submodule such as
:mod:`engine.network.bundles` does not pull in torch.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "SUPPORTED_N": "model", "NetworkConfig": "model", "PtychoNet": "model",
    "flops_per_pattern": "model", "parameter_count": "model",
    "PhysicsModel": "physics", "group_extent": "physics", "merge_reextract": "physics",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
