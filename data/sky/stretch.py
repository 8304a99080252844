"""Map survey values to 8 bit: 8-bit tiles pass through; FITS values get cuts and a stretch."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from util.errors import UserError

STRETCHES = ("linear", "asinh", "log", "sqrt")
MAD_TO_SIGMA = 1.4826  # a Gaussian's sigma per median absolute deviation


@dataclass(frozen=True)
class StretchSettings:
    name: str = "linear"
    low_percentile: float = 0.5
    high_percentile: float = 99.5


def parse_cuts(text: str, option: str = "--cuts") -> tuple[float, float]:
    """'LOW,HIGH' percentiles with 0 <= LOW < HIGH <= 100 (`option` names the flag in errors)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"{option} {text}: two percentiles like 0.5,99.5") from None
    if not 0 <= low < high <= 100:
        raise UserError(f"{option} {text}: need 0 <= low < high <= 100")
    return low, high


def percentile_cuts(values: np.ndarray, settings: StretchSettings) -> tuple[float, float] | None:
    """(low, high) values at the settings' percentiles of the finite pixels; None when there are none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    low, high = np.percentile(finite, [settings.low_percentile, settings.high_percentile])
    return low, (high if high > low else low + 1.0)


def stretch_to_unit(values: np.ndarray, settings: StretchSettings,
                    cuts: tuple[float, float] | None = None) -> np.ndarray:
    """Scale to [0, 1] between the cuts, then apply the stretch.

    cuts: fixed (low, high) values; default: the settings' percentiles of this cutout's finite pixels
    (what the dataset builder does per target). Fixed cuts let many tiles share one mapping.
    """
    cuts = cuts if cuts is not None else percentile_cuts(values, settings)
    if cuts is None:
        return np.zeros_like(values, dtype=np.float32)
    low, high = np.float64(cuts[0]), np.float64(cuts[1])  # float64 arithmetic, as for percentiles
    if high <= low:
        high = low + 1.0
    unit = np.clip((values - low) / (high - low), 0.0, 1.0)
    if settings.name == "asinh":
        unit = np.arcsinh(10.0 * unit) / np.arcsinh(10.0)
    elif settings.name == "log":
        unit = np.log1p(1000.0 * unit) / np.log1p(1000.0)
    elif settings.name == "sqrt":
        unit = np.sqrt(unit)
    return unit.astype(np.float32)


def to_uint8(values: np.ndarray, is_8bit_source: bool, settings: StretchSettings,
             cuts: tuple[float, float] | None = None) -> np.ndarray:
    """8-bit picture of a cutout (H, W, C); no-data pixels become 0 (black, as in HiPS JPEGs)."""
    if is_8bit_source:
        out = np.rint(np.clip(np.nan_to_num(values, nan=0.0), 0, 255))
    else:
        out = np.rint(255.0 * np.nan_to_num(stretch_to_unit(values, settings, cuts), nan=0.0))
    return out.astype(np.uint8)


def asinh_fit(values: np.ndarray, low_percentile: float = 0.5,
              high_percentile: float = 99.9) -> tuple[float, float, float] | None:
    """(low, high, softening) of the asinh display the reports use: cuts at the percentiles of the finite
    values, softened at the robust noise (MAD), so faint sky is linear and stars logarithmic; None when no
    value is finite. Shared by the demo report (evaluation.science.AsinhStretch) and the sky viewer."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    low, high = (float(v) for v in np.percentile(finite, [low_percentile, high_percentile]))
    if not high > low:
        high = low + max(abs(low), 1.0)
    noise = MAD_TO_SIGMA * float(np.median(np.abs(finite - np.median(finite))))
    return low, high, max(noise, 1e-3 * (high - low))
