"""Shared fixtures of the network tests: one small simulated set, one trained run per
gridsize (session-scoped: trained once, read by every guard)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.network.config import TrainConfig
from engine.network.inference import InferConfig, infer
from engine.network.trainer import train
from engine.physics.scaling import normalise_probe
from engine.simulation.simulate import SimulationConfig, simulate
from tests.conftest import single_torch_thread

_one_thread = pytest.fixture(scope="session", autouse=True)(single_torch_thread)


@pytest.fixture(scope="session")
def pinn_ds():
    """Lines object, 256 raster positions, N = 32, 1e6 photons per pattern."""
    return simulate(SimulationConfig(object="lines", N=32, n_positions=256, step=4,
                                     nphotons=1e6, seed=0))


@pytest.fixture(scope="session")
def tiny_ds():
    """36 positions, N = 32: for tests of the machinery, not of quality."""
    return simulate(SimulationConfig(object="asym", N=32, n_positions=36, step=5,
                                     nphotons=1e5, seed=2))


def tiny_config(**kw) -> TrainConfig:
    base = dict(gridsize=1, batch_size=8, epochs=1, base_channels=4, lr=3e-3, seed=0,
                deterministic=True, accelerator="cpu")
    base.update(kw)
    return TrainConfig(**base)


QUALITY = {
    1: dict(gridsize=1, batch_size=8, epochs=10, base_channels=8, lr=1e-3),
    2: dict(gridsize=2, batch_size=4, epochs=10, base_channels=8, lr=1e-3, n_groups=115),
}


class Trained:
    def __init__(self, ds, result, cfg, inference):
        self.ds, self.result, self.cfg, self.inference = ds, result, cfg, inference


@pytest.fixture(scope="session")
def trained(pinn_ds, tmp_path_factory):
    """``trained(g)``: the run of gridsize g (trained on first use) and its inference on the
    training data with the bundle's scale."""
    runs: dict[int, Trained] = {}

    def get(g: int) -> Trained:
        if g not in runs:
            out = tmp_path_factory.mktemp(f"pinn_g{g}")
            cfg = TrainConfig(**QUALITY[g], seed=0, deterministic=True, accelerator="cpu",
                              log_patch_stats=True, patch_stats_limit=2)
            result = train(pinn_ds, cfg, out)
            inf = infer(result.bundle, pinn_ds, InferConfig(device="cpu", log_patch_stats=True),
                        out_dir=out / "infer")
            runs[g] = Trained(pinn_ds, result, cfg, inf)
        return runs[g]

    return get


def truth_patch_stats(ds) -> dict[str, float]:
    """Statistics of the ground-truth patches in the model's units (X units,
    docs/conventions.md#intensity-scaling).

    The truth Y is brought into X units by c = sqrt((N/2)² / mean Σ|P·Y|²), the factor for
    which its far field has the energy every X pattern has (Parseval), as the supervised loss
    does; comparing raw object amplitudes with X-unit amplitudes would mix units.
    """
    probe, _ = normalise_probe(ds.probe)
    N = ds.N
    c = np.sqrt((N / 2) ** 2 / np.mean(np.sum(np.abs(probe * ds.patches) ** 2, axis=(1, 2))))
    a = c * np.abs(ds.patches).astype(np.float64)
    centred = a - a.mean(axis=(1, 2), keepdims=True)
    return {"mean": float(a.mean()), "var_zero_mean": float((centred**2).mean())}
