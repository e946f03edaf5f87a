"""evaluate_canvas (docs/conventions.md#evaluation-metrics) and compare_canvases
(docs/conventions.md#comparison) on stitched canvases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from engine.errors import InputError
from engine.evaluation.metrics import compare_canvases, evaluate_canvas, to_jsonable
from engine.evaluation.registration import shift_image
from engine.physics.stitching import Canvas


def test_perfect_reconstruction(truth, make_canvas):
    result = evaluate_canvas(make_canvas(truth), truth)
    amp, ph = result["amplitude"], result["phase"]
    assert result["alignment"]["registration"]["shift_px"] == [0.0, 0.0]
    assert amp["exact_match"] or amp["rmse"] < 1e-6
    assert amp["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert ph["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert ph["rms_error_rad"] < 1e-6
    assert amp["frc"]["resolution_px_half_bit"] == 2.0
    assert 0 < result["coverage_fraction"] < 1
    json.dumps(to_jsonable(result), allow_nan=False)


def test_global_phase_offset_and_amplitude_scale_are_removed(truth, make_canvas):
    result = evaluate_canvas(make_canvas(3.0 * truth * np.exp(1.3j)), truth)
    assert result["alignment"]["phase_offset_rad"] == pytest.approx(1.3, abs=1e-6)
    assert result["amplitude"]["scale"] == pytest.approx(1 / 3, rel=1e-6)
    assert result["amplitude"]["mae"] < 1e-6
    assert result["phase"]["rms_error_rad"] < 1e-6


def test_shifted_reconstruction_is_registered(truth, make_canvas):
    moved, valid = shift_image(truth.astype(np.complex128), (1.4, -0.6))
    moved = np.where(valid, moved, truth)  # edges outside the scan anyway
    result = evaluate_canvas(make_canvas(moved), truth)
    assert result["alignment"]["registration"]["shift_px"] == pytest.approx([-1.4, 0.6], abs=0.05)
    assert result["amplitude"]["ssim"] > 0.99
    assert result["phase"]["rms_error_rad"] < 0.02
    unregistered = evaluate_canvas(make_canvas(moved), truth, max_shift=0)
    assert unregistered["amplitude"]["ssim"] < result["amplitude"]["ssim"] - 0.05


def test_origin_places_the_canvas_on_the_truth_grid(truth, make_canvas):
    c = make_canvas(truth)
    wrong = Canvas(c.canvas, c.coverage, (c.origin[0] + 3, c.origin[1] - 2), c.weight)
    result = evaluate_canvas(wrong, truth)
    # a canvas placed 3 rows down must be moved 3 rows up
    assert result["alignment"]["registration"]["shift_px"] == pytest.approx([-3.0, 2.0], abs=1e-9)
    assert result["amplitude"]["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_flat_object_scores_worse_than_a_blurred_truth(truth, make_canvas):
    amp, ph = np.abs(truth), np.angle(truth)
    blurred = ndimage.gaussian_filter(amp, 1.5) * np.exp(1j * ndimage.gaussian_filter(ph, 1.5))
    flat = np.full(truth.shape, amp.mean(), dtype=np.complex128)
    good = evaluate_canvas(make_canvas(blurred), truth)
    bad = evaluate_canvas(make_canvas(flat), truth)
    assert good["amplitude"]["ssim"] > bad["amplitude"]["ssim"] + 0.2
    assert good["phase"]["ssim"] > bad["phase"]["ssim"] + 0.2
    assert good["phase"]["rms_error_rad"] < bad["phase"]["rms_error_rad"]
    for section in ("amplitude", "phase"):
        assert good[section]["mae"] < bad[section]["mae"]
        assert good[section]["psnr"] > bad[section]["psnr"]
        assert (good[section]["frc"]["resolution_px_half_bit"]
                < bad[section]["frc"]["resolution_px_half_bit"])
    assert good["amplitude"]["pearson_r"] > 0.9
    assert math.isnan(bad["amplitude"]["pearson_r"])
    assert to_jsonable(bad)["amplitude"]["pearson_r"] is None


def test_phase_ramp_removal_is_optional(truth, make_canvas):
    r, c = np.mgrid[: truth.shape[0], : truth.shape[1]]
    ramped = truth * np.exp(1j * (0.04 * r - 0.03 * c))
    plain = evaluate_canvas(make_canvas(ramped), truth)
    fixed = evaluate_canvas(make_canvas(ramped), truth, remove_ramp=True)
    assert fixed["alignment"]["phase_ramp_rad_per_px"] == pytest.approx([0.04, -0.03], abs=1e-5)
    assert fixed["phase"]["rms_error_rad"] < 1e-4 < plain["phase"]["rms_error_rad"]
    assert plain["alignment"]["phase_ramp_rad_per_px"] is None


def test_amplitude_only_canvas_has_no_phase_section(truth, make_canvas):
    c = make_canvas(truth)
    amp = Canvas(np.abs(c.canvas).astype(np.float32), c.coverage, c.origin, c.weight)
    result = evaluate_canvas(amp, truth)
    assert result["phase"] is None
    assert result["amplitude"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    real_truth = evaluate_canvas(c, np.abs(truth))
    assert real_truth["phase"] is None
    assert real_truth["amplitude"]["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_canvas_outside_the_truth_is_refused(truth, make_canvas):
    c = make_canvas(truth)
    far = Canvas(c.canvas, c.coverage, (500, 500), c.weight)
    with pytest.raises(InputError, match="coverage overlapping"):
        evaluate_canvas(far, truth)
    with pytest.raises(InputError, match="2-D"):
        evaluate_canvas(c, truth[0])


def test_compare_canvases(truth, make_canvas):
    base = make_canvas(truth)
    same = compare_canvases(base, make_canvas(truth * np.exp(-0.7j)))
    assert same["alignment"]["phase_offset_rad"] == pytest.approx(-0.7, abs=1e-6)
    assert same["amplitude"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert same["phase"]["frc"]["resolution_px_half_bit"] == 2.0
    assert same["overlap_fraction"] == 1.0
    # the same content on a canvas whose origin differs: registration brings it back
    moved = Canvas(base.canvas, base.coverage, (base.origin[0] + 2, base.origin[1] + 1),
                   base.weight)
    shifted = compare_canvases(base, moved)
    assert shifted["alignment"]["registration"]["shift_px"] == pytest.approx([-2.0, -1.0])
    assert shifted["amplitude"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    # amplitude is scaled before the figures, as evaluate does; the scale reports a 2x
    # candidate, and PSNR/SSIM judge the structure
    doubled = compare_canvases(base, make_canvas(2 * truth))
    assert doubled["amplitude"]["scale"] == pytest.approx(0.5, rel=1e-6)
    assert doubled["amplitude"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert doubled["amplitude"]["mae"] < 1e-6 * np.abs(truth).mean()
    assert doubled["alignment"]["registration"]["ok"] is True


def test_min_weight_keeps_only_well_stitched_pixels(truth, make_canvas):
    c = make_canvas(truth)
    rim = c.weight < 0.5 * c.weight.max()
    assert (rim & c.coverage).any()
    spoiled = Canvas(np.where(rim, 0.1 * c.canvas, c.canvas), c.coverage, c.origin, c.weight)
    everything = evaluate_canvas(spoiled, truth)
    inner = evaluate_canvas(spoiled, truth, min_weight=0.5)
    assert inner["alignment"]["n_pixels"] < everything["alignment"]["n_pixels"]
    assert inner["amplitude"]["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert everything["amplitude"]["ssim"] < 0.99
    with pytest.raises(InputError, match="min_weight"):
        evaluate_canvas(c, truth, min_weight=2.0)


def test_registration_check_flags_poor_correlation_and_implausible_shifts():
    from engine.evaluation.metrics import registration_check

    def result(r_amp, r_phase, shift, box=(0, 0, 200, 120)):
        return {"alignment": {"registration": {"shift_px": list(shift), "box": list(box)}},
                "amplitude": {"pearson_r": r_amp}, "phase": {"pearson_r": r_phase}}

    assert registration_check(result(0.9, 0.8, (1.5, -2.0)))["ok"] is True
    # one of amplitude and phase correlating is enough (a weak-amplitude phase object)
    assert registration_check(result(0.05, 0.7, (0.0, 0.0)))["ok"] is True
    # the reported case: a shift of +37.6, +19.2 px with r = -0.03
    bad = registration_check(result(-0.03, None, (37.6, 19.2)))
    assert bad["ok"] is False
    assert "Pearson r -0.03" in bad["reason"] and "(+37.6, +19.2)" in bad["reason"]
    # a large shift alone: beyond max(4 px, 0.1 x the 120-px side) = 12 px
    far = registration_check(result(0.9, 0.9, (0.0, 12.5)))
    assert far["ok"] is False and "exceeds 12.0 px" in far["reason"]
    assert registration_check(result(0.9, 0.9, (0.0, 11.9)))["ok"] is True
