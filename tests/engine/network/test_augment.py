"""Symmetry augmentation: transformed patterns are exact measurements of transformed
objects when the probe has the symmetry, and groups stay consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.network.augment import (
    ELEMENTS,
    SymmetryAugmenter,
    probe_symmetries,
    transform_grid,
    transform_offsets,
)
from engine.network.batches import prepare
from engine.network.config import TrainConfig
from engine.network.model import NetworkConfig, PtychoNet
from engine.network.physics import PhysicsModel, merge_reextract
from engine.network.trainer import train
from engine.physics.scaling import normalise_probe
from engine.simulation.simulate import SimulationConfig, simulate

from .conftest import tiny_config


@pytest.fixture(scope="module")
def clean_ds():
    """Noise-free amplitudes of a disk probe (symmetric under all eight elements)."""
    return simulate(SimulationConfig(object="asym", probe="disk", N=32, n_positions=64,
                                     step=4, nphotons=0, seed=3))


def test_elements_are_the_eight_symmetries_of_the_square():
    a = np.arange(16.0).reshape(4, 4)
    images = {transform_grid(a, e).tobytes() for e in ELEMENTS}
    assert len(ELEMENTS) == len(images) == 8
    # each reflection keeps the centre pixel N/2 (the probe's centre, zero frequency) put
    for e in ELEMENTS:
        assert transform_grid(a, e)[2, 2] == a[2, 2]


def test_transformed_pattern_is_the_measurement_of_the_transformed_object(clean_ds):
    probe, _ = normalise_probe(clean_ds.probe)
    assert probe_symmetries(probe) == list(ELEMENTS)
    model = PhysicsModel(PtychoNet(NetworkConfig(N=32, C=1, base_channels=4)), probe, False)
    truth = torch.as_tensor(clean_ds.patches[:8])[:, None]
    measured = model.diffraction(truth)
    for e in ELEMENTS[1:]:
        again = model.diffraction(transform_grid(truth, e))
        torch.testing.assert_close(again, transform_grid(measured, e), atol=2e-5, rtol=1e-4)
    # the check has teeth: with an asymmetric probe the same identity fails
    skew = probe * np.exp(1j * np.linspace(0, 3, 32))[None, :]
    lop = PhysicsModel(PtychoNet(NetworkConfig(N=32, C=1, base_channels=4)), skew, False)
    e = (False, False, True)
    assert not torch.allclose(lop.diffraction(transform_grid(truth, e)),
                              transform_grid(lop.diffraction(truth), e), atol=1e-3)


def test_groups_transform_with_their_offsets(clean_ds):
    """Merging transformed truth patches at transformed offsets gives them back: the
    offsets move exactly as the object region does."""
    prep = prepare(clean_ds, 2, None, 32, 0.0, 0, True)
    g = prep.train
    idx = torch.as_tensor(g.indices[:6])
    truth = torch.as_tensor(clean_ds.patches)[idx]
    off = torch.as_tensor(g.local_offsets[:6], dtype=torch.float64)
    model = PhysicsModel(PtychoNet(NetworkConfig(N=32, C=4, base_channels=4)), prep.probe, True)
    be = model.backend()
    inner = (slice(None), slice(None), slice(10, 22), slice(10, 22))  # away from the edges
    base = merge_reextract(be, truth, off)
    for e in ELEMENTS[1:]:
        t_truth = transform_grid(truth, e)
        merged = merge_reextract(be, t_truth, transform_offsets(off, e))
        err = (merged - t_truth)[inner].abs().max() / truth.abs().max()
        assert err < 0.05, (e, float(err))
        # ... and offsets left untransformed would not do
        wrong = merge_reextract(be, t_truth, off)
        assert (wrong - t_truth)[inner].abs().max() > 2 * (merged - t_truth)[inner].abs().max()
    assert (base - truth)[inner].abs().max() / truth.abs().max() < 0.05


def test_choices_are_seeded_and_use_only_the_probe_symmetries():
    probe = np.ones((8, 8), np.complex64)
    probe[:, :3] = 2  # mirror symmetry about the rows only
    aug = SymmetryAugmenter(probe, seed=4)
    assert aug.elements == [(False, False, False), (False, True, False)]
    assert aug.choices(3, 50) == SymmetryAugmenter(probe, 4).choices(3, 50)
    assert set(aug.choices(3, 50)) == set(aug.elements)


def test_an_asymmetric_probe_refuses_the_augmentation(tiny_ds, tmp_path):
    rng = np.random.default_rng(0)
    probe = (rng.standard_normal((16, 16)) + 1j).astype(np.complex64)
    with pytest.raises(InputError, match="^augment: expected"):
        SymmetryAugmenter(probe, 0)
    with pytest.raises(InputError, match="^augment: expected"):
        TrainConfig(augment="flips")


def test_augmented_training_runs_resumes_exactly_and_differs(tiny_ds, tmp_path):
    kw = dict(gridsize=2, neighbor_count=4, augment="symmetry")
    full = train(tiny_ds, tiny_config(epochs=2, **kw), tmp_path / "full")
    train(tiny_ds, tiny_config(epochs=1, **kw), tmp_path / "part")
    resumed = train(tiny_ds, tiny_config(epochs=2, **kw), tmp_path / "part", resume=True)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    plain = train(tiny_ds, tiny_config(epochs=2, gridsize=2, neighbor_count=4), tmp_path / "p")
    assert [h["loss"] for h in plain.history] != [h["loss"] for h in full.history]
    assert np.isfinite(full.metrics["val_loss"])
