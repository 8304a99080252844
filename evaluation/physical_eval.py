"""A FITS model and the no-model references, all scored in the band's unit on the same test cutouts.

Used by the default demo (several variants, one shared set of references) and by scripts/evaluate.py
for one results folder of a --dataset_mode fits_aligned model, whose references are then fitted on the
training cubes of the dataset the model was trained on (the manifest's dataroot).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation.references import (best_correlated, fit_asinh, fit_linear, flat_level, level_ratio, sample_pixels,
                                   training_cubes)
from evaluation.science import AsinhStretch, ScienceItem, data_range, load_items, score_predictions
from util.errors import UserError


def fit_references(dataroot: Path, target: int, band_sets: list[tuple[int, ...]], bands: dict[int, str],
                   items: list[ScienceItem], stretch: AsinhStretch, peak: float, reference_band: int | None = None,
                   seed: int = 0, real_sources: dict | None = None) -> list[dict]:
    """flat, input_resampled, one linear_fit and one asinh_fit per band set: fitted on the training cubes,
    applied to the test items, scored like the models. A reference carries `deterministic` (no training noise)."""
    widest = max(band_sets, key=len)
    planes = tuple(sorted({target, *[p for s in band_sets for p in s]}))
    pixels = sample_pixels(training_cubes(dataroot), planes, seed=seed)
    band = reference_band if reference_band is not None else best_correlated(pixels, target, widest)
    if band not in widest:
        raise UserError(f"--reference_band {band} is not an input band ({list(widest)})")
    level, (ratio, ratio_of) = flat_level(pixels, target), level_ratio(pixels, target, band)

    def scored(predict) -> dict:
        return {**score_predictions([(i.stem, predict(i), i.real) for i in items], stretch, peak,
                                    real_sources=real_sources),
                "deterministic": True}

    def name(plane: int) -> str:
        return bands.get(plane, f"plane {plane}").removesuffix(":I")

    refs = [{"name": "flat", "label": f"flat image (training median {level:.4g})", "level": level,
             **scored(lambda i: np.full(i.real.shape, level))},
            {"name": "input_resampled", "label": f"{name(band)} resampled, x {ratio:.4g} ({ratio_of})",
             "input_panels": [band], "scale": ratio, **scored(lambda i: i.inputs[band] * ratio)}]
    for inputs in band_sets:
        fit = fit_linear(pixels, target, inputs)
        refs.append({"name": "linear_fit", "label": f"linear fit ({' + '.join(name(p) for p in inputs)})",
                     "input_panels": list(inputs), "coefficients": list(fit.coefficients), "intercept": fit.intercept,
                     "formula": fit.describe(bands), **scored(lambda i: fit.predict(i.inputs))})
    for inputs in band_sets:
        colour = fit_asinh(pixels, target, inputs)
        refs.append({"name": "asinh_fit", "label": f"linear fit of asinh values ({' + '.join(name(p) for p in inputs)})",
                     "input_panels": list(inputs), "coefficients": list(colour.coefficients),
                     "intercept": colour.intercept, **scored(lambda i: colour.predict(i.inputs))})
    return refs


def evaluate_physical(results_dir: str | Path, reference_band: int | None = None) -> dict:
    """The model of one FITS results folder and its references, in the band's unit."""
    notes: list[str] = []
    run, items = load_items(results_dir, notes)
    if not run.dataroot:
        raise UserError(f"{results_dir}: the results manifest names no dataroot, so the references cannot be "
                        f"fitted on the training cubes")
    stretch = AsinhStretch.fit(np.concatenate([i.real.ravel() for i in items]))
    peak = data_range([i.real for i in items])
    real_sources: dict = {}  # the real stars, measured once for the model and every reference
    model = score_predictions([(i.stem, i.generated, i.real) for i in items], stretch, peak, real_sources=real_sources)
    bands = {int(k): v for k, v in run.bands.items()}
    target, inputs = run.target[0], tuple(run.input)
    references = fit_references(Path(run.dataroot), target, [inputs], bands, items, stretch, peak, reference_band,
                                real_sources=real_sources)
    return {"unit": run.units.get(target, ""), "notes": notes, "model": model, "references": references,
            "stretch": {"low": stretch.low, "high": stretch.high, "softening": stretch.softening}}


def physical_skipped(results_dir: str | Path, run) -> str | None:
    """Why generated FITS in a results folder are not scored in the band's unit, or None when there are none
    to score or they are scored. Without manifest.json the real cube planes they compare with are unknown:
    the FITS name only their cube's file name, not its folder."""
    if run.kind == "planes" and len(run.target) == 1:
        return None
    found = sorted(Path(results_dir).glob("fits/*_fake_B.fits"))
    if not found:
        return None
    if run.name is None:  # the legacy reader: no manifest.json
        return (f"the {len(found)} generated FITS in {Path(results_dir) / 'fits'} are not scored in the band's unit: "
                f"without manifest.json (test.py writes it with a finished run) the real cube planes they compare "
                f"with are unknown; run test.py again to get those scores")
    return (f"the {len(found)} generated FITS in {Path(results_dir) / 'fits'} are not scored in the band's unit: "
            f"the manifest describes {run.kind} results with {len(run.target)} target band(s), and only one-band "
            f"FITS models are scored that way")
