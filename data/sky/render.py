"""Renderers turn output grids into per-survey float bands: the built-in engine, Aladin, hips2fits."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .cutout import SurveyEngine
from .geometry import OutputGrid, pixel_sky_coords


@dataclass
class SurveyCut:
    """One survey's cutout for one target, with what the writer needs to know of the survey (a panel of
    the PNG, planes of the cube; the synthetic sky's blackbody `Band` is a filter, another thing).

    values: float32 (H, W, C), NaN = no data. `cube` (same grid) is what the --fits cube holds when it
    differs from `values`: the FITS tiles of a HiPS whose PNG panels come from JPEG tiles."""

    name: str
    location: str
    tile_format: str
    values: np.ndarray
    coverage: float
    unit: str
    is_8bit: bool
    cube: np.ndarray | None = None
    cube_unit: str | None = None
    cube_format: str | None = None


class Renderer(Protocol):
    survey_names: list[str]

    def render(self, grids: list[OutputGrid]) -> list[list[SurveyCut]]: ...

    def estimate_coverage(self, grid: OutputGrid) -> list[float]: ...


class BuiltinRenderer:
    """The built-in engines, one per survey (each keeps its tile cache or open images across targets).

    cube_engines: per survey, None or a second engine whose values fill the --fits cube (see SurveyCut.cube);
    coverage is then the smaller of the two, so --min_coverage holds for the PNG and the cube alike.
    """

    def __init__(self, engines: list[SurveyEngine], cube_engines: list[SurveyEngine | None] | None = None):
        self.engines = engines
        self.cube_engines = list(cube_engines) if cube_engines is not None else [None] * len(engines)
        self.survey_names = [e.name for e in engines]

    def render_one(self, grid: OutputGrid) -> list[SurveyCut]:
        shared: dict = {}
        bands = []
        for engine, twin in zip(self.engines, self.cube_engines):
            cutout = engine.cutout(grid, shared=shared)
            band = SurveyCut(engine.name, engine.location, engine.tile_format, cutout.values, cutout.coverage,
                        engine.unit, engine.is_8bit)
            if twin is not None:
                science = twin.cutout(grid, shared=shared)
                band.cube, band.cube_unit, band.cube_format = science.values, twin.unit, twin.tile_format
                band.coverage = min(band.coverage, science.coverage)
            bands.append(band)
        return bands

    def render(self, grids: list[OutputGrid]) -> list[list[SurveyCut]]:
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
        for index, (engine, twin) in enumerate(zip(self.engines, self.cube_engines)):
            ok = engine.has_data(probes.ra.deg, probes.dec.deg, fov / size)
            if twin is not None:
                ok &= twin.has_data(probes.ra.deg, probes.dec.deg, fov / size)
            result[:, index] = ok.reshape(len(ra), east.size).mean(axis=1)
        return result

    def estimate_coverage(self, grid: OutputGrid) -> list[float]:
        """Coverage per survey from nearest-pixel probes at the centres of a 24x24 version of the grid.

        Probes, not cutouts: a FITS-image cutout costs a reprojection (~4 ms), and screening a --sample run
        looks at several candidates per written target. A resampled pixel has data exactly when its
        nearest source pixel has, so the estimate differs from the cutout's coverage only by the coarse grid.
        """
        ra, dec = pixel_sky_coords(OutputGrid(grid.ra, grid.dec, grid.fov, 24, 24, grid.projection))
        coverages = []
        for engine, twin in zip(self.engines, self.cube_engines):
            ok = engine.has_data(ra, dec, grid.pixel_deg)
            if twin is not None:
                ok &= twin.has_data(ra, dec, grid.pixel_deg)
            coverages.append(float(np.mean(ok)))
        return coverages
