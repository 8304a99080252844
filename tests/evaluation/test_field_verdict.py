"""The field report's verdict against its references (issue 22's independent check: a model level with the
asinh fit in CC and L1 made 10x its false stars, and the verdict did not say so)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation.field_report import FieldRun, verdict


def scores(cc: float, l1: float, flux: float, false: float, noise: int) -> dict:
    """Headline figures and 12 per-image rows scattered slightly around them (a paired comparison needs them)."""
    jitter = np.random.default_rng(noise).normal(0, 0.002, (12, 4))
    images = [{"image": f"i{k}", "CC": cc + a, "L1": l1 + b, "flux_error": flux + c, "false_source_rate": false + d}
              for k, (a, b, c, d) in enumerate(jitter)]
    return {"CC": cc, "L1": l1, "flux_error": flux, "false_source_rate": false, "images": images}


def test_a_model_that_makes_far_more_false_stars_than_a_fit_is_told_so():
    model = FieldRun("bands_1-2", "2 bands (j + h)", [1, 2], scores(0.94, 9.3, 0.15, 0.22, 0), Path("."), Path("."))
    flat = {"name": "flat", "label": "flat image", "CC": 0.0, "L1": 26.0, "flux_error": None,
            "false_source_rate": None, "images": [{"image": f"i{k}", "CC": 0.0, "L1": 26.0} for k in range(12)]}
    fit = {"name": "asinh_fit", "label": "linear fit of asinh values (j + h)", "input_panels": [1, 2],
           **scores(0.94, 9.3, 0.15, 0.02, 1)}
    judged = verdict([model], [flat, fit])
    against_fit = next(d for d in judged["vs_references"] if d["reference"] == fit["label"])
    assert "false_source_rate" in against_fit["not_beaten"]
    assert any("false stars (0.22 vs 0.02): worse" in s for s in judged["sentences"])
    against_flat = next(d for d in judged["vs_references"] if d["reference"] == "flat image")
    assert "false_source_rate" not in against_flat["metrics"]  # a flat image has no stars to be false
