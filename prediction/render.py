"""Render a model's inputs on HEALPix tiles (with a margin): the CPU half of sky prediction.

Each tile's pixels plus `margin` pixels all round are sampled from every input survey through the
dataset builder's own surveys and cutout engine (open_engines / CutoutEngine.cutout), then turned
into the network input exactly as training data were (prediction.inputs). No network here: worker
processes only render; the generator runs in the parent.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

import numpy as np

from prediction.input_check import matched_engine
from prediction.inputs import CHANNEL_INDEX, BandModel, PanelInput, network_input, physical_output, split_label
from data.sky.config import BuildConfig
from data.sky.fetch import FetchSettings
from data.sky.geometry import OutputGrid, frame_to_icrs
from data.sky.stretch import StretchSettings, percentile_cuts
from data.sky.tile_grid import tile_pixel_deg, tile_pixel_lonlat

HIPS_FRAME = "equatorial"


@dataclass(frozen=True)
class RenderSettings:
    """Everything a worker needs to render tiles (picklable)."""

    surveys: tuple[str, ...]
    model: BandModel
    order: int
    width: int
    margin: int
    tile_formats: tuple[str | None, ...] = ()
    stretch: StretchSettings = field(default_factory=StretchSettings)
    cuts: tuple[tuple[float, float] | None, ...] | None = None  # fixed cuts per survey (FITS tiles)
    black_is_blank: bool | None = None
    fetch: FetchSettings = field(default_factory=FetchSettings)
    mocserver_url: str = "https://alasky.cds.unistra.fr/MocServer/query"
    truth: str | None = None  # the real target survey, for calibration
    truth_format: str | None = None
    matches: tuple | None = None  # --match_inputs: an input_check.InputMatch (or None) per input survey


@dataclass
class RenderedTile:
    ipix: int
    x: np.ndarray | None  # (C, S, S) network input, None when skipped
    valid: np.ndarray  # (W, W) pixels where every input survey has data
    missing: tuple[str, ...] = ()  # surveys without data in the tile (why it was skipped)


def open_surveys(settings: RenderSettings, specs: tuple[str, ...], formats: tuple[str | None, ...]):
    """The builder's engines for these surveys. For a FITS-trained model, a HiPS that offers FITS tiles
    is read from them, as the builder filled the training cubes (data.sky.surveys.science_engine)."""
    from data.sky.build import open_engines
    from data.sky.surveys import science_engine

    config = BuildConfig(surveys=specs, out=None, fov=1.0, size=8, tile_formats=formats,
                         black_is_blank=settings.black_is_blank, fetch=settings.fetch,
                         mocserver_url=settings.mocserver_url)
    engines = open_engines(config)
    if settings.model.kind == "fits":
        engines = [science_engine(engine, config.cache_tiles) or engine for engine in engines]
    if settings.matches and specs == settings.surveys:  # the inputs (not --truth) on the training scale
        engines = [matched_engine(engine, match) for engine, match in zip(engines, settings.matches)]
    return engines


def tile_sky(ipix: int, order: int, width: int, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """ICRS (ra, dec) of a tile's pixels and margin, (S, S) arrays in tile order."""
    lon, lat = tile_pixel_lonlat([ipix], order, width, margin)
    return frame_to_icrs(lon[0], lat[0], HIPS_FRAME)


class TileRenderer:
    def __init__(self, settings: RenderSettings, engines=None):
        self.settings = settings
        self.engines = engines if engines is not None else open_surveys(settings, settings.surveys,
                                                                        settings.tile_formats)
        self.names = [e.name for e in self.engines]
        self._truth = None

    def cutouts(self, engines, ipix: int, margin: int) -> list[np.ndarray]:
        s = self.settings
        ra, dec = tile_sky(ipix, s.order, s.width, margin)
        size = s.width + 2 * margin
        centre = size // 2
        grid = OutputGrid(float(ra[centre, centre]), float(dec[centre, centre]),
                          tile_pixel_deg(s.order, s.width) * size, size, size)
        shared: dict = {}
        return [engine.cutout(grid, sky=(ra, dec), shared=shared).values for engine in engines]

    def render(self, tiles) -> list[RenderedTile]:
        s = self.settings
        inner = slice(s.margin, s.margin + s.width)
        results = []
        for ipix in tiles:
            values = self.cutouts(self.engines, int(ipix), s.margin)
            covered = [np.isfinite(v[inner, inner, 0]) for v in values]
            valid = np.logical_and.reduce(covered)
            if not valid.any():
                missing = tuple(n for n, c in zip(self.names, covered) if not c.any()) or tuple(self.names)
                results.append(RenderedTile(int(ipix), None, valid, missing))
                continue
            x, _ = network_input(s.model, values, [e.is_8bit for e in self.engines], s.stretch,
                                 list(s.cuts) if s.cuts else None)
            results.append(RenderedTile(int(ipix), x, valid))
        return results

    # ---- the real band, for calibration --------------------------------------------------------
    def truth_engine(self):
        if self._truth is None:
            self._truth = open_truth(self.settings)
        return self._truth

    def truth(self, ipix: int) -> np.ndarray:
        """The real target band on a tile's pixels, in the model's output units (W, W)."""
        return self.output_units(self.cutouts([self.truth_engine()], ipix, 0)[0])

    def truth_on(self, grid: OutputGrid) -> np.ndarray:
        return self.output_units(self.truth_engine().cutout(grid).values)

    def output_units(self, values: np.ndarray) -> np.ndarray:
        """A target-survey cutout as the model's output band: the physical plane (FITS models), or the
        8-bit panel the dataset made of it, read with the model's output channels (PNG models)."""
        s = self.settings
        if s.model.kind == "fits":
            _, letter = split_label(s.model.output_label)
            return values[..., CHANNEL_INDEX[letter] if values.shape[2] == 3 else 0]
        panel = BandModel("png", (PanelInput(s.model.output_label, s.model.output_channels),),
                          s.model.output_channels, s.model.output_label, s.model.unit)
        x, valid = network_input(panel, [values], [self.truth_engine().is_8bit], s.stretch)
        band = physical_output(panel, x)
        band[~valid] = np.nan
        return band


def open_truth(settings: RenderSettings):
    """The --truth survey's engine (a bad survey, or hostile properties, is a UserError here, before any tile)."""
    return open_surveys(settings, (settings.truth,), (settings.truth_format,))[0]


TRUTH_PROBE = 8  # probe pixels per tile side when asking whether --truth has data on some tiles
TRUTH_PROBE_TILES = 4096  # at most this many tiles probed, spread over the list


def truth_has_data(engine, tiles, order: int) -> bool:
    """Whether the real band has data on some of these tiles (an 8 x 8 grid of each tile's pixels, tiles
    spread over the list), so a --truth that misses the region is refused before any tile is made."""
    from data.sky.tile_grid import tile_pixel_lonlat

    tiles = np.asarray(tiles, dtype=np.int64)
    if not len(tiles):
        return False
    picks = tiles[np.unique(np.linspace(0, len(tiles) - 1, min(len(tiles), TRUTH_PROBE_TILES)).astype(int))]
    lon, lat = tile_pixel_lonlat(picks, order, TRUTH_PROBE, 0)
    ra, dec = frame_to_icrs(lon.ravel(), lat.ravel(), HIPS_FRAME)
    return bool(np.any(engine.has_data(ra, dec, tile_pixel_deg(order, TRUTH_PROBE))))


def region_cuts(engines, ra: float, dec: float, radius: float, stretch: StretchSettings,
                ) -> tuple[tuple[float, float] | None, ...]:
    """Fixed stretch cuts per survey for FITS tiles (None for 8-bit tiles): the percentiles over a
    256 px view of the whole region, so every tile of a run shares one mapping."""
    grid = OutputGrid(ra, dec, max(2 * radius, 1e-3), 256, 256)
    cuts = []
    for engine in engines:
        if engine.is_8bit:
            cuts.append(None)
            continue
        found = percentile_cuts(engine.cutout(grid).values, stretch)
        cuts.append(None if found is None else (float(found[0]), float(found[1])))
    return tuple(cuts)


@dataclass
class TruthSample:
    """Written tiles and the real band on the same pixels (1-D arrays), with the pixels' ICRS positions."""

    mean: np.ndarray
    std: np.ndarray | None
    truth: np.ndarray
    ra: np.ndarray
    dec: np.ndarray


def sample_truth(root, std_root, settings: RenderSettings, tiles: list[int], stride: int = 2,
                 keep=None) -> TruthSample:
    """The written mean (and std when std_root) of these tiles beside settings.truth rendered on the same
    tile pixels; every `stride`-th pixel per axis is used. keep(ipix, truth): called with each tile's
    whole truth (to write it as a HiPS)."""
    from data.sky.hips_out import read_fits_tile

    renderer = TileRenderer(settings)
    parts: dict[str, list[np.ndarray]] = {"mean": [], "std": [], "truth": [], "ra": [], "dec": []}
    step = (slice(None, None, stride),) * 2
    for ipix in tiles:
        ra, dec = tile_sky(ipix, settings.order, settings.width, 0)
        parts["mean"].append(read_fits_tile(root, settings.order, ipix)[step].ravel())
        if std_root is not None:
            parts["std"].append(read_fits_tile(std_root, settings.order, ipix)[step].ravel())
        truth = renderer.truth(ipix)
        if keep is not None:
            keep(ipix, truth)
        parts["truth"].append(truth[step].ravel())
        parts["ra"].append(ra[step].ravel())
        parts["dec"].append(dec[step].ravel())
    joined = {k: np.concatenate(v) if v else None for k, v in parts.items()}
    return TruthSample(joined["mean"], joined["std"], joined["truth"], joined["ra"], joined["dec"])


# ---- worker processes ------------------------------------------------------------------------
_WORKER: dict = {}  # per worker process: its renderer, set by the pool initializer


def worker_init(settings: RenderSettings) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    _WORKER["renderer"] = TileRenderer(settings)


def worker_render(tiles: list[int]) -> list[RenderedTile]:
    return _WORKER["renderer"].render(tiles)
