"""No-model references a trained generator must beat, built from the TRAINING cubes only.

- flat: every pixel the median of the training target pixels (knows the typical sky level, nothing
  about where the light is).
- input_resampled: one input band as the builder cut it onto the target grid, brought to the target's
  level by the ratio of the training medians, or of the sources' brightness where the images are
  background-subtracted (knows where the light is, nothing about colour). The
  band is the one whose training pixels correlate best with the target's, unless one is chosen.
- linear_fit: the target as a least-squares linear combination (plus a constant) of the input bands,
  fitted on training pixels: the first thing an astronomer would try, a per-pixel colour relation.
  A network that does not beat it has not earned its cost.
- asinh_fit: the same fit on asinh-scaled bands (each band's asinh normalisation of the FITS datasets,
  fitted on the training pixels): linear in log flux for sources, i.e. a colour relation in magnitudes,
  which is how reddening acts. Usually the stronger of the two fits on stars.

Nothing here looks at the test set: the references are fitted on training data and only applied to
the test cutouts, like the models.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.colour_fit import MAX_PIXELS, JointSampler, least_squares
from data.fits_norm import DEFAULT_CUTS, MAD_TO_SIGMA, PlaneNorm, PlaneSampler, fit_plane
from data.sky.fits_io import is_fits_name, read_cube
from util.errors import UserError

MAX_TRAINING_PIXELS = MAX_PIXELS


@dataclass(frozen=True)
class TrainingPixels:
    """A random sample of training pixels where every plane has data: values[:, i] is plane planes[i]."""
    planes: tuple[int, ...]
    values: np.ndarray  # (N, P) float64

    def column(self, plane: int) -> np.ndarray:
        return self.values[:, self.planes.index(plane)]


@dataclass(frozen=True)
class LinearFit:
    """target = intercept + sum_i coefficients[i] * plane_i, least squares on training pixels."""
    planes: tuple[int, ...]
    coefficients: tuple[float, ...]
    intercept: float

    def predict(self, inputs: dict[int, np.ndarray]) -> np.ndarray:
        out = np.full(next(iter(inputs.values())).shape, self.intercept, dtype=np.float64)
        for plane, coefficient in zip(self.planes, self.coefficients):
            out = out + coefficient * inputs[plane]
        return out

    def describe(self, names: dict[int, str]) -> str:
        terms = " ".join(f"{c:+.4g} x {names.get(p, f'plane {p}')}" for p, c in zip(self.planes, self.coefficients))
        return f"{self.intercept:.4g} {terms}"


def training_cubes(dataroot: str | Path, phase: str = "train") -> list[Path]:
    folder = Path(dataroot) / phase
    paths = sorted(p for p in folder.glob("*") if is_fits_name(p.name)) if folder.is_dir() else []
    if not paths:
        raise UserError(f"no FITS cubes in {folder}: the references are fitted on the training cubes")
    return paths


def sample_pixels(paths: list[Path], planes: tuple[int, ...], max_pixels: int = MAX_TRAINING_PIXELS,
                  seed: int = 0) -> TrainingPixels:
    """Pixels where all `planes` are finite, at most max_pixels of them drawn evenly over the cubes."""
    sampler = JointSampler(tuple(planes), max_pixels // len(paths), seed)
    for path in paths:
        cube = read_cube(str(path)).planes
        if max(planes) >= cube.shape[0]:
            raise UserError(f"{path} has {cube.shape[0]} planes; plane {max(planes)} was asked for")
        sampler.add(cube)
    values = sampler.values()
    if len(values) < len(planes) + 1:
        raise UserError(f"too few training pixels with data in planes {list(planes)} to fit a reference")
    return TrainingPixels(tuple(planes), values)


def fit_linear(pixels: TrainingPixels, target: int, inputs: tuple[int, ...]) -> LinearFit:
    """Ordinary least squares of the target plane on the input planes with a constant term."""
    coefficients, intercept = least_squares(np.column_stack([pixels.column(p) for p in inputs]), pixels.column(target))
    return LinearFit(tuple(inputs), tuple(float(c) for c in coefficients), intercept)


@dataclass(frozen=True)
class AsinhFit:
    """target = invert_t(intercept + sum_i coefficients[i] * norm_i(plane_i)), least squares on training pixels
    in each band's asinh normalisation."""
    planes: tuple[int, ...]
    norms: dict[int, PlaneNorm]
    coefficients: tuple[float, ...]
    intercept: float
    target: int

    def predict(self, inputs: dict[int, np.ndarray]) -> np.ndarray:
        out = np.full(next(iter(inputs.values())).shape, self.intercept, dtype=np.float64)
        for plane, coefficient in zip(self.planes, self.coefficients):
            out = out + coefficient * self.norms[plane].normalize(inputs[plane]).astype(np.float64)
        return self.norms[self.target].invert(out).astype(np.float64)


def fit_asinh(pixels: TrainingPixels, target: int, inputs: tuple[int, ...]) -> AsinhFit:
    norms = {}
    for plane in (target, *inputs):
        sampler = PlaneSampler(len(pixels.values))
        sampler.add(pixels.column(plane))
        norms[plane] = fit_plane(sampler, "asinh", DEFAULT_CUTS["asinh"])
    design = np.column_stack([norms[p].normalize(pixels.column(p)).astype(np.float64) for p in inputs])
    coefficients, intercept = least_squares(design, norms[target].normalize(pixels.column(target)).astype(np.float64))
    return AsinhFit(tuple(inputs), norms, tuple(float(c) for c in coefficients), intercept, target)


def flat_level(pixels: TrainingPixels, target: int) -> float:
    return float(np.median(pixels.column(target)))


def best_correlated(pixels: TrainingPixels, target: int, inputs: tuple[int, ...]) -> int:
    """The input plane whose training pixels correlate best with the target's."""
    scores = [abs(float(np.corrcoef(pixels.column(p), pixels.column(target))[0, 1])) for p in inputs]
    return inputs[int(np.nanargmax(scores))]


def level_ratio(pixels: TrainingPixels, target: int, band: int) -> tuple[float, str]:
    """A factor that brings a band to the target's level, knowing no colour, and what it is the ratio of.

    median(target) / median(band) on training pixels where both medians stand well above their noise (a
    sky level, as in 2MASS atlas images); for background-subtracted images (SDSS, a median at zero
    within the noise) the ratio of medians is noise, so the ratio of the sources' brightness is taken
    instead: the 99.5th percentile above the median in each band."""
    target_values, band_values = pixels.column(target), pixels.column(band)
    medians = float(np.median(target_values)), float(np.median(band_values))
    noises = [MAD_TO_SIGMA * float(np.median(np.abs(v - m))) for v, m in ((target_values, medians[0]),
                                                                          (band_values, medians[1]))]
    if all(m > 3 * n for m, n in zip(medians, noises)):
        return medians[0] / medians[1], "training medians"
    heights = [float(np.percentile(v, 99.5)) - m for v, m in ((target_values, medians[0]), (band_values, medians[1]))]
    if not heights[1] > 0:
        raise UserError(f"plane {band} has neither a sky level nor sources in its training pixels: it cannot be "
                        f"scaled to the target's level")
    return heights[0] / heights[1], "training sources: 99.5th percentile above the median"
