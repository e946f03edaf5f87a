"""Options classes describe their fields, validate against the same bounds, round-trip JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import typing

import pytest

from engine.errors import InputError
from engine.iterative.options import EPIEOptions, LSQMLOptions, RPIEOptions
from engine.network.config import TrainConfig
from engine.network.inference import InferConfig
from engine.options import describe
from engine.physics.grouping import GroupingConfig
from engine.physics.scaling import ScalingConfig
from engine.physics.stitching import StitchConfig
from engine.simulation.simulate import SimulationConfig

OPTIONS = (SimulationConfig, GroupingConfig, StitchConfig, ScalingConfig, TrainConfig,
           InferConfig, EPIEOptions, RPIEOptions, LSQMLOptions)


def _bad_values(info):
    """Values just outside what ``info`` allows: a wrong choice, a number past a bound."""
    if info.choices is not None:
        yield "no-such-choice"
    if info.base in (int, float):
        step = 1 if info.base is int else 1e-9 * max(1.0, abs(info.minimum or 0), abs(
            info.maximum or 0))
        if info.minimum is not None:
            yield info.minimum if info.exclusive_minimum else info.base(info.minimum - step)
        if info.maximum is not None:
            yield info.maximum if info.exclusive_maximum else info.base(info.maximum + step)
        yield "seven"
    if info.base is bool:
        yield "yes"
    if not info.optional:
        yield None


@pytest.mark.parametrize("cls", OPTIONS, ids=lambda c: c.__name__)
def test_every_field_is_described(cls):
    infos = describe(cls)
    assert [i.name for i in infos] == [f.name for f in dataclasses.fields(cls)]
    cls()  # the defaults are valid
    for info in infos:
        assert info.help and "\n" not in info.help, info.name
        assert info.default == getattr(cls(), info.name)
        if typing.get_origin(info.base) is typing.Literal:
            assert info.choices == typing.get_args(info.base) and info.default in info.choices
        if info.minimum is not None and info.maximum is not None:
            assert info.minimum < info.maximum


@pytest.mark.parametrize("cls", OPTIONS, ids=lambda c: c.__name__)
def test_bad_values_name_the_field_and_never_a_flag(cls):
    checked = 0
    for info in describe(cls):
        for bad in _bad_values(info):
            with pytest.raises(InputError) as err:
                cls(**{info.name: bad})
            msg = str(err.value)
            assert msg.startswith(f"{info.name}") and "--" not in msg, msg
            assert "\n" not in msg
            checked += 1
    assert checked >= len(describe(cls))


@pytest.mark.parametrize("cls", OPTIONS, ids=lambda c: c.__name__)
def test_values_on_the_bounds_are_accepted(cls):
    """The bounds ``describe`` reports are the ones validation applies (inclusive ends)."""
    for info in describe(cls):
        for end, exclusive in ((info.minimum, info.exclusive_minimum),
                               (info.maximum, info.exclusive_maximum)):
            if end is None or exclusive:
                continue
            value = info.base(end)
            kwargs = {info.name: value}
            if cls is TrainConfig and info.name == "neighbor_count":
                kwargs["gridsize"] = 1
            if cls is TrainConfig and info.name == "bottleneck":
                kwargs[info.name] = 4
            assert getattr(cls(**kwargs), info.name) == kwargs[info.name]
        for choice in info.choices or ():
            kwargs = {info.name: choice}
            if cls is ScalingConfig and choice == "fixed":
                kwargs["value"] = 2.0
            if cls is TrainConfig and info.name == "precision" and choice != "32":
                kwargs["cuda_graphs"] = False
            if cls is SimulationConfig and choice == "near":  # the near field needs a geometry
                kwargs.update(wavelength=1e-10, distance=0.1, detector_pixel=1e-6)
            assert getattr(cls(**kwargs), info.name) == choice


@pytest.mark.parametrize("cls", OPTIONS, ids=lambda c: c.__name__)
def test_json_round_trip(cls):
    changed = {
        SimulationConfig: dict(object="asym", object_size=(80, 96), nphotons=math.inf, N=32),
        GroupingConfig: dict(gridsize=2, n_groups=7),
        StitchConfig: dict(window="probe", crop=12),
        ScalingConfig: dict(mode="fixed", value=9.5),
        TrainConfig: dict(gridsize=2, lr_schedule="cosine", precision="bf16-mixed"),
        InferConfig: dict(scaling=ScalingConfig("data"), stitch=StitchConfig(crop=8)),
        EPIEOptions: dict(alpha=0.5, batch_normalisation="peak"),
        RPIEOptions: dict(alpha=0.3),
        LSQMLOptions: dict(noise="poisson", step_directions="global"),
    }[cls]
    opts = cls(**changed)
    back = cls.from_dict(json.loads(json.dumps(opts.to_dict())))
    assert back == opts and type(back) is cls
    with pytest.raises(InputError, match="unknown"):
        cls.from_dict({**opts.to_dict(), "no_such_field": 1})


def test_choices_are_the_engine_registries():
    """The types a form offers list exactly what the engine can run."""
    from engine.iterative.options import METHODS, Method
    from engine.network.losses import LOSSES
    from engine.simulation.objects import OBJECTS
    from engine.simulation.probes import PROBES
    from engine.simulation.scans import SCANS

    sim = {i.name: i.choices for i in describe(SimulationConfig)}
    assert set(sim["object"]) == set(OBJECTS) and set(sim["probe"]) == set(PROBES)
    assert set(sim["scan"]) == set(SCANS)
    assert {i.name: i.choices for i in describe(TrainConfig)}["loss"] == LOSSES
    assert set(typing.get_args(Method)) == set(METHODS)


def test_nested_options_are_described_in_turn():
    infos = {i.name: i for i in describe(InferConfig)}
    assert infos["scaling"].is_options and infos["scaling"].base is ScalingConfig
    assert not infos["batch_size"].is_options
    assert [i.name for i in describe(infos["stitch"].base)] == ["crop", "window", "eps"]


def test_advanced_marks_the_rarely_changed_fields():
    adv = {i.name for i in describe(TrainConfig) if i.advanced}
    assert {"cuda_graphs", "channels_last", "compile", "strategy"} <= adv
    assert not adv & {"gridsize", "epochs", "lr", "batch_size", "loss"}


def test_magicgui_builds_dropdowns_from_the_types():
    type_map = pytest.importorskip("magicgui.type_map")
    for cls in OPTIONS:
        for info in describe(cls):
            if info.choices is None:
                continue
            widget, kwargs = type_map.get_widget_class(annotation=info.type)
            assert widget.__name__ == "ComboBox", (cls.__name__, info.name)
            assert list(kwargs["choices"]) == list(info.choices)
