"""HEALPix tiles as pixel grids: tile pixel positions with a margin, tile lists, order choice.

A tile of order K and width W is a W x W block of the HEALPix cells of depth K + log2(W). In the
HEALPix projection plane of cdshealpix (x in [0, 8), y in [-2, 2]) every base cell is a square
diamond and its cells form a regular grid, so a tile's pixel centres are a linear function of
(row, col) there: row runs from the base cell's south vertex towards its east vertex, col towards
its west vertex (row = floor(dx W), col = floor(dy W) of cdshealpix's offsets, the IVOA HiPS 1.0
tile order). Extending that linear grid past the tile's edge gives the margin: inside a base cell,
and across the borders of the equatorial zone, margin pixels fall exactly on the neighbouring
tiles' pixel centres, so a generator sees the same context on both sides of a tile border.

Where the projection plane has cuts (the gaps between the polar "teeth" above |y| = 1), cdshealpix
clamps points onto the nearest tooth edge; there the margin continues the tile's own tooth
analytically instead (longitude stays linear in x at fixed y), which is the smooth continuation of
the tile's grid on the sphere. Past a pole (|y| >= 2) margin pixels sit on the pole. Both only
touch tiles within a few tiles of a base-cell corner at |lat| > 41.8 deg.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from util.errors import UserError

from .geometry import deinterleave, finest_needed_depth, hips_pixel_deg, interleave

MAX_ORDER = 29


@dataclass(frozen=True)
class TilePosition:
    """Base cell and the tile's (i, j) block inside it (i along the tile rows, j along the columns)."""

    base: np.ndarray
    i: np.ndarray
    j: np.ndarray


def tile_position(tiles, order: int) -> TilePosition:
    tiles = np.asarray(tiles, dtype=np.int64)
    i, j = deinterleave(tiles & ((1 << (2 * order)) - 1), order)
    return TilePosition(tiles >> (2 * order), i, j)


def tile_at(base, i, j, order: int) -> np.ndarray:
    return (np.asarray(base, dtype=np.int64) << (2 * order)) | interleave(i, j, order)


def base_cell_south_vertex(base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of each base cell's south vertex in the HEALPix plane (cell centre minus 1 in y)."""
    import cdshealpix.nested as healpix

    x, y = healpix.healpix_to_xy(np.asarray(base, dtype=np.uint64), 0, num_threads=1)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64) - 1.0


def tile_plane_coords(tiles, order: int, width: int, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """HEALPix-plane (x, y) of every pixel of each tile and its margin: arrays (T, S, S), S = W + 2 margin.

    Pixel [r, c] of the result is tile pixel (row r - margin, col c - margin).
    """
    pos = tile_position(tiles, order)
    sx, sy = base_cell_south_vertex(pos.base)
    side = float(width << order)  # cells along a base cell's side at the tile-pixel depth
    local = np.arange(-margin, width + margin, dtype=np.float64) + 0.5
    rows = pos.i[:, None, None] * width + local[None, :, None]
    cols = pos.j[:, None, None] * width + local[None, None, :]
    x = sx[:, None, None] + (rows - cols) / side
    y = sy[:, None, None] + (rows + cols) / side
    return x, y


def plane_to_lonlat(x: np.ndarray, y: np.ndarray, tooth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) in deg of HEALPix-plane points, continuing `tooth` (0-3, per point) across the polar cuts.

    tooth: the polar tooth whose analytic continuation to use where |y| > 1 (the tile's own tooth for a
    polar tile, else the one above or below the point).
    """
    import cdshealpix.nested as healpix

    x = np.mod(np.asarray(x, dtype=np.float64), 8.0)
    y = np.clip(np.asarray(y, dtype=np.float64), -2.0, 2.0)
    lon = np.empty(x.shape)
    lat = np.empty(x.shape)
    equatorial = np.abs(y) <= 1.0
    if equatorial.any():
        lo, la = healpix.xy_to_lonlat(x[equatorial], y[equatorial], num_threads=1)
        lon[equatorial], lat[equatorial] = lo.deg, la.deg
    polar = ~equatorial
    if polar.any():
        centre = 2.0 * np.asarray(tooth, dtype=np.float64)[polar] + 1.0
        yp = y[polar]
        _, la = healpix.xy_to_lonlat(centre, yp, num_threads=1)  # the tooth's axis: latitude of y
        offset = np.mod(x[polar] - centre + 4.0, 8.0) - 4.0
        with np.errstate(divide="ignore", invalid="ignore"):
            stretch = np.where(np.abs(yp) < 2.0, offset / (2.0 - np.abs(yp)), 0.0)
        lon[polar] = np.mod(45.0 * (centre + stretch), 360.0)
        lat[polar] = la.deg
    return lon, lat


def tile_pixel_lonlat(tiles, order: int, width: int, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) in deg in the HiPS frame of every pixel of each tile plus margin, arrays (T, S, S)."""
    tiles = np.atleast_1d(np.asarray(tiles, dtype=np.int64))
    x, y = tile_plane_coords(tiles, order, width, margin)
    base = tiles >> (2 * order)
    own = np.where(base < 4, base, np.where(base >= 8, base - 8, -1))  # polar tiles keep their tooth
    nearest = np.floor(np.mod(x, 8.0) / 2.0)
    tooth = np.where(own[:, None, None] >= 0, own[:, None, None], nearest)
    return plane_to_lonlat(x, y, tooth)


# ---- order and tile lists --------------------------------------------------------------------
def order_for_pixel(pixel_deg: float, tile_width: int) -> int:
    """Tile order whose pixels are no coarser than `pixel_deg` (within the cutout engine's tolerance,
    geometry.finest_needed_depth), for tiles of `tile_width` pixels.

    Not the nearest depth: a generated HiPS coarser than the model's training pixels loses detail the
    model makes. Measured on the bundled Galactic-centre field (J+H -> Ks model trained at 5"/px),
    the HiPS read back on the 60 test cutouts at 5"/px: r 0.861 from 6.4"/px tiles (the nearest
    depth), 0.939 from 3.2"/px tiles, and 0.937 for test.py on the cutouts themselves.
    """
    if not pixel_deg > 0:
        raise UserError(f"pixel scale {pixel_deg} deg is not positive")
    depth = finest_needed_depth(pixel_deg)
    order = depth - int(math.log2(tile_width))
    if order < 0:
        raise UserError(f"pixels of {pixel_deg * 3600:.1f}\" need HEALPix depth {depth}, "
                        f"below the tile width {tile_width} (order < 0); use a smaller --tile_width")
    if order > MAX_ORDER:
        raise UserError(f"pixels of {pixel_deg * 3600:.4f}\" need tile order {order} > {MAX_ORDER}")
    return order


def tile_pixel_deg(order: int, tile_width: int) -> float:
    return hips_pixel_deg(order + int(math.log2(tile_width)))


def region_tiles(ra: float, dec: float, radius_deg: float, order: int) -> np.ndarray:
    """Sorted tiles of `order` that overlap the cone (ICRS, deg)."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    import cdshealpix.nested as healpix

    ipix, _, _ = healpix.cone_search(Longitude(ra % 360.0, u.deg), Latitude(dec, u.deg), radius_deg * u.deg,
                                     order, flat=True)
    return np.unique(np.asarray(ipix, dtype=np.int64))


def tiles_under(lon: np.ndarray, lat: np.ndarray, order: int, width: int) -> np.ndarray:
    """Tiles whose pixels a bilinear resampling at (lon, lat) reads (also across tile borders)."""
    from .geometry import bilinear_lookup

    lookup = bilinear_lookup(lon, lat, order, width)
    tiles = np.unique(lookup.tiles[lookup.weights > 0])
    return tiles[tiles >= 0]


def same_cell_neighbour(tiles, order: int, axis: int) -> np.ndarray:
    """The next tile along rows (axis 0) or columns (axis 1) inside the same base cell, -1 at its edge.

    Inside a base cell the pixel grid runs on without a break, so tile A's last row and that tile's
    first row are neighbouring pixels (what a seam statistic compares).
    """
    pos = tile_position(tiles, order)
    i, j = (pos.i + 1, pos.j) if axis == 0 else (pos.i, pos.j + 1)
    inside = (i < (1 << order)) & (j < (1 << order))
    return np.where(inside, tile_at(pos.base, np.minimum(i, (1 << order) - 1),
                                    np.minimum(j, (1 << order) - 1), order), -1)
