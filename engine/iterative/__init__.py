"""Iterative ptychographic reconstruction: ePIE, rPIE and LSQ-ML on every backend.

Examples
--------
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> from engine.iterative import LSQMLOptions, reconstruct
>>> ds = simulate(SimulationConfig(object="grf", n_positions=16, N=32, step=6, seed=0))
>>> result = reconstruct(ds, LSQMLOptions(iterations=3, batch_size=8))
>>> len(result.history)
3
"""

from __future__ import annotations

from engine.iterative.evaluate import phase_rms_unregistered
from engine.iterative.options import (
    METHODS,
    EPIEOptions,
    LSQMLOptions,
    RPIEOptions,
    SolverOptions,
    options_for,
    options_from_dict,
)
from engine.iterative.result import ReconResult
from engine.iterative.solver import check_data_support, reconstruct
from engine.iterative.state import load_checkpoint, save_checkpoint

__all__ = [
    "METHODS",
    "EPIEOptions",
    "LSQMLOptions",
    "RPIEOptions",
    "ReconResult",
    "SolverOptions",
    "check_data_support",
    "load_checkpoint",
    "options_for",
    "options_from_dict",
    "phase_rms_unregistered",
    "reconstruct",
    "save_checkpoint",
]
