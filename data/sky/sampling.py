"""Random or grid positions inside the area that every chosen survey covers."""
from __future__ import annotations

from typing import Callable

import numpy as np

from util.errors import UserError

from .footprint import Footprint
from .geometry import frame_to_icrs


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


def grid_candidates(footprints: list[Footprint | None], count: int, max_order: int = 12
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Centres of ICRS HEALPix cells inside the common area, at the first order that gives >= count."""
    import cdshealpix.nested as healpix

    ra = dec = np.array([])
    for order in range(0, max_order + 1):
        cells = np.arange(12 * 4**order, dtype=np.uint64)
        if len(cells) > 5_000_000:
            break
        lon, lat = healpix.healpix_to_lonlat(cells, order)
        inside = inside_all(footprints, lon.deg, lat.deg)
        ra, dec = lon.deg[inside], lat.deg[inside]
        if len(ra) >= 4 * count:
            break
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
