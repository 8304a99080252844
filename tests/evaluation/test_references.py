"""The no-model references: fitted on training cubes only, with known answers."""
import numpy as np
import pytest
from astropy.io import fits

from evaluation.references import (LinearFit, best_correlated, fit_linear, flat_level, level_ratio, sample_pixels,
                                   training_cubes)
from util.errors import UserError


def write_cubes(folder, count=6, size=16, seed=0, nan_corner=False):
    """Cubes whose plane 0 is exactly 3 + 2 x plane 1 - 0.5 x plane 2 (plane 3 is unrelated noise)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for index in range(count):
        b1 = rng.gamma(2.0, 50.0, (size, size))
        b2 = rng.normal(100.0, 20.0, (size, size))
        b3 = rng.normal(0.0, 1.0, (size, size))
        target = 3.0 + 2.0 * b1 - 0.5 * b2
        cube = np.stack([target, b1, b2, b3]).astype(np.float32)
        if nan_corner:
            cube[2, :3, :3] = np.nan  # a missing patch in one input band
        fits.PrimaryHDU(cube).writeto(folder / f"c{index:02d}.fits")
    return folder


def test_linear_fit_recovers_a_known_linear_answer(tmp_path):
    paths = training_cubes(write_cubes(tmp_path / "train").parent)
    pixels = sample_pixels(paths, (0, 1, 2, 3))
    fit = fit_linear(pixels, 0, (1, 2))
    assert fit.coefficients == pytest.approx((2.0, -0.5), abs=1e-4)
    assert fit.intercept == pytest.approx(3.0, abs=1e-2)
    inputs = {1: np.array([[10.0, 20.0]]), 2: np.array([[100.0, 0.0]])}
    assert fit.predict(inputs) == pytest.approx(np.array([[3 + 20 - 50, 3 + 40 - 0]]), abs=1e-2)
    # the unrelated band gets (almost) no weight and changes nothing
    with_noise = fit_linear(pixels, 0, (1, 2, 3))
    assert abs(with_noise.coefficients[2]) < 1e-3


def test_pixels_with_a_missing_band_are_left_out_of_the_fit(tmp_path):
    pixels = sample_pixels(training_cubes(write_cubes(tmp_path / "train", nan_corner=True).parent), (0, 1, 2))
    assert np.isfinite(pixels.values).all() and len(pixels.values) == 6 * (16 * 16 - 9)
    assert fit_linear(pixels, 0, (1, 2)).coefficients == pytest.approx((2.0, -0.5), abs=1e-4)


def test_flat_level_band_choice_and_level_ratio(tmp_path):
    pixels = sample_pixels(training_cubes(write_cubes(tmp_path / "train").parent), (0, 1, 2, 3))
    assert flat_level(pixels, 0) == pytest.approx(float(np.median(pixels.column(0))))
    assert best_correlated(pixels, 0, (1, 2, 3)) == 1  # the target is mostly 2 x plane 1



def test_the_level_of_a_band_comes_from_its_sky_or_from_its_sources():
    """Sky levels well above the noise (2MASS-like): the ratio of medians. A median at zero (SDSS-like,
    background-subtracted) makes that ratio noise: the sources set the level."""
    from evaluation.references import TrainingPixels

    rng = np.random.default_rng(0)
    with_sky = np.column_stack([rng.normal(500.0, 10.0, 5000), rng.normal(250.0, 10.0, 5000)])
    ratio, of = level_ratio(TrainingPixels((0, 1), with_sky), 0, 1)
    assert of == "training medians" and ratio == pytest.approx(2.0, rel=0.01)
    sky = rng.normal(0.0, 1.0, (20000, 2))
    sky[:200] += np.array([[30.0, 10.0]]) * rng.uniform(1, 3, (200, 1))  # sources 3x brighter in plane 0
    ratio, of = level_ratio(TrainingPixels((0, 1), sky), 0, 1)
    assert "sources" in of and ratio == pytest.approx(3.0, rel=0.15)


def test_sampling_caps_the_pixels_and_is_repeatable(tmp_path):
    paths = training_cubes(write_cubes(tmp_path / "train").parent)
    a = sample_pixels(paths, (0, 1), max_pixels=60, seed=3)
    b = sample_pixels(paths, (0, 1), max_pixels=60, seed=3)
    assert len(a.values) == 60 and np.array_equal(a.values, b.values)


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no FITS cubes"):
        training_cubes(tmp_path)
    paths = training_cubes(write_cubes(tmp_path / "train").parent)
    with pytest.raises(UserError, match="plane 7"):
        sample_pixels(paths, (0, 7))
    describe = LinearFit((1, 2), (2.0, -0.5), 3.0).describe({1: "J", 2: "H"})
    assert describe == "3 +2 x J -0.5 x H"


def test_the_asinh_fit_finds_a_colour_relation_in_magnitudes_that_the_flux_fit_misses():
    """Reddened stars: Ks magnitude = 1.6 H - 0.6 J (a colour term), fluxes over a sky with noise. The fit
    of asinh-scaled bands is close to linear in magnitudes and recovers the stars; the flux fit cannot."""
    from evaluation.references import TrainingPixels, fit_asinh, fit_linear

    rng = np.random.default_rng(3)
    n_sky, n_star = 160000, 40000  # most pixels are sky, as in an image
    m_h = rng.uniform(8.0, 14.0, n_star)
    m_j = m_h + rng.uniform(0.5, 4.0, n_star)  # reddening: J - H from 0.5 to 4 mag
    m_k = 1.6 * m_h - 0.6 * m_j
    sky = 10.0
    j, h, k = (np.concatenate([np.zeros(n_sky), 10 ** (-0.4 * (m - 18.0))]) + sky + rng.normal(0, 0.5, n_sky + n_star)
               for m in (m_j, m_h, m_k))
    pixels = TrainingPixels((0, 1, 2), np.column_stack([k, j, h]))
    colour, flux = fit_asinh(pixels, 0, (1, 2)), fit_linear(pixels, 0, (1, 2))
    stars = slice(n_sky, None)
    log_k = np.log(k[stars] - sky)

    def cc(fit):
        predicted = fit.predict({1: j[stars], 2: h[stars]})
        return np.corrcoef(np.log(np.clip(predicted - sky, 1e-3, None)), log_k)[0, 1]

    assert cc(colour) > 0.9 and cc(colour) > cc(flux) + 0.05
