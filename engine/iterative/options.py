"""Options of the iterative solvers: one validated, JSON-serialisable dataclass per method.

The layout follows pty-chi's (one options object per algorithm, everything a run depends on
inside it), so a run is reproduced from its ``options.json`` alone.

Examples
--------
>>> opts = EPIEOptions(iterations=5, batch_size=1, alpha=0.8)
>>> options_from_dict(opts.to_dict()) == opts
True
>>> LSQMLOptions(noise="poisson").method
'lsqml'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from engine.errors import InputError

BATCH_ORDERS = ("random", "sequential")
NOISE_MODELS = ("gaussian", "poisson")
STEP_DIRECTIONS = ("global", "local")
MAX_PROBE_MODES = 16


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(name, "an integer >= 1", repr(value))


def _non_negative_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(name, "an integer >= 0", repr(value))


def _one_of(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(name, f"one of {choices}", repr(value))


def _in_range(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        left = "(" if lo_open else "["
        raise InputError(name, f"a number in {left}{lo}, {hi}]", repr(value))


@dataclass(frozen=True)
class SolverOptions:
    """What every method shares.

    Parameters
    ----------
    iterations : epochs (one pass over every scan position each).
    batch_size : positions per update; 1 is the sequential (classic) form, more is the
        parallel (mini-batch) form. A batch larger than the data is the whole data.
    batch_order : ``"random"`` (a seeded shuffle every epoch) or ``"sequential"``.
    seed : seeds the batch order and the extra probe modes.
    probe_modes : incoherent probe modes (mixed state); 1 is a pure probe.
    update_object, update_probe : switch the object / probe update on or off.
    probe_update_start : first epoch (0-based) that updates the probe; the object settles
        first, as is usual.
    probe_power_constraint : after every probe update, rescale the probe to the measured
        mean pattern energy (and the object inversely, so exit waves are unchanged): pins
        the probe/object scale ambiguity.
    orthogonalise_modes : re-orthogonalise the probe modes after every epoch (SVD).
    rescale_init : scale the initial object once so the modelled energy matches the data.
    """

    method: ClassVar[str] = ""

    iterations: int = 20
    batch_size: int = 64
    batch_order: str = "random"
    seed: int = 0
    probe_modes: int = 1
    update_object: bool = True
    update_probe: bool = False
    probe_update_start: int = 0
    probe_power_constraint: bool = True
    orthogonalise_modes: bool = True
    rescale_init: bool = True

    def __post_init__(self) -> None:
        _positive_int("iterations", self.iterations)
        _positive_int("batch_size", self.batch_size)
        _one_of("batch_order", self.batch_order, BATCH_ORDERS)
        _non_negative_int("seed", self.seed)
        _positive_int("probe_modes", self.probe_modes)
        if self.probe_modes > MAX_PROBE_MODES:
            raise InputError("probe_modes", f"at most {MAX_PROBE_MODES}", str(self.probe_modes))
        _non_negative_int("probe_update_start", self.probe_update_start)
        for name in ("update_object", "update_probe", "probe_power_constraint",
                     "orthogonalise_modes", "rescale_init"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(name, "true or false", repr(getattr(self, name)))
        if not (self.update_object or self.update_probe):
            raise InputError("update_object/update_probe", "at least one of them on",
                             "both off")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict including the ``method`` name."""
        return {"method": self.method, **asdict(self)}

    def replace(self, **changes: Any) -> SolverOptions:
        """A copy with ``changes`` (validated)."""
        return type(self)(**{**asdict(self), **changes})


BATCH_NORMALISATIONS = ("overlap", "peak")


@dataclass(frozen=True)
class EPIEOptions(SolverOptions):
    """ePIE (Maiden & Rodenburg 2009).

    Parameters
    ----------
    alpha : object step in (0, 2]; the update is α·conj(P)·Δψ / max|P|².
    beta : probe step; β·conj(O)·Δψ / max|O|².

    batch_normalisation : how the batched object step is normalised. ``"overlap"``
        (default) divides pixel by pixel by max(Σ_j |P|², max|P|²): the classical step where
        the batch's windows do not overlap, an average where they do; stable for any batch.
        ``"peak"`` divides by max|P|² everywhere (the parallel ePIE of pty-chi): the
        overlapping corrections add up, which converges faster for batches that cover a
        pixel a few times and diverges when they cover it many times (a batch of the whole
        scan). Both are the classical update for a batch of one.

    The batched probe step divides by max Σ_j |O_j|².
    """

    method: ClassVar[str] = "epie"
    alpha: float = 1.0
    beta: float = 1.0
    batch_normalisation: str = "overlap"

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("batch_normalisation", self.batch_normalisation, BATCH_NORMALISATIONS)
        _in_range("alpha", self.alpha, 0.0, 2.0, lo_open=True)
        _in_range("beta", self.beta, 0.0, 2.0, lo_open=True)


@dataclass(frozen=True)
class RPIEOptions(SolverOptions):
    """rPIE (Maiden, Johnson & Li 2017).

    Parameters
    ----------
    alpha : object regularisation weight in [0, 1]: the update is
        conj(P)·Δψ / ((1 − α)|P|² + α·max|P|²) (α = 1 is ePIE with unit step).
    beta : the same for the probe, with |O|².
    """

    method: ClassVar[str] = "rpie"
    alpha: float = 0.1
    beta: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("alpha", self.alpha, 0.0, 1.0)
        _in_range("beta", self.beta, 0.0, 1.0)


@dataclass(frozen=True)
class LSQMLOptions(SolverOptions):
    """LSQ-ML (Odstrčil, Menzel & Guizar-Sicairos 2018).

    Parameters
    ----------
    noise : ``"gaussian"`` (amplitude least squares: the exit-wave target is the modulus
        projection) or ``"poisson"`` (the Fourier-space step along the Poisson gradient is
        found per pattern by Newton's method on the likelihood).
    object_regularisation : δ of the object preconditioner Σ|P|² + δ·max Σ|P|².
    probe_regularisation : δ of the probe preconditioner Σ|O|² + δ·max Σ|O|².
    step_relaxation : β of the update, applied to the optimal steps (1 = the optimum).
    max_step : upper clip of the per-position optimal steps.
    step_directions : ``"local"`` (default): the object steps are fitted to each position's
        own update conj(P)χ_j / (Σ|P|² + δ); ``"global"``: to the batch's combined object
        update seen at each position (one more scatter and extraction per batch; the same
        accuracy on the benchmark problems, half the speed).
    """

    method: ClassVar[str] = "lsqml"
    noise: str = "gaussian"
    object_regularisation: float = 0.05
    probe_regularisation: float = 0.05
    step_relaxation: float = 0.9
    max_step: float = 3.0
    step_directions: str = "local"

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of("noise", self.noise, NOISE_MODELS)
        _in_range("object_regularisation", self.object_regularisation, 0.0, 10.0, lo_open=True)
        _in_range("probe_regularisation", self.probe_regularisation, 0.0, 10.0, lo_open=True)
        _in_range("step_relaxation", self.step_relaxation, 0.0, 2.0, lo_open=True)
        _in_range("max_step", self.max_step, 0.0, 100.0, lo_open=True)
        _one_of("step_directions", self.step_directions, STEP_DIRECTIONS)


METHODS: dict[str, type[SolverOptions]] = {
    "epie": EPIEOptions,
    "rpie": RPIEOptions,
    "lsqml": LSQMLOptions,
}


def options_for(method: str, **values: Any) -> SolverOptions:
    """The options of ``method`` with ``values`` (unknown names are a one-line error)."""
    if method not in METHODS:
        raise InputError("method", f"one of {sorted(METHODS)}", repr(method))
    cls = METHODS[method]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"{method} options", f"names among {sorted(known)}",
                         f"unknown {unknown}")
    return cls(**values)


def options_from_dict(data: dict[str, Any]) -> SolverOptions:
    """Inverse of :meth:`SolverOptions.to_dict`."""
    if not isinstance(data, dict) or "method" not in data:
        raise InputError("options", "a JSON object with a 'method' key", repr(type(data)))
    values = dict(data)
    return options_for(values.pop("method"), **values)
