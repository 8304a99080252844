"""Renderers turn output grids into per-survey float bands: the built-in engine, Aladin, hips2fits."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .engine import CutoutEngine
from .geometry import OutputGrid


@dataclass
class Band:
    """One survey's cutout: float32 (H, W, C), NaN = no data."""

    name: str
    location: str
    tile_format: str
    values: np.ndarray
    coverage: float
    unit: str
    is_8bit: bool


class Renderer(Protocol):
    survey_names: list[str]

    def render(self, grids: list[OutputGrid]) -> list[list[Band]]: ...

    def estimate_coverage(self, grid: OutputGrid) -> list[float]: ...


class BuiltinRenderer:
    """The built-in HiPS engine; one CutoutEngine (with its tile cache) per survey."""

    def __init__(self, engines: list[CutoutEngine]):
        self.engines = engines
        self.survey_names = [e.survey.name for e in engines]

    def render_one(self, grid: OutputGrid) -> list[Band]:
        shared: dict = {}
        bands = []
        for engine in self.engines:
            cutout = engine.cutout(grid, shared=shared)
            bands.append(Band(engine.survey.name, engine.survey.location, engine.tile_format, cutout.values,
                              cutout.coverage, engine.unit, engine.tile_format != "fits"))
        return bands

    def render(self, grids: list[OutputGrid]) -> list[list[Band]]:
        return [self.render_one(grid) for grid in grids]

    def estimate_coverage_many(self, ra: np.ndarray, dec: np.ndarray, fov: float, size: int,
                               points: int = 11) -> np.ndarray:
        """(N, surveys) coverage estimates from a points x points pattern of nearest-pixel probes.

        The pattern uses astropy's spherical offsets from each centre (close to TAN for small fields):
        it screens thousands of candidate positions at once.
        """
        from astropy.coordinates import SkyCoord
        import astropy.units as u

        steps = np.linspace(-0.5, 0.5, points)
        east, north = np.meshgrid(steps * fov, steps * fov)
        centre = SkyCoord(np.repeat(ra, east.size) * u.deg, np.repeat(dec, east.size) * u.deg, frame="icrs")
        probes = centre.spherical_offsets_by(np.tile(east.ravel(), len(ra)) * u.deg,
                                             np.tile(north.ravel(), len(ra)) * u.deg)
        result = np.empty((len(ra), len(self.engines)))
        for index, engine in enumerate(self.engines):
            ok = engine.has_data(probes.ra.deg, probes.dec.deg, fov / size)
            result[:, index] = ok.reshape(len(ra), east.size).mean(axis=1)
        return result

    def estimate_coverage(self, grid: OutputGrid) -> list[float]:
        """Coverage per survey on a coarse 24x24 version of the grid (cheap screening)."""
        coarse = OutputGrid(grid.ra, grid.dec, grid.fov, 24, 24, grid.projection)
        shared: dict = {}
        return [engine.cutout(coarse, shared=shared).coverage for engine in self.engines]
