"""Scores in the band's own unit: known answers on synthetic star fields."""
import numpy as np
import pytest

from evaluation.science import AsinhStretch, data_range, score_predictions


def star_field(seed=0, size=48, n_stars=12, sky=500.0, noise=5.0):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    image = sky + rng.normal(0.0, noise, (size, size))
    for _ in range(n_stars):
        r, c = rng.uniform(6, size - 6, 2)
        image += rng.uniform(200, 3000) * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * 1.2 ** 2))
    return image


def test_stretch_maps_the_cuts_to_zero_and_one_and_is_monotone():
    values = star_field()
    stretch = AsinhStretch.fit(values)
    assert stretch.apply(np.array([stretch.low, stretch.high])) == pytest.approx([0.0, 1.0])
    ramp = np.linspace(values.min(), values.max(), 50)
    assert np.all(np.diff(stretch.apply(ramp)) >= 0)


def test_a_perfect_prediction_scores_perfectly():
    reals = [star_field(seed) for seed in range(3)]
    stretch, peak = AsinhStretch.fit(np.concatenate([r.ravel() for r in reals])), data_range(reals)
    scores = score_predictions([(f"s{i}", r.copy(), r) for i, r in enumerate(reals)], stretch, peak)
    assert scores["L1"] == 0.0 and scores["CC"] == pytest.approx(1.0) and scores["PSNR"] == 100.0
    assert scores["SSIM"] == pytest.approx(1.0) and scores["flux_error"] == pytest.approx(0.0, abs=1e-9)
    assert scores["n_sources"] >= 20 and scores["completeness"] == 1.0
    assert scores["star_fluxes"]["real"] == pytest.approx(scores["star_fluxes"]["generated"])


def test_flat_and_fainter_predictions_score_as_expected():
    reals = [star_field(seed) for seed in range(3)]
    stretch, peak = AsinhStretch.fit(np.concatenate([r.ravel() for r in reals])), data_range(reals)
    flat = score_predictions([(f"s{i}", np.full_like(r, 500.0), r) for i, r in enumerate(reals)], stretch, peak)
    assert flat["CC"] == 0.0 and flat["flux_error"] == pytest.approx(1.0, abs=0.05) and flat["completeness"] == 0.0
    # every star at half its flux (sky kept): flux error 0.5, L1 in the data's own unit
    half = [(f"s{i}", 500.0 + (r - 500.0) / 2, r) for i, r in enumerate(reals)]
    scores = score_predictions(half, stretch, peak)
    assert scores["flux_error"] == pytest.approx(0.5, abs=0.03)
    assert scores["L1"] == pytest.approx(np.mean([np.abs(r - 500.0).mean() / 2 for r in reals]), rel=1e-6)
    assert scores["CC"] > 0.99  # CC ignores a scale error: it is why L1 and flux error are reported too


def test_pixels_without_data_are_left_out():
    real = star_field()
    predicted = real.copy()
    predicted[:10] = np.nan
    stretch = AsinhStretch.fit(real)
    scores = score_predictions([("s", predicted, real)], stretch, data_range([real]))
    assert scores["L1"] == 0.0 and scores["CC"] == pytest.approx(1.0)


def test_several_trainings_average_every_photometric_figure():
    from evaluation.evaluation import average_runs

    def run(seed, rate):
        return {"seed": seed, "L1": 1.0, "PSNR": 30.0, "SSIM": 0.9, "CC": 0.9, "flux_error": rate, "completeness": rate,
                "false_source_rate": rate, "invented_source_rate": rate, "n_sources": 10, "n_generated_sources": 8,
                "std": {"L1": 0.1, "PSNR": 1.0, "SSIM": 0.01, "CC": 0.01}, "images": []}

    merged = average_runs([run(0, 0.1), run(1, 0.3)])
    for key in ("flux_error", "completeness", "false_source_rate", "invented_source_rate"):
        assert merged[key] == pytest.approx(0.2), key
        assert [r[key] for r in merged["runs"]] == [0.1, 0.3]
