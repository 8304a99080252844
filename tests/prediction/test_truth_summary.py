"""What predict_sky --truth prints per kind of sky (a replay of issue 22's check saw 'r = nan (0 px)')."""
from __future__ import annotations

import math
from pathlib import Path

from prediction.truth import summary_lines


def test_a_kind_of_sky_the_region_does_not_hold_is_not_printed():
    figures = {"pearson_r": 0.97, "pixels": 300,
               "by_sky": {"train": {"pearson_r": 0.99, "pixels": 200}, "test": {"pearson_r": 0.94, "pixels": 100},
                          "outside": {"pearson_r": math.nan, "pixels": 0}}}
    first = summary_lines(figures, "truth.fits", Path("calibration.json"))[0]
    assert "test cells r = 0.940 (100 px)" in first and "nan" not in first and "outside" not in first
