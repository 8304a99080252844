"""Scores in the survey's own units, for test results of float FITS cubes (--dataset_mode fits_aligned).

An astronomer judges a generated band by its values, not by an 8-bit picture of them: every figure
here is computed on the generated FITS (the network's output with the training normalisation
inverted) against the real target plane read from the source cube (evaluation.physical).

- L1: mean |generated - real| in the band's unit; CC: Pearson r over all test pixels pooled.
- PSNR: 20 log10(range / RMS error), range = max - min of all real test pixels (one number for the
  whole test set, so images and variants share one scale).
- SSIM: on one shared asinh stretch of the real test targets (`AsinhStretch`), applied alike to the
  real band, every generated band and every reference: SSIM needs a bounded picture, and the stretch
  is the one the report shows.
- Photometry: point sources detected in the real band (evaluation.photometry), aperture fluxes in the
  band's unit in real and generated images; flux_error = median |f_gen - f_real| / f_real.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data.sky.stretch import asinh_fit
from evaluation.evaluation import PIXEL_KEYS
from evaluation.metrics import pearson_cc, ssim
from evaluation.photometry import PhotometryConfig, RealSources, compare_sources, measure_real, summarise
from evaluation.physical import checked_run, generated_and_source
from evaluation.results import load_results, natural_key
from util.errors import UserError
from util.results_manifest import RunInfo

SCIENCE_PHOTOMETRY = PhotometryConfig(noise_floor=0.0)
PHOTOMETRY_KEYS = ("flux_error", "false_source_rate", "invented_source_rate", "completeness", "n_sources")


@dataclass(frozen=True)
class AsinhStretch:
    """x -> asinh((x - low) / s) / asinh((high - low) / s), clipped to [0, 1]: linear near the sky
    background (s = its robust noise), logarithmic for stars, one mapping for every image it is given."""
    low: float
    high: float
    softening: float

    @staticmethod
    def fit(values: np.ndarray, low_percentile: float = 0.5, high_percentile: float = 99.9) -> "AsinhStretch":
        fitted = asinh_fit(values, low_percentile, high_percentile)
        if fitted is None:
            raise UserError("no finite pixel in the real target band: nothing to stretch")
        return AsinhStretch(*fitted)

    def apply(self, values: np.ndarray) -> np.ndarray:
        x = (np.asarray(values, dtype=np.float64) - self.low) / self.softening
        span = math.asinh((self.high - self.low) / self.softening)
        return np.clip(np.arcsinh(x) / span, 0.0, 1.0)


@dataclass
class ScienceItem:
    """One test cutout in FITS row order (row 0 = south): the real target band, the model's band,
    and every plane of the source cube over the same pixels (the references and figures use input bands
    that this model may not have seen)."""
    stem: str
    real: np.ndarray
    generated: np.ndarray
    inputs: dict[int, np.ndarray] = field(default_factory=dict)


def load_items(results_dir: str | Path, notes: list[str] | None = None) -> tuple[RunInfo, list[ScienceItem]]:
    """Every scored item of a FITS results folder, in natural order, as float64 (NaN = no data). Where the
    manifest and the FITS files disagree the files win, and `notes` gets one line per difference."""
    notes = [] if notes is None else notes
    manifest = load_results(results_dir)
    run = manifest.run
    if run.kind != "planes" or len(run.target) != 1:
        raise UserError(f"{results_dir}: physical-unit scores need the results of a one-band FITS model "
                        f"(--dataset_mode fits_aligned); this folder holds {run.kind} results")
    scored = [item for item in sorted(manifest.items, key=lambda i: natural_key(i.stem))
              if item.generated is not None and item.target is not None]
    if not scored:
        raise UserError(f"{results_dir} holds no generated band with a real target to compare it with")
    found: list[str] = []
    run = checked_run(run, results_dir, scored[0], found)
    items = []
    for item in scored:
        generated, source, planes = generated_and_source(results_dir, item, found)
        real = source[planes[0]].astype(np.float64)
        inputs = {plane: values.astype(np.float64) for plane, values in enumerate(source)}
        items.append(ScienceItem(item.stem, real, generated[0].astype(np.float64), inputs))
    notes.extend(f"{note} ({found.count(note)} items)" if found.count(note) > 1 else note
                 for note in dict.fromkeys(found))
    return run, items


def data_range(reals: list[np.ndarray]) -> float:
    """max - min over every finite real test pixel: the PSNR peak."""
    finite = np.concatenate([r[np.isfinite(r)] for r in reals])
    return float(np.ptp(finite)) if finite.size else 1.0


def _fill(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    """NaN (no input data) -> the real image's median, so photometry never reads NaN."""
    return np.where(np.isfinite(image), image, np.nanmedian(like))


def score_predictions(predictions: list[tuple[str, np.ndarray, np.ndarray]], stretch: AsinhStretch, peak: float,
                      cfg: PhotometryConfig = SCIENCE_PHOTOMETRY,
                      real_sources: dict[str, RealSources] | None = None) -> dict:
    """Headline figures, per-image rows and matched star fluxes for (stem, predicted, real) triples.

    `real_sources`: a dict shared by every scoring against the same real images (several models and
    references on one test set): each real image's stars are measured once, on first use."""
    rows, comparisons, errors, preds, reals = [], [], [], [], []
    for stem, predicted, real in predictions:
        valid = np.isfinite(predicted) & np.isfinite(real)
        if not valid.any():
            raise UserError(f"{stem}: no pixel where both the prediction and the real band have data")
        p, r = predicted[valid], real[valid]
        filled_predicted, filled_real = _fill(predicted, real), _fill(real, real)
        measured = real_sources.get(stem) if real_sources is not None else None
        if measured is None:
            measured = measure_real(filled_real, cfg)
            if real_sources is not None:
                real_sources[stem] = measured
        comparison = compare_sources(filled_predicted, filled_real, cfg, measured)
        comparisons.append(comparison)
        mse = float(np.mean((p - r) ** 2))
        photometry = summarise([comparison])
        rows.append({"image": stem, "L1": float(np.mean(np.abs(p - r))),
                     "PSNR": _psnr(mse, peak), "CC": pearson_cc(p[:, None], r[:, None]),
                     "SSIM": ssim(stretch.apply(filled_predicted), stretch.apply(filled_real)),
                     **{key: photometry[key] for key in PHOTOMETRY_KEYS}})
        errors.append(p - r)
        preds.append(p)
        reals.append(r)
    pooled_error = np.concatenate(errors)
    result = {"L1": float(np.mean(np.abs(pooled_error))),
              "PSNR": _psnr(float(np.mean(pooled_error ** 2)), peak),
              "SSIM": float(np.mean([row["SSIM"] for row in rows])),
              "CC": pearson_cc(np.concatenate(preds)[:, None], np.concatenate(reals)[:, None]),
              "std": {key: float(np.std([row[key] for row in rows])) for key in PIXEL_KEYS},
              **summarise(comparisons), "n_images": len(rows), "images": rows,
              "star_fluxes": {"real": [f for c in comparisons for f in c.real_fluxes],
                              "generated": [f for c in comparisons for f in c.fake_fluxes]}}
    result.pop("colour_error", None)
    return result


def _psnr(mse: float, peak: float) -> float:
    return 100.0 if mse <= 0 else float(10.0 * math.log10(peak * peak / mse))
