"""The spread model of predict_sky.py's uncertainty: fitted on one sample, judged on an independent one."""
from __future__ import annotations

import numpy as np
import pytest

from data.sky.hips_quality import ONE_SIGMA, SpreadModel, calibration, fit_spread


def sky(seed: int, n: int = 40_000):
    """Pixels whose error grows 10x from faint to bright while the raw spread only doubles (as dropout's
    does against a U-Net's error): brightness b, raw std, and a truth drawn around the mean."""
    rng = np.random.default_rng(seed)
    mean = 500.0 + 2000.0 * rng.random(n) ** 3
    brightness = (mean - 500.0) / 2000.0
    raw = 0.5 * (1.0 + brightness)
    truth = mean + rng.normal(size=n) * 5.0 * (1.0 + 9.0 * brightness)
    return mean, raw.astype(np.float32), truth


def coverage_by_decile(mean, std, truth):
    edges = np.quantile(mean, np.linspace(0, 1, 11))
    parts = np.clip(np.searchsorted(edges[1:-1], mean, side="right"), 0, 9)
    return np.array([calibration(mean[parts == k], std[parts == k], truth[parts == k]).within_1std
                     for k in range(10)])


def test_the_brightness_model_covers_68_percent_in_every_brightness_decile_of_new_pixels():
    fit_mean, fit_raw, fit_truth = sky(0)
    model = fit_spread(fit_mean, fit_raw, fit_truth)
    single = fit_spread(fit_mean, fit_raw, fit_truth, bins=1)
    assert single.is_constant and not model.is_constant and len(model.scale) == 8
    mean, raw, truth = sky(1)  # other pixels of the same kind of sky
    for fitted in (model, single):
        overall = calibration(mean, raw * fitted.factor(mean), truth).within_1std
        assert overall == pytest.approx(ONE_SIGMA, abs=0.02)
    by_model = coverage_by_decile(mean, raw * model.factor(mean), truth)
    by_single = coverage_by_decile(mean, raw * single.factor(mean), truth)
    assert np.all(np.abs(by_model - ONE_SIGMA) < 0.06), by_model
    assert by_single[-1] < ONE_SIGMA - 0.1 and by_single[0] > ONE_SIGMA + 0.1  # one factor: stars under-covered


def test_few_pixels_give_one_factor_and_settings_round_trip():
    mean, raw, truth = sky(2, n=600)
    assert fit_spread(mean, raw, truth).is_constant  # < 2 bins of MIN_BIN_PIXELS
    model = fit_spread(*sky(3))
    for value in (model, SpreadModel.constant(17.5), SpreadModel()):
        assert SpreadModel.from_setting(value.as_setting()) == value
    assert SpreadModel.constant(3.0).factor(np.array([1.0, np.nan])).tolist() == [3.0, 3.0]
    assert np.isnan(model.factor(np.array([np.nan]))[0])
