"""--backend hips2fits: ask the CDS hips2fits service (online) for each survey x target, through astroquery.

FITS output for grey surveys (float, NaN = no data, rows bottom-up), PNG for colour ones. The client is
`astroquery.hips2fits.hips2fitsClass`; its server is --hips2fits_url when given (a mirror, the tests'
stand-in on 127.0.0.1), else astroquery's configured one. --timeout and --retries apply through the
builder's one retry policy (data.sky.fetch.Retrier).
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from util.errors import UserError

from .cutout import coverage_fraction
from .engine import CutoutEngine
from .fetch import AttemptFailed, Retrier, request_failure
from .geometry import OutputGrid
from .render import SurveyCut
from .source import CDS_ID


def hips_parameter(engine: CutoutEngine) -> str:
    """What hips2fits calls the survey: its CDS ID, or its URL."""
    spec = engine.survey.spec
    if CDS_ID.match(spec) or spec.startswith(("http://", "https://")):
        return spec
    raise UserError(f"--backend hips2fits: survey {engine.survey.name} is local; give a CDS ID or an http(s) URL")


def reply_values(reply, colour: bool, grid: OutputGrid) -> np.ndarray:
    """astroquery's reply (HDUList for FITS, array for PNG) as (H, W, C) float32, top row first.

    Raises ValueError on anything that is not a full image of the asked size.
    """
    if colour:
        values = np.asarray(reply, dtype=np.float32)
        if values.ndim == 2:
            values = np.repeat(values[:, :, None], 3, axis=2)
        values = np.array(values[:, :, :3])
        values[~values.any(axis=-1)] = np.nan  # hips2fits paints no-data black
    else:
        values = np.array(reply[0].data, dtype=np.float32)[::-1, :, None]
    if values.shape[:2] != (grid.height, grid.width):
        raise ValueError(f"reply is {values.shape[1]}x{values.shape[0]}, asked {grid.width}x{grid.height}")
    return values


class Hips2FitsRenderer:
    def __init__(self, engines: list[CutoutEngine], config):
        self.engines = engines
        self.survey_names = [e.survey.name for e in engines]
        self.service = config.hips2fits_url  # None: astroquery's configured server
        self.settings = config.fetch
        self.retrier = Retrier(config.fetch)
        self._local = threading.local()

    def _client(self):
        """One astroquery client per thread (each holds a requests session)."""
        client = getattr(self._local, "client", None)
        if client is None:
            from astroquery.hips2fits import hips2fitsClass

            client = hips2fitsClass()
            if self.service:
                client.server = self.service
            client.timeout = self.settings.timeout_s
            self._local.client = client
        return client

    def cutout(self, engine: CutoutEngine, grid: OutputGrid) -> np.ndarray:
        import astropy.units as u
        import requests
        from astropy.coordinates import Angle, Latitude, Longitude

        colour = engine.channels == 3
        hips = hips_parameter(engine)

        def attempt() -> np.ndarray:
            try:
                reply = self._client().query(
                    hips=hips, width=grid.width, height=grid.height, projection=grid.projection,
                    ra=Longitude(grid.ra * u.deg), dec=Latitude(grid.dec * u.deg), fov=Angle(grid.fov * u.deg),
                    coordsys="icrs", rotation_angle=Angle(0 * u.deg), format="png" if colour else "fits")
            except requests.RequestException as err:
                raise request_failure(err) from None
            except Exception as err:  # the service's error replies, undecodable bodies
                raise AttemptFailed(f"hips2fits: {type(err).__name__}: {err}") from None
            try:
                return reply_values(reply, colour, grid)
            except (ValueError, TypeError, IndexError) as err:
                raise AttemptFailed(f"hips2fits: {err}") from None

        return self.retrier.call(self.service or "hips2fits", attempt)

    def render(self, grids: list[OutputGrid]) -> list[list[SurveyCut]]:
        asks = [(grid, engine) for grid in grids for engine in self.engines]
        with ThreadPoolExecutor(max_workers=max(1, self.settings.parallel)) as pool:
            replies = list(pool.map(lambda ask: self.cutout(ask[1], ask[0]), asks))
        results = []
        for index, _ in enumerate(grids):
            bands = []
            for engine_index, engine in enumerate(self.engines):
                values = replies[index * len(self.engines) + engine_index]
                colour = engine.channels == 3
                bands.append(SurveyCut(engine.survey.name, engine.survey.location, "png" if colour else "fits",
                                       values, coverage_fraction(values),
                                       "8-bit level" if colour else "hips2fits value", colour))
            results.append(bands)
        return results

    def estimate_coverage(self, grid: OutputGrid) -> list[float]:
        from .render import BuiltinRenderer

        return BuiltinRenderer(self.engines).estimate_coverage(grid)
