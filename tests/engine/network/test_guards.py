"""The guards against the seed project's bug class: a scale mismatch that collapses the
network's output (docs/conventions.md#intensity-scaling). Train then infer at gridsize 1 and 2 on a
simulated set."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import numpy as np
import pytest

from engine.network.inference import InferConfig, infer
from engine.network.trainer import train
from engine.physics.scaling import ScalingConfig

from .conftest import tiny_config, truth_patch_stats

pytestmark = pytest.mark.slow


def _not_collapsed(record, truth):
    assert record["var_zero_mean"] >= 0.1 * truth["var_zero_mean"], (record, truth)
    assert 0.5 * truth["mean"] <= record["mean"] <= 2 * truth["mean"], (record, truth)


@pytest.mark.parametrize("g", [1, 2])
def test_patches_are_not_collapsed_in_training_and_inference(trained, g):
    run = trained(g)
    truth = truth_patch_stats(run.ds)
    _not_collapsed(run.result.metrics["train_patch_stats"], truth)
    _not_collapsed(run.inference.stats, truth)
    if g == 1:
        assert run.inference.stats["var_across_group"] is None  # undefined for C = 1
    else:
        assert run.inference.stats["var_across_group"] is not None


@pytest.mark.parametrize("g", [1, 2])
def test_inference_on_training_data_reproduces_training_statistics(trained, g):
    run = trained(g)
    tr, inf = run.result.metrics["train_patch_stats"], run.inference.stats
    assert inf["intensity_scale"] == tr["intensity_scale"]
    for key in ("mean", "std", "var_zero_mean"):
        assert abs(inf[key] / tr[key] - 1) < 0.05, (key, tr[key], inf[key])
    files = run.result.out / "analysis"
    records = json.loads((files / "stats_train.json").read_text())
    assert [r["batch"] for r in records] == [0, 1, "all"]
    assert (files / "patches_train_raw.png").stat().st_size > 0
    inf_records = json.loads((run.result.out / "infer/analysis/stats_inference.json").read_text())
    assert inf_records[-1]["batch"] == "all" and inf_records[-1]["gridsize"] == g


def test_bundle_scale_is_the_default_and_is_logged(trained, caplog):
    run = trained(1)
    with caplog.at_level(logging.INFO, logger="engine.network.inference"):
        res = infer(run.result.bundle, run.ds.subset(np.arange(20)), InferConfig(device="cpu"))
    assert res.scale_source.startswith("from bundle: ")
    assert f"from bundle: {run.result.metrics['train_patch_stats']['intensity_scale']:.6f}" \
        in caplog.text


def test_scaling_data_on_counts_x100_equals_scaling_bundle_on_the_original(trained, caplog):
    run = trained(1)
    ds = run.ds
    loud = ds.with_diffraction(ds.diffraction * 10.0)  # sqrt(100 × counts)
    a = infer(run.result.bundle, ds, InferConfig(device="cpu")).canvas
    b = infer(run.result.bundle, loud,
              InferConfig(device="cpu", scaling=ScalingConfig("data"))).canvas
    cov = a.coverage
    assert np.array_equal(cov, b.coverage)
    np.testing.assert_allclose(b.canvas[cov], a.canvas[cov], rtol=1e-4, atol=1e-5)
    # the bundle's scale on data 100× brighter is the seed's mismatch: warned with both values
    with caplog.at_level(logging.WARNING):
        infer(run.result.bundle, loud.subset(np.arange(10)), InferConfig(device="cpu"))
    assert "differs from the data's own" in caplog.text


def test_counts_x100_train_to_the_same_model(tiny_ds, tmp_path):
    """End to end: training on 100× the counts gives the same losses and reconstruction.

    X agrees to float rounding only, and Adam turns rounding-level differences of near-zero
    gradients into lr-sized steps, so the canvases are compared against what a real change
    (another seed) does: the dose must matter far less than that.
    """
    loud = replace(tiny_ds, diffraction=tiny_ds.diffraction * 10.0)
    cfg = tiny_config(epochs=1, gridsize=2, neighbor_count=4)
    a = train(tiny_ds, cfg, tmp_path / "a")
    b = train(loud, cfg, tmp_path / "b")
    c = train(tiny_ds, replace(cfg, seed=1), tmp_path / "c")
    np.testing.assert_allclose([h["loss"] for h in b.history], [h["loss"] for h in a.history],
                               rtol=1e-4)
    ca = infer(a.bundle, tiny_ds, InferConfig(device="cpu")).canvas
    cb = infer(b.bundle, loud, InferConfig(device="cpu")).canvas
    cc = infer(c.bundle, tiny_ds, InferConfig(device="cpu")).canvas
    cov = ca.coverage
    dose = np.linalg.norm(cb.canvas[cov] - ca.canvas[cov])
    seed = np.linalg.norm(cc.canvas[cov] - ca.canvas[cov])
    assert dose < 0.1 * seed, (dose, seed)
    assert dose < 0.05 * np.linalg.norm(ca.canvas[cov])


@pytest.mark.parametrize("g", [1, 2])
def test_bf16_inference_reproduces_fp32_within_bf16_precision(trained, g):
    """The network cast to bfloat16 (``--precision bf16``) gives the fp32 canvas to well
    under a percent, and the same patch statistics: the option changes speed, not results."""
    run = trained(g)
    a = run.inference
    b = infer(run.result.bundle, run.ds, InferConfig(device="cpu", precision="bf16"))
    cov = a.canvas.coverage
    assert np.array_equal(cov, b.canvas.coverage)
    diff = b.canvas.canvas[cov] - a.canvas.canvas[cov]
    rel = np.sqrt(np.mean(np.abs(diff) ** 2) / np.mean(np.abs(a.canvas.canvas[cov]) ** 2))
    assert 0 < rel < 0.01, rel  # not fp32 run twice, and within bf16's 8-bit mantissa
    for key in ("mean", "std", "var_zero_mean"):
        assert b.stats[key] == pytest.approx(a.stats[key], rel=0.02), key


def test_bad_precision_is_refused():
    from engine.errors import InputError

    with pytest.raises(InputError, match="^precision: expected"):
        InferConfig(precision="fp16")
