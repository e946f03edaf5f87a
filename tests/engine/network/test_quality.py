"""A short CPU training beats a flat object on the metrics of
docs/conventions.md#evaluation-metrics, at gridsize 1 and 2."""

from __future__ import annotations

import numpy as np
import pytest

from engine.evaluation.metrics import evaluate_canvas
from engine.physics.stitching import Canvas

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("g", [1, 2])
def test_reconstruction_beats_a_flat_object(trained, g):
    run = trained(g)
    canvas = run.inference.canvas
    flat = Canvas(np.where(canvas.coverage, 1 + 0j, np.nan).astype(np.complex64),
                  canvas.coverage, canvas.origin, canvas.weight)
    got = evaluate_canvas(canvas, run.ds.object)
    base = evaluate_canvas(flat, run.ds.object)
    assert got["phase"]["rms_error_rad"] < base["phase"]["rms_error_rad"], (got, base)
    assert got["amplitude"]["ssim"] > base["amplitude"]["ssim"], (got, base)
    if g == 1:
        assert got["amplitude"]["pearson_r"] > 0.3


def test_inference_stitches_with_the_probe_window_by_default(trained, tmp_path):
    """Network patches are merged weighted by the bundle's |P|² unless ``--window uniform``
    asks otherwise (the probe window once had no probe); ``ptycho stitch`` keeps uniform."""
    from engine.cli import build_parser
    from engine.network.inference import InferConfig, infer
    from engine.physics.stitching import StitchConfig

    run = trained(2)
    default = run.inference.canvas
    probe = infer(run.result.bundle, run.ds, InferConfig(
        device="cpu", stitch=StitchConfig(window="probe"))).canvas
    uniform = infer(run.result.bundle, run.ds, InferConfig(
        device="cpu", stitch=StitchConfig(window="uniform"))).canvas
    assert np.array_equal(default.canvas, probe.canvas, equal_nan=True)
    assert np.array_equal(probe.coverage, uniform.coverage)
    assert not np.allclose(probe.canvas[probe.coverage], uniform.canvas[uniform.coverage])
    # the same patches, differently weighed: the canvases agree to within their detail
    r = np.corrcoef(np.abs(probe.canvas[probe.coverage]),
                    np.abs(uniform.canvas[uniform.coverage]))[0, 1]
    assert r > 0.9
    parser = build_parser()
    infer_args = parser.parse_args(["infer", "b", "d.npz", "--out", str(tmp_path)])
    stitch_args = parser.parse_args(["stitch", "d.npz", "--out", str(tmp_path / "c.npz")])
    assert (infer_args.window, stitch_args.window) == ("probe", "uniform")
