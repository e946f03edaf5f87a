"""LSQ-ML (Odstrčil, Menzel & Guizar-Sicairos, Opt. Express 26, 3108 (2018)) of one batch.

1. Exit-wave correction χ_j from the noise model (Gaussian: modulus projection; Poisson: a
   per-pattern optimal step along the likelihood gradient, see :mod:`.model`).
2. Preconditioned update directions::

       ΔO_j = Σ_k conj(P_k) χ_jk / (Σ_k |P_k|² + δ_O max)     (local, the default), or
       ΔO = Σ_j Σ_k conj(P_k) χ_jk / (Σ_j Σ_k |P_k|² + δ_O max) on the canvas, seen at
            each position (global)
       ΔP_k = Σ_j conj(O_j) χ_jk / (Σ_j |O_j|² + δ_P max)

3. Optimal steps per position: (α_O, α_P)_j minimise ‖χ_j − α_O P ΔO_j − α_P ΔP O_j‖²
   (a 2×2 least-squares system per position, summed over pixels and modes).
4. O ← O + β Σ_j α_O,j conj(P) χ_j / (Σ|P|² + δ_O max);  P ← P + β mean_j(α_P,j) ΔP.
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
from engine.iterative.options import LSQMLOptions
from engine.iterative.positions import PositionCorrector

Array = Any

# relative Tikhonov term of the 2x2 step systems: keeps them solvable when a direction vanishes
STEP_REGULARISATION = 1e-6


def _re_sum(a: Array, b: Array) -> Array:
    """Re Σ conj(a)·b per position over the pixels of (b, N, N) arrays: (b,)."""
    return xp.sum_axes(xp.real(xp.conj(a) * b), (1, 2))


def lsqml_step(problem: Problem, obj: Array, probe: Array, idx: np.ndarray,
               options: LSQMLOptions, update_probe: bool,
               corrector: PositionCorrector | None = None,
               reduce: Callable[[Array], Array] | None = None) -> tuple[Array, Array, Array]:
    """One LSQ-ML batch update; returns the new object, the new probe and Σ(|Ψ| − X)²
    (a 0-d backend array: no synchronisation per batch). A ``corrector`` also moves the
    batch's positions (:mod:`.positions`). ``reduce`` (several ranks,
    :mod:`.distributed`) sums an array over the ranks: the object and probe numerators and
    denominators and the probe step's sum are then those of the global batch, the union of
    the ranks' shares (the returned error stays this rank's).

    The step systems are summed over modes in closed form, so the (b, K, N, N) products
    P_k·ΔO_j and ΔP_k·O_j are never formed: with I_P = Σ_k|P_k|², Σ_k|P_k ΔO_j|² =
    Σ I_P|ΔO_j|², Re Σ_k conj(P_k ΔO_j) χ_jk = Re Σ conj(ΔO_j)·(Σ_k conj(P_k) χ_jk), and the
    same for the probe terms.
    """
    be: Backend = problem.backend
    measured, tl = problem.batch(idx)
    m = batch_model(problem, obj, probe, tl)
    chi, err = exit_wave_update(problem, m.far, measured, options.noise)
    if corrector is not None:  # moves the batch's windows; this step still uses ``tl``
        corrector.update_batch(problem, obj, probe, idx, tl, chi)
    shape = tuple(obj.shape)
    upd_obj = options.update_object
    illum = illumination(probe)  # (N, N)
    if upd_obj:
        num_j = object_numerator(probe, chi)  # (b, N, N)
        den = scatter(be, shape, illum[None], tl, complex=False)
        if reduce is not None:
            den = reduce(den)
        den = den + options.object_regularisation * xp.amax(den)
        if options.step_directions == "global":
            num = scatter(be, shape, num_j, tl, complex=True)
            d_obj = (num if reduce is None else reduce(num)) / den
            d_obj_j = be.extract(d_obj, tl, problem.N)
            a11 = xp.sum_axes(illum * xp.abs2(d_obj_j), (1, 2))
            r1 = _re_sum(d_obj_j, num_j)
        else:  # each position's own update, without the batch's overlap: one scatter less
            # ΔO_j = num_j / w with w real, so both step sums are weighted sums of |num_j|²
            # (a11 = Σ I_P |num_j|²/w², r1 = Σ |num_j|²/w) and ΔO_j is only formed when the
            # probe step needs it
            inv_w = 1.0 / (illum + options.object_regularisation * xp.amax(illum))
            q = xp.abs2(num_j)
            a11 = xp.sum_axes(q * (illum * inv_w * inv_w), (1, 2))
            r1 = xp.sum_axes(q * inv_w, (1, 2))
            d_obj_j = None
    if update_probe:
        den_p = xp.sum_axes(xp.abs2(m.patches), (0,))
        num_p = probe_numerator(m.patches, chi)
        if reduce is not None:
            den_p, num_p = reduce(den_p), reduce(num_p)
        d_probe = num_p / (den_p + options.probe_regularisation * xp.amax(den_p))
        a22 = xp.sum_axes(xp.sum_axes(xp.abs2(d_probe), (0,)) * xp.abs2(m.patches), (1, 2))
        # Re Σ_k conj(ΔP_k O_j) χ_jk = Re Σ conj(O_j) Σ_k conj(ΔP_k) χ_jk
        r2 = _re_sum(m.patches, object_numerator(d_probe, chi))

    if upd_obj and update_probe:
        # Re Σ_k conj(P_k ΔO_j) ΔP_k O_j = Re Σ conj(ΔO_j) O_j Σ_k conj(P_k) ΔP_k
        cross = xp.sum_axes(xp.conj(probe) * d_probe, (0,))
        if d_obj_j is None:
            d_obj_j = num_j * inv_w
        a12 = _re_sum(d_obj_j, m.patches * cross)
        lam = STEP_REGULARISATION * (a11 + a22) + 1e-30
        a11, a22 = a11 + lam, a22 + lam
        det = a11 * a22 - a12 * a12
        alpha_o = (a22 * r1 - a12 * r2) / det
        alpha_p = (a11 * r2 - a12 * r1) / det
    elif upd_obj:
        alpha_o = r1 / (a11 * (1 + STEP_REGULARISATION) + 1e-30)
    else:
        alpha_p = r2 / (a22 * (1 + STEP_REGULARISATION) + 1e-30)

    beta = options.step_relaxation
    new_obj, new_probe = obj, probe
    if upd_obj:
        alpha_o = xp.clip(alpha_o, 0.0, options.max_step)
        weighted = num_j * alpha_o[:, None, None]
        step = scatter(be, shape, weighted, tl, complex=True)
        new_obj = obj + (step if reduce is None else reduce(step)) * beta / den
    if update_probe:
        alpha_p = xp.clip(alpha_p, 0.0, options.max_step)
        if reduce is None:
            mean_p = alpha_p.mean()
        else:  # the global batch's mean: (Σ α_P, count) summed over the ranks
            total = reduce(xp.stack([xp.sum_axes(alpha_p, (0,)),
                                     xp.sum_axes(alpha_p * 0.0 + 1.0, (0,))]))
            mean_p = total[0] / total[1]
        new_probe = probe + d_probe * (beta * mean_p)
    return new_obj, new_probe, err
