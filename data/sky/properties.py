"""Parse a HiPS `properties` file into the few facts the cutout engine needs."""
from __future__ import annotations

from dataclasses import dataclass

from util.errors import UserError

TILE_EXTENSIONS = {"jpeg": "jpg", "png": "png", "fits": "fits"}
MAX_DEPTH = 29  # the deepest HEALPix depth (cdshealpix): a tile's pixels sit at order + log2(width)
MAX_TILE_WIDTH = 4096  # widest tile read (Hipsgen writes 512; 4096 px of float64 is 128 MB): a wider one is hostile


@dataclass(frozen=True)
class HipsProperties:
    """What a HiPS says about itself (IVOA HiPS 1.0 keywords, with the old Aladin aliases as fallback)."""

    frame: str  # "equatorial" or "galactic"
    max_order: int
    min_order: int  # hips_order_min, 0 when absent (the standard's default)
    tile_width: int
    formats: tuple[str, ...]  # subset of TILE_EXTENSIONS, in the order the survey lists them
    is_colour: bool
    title: str
    creator_did: str
    min_order_given: bool = True  # False: hips_order_min absent, so min_order is the standard's default


def properties_values(text: str) -> dict[str, str]:
    """Every `key = value` line of a properties file (comments start with #; the first of a repeated key)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values.setdefault(key.strip(), value.strip())
    return values


def parse_properties_text(text: str, where: str = "properties") -> HipsProperties:
    """Read `key = value` lines (comments start with #); raise UserError on what a cutout cannot do without."""
    values = properties_values(text)
    frame = values.get("hips_frame") or {"C": "equatorial", "G": "galactic", "E": "ecliptic"}.get(
        values.get("coordsys", "C"), "equatorial")
    frame = frame.lower()
    if frame not in ("equatorial", "galactic"):
        raise UserError(f"{where}: HiPS frame {frame!r} is not supported (equatorial or galactic)")
    try:
        max_order = int(values.get("hips_order") or values["maxOrder"])
    except (KeyError, ValueError):
        raise UserError(f"{where}: no valid hips_order") from None
    try:
        tile_width = int(values.get("hips_tile_width", "512"))
        min_order = int(values.get("hips_order_min", "0"))  # HiPS 1.0: optional, default 0
    except ValueError:
        raise UserError(f"{where}: hips_tile_width or hips_order_min is not an integer") from None
    if tile_width < 1 or tile_width & (tile_width - 1):
        raise UserError(f"{where}: hips_tile_width {tile_width} is not a power of two")
    if max_order < 0 or min_order < 0:
        key, value = ("hips_order", max_order) if max_order < 0 else ("hips_order_min", min_order)
        raise UserError(f"{where}: {key} {value} is negative; HiPS orders start at 0")
    deepest = MAX_DEPTH - (tile_width.bit_length() - 1)  # the deepest order whose tile pixels HEALPix can address
    if min(min_order, max_order) > deepest:
        raise UserError(f"{where}: tiles of order {min(min_order, max_order)} and {tile_width} px have their pixels "
                        f"at HEALPix depth {min(min_order, max_order) + MAX_DEPTH - deepest}, and the deepest is "
                        f"{MAX_DEPTH}; not a usable HiPS (hips_order, hips_order_min, hips_tile_width)")
    if tile_width > MAX_TILE_WIDTH:
        raise UserError(f"{where}: hips_tile_width {tile_width} is wider than any HiPS uses (at most "
                        f"{MAX_TILE_WIDTH} px here; 512 is the standard's default): one tile would not fit in memory")
    max_order = min(max_order, deepest)  # an order no tile can have (hips_order = 99) is the deepest possible
    raw_formats = (values.get("hips_tile_format") or values.get("format") or "jpeg").lower().split()
    formats = tuple("jpeg" if f == "jpg" else f for f in raw_formats if f in ("jpeg", "jpg", "png", "fits"))
    if not formats:
        raise UserError(f"{where}: tile formats {raw_formats} unsupported (jpeg, png or fits)")
    is_colour = (values.get("dataproduct_subtype", "").lower() == "color"
                 or values.get("isColor", "").lower() == "true")
    title = values.get("obs_title") or values.get("label") or ""
    did = values.get("creator_did") or values.get("publisher_did") or values.get("ID") or ""
    return HipsProperties(frame, max_order, min(min_order, max_order), tile_width, formats, is_colour, title, did,
                          "hips_order_min" in values)
