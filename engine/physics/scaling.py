"""Intensity scaling and probe normalisation (docs/conventions.md#intensity-scaling).

The network and the solvers see ``X = D / s`` with ``s = sqrt(mean_j Σ D_j² / (N/2)²)``, so
every pattern has mean energy (N/2)² whatever the photon count; ``s`` travels with every
model so that inference uses the training scale unless the user asks otherwise.

Examples
--------
>>> import numpy as np
>>> D = np.full((3, 8, 8), 2.0)
>>> round(intensity_scale(D), 6)   # Σ D² = 256 per pattern, (N/2)² = 16
4.0
>>> X1 = D / intensity_scale(D); X2 = (10 * D) / intensity_scale(10 * D)
>>> bool(np.allclose(X1, X2))
True
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from engine.data import is_lazy, read_rows
from engine.errors import InputError
from engine.options import Options, option, validate

log = logging.getLogger(__name__)

ScalingMode = Literal["bundle", "data", "fixed"]
SCALING_MODES: tuple[str, ...] = get_args(ScalingMode)


# rows of a lazy stack read at a time when a whole-stack figure is streamed
STREAM_ROWS = 256


def valid_energy(diffraction: Any, mask: np.ndarray | None = None,
                 batch: int | None = None) -> float:
    """``mean_j Σ_valid D_j²`` of amplitudes (n, N, N): the mean pattern energy over the
    valid detector pixels (``mask`` True; ``None``: every pixel).

    A lazy :class:`~engine.data.DiffractionStack` is read ``batch`` rows at a time
    (``None``: :data:`STREAM_ROWS`), so the figure never holds more than one batch in memory.
    """
    if is_lazy(diffraction):
        batch = batch or STREAM_ROWS
        n = len(diffraction)
        if n == 0:
            raise InputError("diffraction", "a non-empty (n, N, N) stack", "n = 0")
        total = 0.0
        for start in range(0, n, batch):
            rows = read_rows(diffraction, slice(start, min(start + batch, n)))
            total += _energy_sum(rows.astype(np.float64), mask)
        return total / n
    d = np.asarray(diffraction, dtype=np.float64)
    if d.ndim != 3 or d.shape[0] == 0:
        raise InputError("diffraction", "a non-empty (n, N, N) array", f"shape {d.shape}")
    if mask is None:  # the historical expression, bit for bit
        return float(np.mean(np.sum(d * d, axis=(-2, -1))))
    return _energy_sum(d, mask) / d.shape[0]


def _energy_sum(d: np.ndarray, mask: np.ndarray | None) -> float:
    sq = d * d
    if mask is not None:
        sq = sq * mask
    return float(np.sum(sq))


def intensity_scale(diffraction: Any, mask: np.ndarray | None = None,
                    batch: int | None = None) -> float:
    """``s = sqrt(mean_j Σ_valid D_j² / (N/2)²)`` of amplitudes (n, N, N).

    ``mask`` ((N, N) bool, True = valid; ``None``: all) leaves masked detector pixels (hot,
    saturated, dead, the beam stop) out of the sum: one hot pixel would otherwise set the
    scale of every pattern. A lazy stack is streamed ``batch`` rows at a time
    (:func:`valid_energy`).
    """
    N = diffraction.shape[-1]
    energy = valid_energy(diffraction, mask, batch)
    if not energy > 0:
        raise InputError("diffraction", "some non-zero amplitude to set the intensity scale",
                         "all zero")
    return math.sqrt(energy / (N / 2) ** 2)


def normalise_probe(probe: np.ndarray) -> tuple[np.ndarray, float]:
    """``P · f`` with ``f = sqrt((N/2)² / Σ|P|²)``; returns the probe and ``f``."""
    p = np.asarray(probe)
    N = p.shape[-1]
    power = float(np.sum(np.abs(p) ** 2))
    if not power > 0:
        raise InputError("probeGuess", "a probe with non-zero power", "Σ|P|² = 0")
    factor = math.sqrt((N / 2) ** 2 / power)
    return (p * factor).astype(np.complex64), factor


@dataclass(frozen=True)
class ScalingConfig(Options):
    """Which intensity scale inference uses.

    ``bundle`` (the scale saved with the model), ``data`` (recomputed from the data at hand)
    or ``fixed`` (``value``). Parse the CLI form with :meth:`parse` (``fixed=9.88``).
    """

    mode: ScalingMode = option("bundle", "intensity scale: the bundle's, the data's, or fixed")
    value: float | None = option(None, "the scale when mode is fixed", minimum=0,
                                 exclusive_minimum=True)

    def __post_init__(self) -> None:
        validate(self)
        if self.mode == "fixed" and self.value is None:
            raise InputError("value", "a finite scale > 0 with mode 'fixed'", "None")

    @classmethod
    def parse(cls, text: str) -> ScalingConfig:
        """The command line's form: ``bundle``, ``data`` or ``fixed=<value>``.

        >>> ScalingConfig.parse("fixed=9.88")
        ScalingConfig(mode='fixed', value=9.88)
        """
        try:
            if text.startswith("fixed="):
                return cls("fixed", float(text.split("=", 1)[1]))
            return cls(text)  # type: ignore[arg-type]
        except (InputError, ValueError):
            raise InputError("scaling", "'bundle', 'data' or 'fixed=<value>' with a finite "
                             "value > 0", repr(text)) from None


MISMATCH_FACTOR = 2.0  # a scale this far from the data's own once zeroed a network's output


def choose_scale(mode: str, value: float | None, data_scale: float,
                 bundle_scale: float | None = None) -> float:
    """The one rule for the scale in use: ``data`` (the data's own), ``fixed`` (``value``)
    or ``bundle`` (the bundle's, which must exist); shared by inference and the preview.

    >>> choose_scale("fixed", 2.0, 1.0), choose_scale("data", None, 1.5)
    (2.0, 1.5)
    """
    if mode == "data":
        return float(data_scale)
    if mode == "fixed":
        return float(value)  # type: ignore[arg-type]
    if bundle_scale is None:
        raise InputError("scaling", "'data' or 'fixed' (no bundle is loaded to take "
                         "'bundle' from)", "'bundle'")
    return float(bundle_scale)


def scale_ratio(s: float, data_scale: float) -> float:
    """max(s / s_data, s_data / s) >= 1."""
    r = s / data_scale
    return r if r >= 1 else 1 / r


def scale_text(s: float, source: str, data_scale: float) -> str:
    """The one text for a scale: its value, its source, the data's own and, more than
    :data:`MISMATCH_FACTOR` away, a warning.

    >>> scale_text(30.0, "fixed", 10.0)
    "s = 30 (fixed); data's own 10; WARNING: differs from the data's own scale by 3x"
    """
    text = f"s = {s:.6g} ({source}); data's own {data_scale:.6g}"
    ratio = scale_ratio(s, data_scale)
    if ratio > MISMATCH_FACTOR:
        text += f"; WARNING: differs from the data's own scale by {ratio:.3g}x"
    return text


def resolve_scale(config: ScalingConfig, diffraction: Any,
                  bundle_scale: float | None = None,
                  mask: np.ndarray | None = None,
                  batch: int | None = None) -> tuple[float, str]:
    """The scale to use and a sentence saying where it came from (:func:`choose_scale`).

    A scale more than :data:`MISMATCH_FACTOR` away from the data's own is logged as a
    warning in :func:`scale_text`'s words: that mismatch is what once turned gridsize-1
    output into zeros.
    """
    data_scale = intensity_scale(diffraction, mask, batch)
    s = choose_scale(config.mode, config.value, data_scale, bundle_scale)
    source = {"data": "from data", "fixed": "fixed", "bundle": "from bundle"}[config.mode]
    if scale_ratio(s, data_scale) > MISMATCH_FACTOR:
        log.warning("intensity scale %s", scale_text(s, config.mode, data_scale))
    return s, f"{source}: {s:.6f}"
