"""Pixel metrics on images whose answers are known in closed form."""
import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from evaluation import metrics


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def sky(rng):
    """A smooth field with a few bright blobs: structure for SSIM and CC to see."""
    image = np.zeros((64, 64))
    rows, cols = np.mgrid[0:64, 0:64]
    for r, c in rng.uniform(8, 56, size=(12, 2)):
        image += np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 8.0)
    return 0.1 + 0.8 * image / image.max()


def test_identical_images_score_perfectly(sky):
    assert metrics.l1(sky, sky) == 0.0
    assert metrics.psnr(sky, sky) == metrics.PSNR_CAP_DB
    assert metrics.ssim(sky, sky) == pytest.approx(1.0)
    assert metrics.pearson_cc(sky, sky) == pytest.approx(1.0)


def test_scaled_image_keeps_cc_and_l1_is_known(sky):
    scaled = 0.5 * sky
    assert metrics.pearson_cc(scaled, sky) == pytest.approx(1.0)
    assert metrics.l1(scaled, sky) == pytest.approx(0.5 * sky.mean())
    assert metrics.ssim(scaled, sky) < 0.99


def test_constant_offset_gives_exact_l1_and_psnr(sky):
    shifted = sky + 0.05
    assert metrics.l1(shifted, sky) == pytest.approx(0.05)
    assert metrics.psnr(shifted, sky) == pytest.approx(-10 * math.log10(0.05 ** 2))
    assert metrics.pearson_cc(shifted, sky) == pytest.approx(1.0)


def test_spatial_shift_lowers_ssim_and_cc(sky):
    moved = np.roll(sky, 3, axis=1)
    assert metrics.ssim(moved, sky) < 0.9
    assert metrics.pearson_cc(moved, sky) < 0.95
    assert metrics.l1(moved, sky) > 0.01


def test_noise_psnr_matches_sigma(rng):
    real = np.full((256, 256), 0.5)
    sigma = 0.03
    noisy = real + rng.normal(0, sigma, real.shape)
    assert metrics.psnr(noisy, real) == pytest.approx(-20 * math.log10(sigma), abs=0.1)
    assert metrics.l1(noisy, real) == pytest.approx(sigma * math.sqrt(2 / math.pi), rel=0.02)


def test_anticorrelated_image_has_cc_minus_one(sky):
    assert metrics.pearson_cc(1.0 - sky, sky) == pytest.approx(-1.0)


def test_flat_generated_image_counts_as_uncorrelated(sky):
    assert metrics.pearson_cc(np.full_like(sky, 0.3), sky) == 0.0
    flat = np.full_like(sky, 0.3)
    assert metrics.pearson_cc(flat, flat.copy()) == 1.0


@pytest.mark.parametrize("channels", [None, 3])
def test_ssim_agrees_with_skimage_gaussian_wang(sky, rng, channels):
    real = sky if channels is None else np.stack([sky, sky ** 2, np.sqrt(sky)], axis=2)
    fake = np.clip(real + rng.normal(0, 0.05, real.shape), 0, 1)
    expected = structural_similarity(
        fake, real, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=None if channels is None else 2)
    assert metrics.ssim(fake, real) == pytest.approx(expected, abs=1e-6)


def test_colour_ssim_is_mean_over_channels(sky, rng):
    real = np.stack([sky, sky, sky], axis=2)
    fake = real.copy()
    fake[..., 0] = np.clip(sky + rng.normal(0, 0.1, sky.shape), 0, 1)
    per_channel = [metrics.ssim(fake[..., c], real[..., c]) for c in range(3)]
    assert metrics.ssim(fake, real) == pytest.approx(np.mean(per_channel))
    assert per_channel[1] == pytest.approx(1.0) and per_channel[0] < 0.9


def test_shape_mismatch_is_rejected(sky):
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.l1(sky, sky[:32])


def test_pixel_metrics_keys(sky):
    assert set(metrics.pixel_metrics(sky, sky)) == {"L1", "PSNR", "SSIM", "CC"}
