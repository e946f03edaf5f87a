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

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal, get_args

from engine.errors import InputError
from engine.options import Options, option, validate

BatchOrder = Literal["random", "sequential"]
NoiseModel = Literal["gaussian", "poisson"]
StepDirections = Literal["global", "local"]
BatchNormalisation = Literal["overlap", "peak"]
Method = Literal["epie", "rpie", "lsqml"]
Propagation = Literal["auto", "far", "near"]
BATCH_ORDERS: tuple[str, ...] = get_args(BatchOrder)
NOISE_MODELS: tuple[str, ...] = get_args(NoiseModel)
STEP_DIRECTIONS: tuple[str, ...] = get_args(StepDirections)
BATCH_NORMALISATIONS: tuple[str, ...] = get_args(BatchNormalisation)
MAX_PROBE_MODES = 16


@dataclass(frozen=True)
class SolverOptions(Options):
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
    propagation : ``"auto"`` (the dataset's geometry: far field without one), ``"far"`` or
        ``"near"`` (docs/conventions.md#propagation).
    probe_init : the starting probe: ``"given"`` (the dataset's ``probeGuess``), ``"data"``
        (from the mean diffraction pattern), ``"disk"``, ``"gaussian"``, ``"zoneplate"``
        (models sized from the data) or ``"file:PATH"`` (a CXI illumination, a run's
        ``probe.npz``/``recon.npz`` directory, a bundle); see
        :func:`engine.iterative.probe_init.initial_probe`.
    position_correction : move every scan position along the gradient of the data misfit
        with respect to its shift (docs/iterative.md#position-correction).
    position_start : first epoch (0-based) that moves positions (the object settles first).
    position_step_limit : the longest step of one position in one epoch, pixels.
    position_gain : relaxation of the least-squares shift (1: the least-squares step).
    position_momentum : heavy-ball momentum over epochs: each position also moves by this
        fraction of its previous epoch's move (speeds up global scale/rotation errors).
    position_regularisation : damping of each position's 2×2 shift system, as a fraction of
        the batch's largest mean curvature (textureless regions barely move).
    position_affine : after every correcting epoch, fit an affine map (scale, asymmetry,
        rotation, shear, offset) from the initial to the corrected positions and apply it
        as a whole, keeping each position's residual up to ``affine_residual_limit``.
    affine_residual_limit : the residual kept per position, pixels (0, the default: the
        pure affine map, no residual kept).
    """

    method: ClassVar[str] = ""

    iterations: int = option(20, "epochs (passes over every scan position)", minimum=1)
    batch_size: int = option(64, "positions per update (1: the classic sequential form)",
                             minimum=1)
    batch_order: BatchOrder = option("random", "order of the positions each epoch",
                                     advanced=True)
    seed: int = option(0, "seeds the batch order and the extra probe modes", minimum=0,
                       advanced=True)
    probe_modes: int = option(1, "incoherent probe modes (1: a pure probe)", minimum=1,
                              maximum=MAX_PROBE_MODES)
    update_object: bool = option(True, "update the object")
    update_probe: bool = option(False, "update the probe")
    probe_update_start: int = option(0, "first epoch (0-based) that updates the probe",
                                     minimum=0, advanced=True)
    probe_power_constraint: bool = option(True, "rescale the probe to the measured energy",
                                          advanced=True)
    orthogonalise_modes: bool = option(True, "re-orthogonalise the probe modes every epoch",
                                       advanced=True)
    rescale_init: bool = option(True, "scale the initial object to the data's energy once",
                                advanced=True)
    propagation: Propagation = option(
        "auto", "propagation model: the data's geometry (auto), far field or near field")
    probe_init: str = option(
        "given", "starting probe: given, data, disk, gaussian, zoneplate or file:PATH",
        advanced=True)
    position_correction: bool = option(False, "correct the scan positions (gradient of the "
                                       "data misfit with respect to each shift)")
    position_start: int = option(2, "first epoch (0-based) that moves the positions",
                                 minimum=0)
    position_step_limit: float = option(0.5, "largest move of one position per epoch (px)",
                                        minimum=0, maximum=16, exclusive_minimum=True)
    position_gain: float = option(1.0, "relaxation of the least-squares position step",
                                  minimum=0, maximum=2, exclusive_minimum=True, advanced=True)
    position_momentum: float = option(0.8, "fraction of a position's previous epoch move "
                                      "added to its next (heavy-ball momentum)", minimum=0,
                                      maximum=0.95, advanced=True)
    position_regularisation: float = option(
        0.1, "damping of the position step, a fraction of the batch's largest curvature",
        minimum=0, maximum=10, exclusive_minimum=True, advanced=True)
    position_affine: bool = option(False, "constrain the positions to an affine map of the "
                                   "initial ones (scale, rotation, shear, offset) plus a "
                                   "limited residual")
    affine_residual_limit: float = option(
        0.0, "largest departure of a position from the fitted affine map (px; 0: pure affine)",
        minimum=0, maximum=64, advanced=True)

    def __post_init__(self) -> None:
        validate(self)
        check_probe_init(self.probe_init)
        if not (self.update_object or self.update_probe):
            raise InputError("update_object/update_probe", "at least one of them on",
                             "both off")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict including the ``method`` name."""
        return {"method": self.method, **super().to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SolverOptions:
        """Inverse of :meth:`to_dict` (the ``method`` key picks the class)."""
        return options_from_dict(data)


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
    alpha: float = option(1.0, "object step", minimum=0, maximum=2, exclusive_minimum=True)
    beta: float = option(1.0, "probe step", minimum=0, maximum=2, exclusive_minimum=True)
    batch_normalisation: BatchNormalisation = option(
        "overlap", "batched object step: per-pixel overlap, or the peak (pty-chi)",
        advanced=True)


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
    alpha: float = option(0.1, "object regularisation weight", minimum=0, maximum=1)
    beta: float = option(0.1, "probe regularisation weight", minimum=0, maximum=1)


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
    noise: NoiseModel = option("gaussian", "noise model of the likelihood")
    object_regularisation: float = option(0.05, "delta of the object preconditioner",
                                          minimum=0, maximum=10, exclusive_minimum=True,
                                          advanced=True)
    probe_regularisation: float = option(0.05, "delta of the probe preconditioner",
                                         minimum=0, maximum=10, exclusive_minimum=True,
                                         advanced=True)
    step_relaxation: float = option(0.9, "relaxation of the optimal steps (1: the optimum)",
                                    minimum=0, maximum=2, exclusive_minimum=True,
                                    advanced=True)
    max_step: float = option(3.0, "upper clip of the per-position optimal steps", minimum=0,
                             maximum=100, exclusive_minimum=True, advanced=True)
    step_directions: StepDirections = option(
        "local", "fit the object steps to each position's update, or the batch's",
        advanced=True)


PROBE_MODELS: tuple[str, ...] = ("disk", "gaussian", "zoneplate")
PROBE_INITS: tuple[str, ...] = ("given", "data", *PROBE_MODELS)


def check_probe_init(spec: str) -> None:
    """Refuse a probe-init spec that is none of ``given``, ``data``, a model (optionally
    ``model:radius=R,defocus=Z``) or ``file:PATH`` (one line naming it)."""
    if not isinstance(spec, str) or not (spec in PROBE_INITS or (
            spec.startswith("file:") and len(spec) > len("file:"))
            or spec.partition(":")[0] in PROBE_MODELS):
        raise InputError("probe_init", f"one of {list(PROBE_INITS)} or 'file:PATH'",
                         repr(spec))


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
