"""The one interface every survey kind offers (HiPS tiles, FITS images): cut it out on any output grid.

Callers (the dataset builder, predict_sky) open a survey with `data.sky.surveys.open_engine` and use only
what `SurveyEngine` lists, so a FITS-image survey works wherever a HiPS survey does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .footprint import Footprint
from .geometry import OutputGrid


@dataclass(frozen=True)
class Cutout:
    """Resampled values (height, width, channels) float32, top row north, NaN = no data; `coverage` = the
    fraction of pixels with data. `order`/`used_allsky` tell which HiPS level served it (-1/False for images).
    """

    values: np.ndarray
    coverage: float
    order: int = -1
    used_allsky: bool = False


def coverage_fraction(values: np.ndarray) -> float:
    return float(np.mean(np.isfinite(values[..., 0]))) if values.size else 0.0


class SurveyEngine(Protocol):
    """What a caller may use of a survey, whatever its kind."""

    name: str  # panel label, manifest column, cube PLNAMn (made unique by the builder)
    location: str  # folder, URL or file it reads
    spec: str  # as the user gave it
    tile_format: str  # 'jpeg' | 'png' | 'fits' (HiPS tiles) or 'image' (FITS image survey)
    unit: str  # physical unit of the values (BUNIT), or '8-bit tile level'
    channels: int  # 1 (grey) or 3 (colour JPEG/PNG tiles)
    is_8bit: bool  # values are 0..255 levels of JPEG/PNG tiles

    def cutout(self, grid: OutputGrid, sky: tuple[np.ndarray, np.ndarray] | None = None,
               shared: dict | None = None) -> Cutout:
        """`shared`: one dict per target, passed to every survey, so they reuse coordinate work."""

    def has_data(self, ra: np.ndarray, dec: np.ndarray, pixel_deg: float) -> np.ndarray:
        """Bool per ICRS position (deg): the survey has a value there (nearest pixel)."""

    def footprint(self) -> Footprint | None:
        """Where the survey has data (None = unknown, taken as the whole sky)."""
