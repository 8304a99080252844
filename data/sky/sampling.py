"""--sample: random or grid positions inside the area that every chosen survey covers, screened for
coverage, split by sky cell with exact quotas."""
from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np

from util.errors import UserError

from .footprint import Footprint
from .geometry import OutputGrid, frame_to_icrs
from .render import BuiltinRenderer, Renderer
from .split import SPLITS, assign_cells, cells_of, cells_serve, footprint_cells, straddles
from .targets import Target

log = logging.getLogger(__name__)


def _area(footprint: Footprint) -> float:
    return sum(len(cells) / 4.0**order for order, cells in footprint.cells.items())


def inside_all(footprints: list[Footprint | None], ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    inside = np.ones(np.shape(ra), dtype=bool)
    for footprint in footprints:
        if footprint is not None:
            inside &= footprint.contains(ra, dec)
    return inside


def draw_inside(footprint: Footprint, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` positions (ICRS deg) uniform inside a footprint."""
    import cdshealpix.nested as healpix

    order, cells = footprint.area_cells()
    # a random sub-cell centre `extra` levels down = a uniform position inside a random cell
    extra = min(10, 29 - order)
    picked = cells[rng.integers(0, len(cells), count)] * 4**extra + rng.integers(0, 4**extra, count)
    lon, lat = healpix.healpix_to_lonlat(picked.astype(np.uint64), order + extra)
    return frame_to_icrs(lon.deg, lat.deg, footprint.frame)


def check_common_area(labelled: list[tuple[str, Footprint | None]], probes: int = 4000) -> None:
    """A one-line error naming two surveys that share no sky (probed at positions drawn in the smaller)."""
    known = [(name, footprint) for name, footprint in labelled if footprint is not None]
    rng = np.random.default_rng(0)
    if len(known) < 2:
        return
    smallest = min((f for _, f in known), key=_area)
    if inside_all([f for _, f in known], *draw_inside(smallest, probes, rng)).any():
        return
    for index, (name_a, a) in enumerate(known):
        for name_b, b in known[index + 1:]:
            small, big = (a, b) if _area(a) <= _area(b) else (b, a)
            if not big.contains(*draw_inside(small, probes, rng)).any():
                raise UserError(f"surveys {name_a} and {name_b} have no sky area in common")
    raise UserError("the chosen surveys have no sky area common to all of them "
                    f"({', '.join(name for name, _ in known)})")


def random_candidates(footprints: list[Footprint | None], count: int, seed: int,
                      max_batches: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """`count` positions (ICRS deg) uniform over the common area, drawn from the smallest footprint."""
    rng = np.random.default_rng(seed)
    known = [f for f in footprints if f is not None]
    ras, decs, total = [], [], 0
    for _ in range(max_batches):
        batch = max(2 * count, 256)
        if known:
            ra, dec = draw_inside(min(known, key=_area), batch, rng)
        else:
            ra = rng.uniform(0, 360, batch)
            dec = np.degrees(np.arcsin(rng.uniform(-1, 1, batch)))
        keep = inside_all(footprints, ra, dec)
        ras.append(np.asarray(ra)[keep] % 360.0)
        decs.append(np.asarray(dec)[keep])
        total += int(keep.sum())
        if total >= count:
            break
    if total == 0:
        raise UserError("--sample: the chosen surveys have no sky area in common")
    return np.concatenate(ras)[:count], np.concatenate(decs)[:count]


def grid_candidates(footprints: list[Footprint | None], wanted: int, max_order: int = 14
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Centres of ICRS HEALPix cells inside the common area, at the first order that gives >= `wanted`.

    Only cells that can hold a centre are tested: those of the smallest ICRS footprint (a FITS image's MOC,
    an equatorial HiPS's tiles) when there is one, else the whole sky up to 5 million cells (order 9, 6.9')
    and beyond that the cells found at the previous order and their neighbours, so small fields (FITS
    images of a degree) still get a fine grid.
    """
    import cdshealpix.nested as healpix

    equatorial = [f for f in footprints if f is not None and f.frame == "equatorial"]
    seed = min(equatorial, key=_area) if equatorial else None
    ra = dec = np.array([])
    cells = np.arange(12, dtype=np.uint64)
    for order in range(0, max_order + 1):
        if seed is not None:
            cells = seed.cells_at(order).astype(np.uint64)
        lon, lat = healpix.healpix_to_lonlat(cells, order)
        inside = inside_all(footprints, lon.deg, lat.deg)
        ra, dec = lon.deg[inside], lat.deg[inside]
        if len(ra) >= wanted or order == max_order:
            break
        if seed is not None:
            continue
        if 12 * 4 ** (order + 1) <= 5_000_000:
            cells = np.arange(12 * 4 ** (order + 1), dtype=np.uint64)
            continue
        if not inside.any():
            break
        near = healpix.neighbours(cells[inside], order).ravel()
        parents = np.unique(near[near >= 0]).astype(np.uint64)
        cells = (parents[:, None] * np.uint64(4) + np.arange(4, dtype=np.uint64)).ravel()
    if len(ra) == 0:
        raise UserError("--sample: the chosen surveys have no sky area in common")
    return ra, dec


def pick(ra: np.ndarray, dec: np.ndarray, count: int, accept: Callable[[float, float], bool],
         spread: bool) -> list[tuple[float, float]]:
    """The first `count` candidates that `accept` (spread=True walks evenly through a grid list)."""
    if spread and len(ra) > count:
        step = len(ra) / count
        order = [int(i * step) for i in range(count)]
        first = set(order)
        order += [i for i in range(len(ra)) if i not in first]
    else:
        order = list(range(len(ra)))
    chosen = []
    for index in order:
        if accept(float(ra[index]), float(dec[index])):
            chosen.append((float(ra[index]), float(dec[index])))
            if len(chosen) == count:
                break
    return chosen


def split_quotas(count: int, fractions: tuple[float, float, float]) -> dict[str, int]:
    """Targets per split for --sample (largest remainders), so the fractions hold exactly."""
    raw = [count * f for f in fractions]
    quota = [int(math.floor(x)) for x in raw]
    for index in sorted(range(3), key=lambda i: raw[i] - quota[i], reverse=True)[:count - sum(quota)]:
        quota[index] += 1
    return dict(zip(SPLITS, quota))


def sampled_targets(config, spec, renderer, footprints, split_order: int,
                    adapt: bool = False) -> tuple[list[Target], dict[int, str], bool]:
    """--sample: positions inside every survey, screened for coverage and for straddling two splits, the
    cells' splits, and whether the cells serve the fractions (split.cells_serve).

    A grid too coarse to fill every split's quota (small fields, where the split guard drops many grid
    points near cell borders) is retried 4x and 16x denser. `adapt` (the automatic split order): cells that
    do not serve give no targets (the caller splits a small field in blocks instead, or asks again without
    `adapt` to keep the cells).
    """
    count = spec.sample
    screen = screening_renderer(renderer)
    if spec.sample_mode != "grid":
        ra, dec = random_candidates(footprints, max(40 * count, 2000), config.seed)
        return _pick_targets(config, spec, screen, ra, dec, split_order, adapt=adapt)
    for density in (4, 16, 64):
        chosen, cell_split, serves = _pick_targets(config, spec, screen, *grid_candidates(footprints, density * count),
                                                   split_order, warn=density == 64, adapt=adapt)
        if len(chosen) == count or not serves:
            break
    return chosen, cell_split, serves


def _pick_targets(config, spec, screen, ra, dec, split_order: int, warn: bool = True, adapt: bool = False):
    count = spec.sample
    if config.min_coverage > 0:
        # screen in batches and stop once there are plenty (remote surveys fetch tiles to screen)
        usable = np.zeros(len(ra), dtype=bool)
        step = max(4 * count, 500)
        for start in range(0, len(ra), step):
            part = slice(start, start + step)
            estimate = screen.estimate_coverage_many(ra[part], dec[part], config.fov, config.size).min(axis=1)
            usable[part] = estimate >= config.min_coverage
            if spec.sample_mode != "grid" and usable.sum() >= 6 * count:
                usable[start + step:] = False
                break
        ra, dec = ra[usable], dec[usable]
    cells = cells_of(ra, dec, split_order)
    # weight cells by the candidates whose whole field stays inside them: those can never be dropped
    # by the split guard, so every split can fill its quota
    interior = np.array([len(set(footprint_cells(r, d, config.fov, 1.0, split_order).tolist()) - {c}) == 0
                         for r, d, c in zip(ra.tolist(), dec.tolist(), cells.tolist())], dtype=bool)
    cell_split = assign_cells(cells[interior] if interior.any() else cells, config.split, config.seed)
    serves = cells_serve(cells[interior], cell_split, config.split) or not adapt
    if not serves:
        return [], cell_split, False
    cell_of = dict(zip(zip(ra.tolist(), dec.tolist()), cells.tolist()))
    quota = split_quotas(count, config.split)
    taken = {name: 0 for name in quota}

    def accept(r: float, d: float) -> bool:
        split = cell_split.get(cell_of[(r, d)])
        if split is None or taken[split] >= quota[split]:
            return False
        if config.split_guard and straddles(r, d, config.fov, 1.0, split_order, cell_split):
            return False
        if config.min_coverage > 0:
            grid = OutputGrid(r, d, config.fov, config.size, config.size, config.projection)
            if min(screen.estimate_coverage(grid)) < config.min_coverage:
                return False
        taken[split] += 1
        return True

    chosen = pick(ra, dec, count, accept, spread=spec.sample_mode == "grid")
    if len(chosen) < count and warn:
        log.warning("--sample %d: only %d positions pass coverage %.2f and the split guard",
                    count, len(chosen), config.min_coverage)
    return [Target(f"sample_{i:05d}", r, d) for i, (r, d) in enumerate(chosen)], cell_split, serves


def screening_renderer(renderer: Renderer) -> BuiltinRenderer:
    """The built-in engines screen candidate positions whatever the backend (cheap, local decisions)."""
    return renderer if isinstance(renderer, BuiltinRenderer) else BuiltinRenderer(renderer.engines)
