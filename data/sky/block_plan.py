"""Choosing the blocks of a small field's split: where the data are, which block sizes fit, which blocks go
to which split, and what to say when the field is too small.

Everything works on a mask of the field's own pixel grid (every survey has data there), with a summed-area
table so that the data coverage of any cutout-sized square costs four lookups: the layout search tries a
few hundred block sizes and alignments in about a second of CPU (0.6-0.9 s on sn2010ag, 64 px cutouts).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from util.errors import UserError

from .field_grid import FieldGrid
from .split import SPLITS, assign_cells
from .split_blocks import SLACK_PX, BlockSplit

GUARD_PX = 1.0  # least guard band beyond a cutout's edge: the bilinear resampling reads the neighbouring pixel
MAX_MASK_PX = 1024  # the mask keeps every k-th pixel beyond this many per side
MAX_PROBES = 20000
SIZE_STEP = 1.08  # block sizes tried grow geometrically by this
ALIGNMENTS = (0.0, 1 / 3, 2 / 3)  # block grid shifted by these fractions of a block, in x and y
FINER_TRIES = 4  # pixel scales tried for the too-small advice, each 3% finer
SCREEN_MARGIN_PX = 1.0  # the sampler's quick screening probes the cutout's outer edges, half a pixel beyond the
# centres of its outer pixels: the mask asks as much, or it counts room the sampler then rejects


@dataclass(frozen=True)
class FieldMask:
    """Where every survey has data, at every `step`-th pixel of the field grid (rows = y, south first)."""

    field: FieldGrid
    step: int
    data: np.ndarray

    @cached_property
    def _table(self) -> np.ndarray:
        table = np.zeros((self.data.shape[0] + 1, self.data.shape[1] + 1))
        table[1:, 1:] = np.cumsum(np.cumsum(self.data, axis=0), axis=1)
        return table

    def _index(self, value: np.ndarray, length: int) -> np.ndarray:
        return np.clip(np.floor(np.asarray(value) / self.step + 0.5).astype(np.int64), 0, length)

    def coverage(self, x: np.ndarray, y: np.ndarray, side: float) -> np.ndarray:
        """Fraction of a side x side square centred at each (x, y) (field px) where every survey has data;
        the part outside the grid counts as no data."""
        rows, cols = self.data.shape
        c0, c1 = self._index(x - side / 2, cols), self._index(x + side / 2, cols)
        r0, r1 = self._index(y - side / 2, rows), self._index(y + side / 2, rows)
        t = self._table
        inside = t[r1, c1] - t[r0, c1] - t[r1, c0] + t[r0, c0]
        return inside * self.step**2 / side**2

    def has_data(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        rows, cols = self.data.shape
        col = np.floor(np.asarray(x) / self.step + 0.5).astype(np.int64)
        row = np.floor(np.asarray(y) / self.step + 0.5).astype(np.int64)
        ok = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
        result = np.zeros(np.shape(col), dtype=bool)
        result[ok] = self.data[row[ok], col[ok]]
        return result

    def sky_pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) field px of the mask pixels with data."""
        rows, cols = np.nonzero(self.data)
        return cols * self.step * 1.0, rows * self.step * 1.0

    def area_arcmin2(self) -> float:
        """The sky with data, square arcmin (a turned image's overlap fills only part of its bounding box)."""
        return float(np.count_nonzero(self.data)) * (self.step * self.field.pixel_deg * 60) ** 2

    def extent_arcmin(self) -> tuple[float, float]:
        """Width and height of the sky with data (its bounding box), arcmin."""
        x, y = self.sky_pixels()
        if not len(x):
            return 0.0, 0.0
        scale = self.field.pixel_deg * 60
        return ((x.max() - x.min() + self.step) * scale, (y.max() - y.min() + self.step) * scale)


def field_mask(field: FieldGrid, has_data: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> FieldMask:
    """The mask from `has_data(ra, dec)` (True where every survey has a value) at the grid's pixel centres."""
    step = max(1, math.ceil(max(field.width, field.height) / MAX_MASK_PX))
    ra, dec = field.pixel_centres(step)
    return FieldMask(field, step, np.asarray(has_data(ra, dec), dtype=bool).reshape(ra.shape))


@dataclass(frozen=True)
class Probes:
    """A lattice of cutout centres (field px) whose cutouts hold enough data, and the spacing."""

    x: np.ndarray
    y: np.ndarray
    spacing: float


def probes_for(mask: FieldMask, size: float, min_coverage: float) -> Probes:
    field = mask.field
    spacing = max(1.0, size / 32, math.sqrt(field.width * field.height / MAX_PROBES))
    ys, xs = np.mgrid[spacing / 2:field.height:spacing, spacing / 2:field.width:spacing]
    x, y = xs.ravel(), ys.ravel()
    keep = mask.has_data(x, y)
    if min_coverage > 0:
        keep &= mask.coverage(x, y, size + SCREEN_MARGIN_PX) >= min_coverage
    return Probes(x[keep], y[keep], spacing)


@dataclass(frozen=True)
class Layout:
    split: BlockSplit
    error: float  # sum over splits of |sky fraction - requested fraction|
    usable: int  # probes that some split can take (the rest fall in guard bands)


def _holding(mask: FieldMask, size: int, block: float, origin: tuple[float, float], rows: int, cols: int,
             half: float, min_coverage: float) -> np.ndarray:
    """Ids (row * cols + col) of the blocks that hold a whole cutout with its guard band and enough data:
    probed on a 5 x 5 lattice over where its centre may lie in the block (corners included)."""
    steps = np.linspace(0.0, 1.0, 5)
    r, c = np.divmod(np.arange(rows * cols), cols)
    span = block - 2 * half
    x = (origin[0] + c * block + half)[:, None, None] + span * steps[None, None, :]
    y = (origin[1] + r * block + half)[:, None, None] + span * steps[None, :, None]
    x, y = np.broadcast_arrays(x, y)
    ok = mask.has_data(x, y)
    if min_coverage > 0:
        ok &= mask.coverage(x, y, size + SCREEN_MARGIN_PX) >= min_coverage
    return np.flatnonzero(ok.reshape(rows * cols, -1).any(axis=1))


def _evaluate(mask: FieldMask, probes: Probes, sky: tuple[np.ndarray, np.ndarray], size: int, block: float,
              origin: tuple[float, float], fractions: tuple[float, float, float], seed: int, guard: bool,
              projection: str, min_coverage: float, guard_px: float) -> Layout | None:
    field = mask.field
    cols = math.ceil((field.width - 0.5 - origin[0]) / block)
    rows = math.ceil((field.height - 0.5 - origin[1]) / block)
    half = size / 2 + guard_px + SLACK_PX if guard else 0.0
    holding = _holding(mask, size, block, origin, rows, cols, half, min_coverage)
    if len(holding) < sum(f > 0 for f in fractions):
        return None

    def cell(x, y):
        return (np.floor((y - origin[1]) / block).astype(np.int64), np.floor((x - origin[0]) / block).astype(np.int64))

    sky_r, sky_c = cell(*sky)
    sky_ids = sky_r * cols + sky_c
    largest = SPLITS[int(np.argmax(fractions))]
    fixed = {int(b): largest for b in np.setdiff1d(np.unique(sky_ids), holding)}
    # every other split with a fraction first gets one holding block (seeded), then the greedy shares the rest
    others = [name for name, f in sorted(zip(SPLITS, fractions), key=lambda p: p[1]) if f > 0 and name != largest]
    fixed.update({int(b): name for b, name in zip(np.random.default_rng(seed).permutation(holding), others)})
    assigned = assign_cells(sky_ids, fractions, seed, fixed)
    labels = np.array([assigned.get(b, largest) for b in range(rows * cols)], dtype=object).reshape(rows, cols)
    given = set(labels.ravel()[holding].tolist())
    if any(f > 0 and name not in given for name, f in zip(SPLITS, fractions)):
        return None
    # the probes some split can take: the rest fall in guard bands between splits
    r0, c0 = cell(probes.x - half, probes.y - half)
    r1, c1 = cell(probes.x + half, probes.y + half)
    inside = (r0 >= 0) & (c0 >= 0) & (r1 < rows) & (c1 < cols)
    own = np.where(inside, labels[np.clip(r0, 0, rows - 1), np.clip(c0, 0, cols - 1)], "")
    for r, c in ((r0, c1), (r1, c0), (r1, c1)):
        other = np.where(inside, labels[np.clip(r, 0, rows - 1), np.clip(c, 0, cols - 1)], "")
        own = np.where(other == own, own, "")
    sky_split = labels[sky_r, sky_c]
    shares = {name: float(np.mean(sky_split == name)) for name in SPLITS}
    with_sky = np.unique(sky_ids)
    blocks = {name: int(np.sum(labels.ravel()[with_sky] == name)) for name in SPLITS}
    error = sum(abs(shares[name] - f) for name, f in zip(SPLITS, fractions))
    split = BlockSplit(field, block, origin, tuple(tuple(str(v) for v in row) for row in labels), guard_px, size,
                       projection, {"sky_fractions": {k: round(v, 4) for k, v in shares.items()},
                                    "blocks_with_sky": blocks})
    return Layout(split, error, int(np.count_nonzero(own)))


Verify = Callable[[BlockSplit], bool]  # whether the sampler itself finds room for every split's cutouts


def choose_blocks(mask: FieldMask, size: int, fractions: tuple[float, float, float], seed: int, min_coverage: float,
                  guard: bool = True, projection: str = "TAN", verify: Verify | None = None,
                  guard_px: float = GUARD_PX) -> BlockSplit | None:
    """The block layout whose splits' shares of the sky come closest to `fractions` (to 0.02), then the one
    that loses the least sky to guard bands, then the larger blocks, among those `verify` accepts; None when
    no block size gives every split with a fraction room for one whole cutout.

    Blocks are at least a cutout plus its guard bands wide, so each block can hold a cutout; blocks no whole
    cutout fits in (the field's ragged edge) go to the largest split, whose cutouts may reach into them.
    The mask's coverage is an estimate of its own (fast enough to try hundreds of layouts); `verify` asks the
    sampler's test, so that a layout whose only room lies where the mask alone sees data is not chosen.
    """
    probes = probes_for(mask, size, min_coverage)
    if not len(probes.x):
        return None
    sky = mask.sky_pixels()
    smallest = size + 2 * (guard_px + SLACK_PX) + 1 if guard else 8.0
    start_x, start_y = sky[0].min() - mask.step / 2, sky[1].min() - mask.step / 2  # the data's corner
    largest = max(sky[0].max() - start_x, sky[1].max() - start_y) + mask.step
    ranked = []
    block = smallest
    while block <= largest:
        for fx in ALIGNMENTS:
            for fy in ALIGNMENTS:
                # aligned on the data's corner, reaching back to the grid's edge by whole blocks
                origin = tuple(v - f * block - block * max(0, math.ceil((v - f * block + 0.5) / block))
                               for v, f in ((start_x, fx), (start_y, fy)))
                layout = _evaluate(mask, probes, sky, size, block, origin, fractions, seed, guard, projection,
                                   min_coverage, guard_px)
                if layout is not None:
                    ranked.append(((round(layout.error / 0.02), -layout.usable, -block, len(ranked)), layout))
        block *= SIZE_STEP
    for _, layout in sorted(ranked, key=lambda pair: pair[0]):
        if verify is None or verify(layout.split):
            layout.split.notes["sky_error"] = round(layout.error, 4)
            return layout.split
    return None


def largest_cutout(mask: FieldMask, size: int, fractions: tuple[float, float, float], seed: int,
                   min_coverage: float, guard: bool, verify: Verify | None = None, guard_px: float = GUARD_PX) -> int:
    """The largest cutout (px at the same pixel scale) below `size` for which some layout exists and passes
    `verify`; 0 if none of 8 px or more does."""
    def fits(cutout: int) -> bool:
        return choose_blocks(mask, cutout, fractions, seed, min_coverage, guard, verify=verify,
                             guard_px=guard_px) is not None

    low, high = 8, size - 1
    if low > high or not fits(low):
        return 0
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def too_small(mask: FieldMask, size: int, fractions: tuple[float, float, float], seed: int, min_coverage: float,
              guard: bool, verify: Verify | None = None, guard_px: float = GUARD_PX,
              finer_fits: Callable[[float], bool] | None = None) -> UserError:
    """One line (under 300 characters, so run_ablation shows it whole) with the numbers: the shared sky, the
    cutout, and the largest cutout that would work at this pixel scale, as the builder's --fov and --size and
    as run_ablation's --pixel_arcsec (the same advice through either route)."""
    width, height = mask.extent_arcmin()
    arcsec = mask.field.pixel_deg * 3600
    needed = sum(f > 0 for f in fractions)
    which = "train, val and test" if needed == 3 else f"{needed} splits"
    fit = largest_cutout(mask, size, fractions, seed, min_coverage, guard, verify, guard_px)
    head = (f"field too small for {which} apart: the surveys share {mask.area_arcmin2():.3g} sq arcmin of data in a "
            f"{width:.1f}' x {height:.1f}' box, a cutout "
            f"is {size * arcsec / 60:.2f}' ({size} px at {arcsec:.3g}\"/px)")
    if not fit:
        return UserError(head + "; not even 8 px cutouts fit: use larger images")
    advice = head + f"; at most {fit * arcsec / 60:.2f}' fits: use --size {fit} or less"
    finer = math.floor(fit * arcsec / size * 1000) / 1000  # rounded down, so that the advice holds
    for _ in range(FINER_TRIES):  # the same sky at another pixel scale has another guard band and room
        if finer_fits is None or finer_fits(finer):
            return UserError(advice + f", or a finer pixel scale at {size} px: --fov {finer * size / 3600:.6g} "
                             f"(run_ablation: --pixel_arcsec {finer:g})")
        finer = math.floor(finer * 0.97 * 1000) / 1000
    return UserError(advice)


def overlap(split: BlockSplit, boxes: np.ndarray, splits: np.ndarray) -> dict[str, dict]:
    """Per split: how many cutouts, how many disjoint cutouts' worth of sky they cover together, and how many
    of them cover each of those pixels on average."""
    field, size = split.field, split.size
    step = max(1, math.ceil(max(field.width, field.height) / 2048))  # counted on every step-th pixel
    result = {}
    for name in SPLITS:
        pick = boxes[splits == name]
        if not len(pick):
            continue
        depth = np.zeros((field.height // step + 1, field.width // step + 1), dtype=np.int32)
        for x0, x1, y0, y1 in pick:
            c0, c1 = (max(0, int(round((v + 0.5) / step))) for v in (x0, x1))
            r0, r1 = (max(0, int(round((v + 0.5) / step))) for v in (y0, y1))
            depth[r0:r1, c0:c1] += 1
        covered = int(np.count_nonzero(depth)) * step**2
        result[name] = {"cutouts": int(len(pick)), "disjoint_equivalent": round(covered / size**2, 2),
                        "mean_depth": round(float(depth.sum()) * step**2 / max(covered, 1), 2)}
    return result


def overlap_line(numbers: dict[str, dict]) -> str:
    names = list(numbers)
    cover = ", ".join(f"{name} {numbers[name]['cutouts']} over {numbers[name]['disjoint_equivalent']:g}"
                      for name in names)
    depth = ", ".join(f"{numbers[name]['mean_depth']:g}" for name in names)
    return (f"overlap: cutouts over the sky of how many disjoint ones: {cover} (a covered pixel lies in {depth} "
            f"cutouts of its split)")


def split_line(split: BlockSplit, healpix_order: int) -> str:
    """The run's one line about the choice."""
    counts = split.notes.get("blocks_with_sky") or split.block_counts()
    shares = split.notes.get("sky_fractions", {})
    arcmin = split.block_px * split.field.pixel_deg * 60
    parts = ", ".join(f"{name} {counts[name]} ({100 * shares.get(name, 0):.0f}%{' of the sky' if not i else ''})"
                      for i, name in enumerate(SPLITS))
    return (f"split: small field, so blocks of its own pixel grid (not HEALPix cells of order {healpix_order}): "
            f"{split.block_px:.0f} px ({arcmin:.2f}') blocks, {parts}; guard band {split.guard_px:g} px")
