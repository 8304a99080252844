"""Open any survey kind behind the one SurveyEngine interface (data/sky/cutout.py).

    engine = open_engine("CDS/P/DSS2/red" | "path/to/HiPS" | "https://.../HiPS" | "j.fits.gz" | "cube.fits[2]"
                         | "mosaic_folder/")
    cut = engine.cutout(OutputGrid(ra, dec, fov_deg, width, height))   # cut.values (H, W, C) float32, NaN = none
    engine.unit, engine.channels, engine.name, engine.footprint(), engine.has_data(ra, dec, pixel_deg)
"""
from __future__ import annotations

from .cutout import SurveyEngine
from .engine import CutoutEngine
from .fetch import Fetcher
from .fits_image import image_spec
from .image_engine import open_image_engine
from .services import MOCSERVER_URL
from .source import open_survey


def open_engine(spec: str, tile_format: str | None = None, *, science: bool = False, fetcher: Fetcher | None = None,
                mocserver_url: str = MOCSERVER_URL, cache_tiles: int = 96, black_is_blank: bool | None = None,
                resample: str = "interp") -> SurveyEngine:
    """A FITS image / mosaic folder, else a HiPS (folder, URL or CDS ID); every failure is a UserError.

    tile_format: HiPS tiles to read (default: the survey's first); ignored for FITS images.
    science: physical values: a HiPS's FITS tiles when it offers them (tile_format is then ignored).
    resample: 'interp' (bilinear) or 'exact' (flux-conserving) for FITS images.
    """
    image = image_spec(spec)
    if image is not None:
        return open_image_engine(image, spec, resample)
    survey = open_survey(spec, fetcher, mocserver_url)
    if science and "fits" in survey.properties.formats:
        tile_format = "fits"
    return CutoutEngine(survey, tile_format, cache_tiles=cache_tiles, black_is_blank=black_is_blank)


def science_engine(engine: SurveyEngine, cache_tiles: int = 96) -> SurveyEngine | None:
    """The FITS-tile twin of an 8-bit HiPS engine when the survey offers FITS tiles, else None.

    --fits cubes take their planes from it, so they hold the survey's values rather than JPEG levels;
    it shares the survey (and its remote fetcher) with the engine the PNG panels come from.
    """
    if not isinstance(engine, CutoutEngine) or not engine.is_8bit:
        return None
    if "fits" not in engine.survey.properties.formats:
        return None
    return CutoutEngine(engine.survey, "fits", cache_tiles=cache_tiles)


def make_unique_names(engines: list[SurveyEngine]) -> None:
    """Panel names must differ (manifest columns, cube keywords): later duplicates get _2, _3..."""
    seen: dict[str, int] = {}
    for engine in engines:
        count = seen.get(engine.name, 0) + 1
        seen[engine.name] = count
        if count > 1:
            engine.name = f"{engine.name}_{count}"
