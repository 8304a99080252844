"""The photutils photometry agrees with the hand-written detector it replaced, on the bundled field.

`handwritten_*` below is the detector and aperture photometry of main 92d18b8 (kept here only as the
reference of this test): a 15-px running median as background, local maxima above 5 sigma, 3 x 3
centroids, a 2.5-px aperture and a 5-8 px annulus median. The product now uses photutils'
Background2D, find_peaks and CircularAperture/CircularAnnulus with the same settings.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from scipy import ndimage
from scipy.spatial import cKDTree

from evaluation import photometry
from evaluation.science import SCIENCE_PHOTOMETRY as CFG

FIELD = Path(__file__).resolve().parents[2] / "data" / "real_fields" / "galactic_centre"


def handwritten_detect(grey, cfg, sigma=None):
    residual = grey - ndimage.median_filter(grey, size=cfg.background_box, mode="reflect")
    if sigma is None:
        _, _, std = sigma_clipped_stats(residual, sigma=3.0, maxiters=5)
        sigma = max(float(std), cfg.noise_floor)
    size = 2 * cfg.peak_radius + 1
    peaks = (residual == ndimage.maximum_filter(residual, size=size, mode="nearest")) & (residual > cfg.k_sigma * sigma)
    labels, n = ndimage.label(peaks)
    if n == 0:
        return np.zeros((0, 2)), sigma
    centres = np.array(ndimage.center_of_mass(peaks, labels, range(1, n + 1))).reshape(-1, 2)
    h, w = residual.shape
    for i, (row, col) in enumerate(np.rint(centres).astype(int)):
        r0, r1, c0, c1 = max(0, row - 1), min(h, row + 2), max(0, col - 1), min(w, col + 2)
        weights = np.clip(residual[r0:r1, c0:c1], 0.0, None)
        if weights.sum() > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            centres[i] = ((rows * weights).sum() / weights.sum(), (cols * weights).sum() / weights.sum())
    border = int(np.ceil(cfg.aperture_radius))
    keep = ((centres[:, 0] >= border) & (centres[:, 0] <= h - 1 - border)
            & (centres[:, 1] >= border) & (centres[:, 1] <= w - 1 - border))
    return centres[keep], sigma


def handwritten_fluxes(image, positions, cfg):
    h, w = image.shape
    reach = int(np.ceil(cfg.annulus[1]))
    fluxes = np.zeros(len(positions))
    for i, (row, col) in enumerate(positions):
        r0, r1 = max(0, int(round(row)) - reach), min(h, int(round(row)) + reach + 1)
        c0, c1 = max(0, int(round(col)) - reach), min(w, int(round(col)) + reach + 1)
        rows, cols = np.mgrid[r0:r1, c0:c1]
        dist = np.hypot(rows - row, cols - col)
        stamp = image[r0:r1, c0:c1]
        ring = (dist >= cfg.annulus[0]) & (dist <= cfg.annulus[1])
        fluxes[i] = (stamp[dist <= cfg.aperture_radius] - np.median(stamp[ring])).sum()
    return fluxes


def field_cutouts(n=8, size=64):
    """Ks and H cutouts of the bundled field (one 5"/px grid), spread over it."""
    k = fits.getdata(FIELD / "2mass_k.fits.gz").astype(np.float64)
    h = fits.getdata(FIELD / "2mass_h.fits.gz").astype(np.float64)
    corners = np.linspace(40, min(k.shape) - size - 40, n).astype(int)
    return [(k[r:r + size, c:c + size], h[r:r + size, c:c + size]) for r, c in zip(corners, corners[::-1])]


def test_photutils_detection_and_fluxes_agree_with_the_handwritten_ones():
    matched, old_total, new_total = 0, 0, 0
    flux_pairs, old_errors, new_errors = [], [], []
    for real, h_band in field_cutouts():
        old_pos, sigma = handwritten_detect(real, CFG)
        new = photometry.measure_real(real, CFG)
        old_total += len(old_pos)
        new_total += len(new.positions)
        distance, index = cKDTree(new.positions).query(old_pos, k=1)
        close = distance < 0.5
        matched += int(close.sum())
        # the same aperture on the same position gives the same flux
        flux_pairs.append((handwritten_fluxes(real, old_pos[close], CFG),
                           photometry.aperture_fluxes(real, old_pos[close], CFG)[:, 0]))
        fake = 1.07 * h_band
        comparison = photometry.compare_sources(fake, real, CFG, new)
        old_fake_flux = handwritten_fluxes(fake, old_pos, CFG)
        old_real_flux = handwritten_fluxes(real, old_pos, CFG)
        ok = old_real_flux > 0
        old_errors += list(np.abs(old_fake_flux - old_real_flux)[ok] / old_real_flux[ok])
        new_errors += comparison.flux_errors
    assert old_total > 400  # a crowded field: a real test of detection
    assert abs(new_total - old_total) / old_total < 0.10
    assert matched / old_total > 0.85
    old_f = np.concatenate([p[0] for p in flux_pairs])
    new_f = np.concatenate([p[1] for p in flux_pairs])
    np.testing.assert_allclose(new_f, old_f, rtol=1e-9, atol=1e-9)
    assert abs(np.median(new_errors) - np.median(old_errors)) < 0.03
