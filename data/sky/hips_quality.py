"""Figures of merit of a generated HiPS: seams at tile borders, agreement and uncertainty calibration.

Pure numpy on tile arrays in HiPS tile order, so they apply to any tree on disk.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .tile_grid import same_cell_neighbour

ONE_SIGMA = math.erf(1 / math.sqrt(2))  # 0.6827: a Gaussian's mass within 1 std


NEAR_BORDER = 8  # interior row pairs compared with each border, on each side


@dataclass(frozen=True)
class SeamStats:
    border: float  # mean |jump| between the last row/column of a tile and the first of its neighbour
    interior: float  # mean |jump| between neighbouring rows/columns inside those tiles near the border
    pairs: int

    @property
    def ratio(self) -> float:
        return self.border / self.interior if self.interior > 0 else math.nan


def seam_stats(tiles: dict[int, np.ndarray], order: int, near: int = NEAR_BORDER) -> SeamStats:
    """Jumps across tile borders against jumps inside the same two tiles, along the same axis.

    The interior jumps are those of the `near` row (or column) pairs next to the border on each side:
    the sky's own structure varies across a tile, so a border is compared with its surroundings, not
    with the tile average. Only borders inside a base cell count: there the HEALPix pixel grid runs
    straight across the border, so a seamless map has border jumps like any other neighbouring rows.
    """
    border_sum, border_n, inner_sum, inner_n, pairs = 0.0, 0, 0.0, 0, 0
    numbers = np.array(sorted(tiles), dtype=np.int64)
    for axis in (0, 1):
        following = same_cell_neighbour(numbers, order, axis)
        for ipix, nxt in zip(numbers.tolist(), following.tolist()):
            if nxt not in tiles:
                continue
            first, second = (tiles[ipix], tiles[nxt]) if axis == 0 else (tiles[ipix].T, tiles[nxt].T)
            jump = np.abs(second[0] - first[-1])
            inner = np.abs(np.concatenate([np.diff(first[-near - 1:], axis=0), np.diff(second[:near + 1], axis=0)]))
            jump, inner = jump[np.isfinite(jump)], inner[np.isfinite(inner)]
            if jump.size and inner.size:
                border_sum += float(jump.sum())
                border_n += jump.size
                inner_sum += float(inner.sum())
                inner_n += inner.size
                pairs += 1
    return SeamStats(border_sum / max(border_n, 1), inner_sum / max(inner_n, 1), pairs)


@dataclass(frozen=True)
class Calibration:
    """How the generated mean and std compare with the real band on the same pixels."""

    pixels: int
    pearson_r: float
    within_1std: float  # fraction of real pixels with |real - mean| <= std
    fitted_scale: float  # factor on std that would put ONE_SIGMA of them within 1 std
    mean_abs_error: float

    def as_dict(self) -> dict:
        return {"pixels": self.pixels, "pearson_r": self.pearson_r, "within_1std": self.within_1std,
                "fitted_std_scale": self.fitted_scale, "mean_abs_error": self.mean_abs_error,
                "goal_within_1std": ONE_SIGMA}


def calibration(mean: np.ndarray, std: np.ndarray | None, truth: np.ndarray) -> Calibration:
    """Compare on the pixels where all are finite; without std only r and the error are figures."""
    mean, truth = (np.asarray(a, dtype=np.float64).ravel() for a in (mean, truth))
    std = np.zeros_like(mean) if std is None else np.asarray(std, dtype=np.float64).ravel()
    has_std = not np.all(std == 0)
    ok = np.isfinite(mean) & np.isfinite(std) & np.isfinite(truth)
    mean, std, truth = mean[ok], std[ok], truth[ok]
    if mean.size < 2:
        return Calibration(int(mean.size), math.nan, math.nan, math.nan, math.nan)
    error = np.abs(truth - mean)
    r = float(np.corrcoef(mean, truth)[0, 1]) if np.std(mean) > 0 and np.std(truth) > 0 else math.nan
    if not has_std:
        return Calibration(int(mean.size), r, math.nan, math.nan, float(error.mean()))
    z = _ratio(mean, std, truth)
    return Calibration(int(mean.size), r, float(np.mean(z <= 1.0)), _one_sigma_quantile(z), float(error.mean()))


# ---- the spread model: raw dropout std -> calibrated std ---------------------------------------
BRIGHTNESS_BINS = 8  # bins of the predicted brightness in a fitted spread model
MIN_BIN_PIXELS = 500  # fewer pixels per bin than this: fewer bins


@dataclass(frozen=True)
class SpreadModel:
    """std = raw std of the stochastic passes x factor(predicted brightness).

    factor is piecewise linear through (brightness[k], scale[k]) and flat beyond the ends; one point is
    one constant factor (--std_scale S). Why a brightness term: the dropout spread grows more slowly
    than the error does from faint sky to stars, so one factor fitted on validation sky leaves the
    brightest pixels under-covered (measured on the bundled Galactic-centre field, test cells, brightest
    tenth of the pixels: 49% within 1 std with one factor, 63% with the brightness model).
    """

    brightness: tuple[float, ...] = (0.0,)
    scale: tuple[float, ...] = (1.0,)

    @classmethod
    def constant(cls, scale: float) -> "SpreadModel":
        return cls((0.0,), (float(scale),))

    @property
    def is_constant(self) -> bool:
        return len(self.scale) == 1

    def factor(self, mean: np.ndarray) -> np.ndarray:
        if self.is_constant:
            return np.full(np.shape(mean), self.scale[0], dtype=np.float64)
        return np.interp(np.asarray(mean, dtype=np.float64), self.brightness, self.scale)

    @property
    def typical(self) -> float:
        """The median factor (for the display range of the std's PNG tiles)."""
        return float(np.median(self.scale))

    def as_setting(self) -> float | dict:
        """JSON value for predict.json and calibration.json: a number, or the model's points."""
        if self.is_constant:
            return self.scale[0]
        return {"brightness": list(self.brightness), "scale": list(self.scale)}

    @classmethod
    def from_setting(cls, value) -> "SpreadModel":
        if isinstance(value, dict):
            return cls(tuple(float(v) for v in value["brightness"]), tuple(float(v) for v in value["scale"]))
        return cls.constant(float(value))

    def short(self) -> float | str:
        """For a FITS card: the factor, or its range."""
        return self.scale[0] if self.is_constant else f"{min(self.scale):.3g}-{max(self.scale):.3g} by brightness"

    def describe(self) -> str:
        if self.is_constant:
            return f"x {self.scale[0]:g}"
        return (f"x {min(self.scale):.3g}-{max(self.scale):.3g} by predicted brightness "
                f"({len(self.scale)} points)")


def _ratio(mean: np.ndarray, std: np.ndarray, truth: np.ndarray) -> np.ndarray:
    error = np.abs(truth - mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, error / std, np.where(error == 0, 0.0, np.inf))


def _one_sigma_quantile(z: np.ndarray) -> float:
    z = np.sort(z)
    return float(z[min(len(z) - 1, int(math.ceil(ONE_SIGMA * len(z))) - 1)])


def fit_spread(mean: np.ndarray, raw_std: np.ndarray, truth: np.ndarray, bins: int = BRIGHTNESS_BINS,
               ) -> SpreadModel:
    """The spread model that puts ONE_SIGMA of the real pixels within 1 std in each of `bins` bins of
    equal pixel count in the predicted brightness (fewer bins when there are few pixels; 1 bin = one
    factor). Each bin's factor is the 68.3% quantile of |real - mean| / raw std there, placed at the
    bin's median brightness."""
    mean, raw_std, truth = (np.asarray(a, dtype=np.float64).ravel() for a in (mean, raw_std, truth))
    ok = np.isfinite(mean) & np.isfinite(raw_std) & np.isfinite(truth)
    mean, raw_std, truth = mean[ok], raw_std[ok], truth[ok]
    if mean.size < 2:
        raise ValueError("fewer than 2 pixels to fit a spread model on")
    z = _ratio(mean, raw_std, truth)
    bins = max(1, min(bins, mean.size // MIN_BIN_PIXELS))
    if bins == 1:
        return SpreadModel.constant(_one_sigma_quantile(z))
    order = np.argsort(mean, kind="stable")
    points = []
    for part in np.array_split(order, bins):
        scale = _one_sigma_quantile(z[part])
        if math.isfinite(scale) and scale > 0:
            points.append((float(np.median(mean[part])), scale))
    if len(points) < 2:
        return SpreadModel.constant(_one_sigma_quantile(z))
    brightness, scale = zip(*points)
    return SpreadModel(tuple(brightness), tuple(scale))
