"""Options classes a form can be built from: fields with types, bounds and help, one source.

Every options dataclass of the engine (``SimulationConfig``, ``GroupingConfig``,
``StitchConfig``, ``ScalingConfig``, ``TrainConfig``, ``InferConfig`` and the solver options)
declares its fields with :func:`option`: the type hint says what a value is (a ``Literal``
for a choice, so magicgui builds a drop-down from it), the metadata says its bounds, a
one-line help and whether it is a rarely-used (``advanced``) setting. :func:`describe` lists
them for a GUI or a notebook, and :func:`validate` checks a value against the very same
bounds, so what a form offers and what the engine accepts cannot drift apart. Errors name
the field (``lr: expected a number > 0, got -1``); the command line maps fields to its flags.

Examples
--------
>>> from dataclasses import dataclass
>>> from typing import Literal
>>> @dataclass(frozen=True)
... class Demo(Options):
...     lr: float = option(1e-3, "learning rate", minimum=0, exclusive_minimum=True)
...     window: Literal["uniform", "probe"] = option("uniform", "patch weights")
...     def __post_init__(self) -> None:
...         validate(self)
>>> [(f.name, f.choices, f.minimum) for f in Demo.describe()]
[('lr', None, 0), ('window', ('uniform', 'probe'), None)]
>>> Demo(lr=-1)
Traceback (most recent call last):
...
engine.errors.InputError: lr: expected a number > 0, got -1
>>> Demo.from_dict(Demo(window="probe").to_dict()) == Demo(window="probe")
True
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Literal, TypeVar, Union

import numpy as np

from engine.errors import InputError

_KEY = "ptycho.option"

T = TypeVar("T", bound="Options")


@dataclass(frozen=True)
class _Meta:
    help: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    finite: bool = True
    advanced: bool = False


def option(default: Any = MISSING, help: str = "", *,  # noqa: A002 - the word forms use
           minimum: float | None = None, maximum: float | None = None,
           exclusive_minimum: bool = False, exclusive_maximum: bool = False,
           finite: bool = True, advanced: bool = False,
           default_factory: Any = MISSING) -> Any:
    """A dataclass field with the metadata :func:`describe` and :func:`validate` read.

    Parameters
    ----------
    default, default_factory : as for :func:`dataclasses.field`.
    help : one line saying what the field does (a form's tooltip).
    minimum, maximum : bounds of a number (inclusive unless ``exclusive_*``).
    finite : a float must be finite (``False``: ``inf`` is a meaningful value).
    advanced : a rarely-changed setting a form may fold away.

    Examples
    --------
    >>> f = option(4, "groups per batch", minimum=1)
    >>> f.default, f.metadata["ptycho.option"].minimum
    (4, 1)
    """
    meta = _Meta(help=help, minimum=minimum, maximum=maximum,
                 exclusive_minimum=exclusive_minimum, exclusive_maximum=exclusive_maximum,
                 finite=finite, advanced=advanced)
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={_KEY: meta})


@dataclass(frozen=True)
class FieldInfo:
    """One field of an options class, as a form needs it.

    Attributes
    ----------
    name : the field (and the keyword of the constructor).
    type : the resolved type hint (``Literal[...]`` for a choice; ``X | None`` when optional).
    default : the default value (a fresh one for a ``default_factory`` field).
    choices : the allowed values of a choice, else ``None``.
    minimum, maximum, exclusive_minimum, exclusive_maximum : bounds of a number.
    optional : ``None`` is allowed (it means "automatic" where the help says so).
    help : one line.
    advanced : rarely changed; a form may fold it away.
    """

    name: str
    type: Any
    default: Any
    choices: tuple[Any, ...] | None
    minimum: float | None
    maximum: float | None
    exclusive_minimum: bool
    exclusive_maximum: bool
    optional: bool
    help: str
    advanced: bool

    @property
    def base(self) -> Any:
        """The type without ``None`` (``int`` for ``int | None``)."""
        return _split_optional(self.type)[0]

    @property
    def is_options(self) -> bool:
        """The field is a nested options class (describe it in turn)."""
        return isinstance(self.base, type) and dataclasses.is_dataclass(self.base)


def _split_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        base = args[0] if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
        return base, optional
    return hint, False


def _hints(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    return typing.get_type_hints(cls, vars(module) if module else None)


def _fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(cls)  # ClassVars (a solver's ``method``) are not fields


def describe(cls: Any) -> list[FieldInfo]:
    """The fields of an options class (or instance) with type, default, bounds and help.

    Examples
    --------
    >>> from engine.physics.stitching import StitchConfig
    >>> [(f.name, f.choices) for f in describe(StitchConfig)][:2]
    [('crop', None), ('window', ('uniform', 'probe'))]
    """
    cls = cls if isinstance(cls, type) else type(cls)
    hints = _hints(cls)
    out = []
    for f in _fields(cls):
        meta = f.metadata.get(_KEY) or _Meta(help="")
        hint = hints[f.name]
        base, optional = _split_optional(hint)
        choices = tuple(typing.get_args(base)) if typing.get_origin(base) is Literal else None
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = MISSING
        out.append(FieldInfo(name=f.name, type=hint, default=default, choices=choices,
                             minimum=meta.minimum, maximum=meta.maximum,
                             exclusive_minimum=meta.exclusive_minimum,
                             exclusive_maximum=meta.exclusive_maximum, optional=optional,
                             help=meta.help, advanced=meta.advanced))
    return out


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def expected_text(info: FieldInfo) -> str:
    """The ``expected`` part of the error for a bad value of this field."""
    base = info.base
    if info.choices is not None:
        text = f"one of {', '.join(str(c) for c in info.choices)}"
    elif base is bool:
        text = "true or false"
    elif base in (int, float):
        noun = "an integer" if base is int else "a number"
        lo, hi = info.minimum, info.maximum
        if lo is not None and hi is not None:
            text = (f"{noun} in {'(' if info.exclusive_minimum else '['}{_fmt(lo)}, "
                    f"{_fmt(hi)}{')' if info.exclusive_maximum else ']'}")
        elif lo is not None:
            text = f"{noun} {'>' if info.exclusive_minimum else '>='} {_fmt(lo)}"
        elif hi is not None:
            text = f"{noun} {'<' if info.exclusive_maximum else '<='} {_fmt(hi)}"
        else:
            text = noun
    elif info.is_options:
        text = f"a {base.__name__}"
    else:
        text = f"a value of type {getattr(base, '__name__', base)}"
    return text + (" (or None)" if info.optional else "")


def _ok(info: FieldInfo, value: Any, finite: bool) -> bool:
    if value is None:
        return info.optional
    base = info.base
    if info.choices is not None:
        return any(value == c and type(value) is type(c) for c in info.choices)
    if base is bool:
        return isinstance(value, bool | np.bool_)
    if base is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return False
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if math.isnan(value) or (finite and math.isinf(value)):
            return False
    elif info.is_options:
        return isinstance(value, base)
    else:
        return True
    lo, hi = info.minimum, info.maximum
    if lo is not None and (value <= lo if info.exclusive_minimum else value < lo):
        return False
    return not (hi is not None and (value >= hi if info.exclusive_maximum else value > hi))


def validate(obj: Any) -> None:
    """Check every field of ``obj`` against its type, choices and bounds.

    Raises :class:`~engine.errors.InputError` naming the first bad field. Cross-field rules
    (``neighbor_count >= gridsize² - 1``…) stay in the class's ``__post_init__``.
    """
    finite = {f.name: (f.metadata.get(_KEY) or _Meta(help="")).finite for f in _fields(type(obj))}
    for info in describe(type(obj)):
        value = getattr(obj, info.name)
        if not _ok(info, value, finite[info.name]):
            raise InputError(info.name, expected_text(info), repr(value))


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """JSON-ready dict of the fields (nested options as dicts, tuples as lists)."""
    return {f.name: _to_json(getattr(obj, f.name)) for f in _fields(type(obj))}


def _from_json(hint: Any, value: Any) -> Any:
    base, _ = _split_optional(hint)
    if value is None:
        return None
    if isinstance(base, type) and dataclasses.is_dataclass(base) and isinstance(value, dict):
        return from_dict(base, value)
    if typing.get_origin(base) is tuple and isinstance(value, list):
        return tuple(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Inverse of :func:`to_dict`; unknown keys are a one-line error."""
    if not isinstance(data, dict):
        raise InputError(cls.__name__, "a JSON object of its fields", repr(type(data)))
    hints = _hints(cls)
    known = [f.name for f in _fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(cls.__name__, f"keys among {known}", f"unknown {unknown}")
    return cls(**{k: _from_json(hints[k], v) for k, v in data.items()})


class _Checked(type):
    """Metaclass of :class:`Options`: an unknown field name or a surplus positional value
    is an :class:`InputError` naming the class and its fields, not a ``TypeError``."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if dataclasses.is_dataclass(cls):
            names = [f.name for f in dataclasses.fields(cls) if f.init]
            unknown = [k for k in kwargs if k not in names]
            if unknown or len(args) > len(names):
                import difflib

                near = difflib.get_close_matches(unknown[0], names, 1) if unknown else []
                got = (f"unknown field '{unknown[0]}'" if unknown
                       else f"{len(args)} positional values")
                if near:
                    got += f" (did you mean '{near[0]}'?)"
                raise InputError(cls.__name__, f"its fields ({', '.join(names)})", got)
        return super().__call__(*args, **kwargs)


class Options(metaclass=_Checked):
    """Mixin of the options dataclasses: ``describe``, ``to_dict``, ``from_dict``, ``replace``."""

    @classmethod
    def describe(cls) -> list[FieldInfo]:
        """:func:`describe` of this class."""
        return describe(cls)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields."""
        return to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Inverse of :meth:`to_dict` (validated)."""
        return from_dict(cls, data)

    def replace(self: T, **changes: Any) -> T:
        """A copy with ``changes`` (validated)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
