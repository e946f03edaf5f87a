"""One run request per run, merged in one function.

:func:`merge_request` builds a :class:`RunRequest` from three sources, in this order of
precedence: the run panel's (or a script's) explicit values, then the workbench settings
a user set explicitly (the model's ``explicit``), then the kind's preset and the engine's
defaults. ``None`` always means "not given", whatever the value; a value equal to a default
is still an explicit choice. The device defaults to ``auto``: the GPU when there is one,
which also picks the training preset (``standard`` on a GPU, ``quick`` on a CPU), as
``ptycho train`` does.

Examples
--------
>>> req = merge_request("lsqml", {"iterations": 3, "backend": "numpy"},
...                     {"backend": "torch", "gridsize": 2}, {"backend", "gridsize"})
>>> req.options.iterations, req.backend, req.sources["backend"]
(3, 'numpy', 'panel')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import api
from engine.errors import InputError
from ptycho_gui.kinds import get_kind

# the request's own fields (not options of the kind's class), with their defaults
EXTRAS: dict[str, Any] = {"device": "auto", "backend": "numpy", "init": "flat",
                          "bundle": None, "preset": None, "checkpoint_every": 10, "out": None,
                          "devices": 1}
SOLVER_CONTROLS = ("backend", "init", "bundle", "preset", "checkpoint_every", "devices")


@dataclass(frozen=True)
class RunRequest:
    """Everything one run needs, merged and validated.

    ``device`` is as chosen (``auto`` included), ``resolved_device`` where it runs;
    ``sources`` says where each given value came from (``panel``, ``workbench``); the rest
    are the preset's or the engine's defaults.
    """

    kind: str
    options: Any
    device: str = "auto"
    resolved_device: str = "cpu"
    backend: str = "numpy"
    init: str = "flat"
    bundle: str | None = None
    preset: str | None = None
    train_options: Any = None
    checkpoint_every: int = 10
    out: str | None = None
    n_positions: int | None = None
    devices: int = 1
    sources: dict[str, str] = field(default_factory=dict)
    given: dict[str, Any] = field(default_factory=dict)

    def solver_device(self) -> str:
        """The device a solver runs on: the resolved device on torch, the CPU on numpy."""
        return self.resolved_device if self.backend == "torch" else "cpu"

    def init_source(self) -> str:
        """The solvers' first object: ``flat``, or the bundle's canvas for ``network``."""
        if self.init == "network":
            if self.bundle is None:
                raise InputError("init", "a loaded bundle for init 'network'", "none")
            return self.bundle
        return self.init

    def describe(self) -> str:
        """One line: the kind, where it runs, the preset, and the values given."""
        where = self.resolved_device + (" (auto)" if self.device == "auto" else "")
        parts = [f"{get_kind(self.kind).label} on {where}"]
        if self.preset:
            parts.append(f"preset {self.preset}")
        if self.devices > 1:
            parts.append(f"{self.devices} ranks")
        parts += [f"{k} {v} ({self.sources[k]})" for k, v in self.given.items()
                  if k != "out"]
        return ", ".join(parts)


def _scaling(values: dict[str, Any]) -> None:
    """The workbench's two scaling fields (or the command line's ``fixed=<v>``) as the one
    :class:`~engine.api.ScalingConfig` an inference takes."""
    mode = values.pop("scaling", None)
    value = values.pop("scale_value", None)
    if mode is None and value is None:
        return
    if isinstance(mode, api.ScalingConfig):
        values["scaling"] = mode
    elif isinstance(mode, str) and mode.startswith("fixed="):
        values["scaling"] = api.ScalingConfig.parse(mode)
    elif mode is not None:
        values["scaling"] = api.ScalingConfig(mode, value if mode == "fixed" else None)


def _coerce(cls: type, name: str, value: Any) -> Any:
    """A form's number as the field's type (an int where a float is expected)."""
    hints = {f.name: f for f in cls.describe()} if hasattr(cls, "describe") else {}
    f = hints.get(name)
    if f is not None and f.base is float and isinstance(value, int) \
            and not isinstance(value, bool):
        return float(value)
    return value


def merge_request(kind: str, panel: Mapping[str, Any], settings: Mapping[str, Any],
                  explicit: Collection[str] = (), *, n_positions: int | None = None,
                  bundle: str | None = None) -> RunRequest:
    """The request of a ``kind`` run (see the module docstring).

    Parameters
    ----------
    kind : a registered run kind (:data:`ptycho_gui.kinds.KINDS`).
    panel : explicit values (the run panel's edited fields, a script's keywords): fields of
        the kind's options class, the request's own (``device``, ``backend``, ``init``,
        ``bundle``, ``preset``, ``checkpoint_every``, ``out``) and, for ``refine``, the
        training's as ``train_<field>``. ``None`` values are not given.
    settings, explicit : the workbench settings, and which of them a user set.
    n_positions : the dataset's positions (the quick preset counts optimiser steps).
    bundle : the bundle in use when neither the panel nor the settings name one (the last
        trained).

    Raises
    ------
    InputError : an unknown name or a bad value, naming it.
    """
    spec = get_kind(kind)
    cls = spec.options()
    names = {f.name for f in dataclasses.fields(cls)}
    given: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting, target in spec.takes.items():
        if setting in explicit and settings.get(setting) is not None:
            given[target], sources[target] = settings[setting], "workbench"
    for key, value in panel.items():
        if value is not None:
            given[key], sources[key] = value, "panel"
    if "scaling" in given or "scale_value" in given:
        src = sources.get("scaling", sources.get("scale_value", "panel"))
        if sources.get("scale_value") == "workbench" and sources.get("scaling") == "panel":
            given.pop("scale_value")  # the panel's scaling carries its own value
        _scaling(given)
        if "scaling" in given:
            sources["scaling"] = src
        sources.pop("scale_value", None)
    typed: dict[str, Any] = {}
    extra = dict(EXTRAS)
    train: dict[str, Any] = {}
    for key, value in given.items():
        if key in names and key not in ("device",):
            typed[key] = _coerce(cls, key, value)
        elif key in EXTRAS:
            extra[key] = value
        elif kind == "refine" and key.startswith("train_"):
            train[key[len("train_"):]] = value
        else:
            raise InputError(key, f"an option of '{kind}' (one of "
                             f"{', '.join(sorted(names | set(EXTRAS)))})", repr(value))
    if extra["device"] not in ("auto", "cpu") and not str(extra["device"]).startswith("cuda"):
        raise InputError("device", "auto, cpu or cuda[:k]", repr(extra["device"]))
    resolved = api.resolve_device(extra["device"])
    if extra["backend"] not in list(api.available_backends()):
        raise InputError("backend", f"one of {list(api.available_backends())}",
                         repr(extra["backend"]))
    if extra["init"] not in ("flat", "network"):
        extra["init"] = str(extra["init"])  # a canvas file
    devices = _devices(extra["devices"], kind, spec.controls, extra["backend"], resolved)
    preset = extra["preset"]
    if preset is not None and preset not in api.presets():
        raise InputError("preset", f"one of {', '.join(api.presets())}", repr(preset))
    if preset is None and kind in ("train", "refine"):
        preset = api.default_preset(resolved)
    # refine trains its own network unless a bundle is named (the panel's or the
    # workbench's); the others fall back to the last trained
    chosen_bundle = extra["bundle"] if extra["bundle"] not in ("", None) else (
        None if kind == "refine" else bundle)
    ctx = _Context(resolved, preset, n_positions)
    options = spec.build(typed, ctx) if spec.build is not None else cls(**typed)
    train_options = None
    if kind == "refine":
        unknown = sorted(set(train) - {f.name for f in dataclasses.fields(api.TrainConfig)})
        if unknown:
            raise InputError(f"train_{unknown[0]}", "a training option (train_<field> of "
                             "TrainConfig)", repr(train[unknown[0]]))
        from ptycho_gui.kinds import build_training

        train_options = None if chosen_bundle else build_training(train, ctx)
    if kind == "infer" and chosen_bundle is None:
        raise InputError("bundle", "a trained bundle (Load bundle, or a train run first)",
                         "none")
    return RunRequest(kind=kind, options=options, device=str(extra["device"]),
                      resolved_device=resolved, backend=extra["backend"],
                      init=extra["init"], bundle=None if chosen_bundle is None
                      else str(chosen_bundle), preset=preset if kind in ("train", "refine")
                      else None, train_options=train_options,
                      checkpoint_every=int(extra["checkpoint_every"]), out=extra["out"],
                      n_positions=n_positions, devices=devices, sources=sources,
                      given=given)


def _devices(value: Any, kind: str, controls: Collection[str], backend: str,
             resolved: str) -> int:
    """The rank count of a run (docs/iterative.md#several-devices): 1, or up to the GPUs
    the machine has for a torch solver on CUDA (one rank per GPU), or up to its cores for
    CPU processes; other kinds run on one device."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError("devices", "a whole number of ranks >= 1", repr(value))
    if value == 1:
        return 1
    if "devices" not in controls:
        raise InputError("devices", f"1 for '{kind}' (several devices run the iterative "
                         "solvers only)", str(value))
    gpu = resolved.startswith("cuda") and backend == "torch"
    limit = api.available_ranks("cuda" if gpu else "cpu")
    if value > limit:
        where = "GPUs" if gpu else "CPU cores"
        raise InputError("devices", f"at most {limit} (the {where} of this machine)",
                         str(value))
    return value


@dataclass(frozen=True)
class _Context:
    resolved_device: str
    preset: str | None
    n_positions: int | None


def preset_defaults(kind: str, device: str = "auto", n_positions: int | None = None
                    ) -> dict[str, Any]:
    """The values a ``kind`` run takes when nothing is given: what the run panel shows
    greyed (the preset that will run on this machine, not the class defaults)."""
    spec = get_kind(kind)
    if kind == "train":
        resolved = api.resolve_device(device)
        return spec.build({}, _Context(resolved, api.default_preset(resolved),
                                       n_positions)).to_dict()
    return spec.options()().to_dict() if kind != "infer" else api.InferConfig().to_dict()


__all__ = ["RunRequest", "merge_request", "preset_defaults"]
