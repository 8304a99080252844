"""--sample on a small field: block split (block_plan.py) and positions drawn inside each split's blocks.

Used when HEALPix cells at the automatic order cannot give every split its sky (a pointed field of a few
arcminutes holds one to four such cells). Each split draws its own quota from where its cutouts fit
whole (guard bands included), so every split gets its quota whenever its blocks have room.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
from dataclasses import dataclass

import numpy as np

from .block_plan import (GUARD_PX, SCREEN_MARGIN_PX, FieldMask, choose_blocks, field_mask, overlap, overlap_line,
                         split_line, too_small)
from .field_grid import cutout_boxes, field_around
from .geometry import OutputGrid
from .render import BuiltinRenderer
from .sampling import inside_all, pick, random_candidates, split_quotas
from .split import SPLITS
from .split_blocks import BlockSplit
from .targets import Target
from .tile_grid import tile_pixel_deg

log = logging.getLogger(__name__)

FIELD_DRAWS = 4000  # positions drawn in the shared area to find the field's centre and extent
BATCHES = 25
ROOM_LATTICE = 50000  # lattice points over a split's centre rectangles sifted by the field mask (coarser beyond)
ROOM_POINTS = 400  # of those the mask keeps, how many the sampler's screening looks at
ROOM_TRIES = 16  # of them, how many the full coverage test tries before the split is judged to have no room


@dataclass
class BlockChoice:
    """A block split and the targets drawn in it, with the run's lines about both."""

    split: BlockSplit
    targets: list[Target]
    line: str
    overlap_line: str


def data_everywhere(screen: BuiltinRenderer, pixel_deg: float):
    """has_data(ra, dec) of every survey (and its cube twin) at once: the screening's nearest-pixel test."""
    def has_data(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        ok = np.ones(np.shape(ra), dtype=bool)
        for engine, twin in zip(screen.engines, screen.cube_engines):
            ok &= np.asarray(engine.has_data(ra, dec, pixel_deg)).reshape(np.shape(ra))
            if twin is not None:
                ok &= np.asarray(twin.has_data(ra, dec, pixel_deg)).reshape(np.shape(ra))
        return ok
    return has_data


def block_split_for(config, screen: BuiltinRenderer, footprints) -> tuple[BlockSplit | None, object]:
    """(the layout, the field mask); (None, None) when the shared sky is not a small field (HEALPix then)."""
    found = _layout(config, screen, footprints)
    if found is None:
        return None, None
    split, mask, verify, guard_px = found
    if split is None:
        def finer_fits(arcsec: float) -> bool:  # the advice's pixel scale, tried as a run would try it
            other = _layout(dataclasses.replace(config, fov=arcsec * config.size / 3600), screen, footprints)
            return other is not None and other[0] is not None

        raise too_small(mask, config.size, config.split, config.seed, config.min_coverage, config.split_guard,
                        verify=verify, guard_px=guard_px, finer_fits=finer_fits)
    return split, mask


def _layout(config, screen: BuiltinRenderer, footprints):
    """(layout or None, mask, verify, guard band) at the config's scale; None when the field is not small."""
    ra, dec = random_candidates(footprints, FIELD_DRAWS, config.seed)
    pixel_deg = config.fov / config.size
    field = field_around(ra, dec, pixel_deg, pad_px=config.size)
    if field is None:
        return None
    mask = field_mask(field, data_everywhere(screen, pixel_deg))
    verify = sampler_finds_room(config, screen, footprints, mask)
    guard_px = guard_band_px(screen, pixel_deg)
    split = choose_blocks(mask, config.size, config.split, config.seed, config.min_coverage, config.split_guard,
                          config.projection, verify=verify, guard_px=guard_px)
    return split, mask, verify, guard_px


def guard_band_px(screen: BuiltinRenderer, pixel_deg: float) -> float:
    """The guard band, in cutout pixels: at least GUARD_PX, and at least the coarsest source pixel read.

    The resampling reads source pixels up to one source pixel (a diagonal on a turned grid) beyond a cutout's
    outer pixel centres (bilinear; the exact mode, those overlapping its edge): with cutouts finer than a
    survey's own pixels, a 1 px band let cutouts of two splits read the same source pixels (a 5' Galactic-centre
    cut of 5"/px 2MASS at 1.687"/px: 21 target pixels shared by train and test, found by an independent check)."""
    coarsest = max((source_pixel_deg(engine, pixel_deg) for engine in (*screen.engines, *screen.cube_engines)
                    if engine is not None), default=0.0)
    # bilinear reads source centres up to sqrt(2) source pixels away (a turned grid's diagonal); the outer
    # pixel centres lie half a cutout pixel inside the edge; a quarter pixel to spare
    return max(GUARD_PX, round(math.sqrt(2) * coarsest / pixel_deg - 0.25, 3))


def source_pixel_deg(engine, pixel_deg: float) -> float:
    """The side of the source pixels a cutout at `pixel_deg` reads: a FITS image's own (its coarsest piece),
    or the HiPS tiles' at the order the engine picks for that scale."""
    pieces = getattr(engine, "pieces", None)
    if pieces:
        return max(float(piece.pixel_deg) for piece in pieces)
    survey = getattr(engine, "survey", None)
    if survey is not None and hasattr(engine, "tile_order"):
        return tile_pixel_deg(engine.tile_order(pixel_deg), survey.properties.tile_width)
    return 0.0


def sampler_finds_room(config, screen: BuiltinRenderer, footprints, mask: FieldMask):
    """verify(layout) for choose_blocks: every split with a fraction has a position its cutouts may take that
    passes the very tests `_draw` applies (the field mask alone once counted a block where the screening then
    found no position: sn2010ai's WISE W1 from 2MASS Ks + WISE W2 got 32 train, 0 val, 0 test)."""
    def verify(split: BlockSplit) -> bool:
        fov = split.size * split.field.pixel_deg
        accept = _acceptance(config, screen, fov, split.size)
        for name, fraction in zip(SPLITS, config.split):
            if fraction <= 0:
                continue
            ra, dec = _room(config, screen, footprints, mask, split, name, fov)
            spread = _evenly(len(ra), ROOM_TRIES)
            if not pick(ra[spread], dec[spread], 1, accept, spread=False):
                return False
        return True
    return verify


def block_targets(config, spec, screen: BuiltinRenderer, footprints, healpix_order: int) -> BlockChoice | None:
    """The block split and `spec.sample` positions in it; None when the field is not small."""
    split, mask = block_split_for(config, screen, footprints)
    if split is None:
        return None
    error = split.notes.get("sky_error", 0.0)
    if error > 0.1:
        shares = split.notes["sky_fractions"]
        log.warning("the field holds few blocks of this cutout: the splits get %s of its sky instead of %s "
                    "(a smaller --size comes closer)", "/".join(f"{100 * shares[k]:.0f}%" for k in SPLITS),
                    "/".join(f"{100 * f:.0f}%" for f in config.split))
    quota = split_quotas(spec.sample, config.split)
    rng = np.random.default_rng(config.seed)
    chosen: list[tuple[float, float, str]] = []
    for name in SPLITS:
        if not quota[name]:
            continue
        found = _draw(config, spec, screen, footprints, mask, split, name, quota[name], rng)
        if len(found) < quota[name]:
            log.warning("--sample %d: only %d of %d %s positions pass coverage %.2f and the split guard",
                        spec.sample, len(found), quota[name], name, config.min_coverage)
        chosen += [(r, d, name) for r, d in found]
    targets = [Target(f"sample_{i:05d}", r, d) for i, (r, d, _) in enumerate(chosen)]
    numbers = {}
    if targets:
        boxes = cutout_boxes(split.field, [t.ra for t in targets], [t.dec for t in targets], config.fov,
                             config.size, config.projection)
        numbers = overlap(split, boxes, np.array([name for _, _, name in chosen]))
    split.notes.update({"instead_of_healpix_order": healpix_order, "overlap": numbers})
    return BlockChoice(split, targets, split_line(split, healpix_order), overlap_line(numbers) if numbers else "")


def uniform_in_union(rects: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` points uniform over the union of rectangles (x0, x1, y0, y1): a rectangle drawn by its area,
    a point uniform in it, kept with probability 1 / (how many rectangles hold it)."""
    areas = (rects[:, 1] - rects[:, 0]) * (rects[:, 3] - rects[:, 2])
    xs, ys, total = [], [], 0
    while total < count:
        pick = rng.choice(len(rects), size=2 * count, p=areas / areas.sum())
        x = rng.uniform(rects[pick, 0], rects[pick, 1])
        y = rng.uniform(rects[pick, 2], rects[pick, 3])
        holders = ((x[:, None] >= rects[:, 0]) & (x[:, None] <= rects[:, 1])
                   & (y[:, None] >= rects[:, 2]) & (y[:, None] <= rects[:, 3])).sum(axis=1)
        keep = rng.uniform(size=len(x)) * holders < 1.0
        xs.append(x[keep])
        ys.append(y[keep])
        total += int(keep.sum())
    return np.concatenate(xs)[:count], np.concatenate(ys)[:count]


def lattice_in_union(rects: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """The points of a square lattice of `spacing` px (field px from 0) that lie in the union of rectangles,
    each once, south row first."""
    xs, ys = [], []
    for x0, x1, y0, y1 in rects:
        gx, gy = np.meshgrid(np.arange(np.ceil(x0 / spacing), np.floor(x1 / spacing) + 1),
                             np.arange(np.ceil(y0 / spacing), np.floor(y1 / spacing) + 1))
        xs.append(gx.ravel())
        ys.append(gy.ravel())
    if not xs:
        return np.empty(0), np.empty(0)
    cells = np.unique(np.stack([np.concatenate(ys), np.concatenate(xs)], axis=1), axis=0)  # by row, then column
    return cells[:, 1] * spacing, cells[:, 0] * spacing


def _acceptance(config, screen: BuiltinRenderer, fov: float, size: int):
    """The final test of a position: every survey's coverage of its cutout (24 x 24 pixel centres)."""
    def accept(r: float, d: float) -> bool:
        if config.min_coverage > 0:
            grid = OutputGrid(r, d, fov, size, size, config.projection)
            return min(screen.estimate_coverage(grid)) >= config.min_coverage
        return True
    return accept


def _room(config, screen, footprints, mask: FieldMask, split: BlockSplit, name: str,
          fov: float) -> tuple[np.ndarray, np.ndarray]:
    """Up to ROOM_POINTS positions, spread evenly, where split `name`'s cutouts may be centred and pass the
    sampler's screening: a lattice over its centre rectangles (half a pixel apart where they are small; each
    rectangle's centre too), sifted first by the field mask (fast), then by the screening itself. The room may be
    a sliver of those rectangles (sn2010ai: 68 of 75 000 px), which neither uniform draws nor a coarse lattice hit."""
    rects = split.centre_rectangles(name, config.split_guard)
    if not len(rects):
        return np.empty(0), np.empty(0)
    area = float(np.sum((rects[:, 1] - rects[:, 0]) * (rects[:, 3] - rects[:, 2])))
    x, y = lattice_in_union(rects, max(0.5, float(np.sqrt(area / ROOM_LATTICE))))
    x = np.concatenate([(rects[:, 0] + rects[:, 1]) / 2, x])
    y = np.concatenate([(rects[:, 2] + rects[:, 3]) / 2, y])
    keep = mask.has_data(x, y)
    if config.min_coverage > 0:
        keep &= mask.coverage(x, y, split.size + SCREEN_MARGIN_PX) >= config.min_coverage
    x, y = x[keep], y[keep]
    spread = _evenly(len(x), ROOM_POINTS)
    return _usable(config, screen, footprints, split, name, x[spread], y[spread], fov, split.size)


def _evenly(count: int, most: int) -> np.ndarray:
    """Indices of at most `most` of `count` items, spread evenly from the first to the last."""
    return np.unique(np.linspace(0, count - 1, min(count, most)).astype(int))


def _draw(config, spec, screen, footprints, mask: FieldMask, split: BlockSplit, name: str, count: int,
          rng: np.random.Generator) -> list[tuple[float, float]]:
    """`count` positions whose cutouts belong to split `name` and pass the coverage screening: uniform over
    where that split's cutouts may be centred (then, if short, the room lattice the layout was verified on),
    or (--sample_mode grid) a lattice there, made finer until it has 4x the points needed, walked evenly."""
    rects = split.centre_rectangles(name, config.split_guard)
    if not len(rects):
        return []
    accept = _acceptance(config, screen, config.fov, config.size)
    usable = functools.partial(_usable, config, screen, footprints, split, name, fov=config.fov, size=config.size)
    if spec.sample_mode == "grid":
        spacing = config.size / 4
        ra, dec = usable(*lattice_in_union(rects, spacing))
        while len(ra) < 4 * count and spacing > 0.5:
            spacing /= 2
            ra, dec = usable(*lattice_in_union(rects, spacing))
        return pick(ra, dec, count, accept, spread=True)
    found: list[tuple[float, float]] = []
    for _ in range(BATCHES):
        ra, dec = usable(*uniform_in_union(rects, max(4 * count, 256), rng))
        found += pick(ra, dec, count - len(found), accept, spread=False)
        if len(found) == count:
            return found
    # room too small for uniform draws to hit (a block barely wider than a cutout): the verified lattice
    ra, dec = _room(config, screen, footprints, mask, split, name, config.fov)
    order = rng.permutation(len(ra))
    return found + pick(ra[order], dec[order], count - len(found), accept, spread=False)


def _usable(config, screen, footprints, split: BlockSplit, name: str, x: np.ndarray, y: np.ndarray, fov: float,
            size: int):
    """The positions among (x, y) inside every survey whose cutout (fov, size) belongs to `name` and whose quick
    coverage estimate passes --min_coverage."""
    ra, dec = split.field.to_sky(x, y)
    keep = inside_all(footprints, ra, dec)
    keep[keep] = split.split_of(ra[keep], dec[keep], fov, config.split_guard) == name
    if config.min_coverage > 0 and keep.any():
        estimate = screen.estimate_coverage_many(ra[keep], dec[keep], fov, size).min(axis=1)
        keep[keep] = estimate >= config.min_coverage
    return ra[keep], dec[keep]
