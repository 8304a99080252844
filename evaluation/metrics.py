"""Pixel metrics between a generated and a real image, both float arrays scaled to [0, 1].

Images are (H, W) grey or (H, W, C) arrays of the same shape. The definitions are the usual
ones so that figures can be compared with the literature: L1 = mean absolute difference,
PSNR in dB with peak 1, SSIM of Wang et al. (2004) with an 11-tap Gaussian window (sigma 1.5,
K1 = 0.01, K2 = 0.03; colour = mean over channels), CC = Pearson r over all pixels.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

PSNR_CAP_DB = 100.0  # identical images have infinite PSNR; JSON and tables need a number
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # radius int(3.5 * 1.5 + 0.5) = 5 -> the 11-pixel window of Wang et al.
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(fake: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fake = np.asarray(fake, dtype=np.float64)
    real = np.asarray(real, dtype=np.float64)
    if fake.shape != real.shape:
        raise ValueError(f"image shapes differ: {fake.shape} vs {real.shape}")
    if fake.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {fake.shape}")
    return fake, real


def l1(fake: np.ndarray, real: np.ndarray) -> float:
    """Mean absolute difference over all pixels and channels."""
    fake, real = _check_pair(fake, real)
    return float(np.mean(np.abs(fake - real)))


def psnr(fake: np.ndarray, real: np.ndarray, cap_db: float = PSNR_CAP_DB) -> float:
    """Peak signal-to-noise ratio in dB for peak 1, capped at `cap_db` (identical images)."""
    fake, real = _check_pair(fake, real)
    mse = float(np.mean((fake - real) ** 2))
    if mse <= 10.0 ** (-cap_db / 10.0):
        return float(cap_db)
    return float(-10.0 * math.log10(mse))


def _ssim_channel(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    def blur(image: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(image, sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov_xy = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    # Pixels closer than the window radius to the edge see reflected data; leave them out.
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if ssim_map.shape[0] > 2 * pad and ssim_map.shape[1] > 2 * pad:
        ssim_map = ssim_map[pad:-pad, pad:-pad]
    return float(ssim_map.mean())


def ssim(fake: np.ndarray, real: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004, Gaussian window); colour = mean over channels."""
    fake, real = _check_pair(fake, real)
    if fake.ndim == 2:
        return _ssim_channel(fake, real, data_range)
    return float(np.mean([_ssim_channel(fake[..., c], real[..., c], data_range)
                          for c in range(fake.shape[2])]))


def pearson_cc(fake: np.ndarray, real: np.ndarray) -> float:
    """Pearson correlation over all pixel values.

    A constant image has no defined r; it scores 1.0 against an identical image and 0.0
    otherwise, so a generator that outputs a flat image is counted as uncorrelated.
    """
    fake, real = _check_pair(fake, real)
    if np.ptp(fake) == 0.0 or np.ptp(real) == 0.0:
        return 1.0 if np.array_equal(fake, real) else 0.0
    a = fake.ravel() - fake.mean()
    b = real.ravel() - real.mean()
    norm = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.clip(np.dot(a, b) / norm, -1.0, 1.0))


def pixel_metrics(fake: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """All four pixel metrics, keyed as in metrics.json."""
    return {"L1": l1(fake, real), "PSNR": psnr(fake, real), "SSIM": ssim(fake, real),
            "CC": pearson_cc(fake, real)}
