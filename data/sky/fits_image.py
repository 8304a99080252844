"""FITS images with a celestial WCS as survey sources: find them, read one plane, locate sky positions.

A survey spec is a FITS file (.fits .fit .fts, also gzip/bzip2 and .fz), or a folder of such files (pieces
of one mosaic, no `properties` file), optionally ending in `[N]`: the 0-based 2-D plane of a cube (planes
counted over the axes after the two sky axes, NAXIS3 fastest). Pixels stay in FITS order (row 0 = south).
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from util.errors import UserError

from data.sky.fits_io import celestial_wcs, is_fits_name, physical_values

PLANE_SUFFIX = re.compile(r"^(?P<path>.+)\[(?P<plane>[^\[\]]*)\]$")
FITS_SUFFIXES = re.compile(r"(\.(fits|fit|fts))?(\.(gz|bz2|fz))?$", re.IGNORECASE)
# bounding boxes are skipped (whole image used) for output fields wider than this: far from a projection's
# reference point, world -> pixel can fold back onto the image
MAX_BOX_RADIUS_DEG = 30.0
NO_FOLD_DEG = 60.0


@dataclass(frozen=True)
class ImageSpec:
    """What a survey spec names: the files (one, or the pieces of a mosaic) and the plane to use."""

    paths: tuple[Path, ...]
    plane: int | None
    location: str
    name: str


def image_spec(spec: str) -> ImageSpec | None:
    """The FITS file or mosaic folder `spec` names, else None (then it may be a HiPS)."""
    text, plane = spec, None
    match = PLANE_SUFFIX.match(spec)
    if match and not Path(spec).expanduser().exists():
        text = match["path"]
        if not re.fullmatch(r"[0-9]+", match["plane"].strip()):
            if Path(text).expanduser().exists():  # the file is there, only the plane is wrong
                raise UserError(f"survey {spec}: [{match['plane']}] is not a plane number; write FILE[N] with "
                                f"N = 0, 1, 2, ... (0-based)")
            return None
        plane = int(match["plane"])
    path = Path(text).expanduser()
    if path.is_file() and is_fits_name(path.name):
        files = (path,)
    elif path.is_dir() and not (path / "properties").exists():
        files = tuple(sorted(p for p in path.iterdir() if p.is_file() and is_fits_name(p.name)))
        if not files:
            return None
    else:
        return None
    base = FITS_SUFFIXES.sub("", path.name.rstrip("/")) or "image"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", base) + (f"_p{plane}" if plane is not None else "")
    return ImageSpec(files, plane, str(path), name)


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon_r, lat_r = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)], axis=-1)


def _angle_deg(vectors: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(vectors @ centre, -1.0, 1.0)))


@dataclass(frozen=True)
class ImagePiece:
    """One 2-D image: float32 values in FITS row order (NaN = no data) and its 2-D sky WCS.

    `frame` is the key the cutout engines share coordinates under ('equatorial', 'galactic', or an astropy
    frame name); FK5 J2000 counts as equatorial there (20 mas from ICRS): it only serves bounding boxes and
    coverage probes, while reproject converts frames exactly.
    """

    path: str
    data: np.ndarray
    wcs: object  # astropy.wcs.WCS, 2 axes
    frame: str
    unit: str
    centre: np.ndarray  # unit vector of the image centre in `frame`
    radius_deg: float  # centre to the farthest border point, plus a pixel; 180 when unknown
    pixel_deg: float  # mean pixel side

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape

    def pixels_of(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel (x, y) of frame positions; NaN beyond the image's reach (no fold-back)."""
        lon = np.asarray(lon, dtype=np.float64).ravel()
        lat = np.asarray(lat, dtype=np.float64).ravel()
        x = np.full(lon.shape, np.nan)
        y = np.full(lon.shape, np.nan)
        near = _angle_deg(_unit_vectors(lon, lat), self.centre) <= self.radius_deg
        if near.any():
            x[near], y[near] = self.world_to_pixel(lon[near], lat[near])
        return x, y

    def world_to_pixel(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixels, with SIP / lookup-table distortions when the WCS has them (they can move a
        corner by several pixels, more than the bounding-box margin)."""
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.wcs.has_distortion:
                return self.wcs.all_world2pix(lon, lat, 0, quiet=True)
            return self.wcs.wcs_world2pix(lon, lat, 0)

    def has_data(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        x, y = self.pixels_of(lon, lat)
        height, width = self.shape
        ok = np.isfinite(x) & np.isfinite(y)
        col = np.where(ok, np.rint(x), -1).astype(np.int64)
        row = np.where(ok, np.rint(y), -1).astype(np.int64)
        ok &= (col >= 0) & (col < width) & (row >= 0) & (row < height)
        result = np.zeros(col.shape, dtype=bool)
        result[ok] = np.isfinite(self.data[row[ok], col[ok]])
        return result

    def box(self, lon: np.ndarray, lat: np.ndarray, margin_px: float) -> Box | None:
        """The part of the image under an output grid whose pixel centres are (lon, lat) (2-D, frame deg),
        with a margin; None when the grid misses the image. Reprojecting this sub-image only is what keeps
        small cutouts from large images fast.
        """
        height, width = lon.shape
        centre = _unit_vectors(np.array([lon[height // 2, width // 2]]), np.array([lat[height // 2, width // 2]]))[0]
        border_lon = np.concatenate([lon[0], lon[-1], lon[:, 0], lon[:, -1]])
        border_lat = np.concatenate([lat[0], lat[-1], lat[:, 0], lat[:, -1]])
        grid_radius = float(_angle_deg(_unit_vectors(border_lon, border_lat), centre).max())
        distance = float(_angle_deg(centre[None], self.centre)[0])
        if distance > grid_radius + self.radius_deg:
            return None
        whole = Box(slice(0, self.shape[0]), slice(0, self.shape[1]), False)
        if grid_radius > MAX_BOX_RADIUS_DEG:
            return whole
        x, y = self.world_to_pixel(border_lon, border_lat)
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            return whole
        x0 = max(int(math.floor(x.min() - margin_px)), 0)
        x1 = min(int(math.ceil(x.max() + margin_px)) + 1, self.shape[1])
        y0 = max(int(math.floor(y.min() - margin_px)), 0)
        y1 = min(int(math.ceil(y.max() + margin_px)) + 1, self.shape[0])
        if x0 >= x1 or y0 >= y1:
            return None
        return Box(slice(y0, y1), slice(x0, x1), distance + grid_radius <= NO_FOLD_DEG)


@dataclass(frozen=True)
class Box:
    """Rows and columns of an image; `no_fold`: every output pixel lies within NO_FOLD_DEG of the image
    centre, where world -> pixel cannot fold back onto the image, so reproject may skip its round-trip
    check (half of an interp cutout's cost)."""

    rows: slice
    cols: slice
    no_fold: bool

    @property
    def slices(self) -> tuple[slice, slice]:
        return self.rows, self.cols


def frame_key(wcs) -> str:
    from astropy.wcs.utils import wcs_to_celestial_frame

    name = wcs_to_celestial_frame(wcs).name
    return {"icrs": "equatorial", "fk5": "equatorial", "galactic": "galactic"}.get(name, name)


def _first_image(path: Path):
    """(header, raw data) of the first HDU holding an image: the primary, or else the first extension
    (tile-compressed .fz files keep the image there)."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-standard cards written by other tools
            with fits.open(path, memmap=False, do_not_scale_image_data=True) as hdul:
                for hdu in hdul:
                    if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2:
                        return hdu.header.copy(), np.array(hdu.data)
    except Exception as err:  # astropy raises OSError, ValueError, TypeError... for broken files
        raise UserError(f"survey {path}: cannot read it as FITS ({err})") from None
    raise UserError(f"survey {path}: no image in this FITS file")


def _sky_wcs(header, path: Path):
    from astropy.wcs import WCS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = WCS(header)
    except Exception:
        full = None
    wcs = celestial_wcs(header)
    if full is None or wcs is None:
        raise UserError(f"survey {path}: no celestial WCS (sky axes such as CTYPE1/2 = RA---TAN/DEC--TAN), "
                        f"so it cannot be placed on the sky")
    if sorted((full.wcs.lng, full.wcs.lat)) != [0, 1]:
        raise UserError(f"survey {path}: the sky axes must be the first two axes (NAXIS1, NAXIS2)")
    return wcs


def _plane(raw: np.ndarray, plane: int | None, path: Path) -> np.ndarray:
    planes = raw.reshape(-1, *raw.shape[-2:])
    if plane is None:
        if len(planes) > 1:
            raise UserError(f"survey {path}: a cube of {len(planes)} planes (shape {raw.shape}); choose one "
                            f"as {path}[N], N = 0..{len(planes) - 1}")
        return planes[0]
    if plane >= len(planes):
        raise UserError(f"survey {path}[{plane}]: it has {len(planes)} plane(s), N = 0..{len(planes) - 1}")
    return planes[plane]


def _reach(wcs, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Image centre (unit vector) and the angle to its farthest border point plus a pixel (deg)."""
    from astropy.wcs.utils import proj_plane_pixel_scales

    height, width = shape
    along_x = np.linspace(-0.5, width - 0.5, 65)
    along_y = np.linspace(-0.5, height - 0.5, 65)
    xs = np.concatenate([along_x, along_x, np.full(65, -0.5), np.full(65, width - 0.5), [(width - 1) / 2]])
    ys = np.concatenate([np.full(65, -0.5), np.full(65, height - 0.5), along_y, along_y, [(height - 1) / 2]])
    with np.errstate(invalid="ignore"):
        lon, lat = wcs.all_pix2world(xs, ys, 0)
    vectors = _unit_vectors(lon, lat)
    centre = vectors[-1]
    if not np.isfinite(vectors).all():
        return centre, 180.0
    pixel = float(np.max(proj_plane_pixel_scales(wcs)))
    return centre, float(_angle_deg(vectors[:-1], centre).max()) + pixel


def read_piece(path: Path, plane: int | None) -> ImagePiece:
    """One FITS image (or the chosen plane of a cube) in physical values: BSCALE/BZERO applied, BLANK and
    non-finite values NaN; its unit is BUNIT."""
    header, raw = _first_image(path)
    wcs = _sky_wcs(header, path)
    while raw.ndim > 2 and raw.shape[0] == 1:
        raw = raw[0]
    data = physical_values(_plane(raw, plane, path), header)
    data = np.ascontiguousarray(data, dtype=np.float32)  # native byte order: scipy would copy big-endian
    unit = str(header.get("BUNIT", "") or "").strip() or "image value (no BUNIT)"
    frame = frame_key(wcs)
    centre, radius = _reach(wcs, data.shape)
    from astropy.wcs.utils import proj_plane_pixel_scales

    pixel_deg = float(np.mean(proj_plane_pixel_scales(wcs)))
    return ImagePiece(str(path), data, wcs, frame, unit, centre, radius, pixel_deg)
