"""FITS cubes for the science path: planes in physical units, their sky WCS, result files.

Reads what `aladin_data.py --fits` writes (one float32 cube, planes on axis 3, PLNAMn/PLUNIn
keywords) and also plain FITS from elsewhere: a 2-D image, a cube with extra degenerate axes,
or one image per extension (MEF). Integer data is scaled by BSCALE/BZERO and BLANK becomes
NaN, because astropy leaves BLANK untouched when no scaling is declared.
Arrays keep the FITS row order (row 0 = the bottom of the picture).
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np

from util.errors import UserError

# compressed files open as they are (gzip, bzip2, tile-compressed .fz)
FITS_EXTENSIONS = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.bz2", ".fit.bz2", ".fz")


@dataclass(frozen=True)
class FitsCube:
    """planes: float32 (P, H, W), NaN = no data; header: the header that holds the WCS."""
    path: str
    planes: np.ndarray
    header: object  # astropy.io.fits.Header


def is_fits_name(name: str) -> bool:
    return name.lower().endswith(FITS_EXTENSIONS)


def physical_values(raw: np.ndarray, header) -> np.ndarray:
    """Raw stored values -> float32 physical values: BSCALE/BZERO applied, BLANK and inf -> NaN."""
    bscale = float(header.get("BSCALE", 1.0))
    bzero = float(header.get("BZERO", 0.0))
    if raw.dtype.kind in "iub":
        values = raw.astype(np.float64) * bscale + bzero
        blank = header.get("BLANK")
        if blank is not None:
            values[raw == int(blank)] = np.nan
        values = values.astype(np.float32)
    else:
        values = raw.astype(np.float32)
        if bscale != 1.0 or bzero != 0.0:
            values = (values.astype(np.float64) * bscale + bzero).astype(np.float32)
    values[~np.isfinite(values)] = np.nan
    return values


def _as_planes(raw: np.ndarray, path: str, where: str) -> np.ndarray:
    """(H, W) -> (1, H, W); drop leading length-1 axes (radio cubes are often (1, 1, H, W))."""
    while raw.ndim > 3 and raw.shape[0] == 1:
        raw = raw[0]
    if raw.ndim == 2:
        return raw[None]
    if raw.ndim == 3:
        return raw
    raise UserError(f"{path}: {where} has {raw.ndim} axes of shape {raw.shape}; expected an image or a cube of planes")


def read_cube(path: str) -> FitsCube:
    """All planes of a FITS file: the primary image/cube, or else every image extension in order."""
    from astropy.io import fits

    if not os.path.isfile(path):
        raise UserError(f"FITS file not found: {path}")
    if os.path.getsize(path) == 0:
        raise UserError(f"empty FITS file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-standard cards of other tools are not our user's problem
            with fits.open(path, memmap=False, do_not_scale_image_data=True) as hdul:
                images = [(i, hdu.header, np.array(hdu.data)) for i, hdu in enumerate(hdul)
                          if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2]
    except UserError:
        raise
    except Exception as err:  # astropy raises OSError, ValueError, TypeError... for broken files
        raise UserError(f"cannot read FITS file {path}: {err}") from None
    if not images:
        raise UserError(f"{path} holds no image data")
    if images[0][0] == 0:  # a primary image or cube: that is the whole dataset item
        index, header, raw = images[0]
        return FitsCube(path, physical_values(_as_planes(raw, path, "the primary image"), header), header)
    planes, shapes = [], []
    for index, header, raw in images:
        part = physical_values(_as_planes(raw, path, f"extension {index}"), header)
        planes.append(part)
        shapes.append((index, part.shape[1:]))
    first = shapes[0][1]
    for index, shape in shapes[1:]:
        if shape != first:
            raise UserError(f"{path}: planes of different shapes: extension {shapes[0][0]} is "
                            f"{first[1]}x{first[0]}, extension {index} is {shape[1]}x{shape[0]}")
    return FitsCube(path, np.concatenate(planes, axis=0), images[0][1])


def read_header(path: str):
    """The header read_cube takes the WCS from, without reading pixels."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False) as hdul:
                for hdu in hdul:
                    if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2:
                        return hdu.header.copy()
    except Exception as err:
        raise UserError(f"cannot read FITS header of {path}: {err}") from None
    raise UserError(f"{path} holds no image data")


def celestial_wcs(header):
    """The 2-D sky WCS of a header (a cube's plane axis dropped); None when it has none."""
    from astropy.wcs import WCS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header)
    except Exception:
        return None
    if not wcs.has_celestial:
        return None
    celestial = wcs.celestial
    return celestial if celestial.naxis == 2 else None


def require_wcs(header, path: str, allow_no_wcs: bool):
    """The sky WCS, or a one-line error: results without one cannot be overlaid on the sky."""
    wcs = celestial_wcs(header)
    if wcs is None and not allow_no_wcs:
        raise UserError(f"{path} has no celestial WCS (CTYPE1/CTYPE2 sky axes), so results could not be "
                        f"placed on the sky; add --allow_no_wcs to use it anyway")
    return wcs


def plane_labels(header, n_planes: int) -> list[tuple[str, str]]:
    """(name, unit) of each plane from PLNAMn/PLUNIn (aladin_data.py cubes), else BUNIT."""
    unit = str(header.get("BUNIT", ""))
    return [(str(header.get(f"PLNAM{i}", f"plane {i - 1}")), str(header.get(f"PLUNI{i}", unit)))
            for i in range(1, n_planes + 1)]


def cutout_wcs(wcs, fits_rows: tuple[int, int], columns: tuple[int, int]):
    """WCS of the sub-array [rows, columns] (FITS order, 0-based, end excluded) of an image."""
    return wcs.slice((slice(*fits_rows), slice(*columns)))


def image_bytes(planes: np.ndarray, wcs, cards: list[tuple[str, object, str]]) -> bytes:
    """A float32 FITS image (one plane) or cube (P planes on axis 3) with the sky WCS and cards."""
    from astropy.io import fits

    data = np.ascontiguousarray(planes[0] if planes.shape[0] == 1 else planes, dtype=np.float32)
    header = wcs.to_header(relax=True) if wcs is not None else fits.Header()
    hdu = fits.PrimaryHDU(data, header=header)
    if data.ndim == 3:
        hdu.header["WCSAXES"] = 3
        hdu.header["CTYPE3"] = ("PLANE", "generated plane, see PLNAMn")
        hdu.header["CRPIX3"], hdu.header["CRVAL3"], hdu.header["CDELT3"] = 1.0, 1.0, 1.0
    for key, value, comment in cards:
        hdu.header[key] = (value, comment)
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()
