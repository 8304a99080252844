"""Pure geometry: the output pixel grid, frames, HiPS order choice and HEALPix sub-pixel lookups.

Image arrays are top row first (north up, east left), as in the PNG files; FITS writers flip them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

PROJECTIONS = ("TAN", "SIN", "ARC", "STG", "ZEA", "CAR", "AIT")
HEALPIX_CELL_DEG = math.degrees(math.sqrt(4 * math.pi / 12))  # side of an order-0 cell, about 58.6 deg


@dataclass(frozen=True)
class OutputGrid:
    """Centre (ICRS deg), full width in deg, size in px, projection; square pixels, north up."""

    ra: float
    dec: float
    fov: float
    width: int
    height: int
    projection: str = "TAN"

    @property
    def pixel_deg(self) -> float:
        return self.fov / self.width


def make_wcs(grid: OutputGrid):
    """astropy WCS of the grid in FITS convention (pixel 1 at the bottom-left, centre at (N+1)/2)."""
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = [f"RA---{grid.projection}", f"DEC--{grid.projection}"]
    wcs.wcs.crval = [grid.ra, grid.dec]
    wcs.wcs.crpix = [(grid.width + 1) / 2, (grid.height + 1) / 2]
    wcs.wcs.cdelt = [-grid.pixel_deg, grid.pixel_deg]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    return wcs


ZENITHAL = ("TAN", "SIN", "ARC", "STG", "ZEA")


def wcs_pixel_sky_coords(grid: OutputGrid) -> tuple[np.ndarray, np.ndarray]:
    """ICRS (ra, dec) in deg of every pixel centre by astropy WCS, arrays (height, width), row 0 = north."""
    wcs = make_wcs(grid)
    cols, rows = np.meshgrid(np.arange(grid.width, dtype=np.float64),
                             np.arange(grid.height, dtype=np.float64))
    fits_y = grid.height - 1 - rows  # 0-based FITS row counts from the bottom
    ra, dec = wcs.wcs_pix2world(cols, fits_y, 0)
    return ra, dec


@lru_cache(maxsize=16)
def _pixel_vectors_at_origin(fov: float, width: int, height: int, projection: str) -> np.ndarray:
    """Unit vectors (3, H*W) of the pixel centres of a grid centred on (0, 0), from astropy WCS."""
    ra, dec = wcs_pixel_sky_coords(OutputGrid(0.0, 0.0, fov, width, height, projection))
    return _unit_vectors(ra.ravel(), dec.ravel())


def centre_rotation(ra: float, dec: float) -> np.ndarray:
    """Rotation taking (0, 0) to (ra, dec) and keeping north up: Rz(ra) . Ry(-dec).

    For zenithal projections (native pole at the reference point, LONPOLE = 180) a grid centred anywhere
    is this rotation of the grid centred on (0, 0); checked against astropy WCS in the tests.
    """
    a, d = np.radians(ra), np.radians(dec)
    rz = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[np.cos(d), 0.0, -np.sin(d)], [0.0, 1.0, 0.0], [np.sin(d), 0.0, np.cos(d)]])
    return rz @ ry


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon_r, lat_r = np.radians(lon), np.radians(lat)
    cos_lat = np.cos(lat_r)
    return np.stack([cos_lat * np.cos(lon_r), cos_lat * np.sin(lon_r), np.sin(lat_r)])


def _lonlat(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.degrees(np.arctan2(vectors[1], vectors[0])) % 360.0,
            np.degrees(np.arcsin(np.clip(vectors[2], -1.0, 1.0))))


def pixel_frame_coords(grid: OutputGrid, frame: str = "equatorial") -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) in deg in `frame` of every pixel centre, arrays (height, width), row 0 = north.

    Zenithal grids rotate a cached origin grid (one matrix product per target instead of a WCS
    evaluation and a frame conversion); other projections go through astropy WCS.
    """
    if grid.projection not in ZENITHAL:
        ra, dec = wcs_pixel_sky_coords(grid)
        return icrs_to_frame(ra, dec, frame) if frame != "equatorial" else (ra, dec)
    rotation = centre_rotation(grid.ra, grid.dec)
    if frame != "equatorial":
        rotation = icrs_rotation(frame) @ rotation
    vectors = rotation @ _pixel_vectors_at_origin(grid.fov, grid.width, grid.height, grid.projection)
    lon, lat = _lonlat(vectors)
    return lon.reshape(grid.height, grid.width), lat.reshape(grid.height, grid.width)


def pixel_sky_coords(grid: OutputGrid) -> tuple[np.ndarray, np.ndarray]:
    """ICRS (ra, dec) in deg of every pixel centre, arrays (height, width), row 0 = north."""
    return pixel_frame_coords(grid, "equatorial")


@lru_cache(maxsize=2)
def icrs_rotation(frame: str) -> np.ndarray:
    """3x3 matrix taking ICRS unit vectors to `frame` unit vectors, obtained from astropy once.

    ICRS -> Galactic is a fixed rotation; applying it with numpy is ~10x faster than SkyCoord per cutout.
    """
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    axes = SkyCoord(ra=[0.0, 90.0, 0.0] * u.deg, dec=[0.0, 0.0, 90.0] * u.deg, frame="icrs")  # x, y, z
    converted = axes.transform_to(frame).cartesian
    return np.stack([converted.x.value, converted.y.value, converted.z.value])  # columns = images of axes


def _rotate(lon: np.ndarray, lat: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shape = np.shape(lon)
    lon_out, lat_out = _lonlat(matrix @ _unit_vectors(np.ravel(lon), np.ravel(lat)))
    return lon_out.reshape(shape), lat_out.reshape(shape)


def icrs_to_frame(ra: np.ndarray, dec: np.ndarray, frame: str) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes/latitudes in the survey frame ('equatorial' = ICRS, or 'galactic')."""
    if frame == "equatorial":
        return ra, dec
    return _rotate(np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64), icrs_rotation(frame))


def frame_to_icrs(lon: np.ndarray, lat: np.ndarray, frame: str) -> tuple[np.ndarray, np.ndarray]:
    if frame == "equatorial":
        return lon, lat
    return _rotate(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), icrs_rotation(frame).T)


def hips_pixel_deg(depth: int) -> float:
    """Mean pixel size of HEALPix depth `depth` (= tile order + log2(tile width))."""
    return HEALPIX_CELL_DEG / 2**depth


ORDER_TOLERANCE = 1.2


def finest_needed_depth(pixel_deg: float) -> int:
    """Smallest HEALPix depth whose pixels are at most ORDER_TOLERANCE x the output pixels.

    The tolerance keeps a 51.5" output on 51.53" order-3 pixels instead of fetching 4x the tiles.
    """
    return max(0, math.ceil(math.log2(HEALPIX_CELL_DEG / (ORDER_TOLERANCE * pixel_deg)) - 1e-9))


def choose_tile_order(pixel_deg: float, tile_width: int, min_order: int, max_order: int) -> int:
    """Tile order whose pixels match the output pixels, clamped to the orders the survey has."""
    order = finest_needed_depth(pixel_deg) - int(math.log2(tile_width))
    return int(min(max(order, min_order), max_order))


def deinterleave(values: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Nested index bits -> (even bits, odd bits): the (row-like, col-like) position in a base cell."""
    values = np.asarray(values, dtype=np.int64)
    even = np.zeros_like(values)
    odd = np.zeros_like(values)
    for bit in range(bits):
        even |= ((values >> (2 * bit)) & 1) << bit
        odd |= ((values >> (2 * bit + 1)) & 1) << bit
    return even, odd


def interleave(even: np.ndarray, odd: np.ndarray, bits: int) -> np.ndarray:
    even = np.asarray(even, dtype=np.int64)
    odd = np.asarray(odd, dtype=np.int64)
    out = np.zeros(np.broadcast(even, odd).shape, dtype=np.int64)
    for bit in range(bits):
        out |= ((even >> bit) & 1) << (2 * bit)
        out |= ((odd >> bit) & 1) << (2 * bit + 1)
    return out


@lru_cache(maxsize=8)
def zorder_rows_cols(tile_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column in a tile of each nested sub-pixel index (bit 0 -> row, bit 1 -> col, and so on).

    Matches cdshealpix offsets: a sub-pixel's centre has dx = (row + 0.5)/W, dy = (col + 0.5)/W
    (checked in the tests against lonlat_to_healpix(return_offsets=True)).
    """
    rows, cols = deinterleave(np.arange(tile_width * tile_width, dtype=np.int64), int(math.log2(tile_width)))
    return rows.astype(np.int32), cols.astype(np.int32)


@lru_cache(maxsize=8)
def zorder_pixel_index(tile_width: int) -> np.ndarray:
    """row * W + col of each nested sub-pixel index (one table lookup instead of two)."""
    rows, cols = zorder_rows_cols(tile_width)
    return rows.astype(np.intp) * tile_width + cols


@dataclass(frozen=True)
class BilinearLookup:
    """For N sky positions, the 4 surrounding sub-pixel centres: tile number, pixel in tile and weight."""

    tiles: np.ndarray  # (N, 4) int64, -1 where the position is invalid
    pixels: np.ndarray  # (N, 4) row * W + col inside the tile
    weights: np.ndarray  # (N, 4) float32


def bilinear_lookup(lon: np.ndarray, lat: np.ndarray, order: int, tile_width: int) -> BilinearLookup:
    """cdshealpix bilinear interpolation at the tile-pixel depth, split into tile and in-tile pixel.

    Working at depth order + log2(W) lets cdshealpix find neighbours across tile borders for us.
    """
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    import cdshealpix.nested as healpix

    bits = int(math.log2(tile_width))
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lat = np.asarray(lat, dtype=np.float64).ravel()
    finite = np.isfinite(lon) & np.isfinite(lat)
    all_finite = bool(finite.all())
    if not all_finite:
        lon = np.where(finite, lon, 0.0)
        lat = np.where(finite, lat, 0.0)
    ipix, weights = healpix.bilinear_interpolation(Longitude(lon, u.deg, copy=False),
                                                   Latitude(np.clip(lat, -90.0, 90.0), u.deg, copy=False),
                                                   order + bits, num_threads=1)
    mask = np.ma.getmask(ipix)
    ipix = np.ma.getdata(ipix).astype(np.int64, copy=False)
    weights = np.ma.getdata(weights).astype(np.float32)
    tiles = ipix >> (2 * bits)
    pixels = zorder_pixel_index(tile_width)[ipix & ((1 << (2 * bits)) - 1)]
    invalid = None if mask is np.ma.nomask else np.asarray(mask)
    if not all_finite:
        invalid = ~finite[:, None] if invalid is None else invalid | ~finite[:, None]
    if invalid is not None and invalid.any():
        tiles = np.where(invalid, -1, tiles)
        weights = np.where(invalid, np.float32(0), weights)
    return BilinearLookup(tiles, pixels, weights)


def nearest_tile_pixel(lon: float, lat: float, order: int, tile_width: int) -> tuple[int, int, int]:
    """(tile, row, col) of the tile pixel holding one position, from cdshealpix offsets (HiPS 1.0 order)."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    import cdshealpix.nested as healpix

    tile, dx, dy = healpix.lonlat_to_healpix(Longitude([lon] * u.deg), Latitude([lat] * u.deg), order,
                                             return_offsets=True)
    return int(tile[0]), int(math.floor(dx[0] * tile_width)), int(math.floor(dy[0] * tile_width))


def tile_pixel_sky(tile: int, row: int, col: int, order: int, tile_width: int) -> tuple[float, float]:
    """Survey-frame (lon, lat) of the centre of a tile pixel (inverse of nearest_tile_pixel)."""
    import cdshealpix.nested as healpix

    lon, lat = healpix.healpix_to_lonlat(np.array([tile], dtype=np.uint64), order,
                                         dx=(row + 0.5) / tile_width, dy=(col + 0.5) / tile_width)
    return float(lon.deg[0]), float(lat.deg[0])
