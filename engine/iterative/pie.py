"""ePIE and rPIE updates of one batch (sequential for a batch of one, parallel otherwise).

ePIE (Maiden & Rodenburg 2009)::

    O ← O + α Σ_k conj(P_k) χ_k / max Σ_k|P_k|²
    P_k ← P_k + β conj(O_j) χ_k / max |O_j|²

rPIE (Maiden, Johnson & Li 2017) replaces the denominators by (1 − α)|P|² + α max|P|² (and
the same with β and |O|²), which takes large steps where the probe is weak only as far as α
allows. In the batched form numerators and denominators are summed over the batch on the
canvas (object, through the bilinear adjoint) or over positions (probe); for one position
these are the classical updates. The batched ePIE object step divides by
max(Σ_j Σ_k|P_k|²(r), max Σ_k|P_k|²) pixel by pixel: the classical ePIE step wherever the
batch's windows do not overlap, an average where they do (pty-chi's batched ePIE divides by
the single-probe maximum everywhere, ``batch_normalisation="peak"`` here, and overshoots where a
batch's windows overlap).
Both updates use the estimates from before the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.backends import Backend
from engine.iterative import xp
from engine.iterative.model import (
    Problem,
    batch_model,
    exit_wave_update,
    illumination,
    object_numerator,
    probe_numerator,
    scatter,
)
from engine.iterative.options import EPIEOptions, RPIEOptions
from engine.iterative.positions import PositionCorrector

Array = Any


def pie_step(problem: Problem, obj: Array, probe: Array, idx: np.ndarray,
             options: EPIEOptions | RPIEOptions, update_probe: bool,
             corrector: PositionCorrector | None = None,
             reduce: Callable[[Array], Array] | None = None) -> tuple[Array, Array, Array]:
    """One ePIE/rPIE batch update; returns the new object, the new probe and Σ(|Ψ| − X)²
    (a 0-d backend array). A ``corrector`` also moves the batch's positions
    (:mod:`.positions`). ``reduce`` (several ranks, :mod:`.distributed`) sums an array over
    the ranks: the batched update's numerators and denominators are sums over the batch, so
    the ranks' summed shares give the update of the global batch (the returned error stays
    this rank's)."""
    be: Backend = problem.backend
    measured, tl = problem.batch(idx)
    m = batch_model(problem, obj, probe, tl)
    chi, err = exit_wave_update(problem, m.far, measured, "gaussian")
    if corrector is not None:  # moves the batch's windows; this step still uses ``tl``
        corrector.update_batch(problem, obj, probe, idx, tl, chi)
    rpie = options.method == "rpie"
    new_obj = obj
    if options.update_object:
        num = scatter(be, tuple(obj.shape), object_numerator(probe, chi), tl, complex=True)
        if reduce is not None:
            num = reduce(num)
        if rpie or options.batch_normalisation == "overlap":
            den = scatter(be, tuple(obj.shape), illumination(probe)[None], tl, complex=False)
            if reduce is not None:
                den = reduce(den)
        if rpie:
            new_obj = obj + num / ((1.0 - options.alpha) * den + options.alpha * xp.amax(den))
        elif options.batch_normalisation == "peak":
            new_obj = obj + num * (options.alpha / xp.amax(illumination(probe)))
        else:
            # max(Σ_j|P_j|², max|P|²): classical ePIE wherever the batch's windows do not
            # overlap (and for one position), an averaged update where they do
            single = xp.amax(illumination(probe))
            new_obj = obj + num * options.alpha / xp.maximum(den, single)
    new_probe = probe
    if update_probe:
        num_p = probe_numerator(m.patches, chi)
        den_p = xp.sum_axes(xp.abs2(m.patches), (0,))
        if reduce is not None:
            num_p, den_p = reduce(num_p), reduce(den_p)
        peak_p = xp.amax(den_p)
        if rpie:
            new_probe = probe + num_p / ((1.0 - options.beta) * den_p + options.beta * peak_p)
        else:
            new_probe = probe + num_p * (options.beta / peak_p)
    return new_obj, new_probe, err
