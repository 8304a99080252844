"""Decode HiPS tiles (JPEG, PNG, FITS) into arrays in the HiPS pixel order of JPEG tiles.

Returned arrays are (W, W, C): uint8 for 8-bit tiles (blank = every channel 0, which is how HiPS JPEGs
mark "no data"), float32 with NaN for blanks for FITS tiles. FITS tiles are stored bottom-up and are
flipped here so that every format indexes as row = floor(dx*W), col = floor(dy*W).
"""
from __future__ import annotations

import io
import math
import warnings

import numpy as np


class TileDecodeError(ValueError):
    """The bytes are not a complete tile (truncated, corrupt, wrong size): re-fetch, never cache."""


def decode_tile(data: bytes, fmt: str, expected_width: int | None = None, colour: bool = True) -> np.ndarray:
    """Decode one tile; fmt is 'jpeg', 'png' or 'fits'. colour=False folds RGB-coded grey to one channel."""
    array = _decode_fits(data) if fmt == "fits" else _decode_8bit(data, colour)
    if expected_width is not None and array.shape[:2] != (expected_width, expected_width):
        raise TileDecodeError(f"tile is {array.shape[1]}x{array.shape[0]}, expected {expected_width}")
    return array


def separate_blank(array: np.ndarray) -> tuple[np.ndarray, bool]:
    """Keep 0 (every channel) for 'no data' regions only; isolated dark pixels of real data become 1.

    HiPS JPEG/PNG tiles mark missing sky with black, but real dark sky can also read 0; a zero pixel is
    blank only when it lies in a 5x5 block of zeros. Returns the array and whether it has any blank.
    """
    zero = ~array.any(axis=2)
    if not zero.any():
        return array, False
    from scipy.ndimage import binary_opening

    blank = binary_opening(zero, structure=np.ones((5, 5), dtype=bool))
    lone = zero & ~blank
    if lone.any():
        array = array.copy()
        array[lone] = 1
    return array, bool(blank.any())


def _decode_8bit(data: bytes, colour: bool = True) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mode = image.mode
            if mode in ("RGBA", "LA") or (mode == "P" and "transparency" in image.info):
                rgba = np.asarray(image.convert("RGBA" if mode != "LA" else "LA"))
                alpha = rgba[..., -1:]
                if not colour and rgba.shape[-1] == 4:
                    colour_part = np.asarray(image.convert("L"))[..., None]
                else:
                    colour_part = rgba[..., :-1]
                array = np.where(alpha > 0, colour_part, 0).astype(np.uint8)
            elif mode == "L":
                array = np.asarray(image)
            elif mode == "RGB":
                array = np.asarray(image if colour else image.convert("L"))
            elif mode in ("I;16", "I;16B", "I", "F"):
                raise TileDecodeError(f"{mode} images are not 8-bit tiles")
            else:
                array = np.asarray(image.convert("RGB"))
    except TileDecodeError:
        raise
    except Exception as err:  # PIL raises many types for bad bytes
        raise TileDecodeError(f"cannot decode image: {err}") from None
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array)


def _decode_fits(data: bytes) -> np.ndarray:
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            # HiPS FITS tiles are often not padded to 2880-byte blocks and some write BLANK as a float
            warnings.simplefilter("ignore")
            with fits.open(io.BytesIO(data), do_not_scale_image_data=True, memmap=False) as hdul:
                hdu = next((h for h in hdul if h.header.get("NAXIS", 0) >= 2), None)
                if hdu is None:
                    raise TileDecodeError("FITS tile has no image")
                needed = hdu.fileinfo()["datLoc"] + hdu.size
                if len(data) < needed:
                    raise TileDecodeError(f"FITS tile truncated ({len(data)} of {needed} bytes)")
                raw = np.array(hdu.data)
            header = hdu.header
            bscale = float(header.get("BSCALE", 1.0))
            bzero = float(header.get("BZERO", 0.0))
            blank = header.get("BLANK")
    except TileDecodeError:
        raise
    except Exception as err:
        raise TileDecodeError(f"cannot decode FITS tile: {err}") from None
    if raw.ndim > 2:
        raw = raw.reshape(raw.shape[-2:])
    values = raw.astype(np.float32) * np.float32(bscale) + np.float32(bzero)
    if blank is not None and raw.dtype.kind in "iu":
        values[raw == int(blank)] = np.nan
    values[~np.isfinite(values)] = np.nan
    return np.ascontiguousarray(values[::-1, :, None])


def fits_unit(data: bytes) -> str:
    """BUNIT of a FITS tile ('' when absent or unreadable)."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(io.BytesIO(data), memmap=False) as hdul:
                return str(hdul[0].header.get("BUNIT", ""))
    except Exception:
        return ""


def allsky_tile(allsky: np.ndarray, ipix: int, order: int) -> np.ndarray:
    """Cut tile `ipix` of `order` out of an Allsky mosaic (tiles row by row, floor(sqrt(n)) per row)."""
    n_tiles = 12 * 4**order
    per_row = int(math.isqrt(n_tiles))
    width = allsky.shape[1] // per_row
    row, col = divmod(ipix, per_row)
    return allsky[row * width:(row + 1) * width, col * width:(col + 1) * width]


def allsky_tile_width(allsky: np.ndarray, order: int) -> int:
    return allsky.shape[1] // int(math.isqrt(12 * 4**order))
