"""Encode one target: the A|B|C|D PNG (panels side by side, RGB) and the float32 FITS cube."""
from __future__ import annotations

import io
import warnings

import numpy as np

from .geometry import OutputGrid, make_wcs

CUBE_FORMAT_VERSION = 1


def panels_png(panels: list[np.ndarray]) -> bytes:
    """Side-by-side RGB PNG of 8-bit panels (H, W, 1 or 3); grey panels are repeated on R, G, B."""
    from PIL import Image

    rgb = [np.repeat(p, 3, axis=2) if p.shape[2] == 1 else p[:, :, :3] for p in panels]
    image = Image.fromarray(np.ascontiguousarray(np.concatenate(rgb, axis=1)), mode="RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def read_panels(png_path, n_panels: int) -> list[np.ndarray]:
    """Split a written PNG back into its panels (tests and tools)."""
    from PIL import Image

    with Image.open(png_path) as image:
        array = np.asarray(image.convert("RGB"))
    width = array.shape[1] // n_panels
    return [array[:, i * width:(i + 1) * width] for i in range(n_panels)]


def channel_names(is_colour: bool) -> list[str]:
    return ["R", "G", "B"] if is_colour else ["I"]


def fits_cube(grid: OutputGrid, bands: list[dict], target_name: str) -> bytes:
    """A float32 cube (planes, height, width) with the 2-D celestial WCS of the grid; NaN = no data.

    bands: one dict per survey in panel order with keys name, location, values (H, W, C float32),
    unit, coverage, tile_format. Each channel of each survey is one plane; FITS rows go bottom-up.
    """
    from astropy.io import fits

    planes, cards = [], []
    for band_index, band in enumerate(bands, start=1):
        values = band["values"]
        names = channel_names(values.shape[2] == 3)
        for c in range(values.shape[2]):
            planes.append(values[::-1, :, c])  # image row 0 is north; FITS row 1 is south
            plane = len(planes)
            cards.append((f"PLNAM{plane}", f"{band['name']}:{names[c]}"[:68], f"plane {plane} survey:channel"))
            cards.append((f"PLUNI{plane}", band["unit"][:68], f"plane {plane} unit"))
            cards.append((f"PLBND{plane}", band_index, f"plane {plane} panel number (1 = A)"))
        cards.append((f"SURVEY{band_index}", band["name"][:68], f"panel {band_index} survey"))
        cards.append((f"SRCLOC{band_index}", str(band["location"])[-68:], f"panel {band_index} source"))
        cards.append((f"TILEFM{band_index}", band["tile_format"], f"panel {band_index} tile format"))
        cards.append((f"COVER{band_index}", round(float(band["coverage"]), 6), f"panel {band_index} coverage"))
    cube = np.stack(planes).astype(np.float32)
    header = make_wcs(grid).to_header()
    hdu = fits.PrimaryHDU(cube, header=header)
    hdr = hdu.header
    hdr["WCSAXES"] = 3
    hdr["CTYPE3"] = ("PLANE", "survey channel, see PLNAMn")
    hdr["CRPIX3"], hdr["CRVAL3"], hdr["CDELT3"] = 1.0, 1.0, 1.0
    hdr["OBJECT"] = target_name[:68]
    hdr["NSURVEY"] = (len(bands), "panels in the PNG, same order")
    hdr["CUBEVER"] = (CUBE_FORMAT_VERSION, "aladin_data.py cube layout version")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # a long value only shortens its comment
        for key, value, comment in cards:
            hdr[key] = (value, comment)
        hdu.writeto(buffer)
    return buffer.getvalue()
