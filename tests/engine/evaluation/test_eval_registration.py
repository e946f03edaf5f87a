"""Sub-pixel registration, Fourier shift and phase alignment (engine.evaluation.registration)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.evaluation.registration import (
    align,
    largest_rectangle,
    phase_offset,
    phase_ramp,
    register_translation,
    shift_image,
)

from .helpers import smooth_field


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.3, -0.7), (2.0, -3.0), (-4.37, 6.12),
                                   (7.5, 0.25)])
def test_cropped_shifted_copy_registers_to_the_shift(shift):
    field = smooth_field((128, 120), seed=1)
    moved, _ = shift_image(field, shift)  # moved[r] = field[r - shift]
    ones = np.ones(field.shape, bool)
    mask = np.zeros(field.shape, bool)
    mask[16:110, 14:104] = True  # a partial view: registration must cope with borders
    al = align(field, np.where(mask, moved, np.nan), ones, mask)
    # the moving image must be moved back by -shift
    assert al.shift == pytest.approx((-shift[0], -shift[1]), abs=0.05)
    interior = al.valid.copy()
    interior[:20] = interior[-20:] = False
    interior[:, :20] = interior[:, -20:] = False
    assert np.median(np.abs(al.image[interior] - field[interior])) < 0.02


def test_periodic_shift_without_apodisation_is_found_to_a_hundredth():
    field = smooth_field((64, 80), seed=2)
    moved, _ = shift_image(field, (1.23, -2.71))
    # a band-limited periodic shift: the correlation peak is exact
    F = np.fft.fft2(field)
    ky, kx = np.fft.fftfreq(64)[:, None], np.fft.fftfreq(80)[None, :]
    periodic = np.fft.ifft2(F * np.exp(-2j * np.pi * (ky * 1.23 + kx * -2.71)))
    reg = register_translation(field, periodic, apodise=False)
    assert reg.shift == pytest.approx((-1.23, 2.71), abs=0.011)
    assert reg.error < 0.05
    with pytest.raises(InputError, match="finite"):
        register_translation(field, moved)  # NaN where the shift left no data


def test_integer_fourier_shift_is_exact_and_valid_mask_follows():
    field = smooth_field((40, 50), seed=3)
    moved, valid = shift_image(field, (3, -2))
    assert np.allclose(moved[3:, :-2], field[:-3, 2:], atol=1e-12)
    assert valid[3:, :-2].all() and not valid[:3].any() and not valid[:, -2:].any()


def test_structureless_image_gives_zero_shift_and_error_one():
    field = smooth_field((48, 48), seed=4)
    reg = register_translation(field, np.full(field.shape, 0.7 + 0.1j))
    assert reg.shift == (0.0, 0.0)
    assert reg.error == 1.0


def test_a_two_pixel_wide_region_registers_without_nan():
    """A strip two pixels wide (a thin held-out stripe) once had an all-zero taper, whose
    mean removal divided 0 by 0; the shift along the strip is still found."""
    field = smooth_field((2, 64), seed=5)
    moved = np.roll(field, 3, axis=1)
    with np.errstate(all="raise"):
        reg = register_translation(field, moved, upsample=1, max_shift=8, apodise=True)
    assert np.isfinite(reg.error)
    assert reg.shift[1] == pytest.approx(-3, abs=0.5)


def test_global_phase_offset_is_removed_exactly():
    field = smooth_field((60, 60), seed=5)
    ones = np.ones(field.shape, bool)
    for alpha in (0.0, 0.8, -2.9, 3.1):
        al = align(field, field * np.exp(1j * alpha), ones, ones)
        assert al.shift == (0.0, 0.0)
        assert al.phase_offset == pytest.approx(alpha, abs=1e-12)
        assert np.max(np.abs(al.image - field)) < 1e-12
    assert phase_offset(field, field * np.exp(0.4j), ones) == pytest.approx(0.4, abs=1e-12)


def test_phase_ramp_is_measured_and_removed():
    field = smooth_field((90, 70), seed=6)
    r, c = np.mgrid[:90, :70]
    moving = field * np.exp(1j * (0.05 * r - 0.11 * c + 1.0))
    ones = np.ones(field.shape, bool)
    assert phase_ramp(field, moving, ones) == pytest.approx((0.05, -0.11), abs=1e-9)
    al = align(field, moving, ones, ones, remove_ramp=True)
    assert al.phase_ramp == pytest.approx((0.05, -0.11), abs=1e-9)
    assert np.max(np.abs(al.image - field)) < 1e-9
    assert align(field, moving, ones, ones).phase_ramp is None


def _brute_force_rectangle(mask: np.ndarray, max_aspect: float) -> int:
    best = 0
    H, W = mask.shape
    for r0 in range(H):
        for c0 in range(W):
            for r1 in range(r0 + 1, H + 1):
                for c1 in range(c0 + 1, W + 1):
                    h, w = r1 - r0, c1 - c0
                    if h <= max_aspect * w and w <= max_aspect * h and h * w > best \
                            and mask[r0:r1, c0:c1].all():
                        best = h * w
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_largest_rectangle_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((9, 11)) > 0.2
    r0, c0, h, w = largest_rectangle(mask)
    assert mask[r0:r0 + h, c0:c0 + w].all()
    assert max(h, w) <= 2 * min(h, w)
    assert h * w == _brute_force_rectangle(mask, 2.0)


def test_largest_rectangle_on_a_large_mask_stays_inside_and_is_near_optimal():
    mask = np.zeros((700, 520), bool)
    mask[40:660, 30:500] = True
    mask[100:130, 200:215] = False  # a hole
    r0, c0, h, w = largest_rectangle(mask)
    assert mask[r0:r0 + h, c0:c0 + w].all()
    assert h * w >= 0.97 * (660 - 130) * (500 - 30)
    assert largest_rectangle(np.zeros((5, 5), bool)) == (0, 0, 0, 0)


def test_align_refuses_disjoint_masks():
    field = smooth_field((20, 20), seed=7)
    a = np.zeros(field.shape, bool)
    b = np.zeros(field.shape, bool)
    a[:5], b[10:] = True, True
    with pytest.raises(InputError, match="overlap"):
        align(field, field, a, b)
