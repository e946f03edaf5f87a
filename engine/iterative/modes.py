"""Mixed-state (incoherent multi-mode) probes: initial modes, orthogonalisation, power.

The measured intensity of K incoherent modes is Σ_k |F(P_k O)|²; it is unchanged by any
unitary mixing of the modes, so the modes are kept orthogonal and sorted by power (SVD),
which makes them comparable between runs and backends.
"""

from __future__ import annotations

import numpy as np

from engine.errors import InputError

# power of each added mode relative to the first at initialisation
EXTRA_MODE_POWER = 0.05


def initial_modes(probe: np.ndarray, n_modes: int) -> np.ndarray:
    """(K, N, N) modes: the given probe plus K − 1 weak, orthogonal variants of it.

    The variants are the probe times low-order polynomials in x and y (x, y, xy, x² − y², ...)
    made orthogonal by Gram–Schmidt, each with ``EXTRA_MODE_POWER`` of the first mode's power;
    the total power equals the given probe's. Deterministic, so every backend starts alike.
    """
    p = np.asarray(probe, dtype=np.complex128)
    if p.ndim != 2:
        raise InputError("probe", "an (N, N) array", f"shape {p.shape}")
    if n_modes == 1:
        return p[None].astype(np.complex128)
    N = p.shape[0]
    c = (np.arange(N) - N / 2) / (N / 2)
    y, x = np.meshgrid(c, c, indexing="ij")
    polys = [x, y, x * y, x * x - y * y, x * x + y * y, x * x * y, x * y * y, x**3, y**3]
    while len(polys) < n_modes - 1:
        k = len(polys)
        polys.append(np.cos(np.pi * k * x / 4) * np.sin(np.pi * k * y / 4))
    power0 = float(np.sum(np.abs(p) ** 2))
    modes = [p]
    for poly in polys[: n_modes - 1]:
        v = p * poly
        for u in modes:
            v = v - np.vdot(u, v) / np.vdot(u, u) * u
        norm = float(np.sum(np.abs(v) ** 2))
        if not norm > 0:
            raise InputError("probe", "a probe wide enough to hold extra modes", "degenerate")
        modes.append(v * np.sqrt(EXTRA_MODE_POWER * power0 / norm))
    out = np.stack(modes)
    return out * np.sqrt(power0 / np.sum(np.abs(out) ** 2))


def orthogonalise(modes: np.ndarray) -> np.ndarray:
    """Orthogonal modes sorted by decreasing power with the same incoherent sum Σ|P_k|²."""
    K, N, _ = modes.shape
    if K == 1:
        return modes
    u, s, vh = np.linalg.svd(modes.reshape(K, N * N), full_matrices=False)
    out = (s[:, None] * vh).reshape(K, N, N)
    # fix the arbitrary phase of each mode: the first mode keeps the input's phase reference
    ref = np.vdot(out[0], modes[0])
    if abs(ref) > 0:
        out[0] *= ref / abs(ref)
    return out.astype(modes.dtype)


def power_factor(modes_power: float, target: float) -> float:
    """The factor c with c²·power = target (1 when the probe has no power)."""
    return float(np.sqrt(target / modes_power)) if modes_power > 0 else 1.0
