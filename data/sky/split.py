"""Train/val/test split by sky region: the HEALPix cell of each centre, so neighbours share a split.

A target whose footprint reaches into a cell of another split would overlap that split's cutouts;
`straddles` finds those so the builder can drop them (the split guard).
"""
from __future__ import annotations

import math

import numpy as np

from util.errors import UserError

from .geometry import HEALPIX_CELL_DEG

SPLITS = ("train", "val", "test")


def parse_fractions(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' -> fractions that sum to 1."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise UserError(f"--split {text}: three numbers like 0.8,0.1,0.1") from None
    if len(parts) != 3 or any(p < 0 or not math.isfinite(p) for p in parts) or sum(parts) <= 0:
        raise UserError(f"--split {text}: three non-negative numbers like 0.8,0.1,0.1")
    total = sum(parts)
    return tuple(p / total for p in parts)  # type: ignore[return-value]


def auto_split_order(fov_deg: float) -> int:
    """Finest HEALPix order whose cells are at least 4x the field, so most cutouts sit well inside one."""
    order = math.floor(math.log2(HEALPIX_CELL_DEG / (4 * fov_deg)))
    return int(min(max(order, 0), 12))


HEALPIX_SHARE_TOLERANCE = 0.4  # sum over splits of |share - fraction| that HEALPix cells may miss by


def cells_serve(cells: np.ndarray, cell_split: dict[int, str], fractions: tuple[float, float, float]) -> bool:
    """Whether HEALPix cells split a field well enough: every split with a fraction gets some of `cells` (the
    cells of candidates whose whole field lies in one cell), and the shares miss the fractions by at most
    HEALPIX_SHARE_TOLERANCE in all. A field of one to four cells fails (a pointed field of a few arcminutes);
    the 1 deg Galactic-centre field passes (shares 0.79/0.05/0.17 for seed 0; sums 0.14-0.19 over seeds
    0-7), so it keeps its cells."""
    cells = np.asarray(cells, dtype=np.int64)
    if not len(cells):
        return False
    splits = np.array([cell_split.get(int(cell), "") for cell in cells])
    shares = [float(np.mean(splits == name)) for name in SPLITS]
    if any(f > 0 and share == 0 for f, share in zip(fractions, shares)):
        return False
    return sum(abs(share - f) for share, f in zip(shares, fractions)) <= HEALPIX_SHARE_TOLERANCE


def cells_of(ra: np.ndarray, dec: np.ndarray, order: int) -> np.ndarray:
    """Nested ICRS HEALPix cell of each position."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    import cdshealpix.nested as healpix

    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64)) % 360.0
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    return healpix.lonlat_to_healpix(Longitude(ra * u.deg), Latitude(dec * u.deg), order).astype(np.int64)


def assign_cells(cells: np.ndarray, fractions: tuple[float, float, float], seed: int,
                 fixed: dict[int, str] | None = None) -> dict[int, str]:
    """Give each cell a split so the target counts follow the fractions; cell order is seeded-random.

    Greedy: each cell (in shuffled order) joins the split furthest below its share so far. `fixed`:
    cells whose split an earlier run decided (they keep it and count first; '' = no split, see
    `earlier_cells`).
    """
    unique, counts = np.unique(np.asarray(cells, dtype=np.int64), return_counts=True)
    fixed = fixed or {}
    assigned = np.zeros(3)
    result: dict[int, str] = dict(fixed)
    for cell, weight in zip(unique, counts):
        if fixed.get(int(cell)) in SPLITS:
            assigned[SPLITS.index(fixed[int(cell)])] += weight
    free = np.array([int(cell) not in fixed for cell in unique], dtype=bool)
    unique, counts = unique[free], counts[free]
    order = np.random.default_rng(seed).permutation(len(unique))
    for index in order:
        weight = counts[index]
        deficit = np.array(fractions) * (assigned.sum() + weight) - assigned
        deficit[np.array(fractions) == 0] = -np.inf
        choice = int(np.argmax(deficit))
        assigned[choice] += weight
        result[int(unique[index])] = SPLITS[choice]
    return result


def earlier_cells(rows: list[dict], order: int, fov_deg: float, guard: bool) -> dict[int, str]:
    """Cells an earlier run's targets fix: each one's own cell, and (with the split guard) the cells its
    field reaches, so a new target there cannot overlap it from another split; a cell reached from two
    splits gets '' (no split: the guard drops targets there)."""
    if not rows:
        return {}
    ras = np.array([float(r["ra"]) for r in rows])
    decs = np.array([float(r["dec"]) for r in rows])
    fixed = {int(cell): row["split"] for cell, row in zip(cells_of(ras, decs, order), rows)}
    if guard:
        reached: dict[int, set[str]] = {}
        for ra, dec, row in zip(ras.tolist(), decs.tolist(), rows):
            for cell in footprint_cells(ra, dec, float(row.get("fov") or fov_deg), 1.0, order).tolist():
                if cell not in fixed:
                    reached.setdefault(cell, set()).add(row["split"])
        fixed.update({cell: splits.pop() if len(splits) == 1 else "" for cell, splits in reached.items()})
    return fixed


def footprint_cells(ra: float, dec: float, fov_deg: float, aspect: float, order: int) -> np.ndarray:
    """Cells at `order` touched by the disc that holds a square-ish cutout (half-diagonal radius)."""
    import astropy.units as u
    from astropy.coordinates import Angle, Latitude, Longitude
    import cdshealpix.nested as healpix

    radius = 0.5 * fov_deg * math.hypot(1.0, aspect)
    ipix, depth, _ = healpix.cone_search(Longitude(ra % 360.0, u.deg), Latitude(dec, u.deg),
                                         Angle(radius, u.deg), order, flat=True)
    return np.asarray(ipix, dtype=np.int64)


def straddles(ra: float, dec: float, fov_deg: float, aspect: float, order: int,
              cell_split: dict[int, str]) -> bool:
    """True when the footprint touches a cell that belongs to a different split."""
    own = cell_split.get(int(cells_of(ra, dec, order)[0]))
    for cell in footprint_cells(ra, dec, fov_deg, aspect, order):
        other = cell_split.get(int(cell))
        if other is not None and other != own:
            return True
    return False


OUTSIDE = "outside"  # sky that no cutout of the dataset touches
MIXED = "mixed"  # cells that cutouts of several splits touch


def split_sky_cells(rows: list[dict], order: int, fov_deg: float) -> dict[int, str]:
    """The split of every cell at `order` that a dataset's cutouts touch (their footprint discs, as the
    split guard draws them): the one split whose cutouts reach it, or MIXED when several do. So a 'val'
    or 'test' cell holds no pixel of a training cutout, whatever the guard setting was."""
    reached: dict[int, set[str]] = {}
    for row in rows:
        cells = footprint_cells(float(row["ra"]), float(row["dec"]), float(row.get("fov") or fov_deg), 1.0, order)
        for cell in cells.tolist():
            reached.setdefault(int(cell), set()).add(row.get("split") or MIXED)
    return {cell: splits.pop() if len(splits) == 1 else MIXED for cell, splits in reached.items()}


def split_of_positions(ra: np.ndarray, dec: np.ndarray, cells: dict[int, str], order: int) -> np.ndarray:
    """The split label (split_sky_cells, else OUTSIDE) of each ICRS position, same shape."""
    shape = np.shape(ra)
    found = cells_of(np.ravel(ra), np.ravel(dec), order)
    lookup = np.array([cells.get(int(cell), OUTSIDE) for cell in np.unique(found)], dtype=object)
    labels = lookup[np.searchsorted(np.unique(found), found)] if found.size else np.array([], dtype=object)
    return labels.astype(str).reshape(shape)
