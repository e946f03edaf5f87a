"""Image figures with known answers: MAE, RMSE, PSNR, SSIM, FRC, Pearson r."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from engine.errors import InputError
from engine.evaluation.metrics import (
    frc,
    image_figures,
    mae,
    pearson_r,
    psnr,
    rmse,
    ssim,
    to_jsonable,
)

from .helpers import smooth_field


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return smooth_field((96, 96), seed=11).real


def test_mae_rmse_psnr_known_values(image):
    other = image + 0.05
    assert mae(image, other) == pytest.approx(0.05)
    assert rmse(image, other) == pytest.approx(0.05)
    assert psnr(image, other, data_range=2.0) == pytest.approx(20 * math.log10(2.0 / 0.05))
    mask = np.zeros(image.shape, bool)
    mask[:10] = True
    bumped = np.where(mask, image, image + 1.0)  # differences outside the mask are ignored
    assert mae(image, bumped, mask) == 0.0
    with pytest.raises(InputError, match="data_range"):
        psnr(image, other, data_range=0.0)


def test_identical_images_are_perfect(image):
    figures = image_figures(image, image.copy(), np.ones(image.shape, bool))
    assert figures["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert figures["psnr"] == math.inf and figures["exact_match"] is True
    assert figures["pearson_r"] == pytest.approx(1.0)
    ring = figures["frc"]
    assert ring["resolution_px_1_7"] == 2.0 and ring["reached_nyquist_1_7"]
    assert ring["resolution_px_half_bit"] == 2.0 and ring["reached_nyquist_half_bit"]
    assert np.allclose(ring["frc"], 1.0)
    # JSON: infinite PSNR is null, and exact_match says it is "identical", not "unknown"
    text = json.dumps(to_jsonable(figures), allow_nan=False)
    back = json.loads(text)
    assert back["psnr"] is None and back["exact_match"] is True


def test_ssim_agrees_with_the_reference_implementation(image):
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    noisy = image + rng.normal(scale=0.1, size=image.shape)
    dr = float(image.max() - image.min())
    expected = metrics.structural_similarity(image, noisy, data_range=dr, gaussian_weights=True,
                                             sigma=1.5, use_sample_covariance=False)
    assert ssim(image, noisy, data_range=dr) == pytest.approx(expected, abs=1e-9)


def test_noise_lowers_ssim_and_psnr_monotonically(image):
    rng = np.random.default_rng(1)
    dr = float(image.max() - image.min())
    base = rng.normal(size=image.shape)
    scores = [ssim(image, image + s * base, dr) for s in (0.0, 0.01, 0.03, 0.1, 0.3)]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    assert scores[0] == pytest.approx(1.0) and scores[-1] < 0.5
    peaks = [psnr(image, image + s * base, dr) for s in (0.01, 0.03, 0.1, 0.3)]
    assert all(a > b for a, b in zip(peaks, peaks[1:], strict=False))


def test_frc_of_noise_and_blur():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(64, 64)), rng.normal(size=(64, 64))
    independent = frc(a, b)
    assert abs(np.mean(independent["frc"])) < 0.1
    assert independent["resolution_px_half_bit"] > 20  # crosses in the first rings
    field = smooth_field((128, 96), seed=3, sigma=1.0).real  # non-square
    blurred = ndimage.gaussian_filter(field, 2.0)
    ring = frc(field, blurred)
    assert 2.0 < ring["resolution_px_half_bit"] < 128
    assert len(ring["frequency"]) == 48 and ring["frequency"][-1] == pytest.approx(0.5)
    sharper = frc(field, ndimage.gaussian_filter(field, 1.0))
    assert sharper["resolution_px_1_7"] < ring["resolution_px_1_7"]


def test_pearson_of_a_flat_image_is_undefined(image):
    assert math.isnan(pearson_r(image, np.ones_like(image)))
    assert pearson_r(image, 2 * image + 1) == pytest.approx(1.0)
    assert to_jsonable({"r": math.nan, "a": np.float32(2.5), "v": np.arange(2)}) == {
        "r": None, "a": 2.5, "v": [0, 1]}


def test_ssim_on_a_masked_region_ignores_the_outside(image):
    mask = np.zeros(image.shape, bool)
    mask[10:60, 20:80] = True
    spoiled = np.where(mask, image, 100.0)
    assert ssim(image, spoiled, 1.0, mask) == pytest.approx(1.0, abs=1e-12)
    assert ssim(image, spoiled, 1.0) < 0.5
