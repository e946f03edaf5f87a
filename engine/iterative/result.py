"""What a reconstruction returns, and how it is written to a run directory.

``recon.npz`` has the layout of a stitched canvas (``canvas`` NaN where unilluminated,
``coverage``, ``origin``, ``weight`` = Σ_j Σ_k |P_k|² on the grid) so every canvas reader
(``ptycho compare``, the GUI, ``Canvas.load``) takes it; ``probe.npz`` holds the modes;
``history.json`` the per-epoch error record; PNGs show amplitude, phase and the probe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from engine.atomic import write_json
from engine.data import save_arrays
from engine.evaluation.report import save_figure, write_canvas_pngs
from engine.iterative.options import SolverOptions
from engine.physics.stitching import Canvas


@dataclass
class ReconResult:
    """A finished (or stopped) reconstruction.

    Attributes
    ----------
    canvas : the object as a :class:`Canvas` (NaN outside the illuminated region).
    object : (H, W) complex128, the full solver grid (no NaN): what a resume continues from.
    probe : (K, N, N) complex probe modes in normalised units (Σ_k Σ|P_k|² ≈ (N/2)²).
    history : per-epoch records (``epoch``, ``error``, ``seconds``, ``patterns_per_s``).
    options : the options of the run.
    epochs : completed epochs.
    stopped : True if a stop request ended the run early.
    intensity_scale : s (docs/conventions.md#intensity-scaling; photon amplitudes =
        s · model amplitudes).
    probe_factor : the factor that normalised the dataset's probe.
    rng_state : the batch-order generator's state at the end (what a continuation from
        this result in memory draws from next).
    positions, initial_positions : (n, 2) window centres (row, col) in object coordinates
        of a position-corrected run: the corrected positions and the given ones (both
        ``None`` without position correction). Saved in ``recon.npz`` under the same keys.
    position_velocity : the positions' last epoch move (the momentum a continuation from
        this result in memory carries on with).
    """

    canvas: Canvas
    object: np.ndarray
    probe: np.ndarray
    history: list[dict[str, Any]]
    options: SolverOptions
    epochs: int
    stopped: bool
    intensity_scale: float
    probe_factor: float
    info: dict[str, Any] = field(default_factory=dict)
    rng_state: dict[str, Any] | None = field(default=None, repr=False)
    positions: np.ndarray | None = None
    initial_positions: np.ndarray | None = None
    position_velocity: np.ndarray | None = field(default=None, repr=False)

    @property
    def errors(self) -> list[float]:
        """The data error of every completed epoch."""
        return [float(r["error"]) for r in self.history]

    def summary(self) -> dict[str, Any]:
        out = {
            "method": self.options.method,
            "epochs": self.epochs,
            "stopped": self.stopped,
            "final_error": self.errors[-1] if self.history else None,
            "intensity_scale": self.intensity_scale,
            "probe_modes": int(self.probe.shape[0]),
            **self.info,
        }
        if self.positions is not None and self.initial_positions is not None:
            shift = np.asarray(self.positions) - self.initial_positions
            out["positions_rms_shift"] = float(np.sqrt(np.mean(np.sum(shift**2, axis=1))))
        return out

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write recon.npz, probe.npz, history.json, options.json and the PNGs."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if self.positions is None:
            self.canvas.save(out / "recon.npz")
        else:  # the canvas keys plus the positions, one file
            c = self.canvas
            save_arrays(out / "recon.npz", {
                "canvas": c.canvas, "coverage": c.coverage,
                "origin": np.asarray(c.origin, dtype=np.int64), "weight": c.weight,
                "positions": np.asarray(self.positions, dtype=np.float64),
                "initial_positions": np.asarray(self.initial_positions, dtype=np.float64)})
        powers = np.sum(np.abs(self.probe) ** 2, axis=(1, 2))
        save_arrays(out / "probe.npz", {
            "probe": self.probe.astype(np.complex64),
            "probeGuess": self.probe[int(np.argmax(powers))].astype(np.complex64),
            "mode_power": (powers / powers.sum()).astype(np.float64),
            "intensity_scale": np.float64(self.intensity_scale),
            "probe_factor": np.float64(self.probe_factor),
        })
        write_json(out / "history.json", {"summary": self.summary(), "history": self.history})
        write_json(out / "options.json", self.options.to_dict())
        save_figures(self, out)
        return out


def _image(fig: Figure, ax_index: tuple[int, int, int], data: np.ndarray, title: str,
           cmap: str) -> None:
    ax = fig.add_subplot(*ax_index)
    im = ax.imshow(data, cmap=cmap, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, shrink=0.8)


def save_figures(result: ReconResult, out: Path) -> None:
    """amplitude.png, phase.png, probe.png and convergence.png (the data error per epoch)
    of ``result`` into ``out``."""
    write_canvas_pngs(result.canvas, out, label=result.options.method)
    K = result.probe.shape[0]
    fig = Figure(figsize=(3.2 * K, 3))
    for k in range(K):
        _image(fig, (1, K, k + 1), np.abs(result.probe[k]), f"probe mode {k} |P|", "magma")
    save_figure(fig, out / "probe.png")
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    if result.history:
        ax.semilogy([r["epoch"] for r in result.history], result.errors, marker="o")
    ax.set_title(f"{result.options.method} convergence")
    ax.set_xlabel("epoch")
    ax.set_ylabel("data error (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "convergence.png")
