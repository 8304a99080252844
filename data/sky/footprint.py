"""Where a survey has tiles: the tiles present in a local HiPS, or the survey's Moc.fits when remote."""
from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

import numpy as np

from .geometry import icrs_to_frame
from .properties import TILE_EXTENSIONS
from .source import Survey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Footprint:
    """HEALPix cells (survey frame) per order; a position is inside when its cell at some order is listed."""

    frame: str
    cells: dict[int, np.ndarray]  # order -> sorted cell numbers

    def contains(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        import astropy.units as u
        from astropy.coordinates import Latitude, Longitude
        import cdshealpix.nested as healpix

        lon, lat = icrs_to_frame(np.atleast_1d(ra), np.atleast_1d(dec), self.frame)
        inside = np.zeros(np.shape(lon), dtype=bool)
        finest = max(self.cells)
        # one lookup at the finest order; a coarser cell number is the finer one shifted (nested scheme)
        fine = healpix.lonlat_to_healpix(Longitude(np.asarray(lon) % 360 * u.deg), Latitude(lat * u.deg),
                                         finest).astype(np.int64)
        for order, cells in self.cells.items():
            inside |= np.isin(fine >> (2 * (finest - order)), cells)
        return inside

    def cells_at(self, order: int) -> np.ndarray:
        """Cells at `order` that hold some of the footprint: descendants of coarser listed cells,
        ancestors of finer ones (sorted)."""
        parts = []
        for listed, cells in self.cells.items():
            if listed <= order:
                parts.append((cells[:, None] * 4 ** (order - listed) + np.arange(4 ** (order - listed))).ravel())
            else:
                parts.append(cells >> (2 * (listed - order)))
        return np.unique(np.concatenate(parts))

    def area_cells(self) -> tuple[int, np.ndarray]:
        """All listed cells expressed at the finest listed order (used to draw random positions)."""
        finest = max(self.cells)
        return finest, self.cells_at(finest)


def local_tiles(survey: Survey, tile_format: str) -> Footprint | None:
    """Tiles present in a local HiPS at its lowest order (the order every cutout can fall back on)."""
    if survey.local_root is None:
        return None
    order = survey.lowest_order
    ext = TILE_EXTENSIONS[tile_format]
    pattern = re.compile(rf"^Npix(\d+)\.{ext}$")
    found = []
    for folder in (survey.local_root / f"Norder{order}").glob("Dir*"):
        for file in folder.iterdir():
            match = pattern.match(file.name)
            if match:
                found.append(int(match.group(1)))
    return Footprint(survey.properties.frame, {order: np.unique(np.array(found, dtype=np.int64))})


def parse_moc_fits(data: bytes, frame: str) -> Footprint:
    """An IVOA MOC 1.x FITS file (NUNIQ column) as a Footprint."""
    from astropy.io import fits

    with fits.open(io.BytesIO(data), memmap=False) as hdul:
        uniq = np.asarray(hdul[1].data.field(0), dtype=np.int64)
    return footprint_from_uniq(uniq, frame)


def footprint_from_uniq(uniq: np.ndarray, frame: str) -> Footprint:
    """HEALPix NUNIQ numbers (a MOC's cells, as mocpy's `uniq_hpx` or a MOC FITS file hold them)."""
    uniq = np.asarray(uniq, dtype=np.int64)
    orders = (np.floor(np.log2(uniq / 4) / 2)).astype(np.int64)
    cells = uniq - 4 * 4**orders
    return Footprint(frame, {int(o): np.unique(cells[orders == o]) for o in np.unique(orders)})


def survey_footprint(survey: Survey, tile_format: str) -> Footprint | None:
    """Local tiles, else Moc.fits from the survey; None (whole sky) when neither can be read."""
    footprint = local_tiles(survey, tile_format)
    if footprint is not None:
        return footprint
    try:
        data = survey.read_file("Moc.fits")
    except Exception as err:
        log.warning("%s: no Moc.fits (%s); assuming the whole sky", survey.name, err)
        return None
    if data is None:
        log.warning("%s: no Moc.fits; assuming the whole sky", survey.name)
        return None
    try:
        return parse_moc_fits(data, survey.properties.frame)
    except Exception as err:
        log.warning("%s: unreadable Moc.fits (%s); assuming the whole sky", survey.name, err)
        return None
