"""One prediction set-up: the model rebuilt from its checkpoint, its inputs, the HiPS order and margin,
and the batched tile loop (render on CPU workers -> generator on the device -> mean / std bands)."""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from prediction.inputs import (BandModel, TrainingData, check_surveys, fits_band_model, physical_output,
                                 png_band_model, training_data)
from prediction.render import RenderedTile, RenderSettings, TileRenderer, open_surveys, worker_init, worker_render
from data.panels import parse_index_list
from data.sky.tile_grid import order_for_pixel, tile_pixel_deg, tile_position
from util.errors import UserError
from models.checkpoint import file_sha256
from prediction.generate import Generator, LoadedModel, TileKey, load_model
from prediction.pipeline import rendered_ahead



@dataclass
class Session:
    config: object  # prediction.options.PredictConfig
    loaded: LoadedModel
    generator: Generator
    model: BandModel
    training: TrainingData
    order: int
    width: int
    margin: int
    engines: list
    weights_sha256: str
    matches: tuple | None = None  # --match_inputs: an InputMatch (or None) per input survey
    opened: list | None = None  # the engines as opened, before any match

    @property
    def size(self) -> int:
        return self.width + 2 * self.margin

    def use_matches(self, matches) -> None:
        """Put the inputs on the training scale (prediction.input_check), here and in the render workers."""
        from prediction.input_check import matched_engine

        self.opened = self.opened if self.opened is not None else self.engines
        self.matches = tuple(matches) if matches is not None else None
        self.engines = [matched_engine(e, m) for e, m in zip(self.opened, self.matches or [None] * len(self.opened))]

    def render_settings(self, cuts=None) -> RenderSettings:
        c = self.config
        return RenderSettings(tuple(c.surveys), self.model, self.order, self.width, self.margin,
                              tuple(c.tile_formats), c.stretch, tuple(cuts) if cuts else None, c.black_is_blank,
                              c.fetch, c.mocserver_url, c.truth, c.truth_format, self.matches)


def count_png_inputs(opt, training: TrainingData, given: int) -> tuple[int, list[str] | None, str]:
    """(input panels, their training survey names, target name) of an aligned/single model."""
    names = list(training.surveys)
    if opt.direction != "BtoA":
        return 1, names[:1] or None, names[1] if len(names) > 1 else "panel B"
    indices = parse_index_list(opt.input_panels or "", "--input_panels")
    if not indices:
        panels = (len(parse_index_list(opt.panel_nc or "", "--panel_nc")) + 1 if opt.panel_nc else
                  opt.n_panels if opt.n_panels > 0 else len(names) if names else given + 1)
        indices = list(range(1, panels))
    labels = [names[i] for i in indices] if names and max(indices) < len(names) else None
    return len(indices), labels, names[0] if names else "panel A"


def band_model_of(loaded: LoadedModel, training: TrainingData, n_surveys: int) -> BandModel:
    opt = loaded.opt
    if opt.dataset_mode == "fits_aligned":
        from data.fits_norm import load_norm, norm_path

        return fits_band_model(opt, load_norm(norm_path(opt.checkpoints_dir, opt.name)))
    n_inputs, labels, target = count_png_inputs(opt, training, n_surveys)
    return png_band_model(opt, n_inputs, labels, target)


def choose_margin(netG: str, width: int, generator: Generator, asked: int | None) -> int:
    """Context pixels per side. Default: the generator's receptive field, so that every pixel of a tile
    is computed exactly as in one seamless image of the whole base cell (tile windows a multiple of
    the generator's stride apart); (W + 2M) must be a multiple of what the generator needs and M of
    the coarsest dropout layer's step (so dropout masks line up across tiles)."""
    from models.networks import input_size_multiple, receptive_radius

    multiple = input_size_multiple(netG)
    if asked is not None:
        if (width + 2 * asked) % multiple:
            raise UserError(f"--margin {asked}: tile width {width} + 2 x margin must be a multiple of "
                            f"{multiple} for --netG {netG}")
        return asked
    probe = max(multiple, 64)
    factors = [probe // shape[1] for shape in generator._feature_shapes(probe)] if generator.stochastic else [1]
    align = max(factors)
    margin = receptive_radius(netG)
    while margin % align or (width + 2 * margin) % multiple:
        margin += 1
    return margin


def prepare(config, need_surveys: bool = True) -> Session:
    loaded = load_model(config.name, config.checkpoints_dir, list(config.model_argv), config.gpu_ids)
    training = training_data(loaded.opt)
    model = band_model_of(loaded, training, len(config.surveys))
    engines = open_surveys(RenderSettings(tuple(config.surveys), model, 0, 8, 0,
                                          black_is_blank=config.black_is_blank, fetch=config.fetch,
                                          mocserver_url=config.mocserver_url),
                           tuple(config.surveys), tuple(config.tile_formats)) if need_surveys else []
    if need_surveys:
        check_surveys(model, [e.name for e in engines], [e.channels for e in engines])
    if config.order is not None:
        order = config.order
    elif training.pixel_deg is None:
        raise UserError(f"the model's pixel scale is unknown ({training.source}); give --order")
    else:
        order = order_for_pixel(training.pixel_deg, config.tile_width)
    generator = Generator(loaded, config.seed)
    if generator.max_passes is not None and config.uncertainty > generator.max_passes:
        raise UserError(f"--uncertainty {config.uncertainty}: this generator has no dropout, so its passes are the "
                        f"{generator.max_passes} flips and rotations of the input; use --uncertainty "
                        f"{generator.max_passes} or fewer")
    margin = choose_margin(loaded.opt.netG, config.tile_width, generator, config.margin)
    return Session(config, loaded, generator, model, training, order, config.tile_width, margin, engines,
                   file_sha256(loaded.weights))


def describe(session: Session) -> str:
    opt = session.loaded.opt
    scale = tile_pixel_deg(session.order, session.width) * 3600
    trained = f"{session.training.pixel_deg * 3600:.1f}\"" if session.training.pixel_deg else "unknown"
    return (f"model {opt.name} ({opt.model} {opt.netG}, {session.model.input_channels} -> "
            f"{session.model.output_channels} ch, {session.model.kind} data, trained at {trained}/px): "
            f"order {session.order}, {session.width} px tiles of {scale:.1f}\"/px, margin {session.margin} px")


# ---- the tile loop ---------------------------------------------------------------------------
def render_stream(settings: RenderSettings, tiles: list[int], workers: int, engines=None,
                  chunk: int = 4, ahead: int = 0) -> Iterator[RenderedTile]:
    """Rendered tiles in order: with workers > 1 a few chunks are rendered ahead in processes; with one
    worker and ahead > 0, up to `ahead` chunks in a thread beside the generator (prediction.pipeline);
    with ahead 0, each chunk when it is needed."""
    chunks = [tiles[i:i + chunk] for i in range(0, len(tiles), chunk)]
    if workers <= 1 or len(chunks) <= 1:
        renderer = TileRenderer(settings, engines)
        if ahead > 0 and len(chunks) > 1:
            yield from rendered_ahead(renderer.render, chunks, ahead)
            return
        for piece in chunks:
            yield from renderer.render(piece)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=worker_init, initargs=(settings,)) as pool:
        pending = [pool.submit(worker_render, piece) for piece in chunks[:2 * workers]]
        for index in range(len(chunks)):
            result = pending.pop(0).result()
            ahead = index + 2 * workers
            if ahead < len(chunks):
                pending.append(pool.submit(worker_render, chunks[ahead]))
            yield from result


@dataclass
class TileResult:
    ipix: int
    mean: np.ndarray | None  # (W, W) band in training units, NaN where an input has no data
    std: np.ndarray | None
    missing: tuple[str, ...] = ()


def tile_keys(session: Session, tiles: list[int]) -> list[TileKey]:
    pos = tile_position(tiles, session.order)
    w, m = session.width, session.margin
    return [TileKey(int(b), int(i) * w - m, int(j) * w - m) for b, i, j in zip(pos.base, pos.i, pos.j)]


def _infer(session: Session, batch: list[RenderedTile]) -> Iterator[TileResult]:
    c = session.config
    inner = slice(session.margin, session.margin + session.width)
    outputs = session.generator.run(np.stack([t.x for t in batch]), tile_keys(session, [t.ipix for t in batch]),
                                    passes=c.uncertainty)
    for b, tile in enumerate(batch):
        bands = np.stack([physical_output(session.model, outputs[p, b, :, inner, inner])
                          for p in range(outputs.shape[0])])
        mean = bands.mean(axis=0).astype(np.float32)
        std = (bands.std(axis=0, ddof=1) * c.std_scale.factor(mean)).astype(np.float32) if c.uncertainty else None
        mean[~tile.valid] = np.nan
        if std is not None:
            std[~tile.valid] = np.nan
        yield TileResult(tile.ipix, mean, std)


def generate(session: Session, rendered: Iterable[RenderedTile]) -> Iterator[TileResult]:
    """Batches of --batch_size tiles through the generator; skipped tiles pass through."""
    batch: list[RenderedTile] = []
    for tile in rendered:
        if tile.x is None:
            yield TileResult(tile.ipix, None, None, tile.missing)
            continue
        batch.append(tile)
        if len(batch) == session.config.batch_size:
            yield from _infer(session, batch)
            batch = []
    if batch:
        yield from _infer(session, batch)


# Lower orders go down to 0, as HipsGen writes them: a handful of tiles, and clients (and Aladin's HiPS
# validator, which walks random tiles' ancestors) find the whole hierarchy.
HIPS_ORDER_MIN = 0
