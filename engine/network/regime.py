"""Which propagation regime the network supports: the far field only.

The network's physics layer (:mod:`engine.network.physics`) is the centred far-field FFT of
docs/conventions.md#forward-model; it has no Fresnel (near-field) propagator, and its
decoder's patch geometry assumes the far-field sampling. Training on near-field data would
fit the wrong forward model without a word, so training and inference refuse such a
dataset in one line (the iterative solvers reconstruct it: docs/iterative.md).

Examples
--------
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> ds = simulate(SimulationConfig(object="asym", n_positions=16, N=32, step=6))
>>> check_far_field(ds, "training")  # far field: accepted
"""

from __future__ import annotations

from engine.data import Dataset
from engine.errors import InputError


def check_far_field(ds: Dataset, action: str) -> None:
    """Refuse near-field data for ``action`` (``"training"``, ``"inference"``)."""
    geometry = ds.geometry
    if geometry is not None and geometry.propagation == "near":
        raise InputError(f"{action} data", "far-field data (the network models the far field "
                         "only; reconstruct near-field data with ptycho reconstruct)",
                         "a near-field geometry")
