"""--backend hips2fits: ask the CDS hips2fits service (online) for each survey x target.

FITS output for grey surveys (float, NaN = no data, rows bottom-up), PNG for colour ones. The service URL
is an option so tests point it at a stand-in on 127.0.0.1.
"""
from __future__ import annotations

import io
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from util.errors import UserError

from .cutout import coverage_fraction
from .engine import CutoutEngine
from .fetch import Fetcher, FetchError
from .geometry import OutputGrid
from .render import Band
from .source import CDS_ID


def hips_parameter(engine: CutoutEngine) -> str:
    """What hips2fits calls the survey: its CDS ID, or its URL."""
    spec = engine.survey.spec
    if CDS_ID.match(spec) or spec.startswith(("http://", "https://")):
        return spec
    raise UserError(f"--backend hips2fits: survey {engine.survey.name} is local; give a CDS ID or an http(s) URL")


def request_url(service: str, hips: str, grid: OutputGrid, colour: bool) -> str:
    params = {"hips": hips, "width": grid.width, "height": grid.height, "projection": grid.projection,
              "ra": f"{grid.ra:.9f}", "dec": f"{grid.dec:.9f}", "fov": f"{grid.fov:.9f}", "coordsys": "icrs",
              "rotation_angle": "0", "format": "png" if colour else "fits"}
    return f"{service}?{urllib.parse.urlencode(params)}"


def decode_reply(data: bytes, colour: bool, grid: OutputGrid) -> np.ndarray:
    """(H, W, C) float32, top row first; raises ValueError on anything that is not a full image."""
    if colour:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.load()
            values = np.asarray(image.convert("RGB"), dtype=np.float32)
        values[~values.any(axis=-1)] = np.nan  # hips2fits paints no-data black
    else:
        from astropy.io import fits

        with fits.open(io.BytesIO(data), memmap=False) as hdul:
            values = np.array(hdul[0].data, dtype=np.float32)[::-1, :, None]
    if values.shape[:2] != (grid.height, grid.width):
        raise ValueError(f"reply is {values.shape[1]}x{values.shape[0]}, asked {grid.width}x{grid.height}")
    return values


class Hips2FitsRenderer:
    def __init__(self, engines: list[CutoutEngine], config):
        self.engines = engines
        self.survey_names = [e.survey.name for e in engines]
        self.service = config.hips2fits_url
        self.fetcher = Fetcher(config.fetch)

    def render(self, grids: list[OutputGrid]) -> list[list[Band]]:
        asks = []
        for grid in grids:
            for engine in self.engines:
                colour = engine.channels == 3
                asks.append((grid, engine, colour, request_url(self.service, hips_parameter(engine), grid, colour)))

        def fetch(ask) -> bytes | None:
            grid, _, colour, url = ask
            return self.fetcher.get(url, lambda data: decode_reply(data, colour, grid))

        with ThreadPoolExecutor(max_workers=max(1, self.fetcher.settings.parallel)) as pool:
            replies = dict(zip([ask[3] for ask in asks], pool.map(fetch, asks)))
        results = []
        for index, grid in enumerate(grids):
            bands = []
            for engine_index, engine in enumerate(self.engines):
                _, _, colour, url = asks[index * len(self.engines) + engine_index]
                data = replies.get(url)
                if data is None:
                    raise FetchError(f"hips2fits has no image for {engine.survey.name} ({url})")
                values = decode_reply(data, colour, grid)
                bands.append(Band(engine.survey.name, engine.survey.location, "fits" if not colour else "png",
                                  values, coverage_fraction(values),
                                  "hips2fits value" if not colour else "8-bit level", colour))
            results.append(bands)
        return results

    def estimate_coverage(self, grid: OutputGrid) -> list[float]:
        from .render import BuiltinRenderer

        return BuiltinRenderer(self.engines).estimate_coverage(grid)
