"""Write a HiPS 1.0 tree of one float band: FITS + PNG tiles, properties, MOC.

Tile arrays are (W, W) in the HiPS pixel order of JPEG/PNG tiles (row = floor(dx W), col =
floor(dy W)); FITS tiles store rows bottom-up, so they are flipped on writing (tiles.py flips them
back on reading). NaN is "no data": NaN in the float32 FITS tile, transparent in the PNG. Every
file is written atomically; a tile's PNG is written last and marks it done.
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from util.fileio import atomic_write_bytes, atomic_write_text

from .source import tile_path
from .tiles import decode_tile

TILE_FORMATS = ("fits", "png")


@dataclass(frozen=True)
class DisplayStretch:
    """Physical value -> PNG level 0..255, the same for every tile so tiles join without seams.

    linear: 255 (x - low) / (high - low); asinh: 255 asinh((x - low)/s) / asinh((high - low)/s).
    Levels outside [0, 255] are clipped when encoded.
    """

    mode: str = "linear"
    low: float = 0.0
    high: float = 255.0
    softening: float = 1.0

    def levels(self, values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        if self.mode == "asinh":
            return 255.0 * np.arcsinh((x - self.low) / self.softening) / math.asinh((self.high - self.low)
                                                                                   / self.softening)
        return 255.0 * (x - self.low) / (self.high - self.low)

    def as_dict(self) -> dict:
        return {"mode": self.mode, "low": self.low, "high": self.high, "softening": self.softening}


def spread_stretch(values: np.ndarray) -> DisplayStretch:
    """Display of an uncertainty map: asinh from 0 to its 99.5th percentile, softened at its median.

    A std is known only once computed (dropout spreads are a few % of the error before calibration,
    and range over two decades from sky to stars), so its PNG levels come from the values themselves;
    the FITS tiles hold the numbers."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if not finite.size:
        return DisplayStretch("linear", 0.0, 1.0)
    median, high = (float(v) for v in np.percentile(finite, [50.0, 99.5]))
    return DisplayStretch("asinh", 0.0, max(high, 2 * median), median)


# ---- tiles -----------------------------------------------------------------------------------
def fits_tile_bytes(values: np.ndarray) -> bytes:
    """A float32 FITS tile (no date or other run-dependent cards: same input, same bytes)."""
    from astropy.io import fits

    data = np.ascontiguousarray(np.asarray(values, dtype=np.float32)[::-1])
    buffer = io.BytesIO()
    fits.PrimaryHDU(data).writeto(buffer)
    return buffer.getvalue()


def png_tile_bytes(levels: np.ndarray) -> bytes:
    """Grey PNG with alpha: NaN pixels are transparent (HiPS 'no data'). zlib level 3: on 512 px sky tiles
    4x faster than level 6 for files 1-2% larger; at 6 the PNG took as long as a third of the generator's
    time per tile, and the writer thread competed with rendering for the cores."""
    from PIL import Image

    valid = np.isfinite(levels)
    grey = np.rint(np.clip(np.where(valid, levels, 0.0), 0, 255)).astype(np.uint8)
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(np.stack([grey, alpha], axis=-1)), mode="LA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def write_tile(root: Path, order: int, ipix: int, values: np.ndarray, stretch: DisplayStretch) -> None:
    """FITS first, PNG last: a PNG on disk means the tile is complete."""
    atomic_write_bytes(root / tile_path(order, ipix, "fits"), fits_tile_bytes(values))
    atomic_write_bytes(root / tile_path(order, ipix, "png"), png_tile_bytes(stretch.levels(values)))


def rewrite_png(root: Path, order: int, ipix: int, stretch: DisplayStretch) -> None:
    """A tile's PNG again from its FITS tile, with another display stretch."""
    values = read_fits_tile(root, order, ipix)
    atomic_write_bytes(root / tile_path(order, ipix, "png"), png_tile_bytes(stretch.levels(values)))


def read_fits_tile(root: Path, order: int, ipix: int) -> np.ndarray | None:
    """A written tile back as (W, W) float32 in tile order, None when absent."""
    path = root / tile_path(order, ipix, "fits")
    if not path.is_file():
        return None
    return decode_tile(path.read_bytes(), "fits")[..., 0].astype(np.float32, copy=False)


def tile_done(root: Path, order: int, ipix: int) -> bool:
    return (root / tile_path(order, ipix, "png")).is_file() and (root / tile_path(order, ipix, "fits")).is_file()


def written_tiles(root: Path, order: int) -> np.ndarray:
    """Sorted tiles of `order` whose PNG (the done marker) and FITS are both on disk."""
    pattern = re.compile(r"^Npix(\d+)\.png$")
    found = []
    for folder in (root / f"Norder{order}").glob("Dir*"):
        for file in folder.iterdir():
            match = pattern.match(file.name)
            if match and file.with_suffix(".fits").is_file():
                found.append(int(match.group(1)))
    return np.unique(np.array(found, dtype=np.int64))


def tile_targets(root: Path, order: int, tiles) -> list[Path]:
    """Every file (all TILE_FORMATS) of these tiles, as util.fileio.remove_stale_temps takes them."""
    return [root / tile_path(order, int(ipix), fmt) for ipix in tiles for fmt in TILE_FORMATS]


# ---- MOC and properties ----------------------------------------------------------------------
def moc_of_tiles(tiles, order: int):
    """mocpy MOC of exactly these tiles."""
    from mocpy import MOC

    tiles = np.asarray(tiles, dtype=np.uint64)
    return MOC.from_healpix_cells(tiles, np.full(tiles.shape, order, dtype=np.uint8), order)


def write_moc(root: Path, tiles, order: int) -> float:
    """Moc.fits (IVOA MOC 1.1 NUNIQ, which every HiPS client reads); returns the sky fraction."""
    moc = moc_of_tiles(tiles, order)
    buffer = io.BytesIO()
    moc.serialize("fits", v1_compatible=True).writeto(buffer)
    atomic_write_bytes(root / "Moc.fits", buffer.getvalue())
    return float(moc.sky_fraction)


def read_moc_cells(path: Path) -> tuple[int, np.ndarray]:
    """(MOC order, its cells at that order) of a Moc.fits (tests and checks)."""
    from mocpy import MOC

    moc = MOC.from_fits(str(path))
    return int(moc.max_order), np.asarray(moc.flatten(), dtype=np.int64)


def properties_text(values: dict[str, object]) -> str:
    """`key = value` lines, keys padded as HipsGen writes them; newlines in values become spaces."""
    lines = []
    for key, value in values.items():
        text = " ".join(str(value).split())
        lines.append(f"{key:<20} = {text}")
    return "\n".join(lines) + "\n"


def write_properties(root: Path, values: dict[str, object]) -> Path:
    return atomic_write_text(root / "properties", properties_text(values))


def initial_view(tiles, order: int) -> tuple[float, float, float]:
    """(ra, dec, fov) framing the tiles: the mean direction of their centres and twice the largest
    distance from it (at least 4 tile widths), for hips_initial_*."""
    import astropy.units as u
    import cdshealpix.nested as healpix

    lon, lat = healpix.healpix_to_lonlat(np.asarray(tiles, dtype=np.uint64), order, num_threads=1)
    lon_r, lat_r = lon.to_value(u.rad), lat.to_value(u.rad)
    vectors = np.stack([np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)])
    mean = vectors.mean(axis=1)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-9:
        return 0.0, 0.0, 180.0
    centre = mean / norm
    ra = math.degrees(math.atan2(centre[1], centre[0])) % 360.0
    dec = math.degrees(math.asin(max(-1.0, min(1.0, centre[2]))))
    spread = math.degrees(float(np.arccos(np.clip(centre @ vectors, -1.0, 1.0)).max()))
    tile_deg = math.degrees(math.sqrt(4 * math.pi / (12 * 4**order)))
    return ra, dec, min(180.0, max(2 * spread + tile_deg, 4 * tile_deg))
