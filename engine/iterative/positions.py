"""Position correction: each scan position moves along the gradient of the data misfit.

The position model (docs/iterative.md#position-correction): the exit wave of position j is
ψ_jk(r) = P_k(r) · O(r + s_j), with s_j the window's top-left corner on the object grid
(bilinear interpolation, so s_j is continuous). A small shift Δs changes it by
Δs · P_k ∇O(r + s_j). Given the exit-wave correction χ_jk = ψ'_jk − ψ_jk a solver step
computes (the modulus projection, or LSQ-ML's Poisson step), the shift that best explains
it in the least-squares sense solves the 2×2 system, summed over pixels and modes::

    A_j Δs_j = b_j,   A_j[a, c] = Re Σ_r I_P ∂_aO* ∂_cO,   b_j[a] = Re Σ_r ∂_aO* Σ_k P_k* χ_jk

with I_P = Σ_k |P_k|² and ∂_a the central difference of the object along a ∈ (row, col)
(the derivative of the misfit with respect to s_j is −2 b_j, the same direction as
pty-chi's gradient correction, which divides each axis by its own diagonal instead of
solving the coupled system). The system is damped by λ = ``position_regularisation`` ×
the batch's largest mean diagonal, so a position whose object has no texture barely moves.
The step is then scaled by ``position_gain`` and limited to ``position_step_limit`` px (the
length of the vector) per epoch; every position is visited once per epoch, so this is a
per-epoch limit. At the end of the epoch each position also moves on by
``position_momentum`` times its previous epoch's move (heavy-ball momentum): a global
scale or rotation error is a slow mode, since the object partly follows it.

After each epoch the mean displacement from the initial positions is removed: a common
translation of every position is absorbed by the object (it shifts the reconstruction),
the data cannot see it, and leaving it free lets the object drift on its grid. With the
affine constraint the current positions c_j are then fitted by least squares as
c_j ≈ A p_j + t of the initial ones p_j (six parameters: scale, asymmetry, rotation, shear
and the offset), and the positions are set to A p_j + t + clip(c_j − A p_j − t) with the
residual (the random part of the error) limited to ``affine_residual_limit`` px per
position; 0 (the default) keeps the pure affine map, no residual.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.backends import Backend
from engine.iterative import xp
from engine.iterative.model import Problem, illumination, object_numerator

Array = Any

__all__ = ["PositionCorrector", "affine_fit", "decompose_affine", "shift_step"]


def object_gradient(be: Backend, obj: Array, top_left: Array, N: int) -> tuple[Array, Array]:  # noqa: N803
    """Central differences (∂_row O, ∂_col O) of the object at the windows (b, N, N) each.

    One extraction of an (N+2)² window, one pixel larger on every side, then the
    differences by slicing: the same code on every backend.
    """
    big = be.extract(obj, top_left - 1.0, N + 2)
    d_row = (big[:, 2:, 1:-1] - big[:, :-2, 1:-1]) * 0.5
    d_col = (big[:, 1:-1, 2:] - big[:, 1:-1, :-2]) * 0.5
    return d_row, d_col


def shift_step(problem: Problem, obj: Array, probe: Array, top_left: Array, chi: Array,
               regularisation: float,
               batch_max: Callable[[Array], Array] | None = None) -> tuple[Array, Array]:
    """The least-squares shift (Δrow, Δcol) of every window in the batch (two (b,) arrays).

    ``probe`` and ``chi`` are those of the solver step (probe modes (K, N, N), exit-wave
    corrections (b, K, N, N)); both carry the checkerboard of the solvers' frame, which
    cancels in Σ_k P_k* χ_jk. ``batch_max`` (several ranks) takes the damping's largest
    diagonal over the ranks' shares of the batch.
    """
    be = problem.backend
    tl = top_left
    if isinstance(tl, np.ndarray):
        tl = np.asarray(tl, dtype=np.float64)
    d_row, d_col = object_gradient(be, obj, tl, problem.N)
    illum = illumination(probe)  # (N, N)
    num = object_numerator(probe, chi)  # Σ_k P_k* χ_jk, (b, N, N)
    a_rr = xp.sum_axes(illum * xp.abs2(d_row), (1, 2))
    a_cc = xp.sum_axes(illum * xp.abs2(d_col), (1, 2))
    a_rc = xp.sum_axes(illum * xp.real(xp.conj(d_row) * d_col), (1, 2))
    b_r = xp.sum_axes(xp.real(xp.conj(d_row) * num), (1, 2))
    b_c = xp.sum_axes(xp.real(xp.conj(d_col) * num), (1, 2))
    peak = xp.amax((a_rr + a_cc) * 0.5)
    if batch_max is not None:
        peak = batch_max(peak)
    lam = regularisation * peak + 1e-30
    a_rr, a_cc = a_rr + lam, a_cc + lam
    det = a_rr * a_cc - a_rc * a_rc
    return (a_cc * b_r - a_rc * b_c) / det, (a_rr * b_c - a_rc * b_r) / det


def affine_fit(initial: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares affine map ``current ≈ initial @ A.T + t``: (A (2, 2), t (2,)).

    Examples
    --------
    >>> p = np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 0.0], [10.0, 10.0]])
    >>> A, t = affine_fit(p, p * 1.02 + 3.0)
    >>> np.round(A, 6).tolist(), np.round(t, 6).tolist()
    ([[1.02, 0.0], [0.0, 1.02]], [3.0, 3.0])
    """
    design = np.concatenate([initial, np.ones((initial.shape[0], 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, current, rcond=None)  # (3, 2)
    return coef[:2].T.copy(), coef[2].copy()


def decompose_affine(A: np.ndarray) -> dict[str, float]:  # noqa: N803 - the matrix symbol
    """Scale, asymmetry, rotation (degrees) and shear of a 2×2 map in (row, col) coordinates.

    A = R(θ) · [[s (1 + a), h], [0, s (1 − a)]] approximately: ``scale`` s = √|det A|,
    ``rotation_deg`` θ the angle of the nearest rotation (positive turns the row axis
    towards the column axis), ``asymmetry`` a and ``shear`` h from the remaining upper
    triangular factor (a QR decomposition of R(−θ) A).

    Examples
    --------
    >>> t = np.deg2rad(1.0)
    >>> R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    >>> d = decompose_affine(1.02 * R)
    >>> round(d["scale"], 6), round(d["rotation_deg"], 6), abs(d["shear"]) < 1e-9
    (1.02, 1.0, True)
    """
    theta = math.atan2(A[1, 0] - A[0, 1], A[0, 0] + A[1, 1])
    c, s = math.cos(theta), math.sin(theta)
    upper = np.array([[c, s], [-s, c]]) @ A
    scale = math.sqrt(abs(float(np.linalg.det(A))))
    sy, sx = float(upper[0, 0]), float(upper[1, 1])
    asym = (sy - sx) / (sy + sx) if sy + sx != 0 else 0.0
    return {"scale": scale, "asymmetry": asym, "rotation_deg": math.degrees(theta),
            "shear": float(upper[0, 1]) / scale if scale > 0 else 0.0}


@dataclass
class PositionCorrector:
    """The moving positions of one run and their per-epoch bookkeeping.

    Attributes
    ----------
    initial : (n, 2) top-left corners the run started from (the given positions).
    options : the solver options (``position_*`` and ``affine_*`` fields).
    bounds : (row, col) upper limits of a top-left corner on the grid (lower limit 0).
    epoch_start : the corners at the start of the current epoch.
    """

    initial: np.ndarray
    options: Any
    bounds: tuple[float, float]
    epoch_start: np.ndarray = field(init=False)
    velocity: np.ndarray = field(init=False)
    last_affine: dict[str, float] = field(default_factory=dict)
    # several ranks (:mod:`.distributed`): the batch-wide maximum over the ranks' shares
    batch_max: Callable[[Array], Array] | None = None

    def __post_init__(self) -> None:
        self.initial = np.array(self.initial, dtype=np.float64)
        self.epoch_start = self.initial.copy()
        self.velocity = np.zeros_like(self.initial)

    def active(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (0-based) corrects positions."""
        return self.options.position_correction and epoch >= self.options.position_start

    def begin_epoch(self, problem: Problem) -> None:
        self.epoch_start = self.current(problem)

    def current(self, problem: Problem) -> np.ndarray:
        """The corners now (host copy)."""
        if problem.device_top_left is not None:
            return problem.device_top_left.detach().cpu().numpy().astype(np.float64)
        return np.array(problem.top_left, dtype=np.float64)

    def update_batch(self, problem: Problem, obj: Array, probe: Array, idx: Array,
                     top_left: Array, chi: Array) -> None:
        """Move the batch's positions by their limited least-squares shifts (in place on
        ``problem``: later batches and the final canvas use the moved windows)."""
        o = self.options
        d_row, d_col = shift_step(problem, obj, probe, top_left, chi,
                                  o.position_regularisation, self.batch_max)
        d_row, d_col = d_row * o.position_gain, d_col * o.position_gain
        # the per-epoch limit on the length of each position's step
        length = xp.sqrt(d_row * d_row + d_col * d_col)
        factor = o.position_step_limit / xp.maximum(length, o.position_step_limit)
        d_row, d_col = d_row * factor, d_col * factor
        hi_r, hi_c = self.bounds
        if problem.device_top_left is not None and not isinstance(idx, np.ndarray):
            new = problem.device_top_left[idx] + xp.stack([d_row, d_col]).T
            new[:, 0] = new[:, 0].clamp(0.0, hi_r)
            new[:, 1] = new[:, 1].clamp(0.0, hi_c)
            problem.device_top_left[idx] = new.to(problem.device_top_left.dtype)
            return
        step = np.stack([problem.backend.to_numpy(d_row), problem.backend.to_numpy(d_col)],
                        axis=1).astype(np.float64)
        new = problem.top_left[idx] + step
        new[:, 0] = np.clip(new[:, 0], 0.0, hi_r)
        new[:, 1] = np.clip(new[:, 1], 0.0, hi_c)
        problem.top_left[idx] = new
        if problem.device_top_left is not None:
            import torch

            problem.device_top_left[torch.as_tensor(idx)] = torch.as_tensor(
                new, device=problem.device_top_left.device)

    def end_epoch(self, problem: Problem) -> dict[str, float]:
        """Hold the centroid, apply the affine constraint; the epoch's history figures."""
        o = self.options
        cur = self.current(problem)
        # heavy-ball momentum over epochs: a global scale or rotation error is a mode the
        # object partly follows (a stretched object fits stretched positions nearly as well),
        # so plain steps shrink it by a few per cent an epoch; momentum carries it on
        cur = cur + o.position_momentum * self.velocity
        cur = cur - np.mean(cur - self.initial, axis=0)  # the object absorbs a translation
        record: dict[str, float] = {}
        if o.position_affine:
            A, t = affine_fit(self.initial, cur)
            fitted = self.initial @ A.T + t
            resid = cur - fitted
            if o.affine_residual_limit > 0:
                length = np.hypot(resid[:, 0], resid[:, 1])
                resid = resid * (o.affine_residual_limit
                                 / np.maximum(length, o.affine_residual_limit))[:, None]
            else:
                resid = np.zeros_like(resid)
            cur = fitted + resid
            self.last_affine = {**decompose_affine(A), "offset_row": float(t[0]),
                                "offset_col": float(t[1]), "a11": float(A[0, 0]),
                                "a12": float(A[0, 1]), "a21": float(A[1, 0]),
                                "a22": float(A[1, 1])}
            record.update({f"affine_{k}": v for k, v in self.last_affine.items()})
        cur[:, 0] = np.clip(cur[:, 0], 0.0, self.bounds[0])
        cur[:, 1] = np.clip(cur[:, 1], 0.0, self.bounds[1])
        problem.top_left[...] = cur
        if problem.device_top_left is not None:
            import torch

            problem.device_top_left.copy_(torch.as_tensor(cur))
        change = cur - self.epoch_start
        self.velocity = change
        shift = cur - self.initial
        record["positions_rms_change"] = float(np.sqrt(np.mean(np.sum(change**2, axis=1))))
        record["positions_rms_shift"] = float(np.sqrt(np.mean(np.sum(shift**2, axis=1))))
        return record
