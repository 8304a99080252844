"""FITS-image surveys: cut a FITS image (or the pieces of a mosaic) out on any output grid with reproject.

Bilinear by default (`reproject_interp`); `exact` is reproject's flux-conserving spherical-polygon overlap
(`reproject_exact`), about 4.6x slower (scripts/bench_cutouts.py). Only the sub-image under the output
grid is reprojected. The footprint used for --sample is a MOC (mocpy) of the pixels with data.
"""
from __future__ import annotations

import logging
import math
import warnings

import numpy as np

from util.errors import UserError

from .cutout import Cutout, coverage_fraction
from .fits_image import Box, ImagePiece, ImageSpec, read_piece
from .footprint import Footprint, footprint_from_uniq
from .geometry import HEALPIX_CELL_DEG, OutputGrid, icrs_to_frame, make_wcs, pixel_frame_coords

log = logging.getLogger(__name__)

RESAMPLERS = ("interp", "exact")
IMAGE_FORMAT = "image"  # tile_format of image surveys (cube keyword TILEFMk)
MOC_MAX_POINTS = 2_000_000  # pixel centres given to mocpy per piece (larger images are strided)


class ImageEngine:
    """A FITS image survey behind the SurveyEngine interface (data/sky/cutout.py)."""

    tile_format = IMAGE_FORMAT
    channels = 1
    is_8bit = False

    def __init__(self, pieces: list[ImagePiece], name: str, location: str, spec: str = "",
                 resample: str = "interp"):
        if resample not in RESAMPLERS:
            raise UserError(f"--resample {resample}: choose {' or '.join(RESAMPLERS)}")
        units = sorted({p.unit for p in pieces})
        if len(units) > 1:
            raise UserError(f"survey {location}: mosaic pieces have different units ({', '.join(units)})")
        self.pieces = pieces
        self.name = name
        self.location = location
        self.spec = spec or location
        self.unit = units[0]
        self.resample = resample
        self._footprint: Footprint | None = None

    # ---- cutouts -------------------------------------------------------------------------------
    def cutout(self, grid: OutputGrid, sky: tuple[np.ndarray, np.ndarray] | None = None,
               shared: dict | None = None) -> Cutout:
        """The image on `grid`; with `sky` (ICRS positions of the output pixels, (H, W)) the image is sampled
        at exactly those positions, bilinearly (a HEALPix tile's pixels follow no WCS), not on the grid's
        TAN projection."""
        shared = {} if shared is None else shared
        if "wcs" not in shared:
            shared["wcs"] = make_wcs(grid)
        shape = (grid.height, grid.width)
        parts = []
        for piece in self.pieces:
            key = ("frame", piece.frame)
            if key not in shared:
                shared[key] = (icrs_to_frame(sky[0], sky[1], piece.frame) if sky is not None
                               else pixel_frame_coords(grid, piece.frame))
            lon, lat = shared[key]
            # half an output pixel beyond the outer pixel centres, plus the interpolation's neighbours
            margin = 0.5 * grid.pixel_deg / piece.pixel_deg + 2.0
            box = piece.box(lon, lat, margin)
            if box is not None:
                if sky is not None:  # arbitrary pixel positions (HEALPix tiles): no output WCS to reproject to
                    values = sample_bilinear(piece, sky, lon, lat)
                else:
                    values = self._reproject(piece, box, shared["wcs"], shape)[::-1]  # FITS rows -> north up
                parts.append((piece, values, lon, lat))
        if not parts:
            values = np.full(shape, np.nan, dtype=np.float32)
        elif len(parts) == 1:
            values = parts[0][1]
        else:
            values = feathered_mean(parts)
        values = np.ascontiguousarray(values[:, :, None], dtype=np.float32)
        return Cutout(values, coverage_fraction(values))

    def _reproject(self, piece: ImagePiece, box: Box, wcs_out, shape) -> np.ndarray:
        from reproject import reproject_exact, reproject_interp

        sub = (piece.data[box.slices], piece.wcs[box.slices])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's notes on WCS keywords it fixed are not our user's
            if self.resample == "exact":
                return reproject_exact(sub, wcs_out, shape_out=shape, return_footprint=False)
            return reproject_interp(sub, wcs_out, shape_out=shape, order="bilinear", return_footprint=False,
                                    roundtrip_coords=not box.no_fold)

    # ---- where there is data ---------------------------------------------------------------------
    def has_data(self, ra: np.ndarray, dec: np.ndarray, pixel_deg: float = 0.0) -> np.ndarray:
        shape = np.shape(ra)
        result = np.zeros(int(np.prod(shape)), dtype=bool)
        for piece in self.pieces:
            lon, lat = icrs_to_frame(np.ravel(ra), np.ravel(dec), piece.frame)
            result |= piece.has_data(lon, lat)
        return result.reshape(shape)

    def footprint(self) -> Footprint:
        if self._footprint is None:
            moc = None
            for piece in self.pieces:
                part = piece_moc(piece)
                moc = part if moc is None else moc.union(part)
            self._footprint = footprint_from_uniq(np.asarray(moc.uniq_hpx, dtype=np.int64), "equatorial")
        return self._footprint


def sample_bilinear(piece: ImagePiece, sky: tuple[np.ndarray, np.ndarray], lon: np.ndarray,
                    lat: np.ndarray) -> np.ndarray:
    """The piece's values at ICRS positions `sky` ((lon, lat): the same in the piece's frame key), bilinear,
    (H, W) float32; NaN off the image.

    The same interpolation as reproject_interp (scipy's order-1 map_coordinates; positions in the outer
    half of an edge pixel take the edge's value; a NaN neighbour gives NaN; frames converted exactly by
    astropy, e.g. ICRS -> FK5, 20 mas), which needs an output WCS: tested equal to it on a TAN grid.
    Used for grids without a WCS, such as HEALPix tiles.
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from scipy.ndimage import map_coordinates

    near = np.isfinite(piece.pixels_of(lon, lat)[0])  # within the image's reach: no fold-back
    x = np.full(near.shape, np.nan)
    y = np.full(near.shape, np.nan)
    if near.any():
        ra, dec = (np.ravel(v)[near] for v in sky)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x[near], y[near] = piece.wcs.world_to_pixel(SkyCoord(ra * u.deg, dec * u.deg, frame="icrs"))
    height, width = piece.shape
    with np.errstate(invalid="ignore"):
        inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    coords = np.stack([np.clip(np.where(inside, y, 0.0), 0, height - 1),
                       np.clip(np.where(inside, x, 0.0), 0, width - 1)])
    values = map_coordinates(piece.data, coords, order=1, mode="constant", cval=np.nan)
    values[~inside] = np.nan
    return values.reshape(np.shape(lon)).astype(np.float32)


def feathered_mean(parts) -> np.ndarray:
    """Combine overlapping mosaic pieces: a mean weighted by how far inside each piece a pixel falls.

    Within half a pixel of a piece's edge reproject repeats the edge pixel instead of interpolating;
    weights rising from 0 there to 1 one pixel further in let the piece that covers the spot properly
    win, so seams are invisible (tested: a split image gives the whole image's cutout). A pixel that only
    an edge reaches keeps that value (tiny weight), as with a single image.
    """
    total = np.zeros(parts[0][1].shape)
    weights = np.zeros(parts[0][1].shape)
    for piece, values, lon, lat in parts:
        x, y = piece.pixels_of(lon, lat)
        height, width = piece.shape
        inside = np.minimum.reduce([x + 0.5, width - 0.5 - x, y + 0.5, height - 0.5 - y])
        weight = np.clip(np.nan_to_num(inside, nan=0.0) - 0.5, 0.0, 1.0).reshape(values.shape) + 1e-6
        weight[~np.isfinite(values)] = 0.0
        total += weight * np.nan_to_num(values)
        weights += weight
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weights > 0, total / weights, np.nan)


def piece_moc(piece: ImagePiece):
    """mocpy MOC (ICRS) of the pixel centres with data, at the order whose cells span >= 2 pixels, so
    the centres leave no holes; large images are strided to MOC_MAX_POINTS centres."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.wcs.utils import wcs_to_celestial_frame
    from mocpy import MOC

    step = max(1, math.ceil(math.sqrt(piece.data.size / MOC_MAX_POINTS)))
    rows, cols = np.nonzero(np.isfinite(piece.data[::step, ::step]))
    if rows.size == 0:
        raise UserError(f"survey {piece.path}: no pixel has data (all NaN or BLANK)")
    lon, lat = piece.wcs.all_pix2world(cols * step, rows * step, 0)
    icrs = SkyCoord(lon * u.deg, lat * u.deg, frame=wcs_to_celestial_frame(piece.wcs)).icrs
    order = int(np.clip(math.floor(math.log2(HEALPIX_CELL_DEG / (2 * step * piece.pixel_deg))), 0, 29))
    return MOC.from_lonlat(icrs.ra, icrs.dec, max_norder=order)


def open_image_engine(spec: ImageSpec, user_spec: str, resample: str = "interp") -> ImageEngine:
    pieces = [read_piece(path, spec.plane) for path in spec.paths]
    return ImageEngine(pieces, spec.name, spec.location, user_spec, resample)
