"""Geometry: tile pixel order, stars landing where the sky says, both frames, all tile formats."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from data.sky.engine import CutoutEngine
from data.sky.geometry import (OutputGrid, bilinear_lookup, choose_tile_order, frame_to_icrs, make_wcs,
                               nearest_tile_pixel, pixel_sky_coords, tile_pixel_sky, zorder_rows_cols)
from data.sky.source import open_survey
from data.sky.tiles import decode_tile

TILE_ARCSEC = 51.5  # order 3, 512 px


def _peak_centroid(values: np.ndarray) -> tuple[float, float]:
    """Centroid of the pixels within 1 level of the maximum (a saturated star's core)."""
    v = np.nan_to_num(values[..., 0], nan=-np.inf)
    rows, cols = np.nonzero(v >= v.max() - 1e-3 * max(abs(v.max()), 1.0))
    return rows.mean(), cols.mean()


def test_zorder_table_matches_cdshealpix_offsets():
    import cdshealpix.nested as healpix

    width = 64
    rows, cols = zorder_rows_cols(width)
    tile = 450
    sub = np.arange(width * width, dtype=np.uint64) + np.uint64(tile * width * width)
    lon, lat = healpix.healpix_to_lonlat(sub, 3 + 6)
    parent, dx, dy = healpix.lonlat_to_healpix(lon, lat, 3, return_offsets=True)
    assert np.all(parent == tile)
    assert np.array_equal(np.floor(dx * width).astype(int), rows)
    assert np.array_equal(np.floor(dy * width).astype(int), cols)


def test_wcs_centre_and_orientation():
    grid = OutputGrid(266.4, -28.9, 2.0, 101, 101)
    ra, dec = pixel_sky_coords(grid)
    assert ra[50, 50] == pytest.approx(266.4, abs=1e-9) and dec[50, 50] == pytest.approx(-28.9, abs=1e-9)
    assert dec[0, 50] > dec[100, 50]  # row 0 is north
    assert ra[50, 0] > ra[50, 100]  # east is left
    assert make_wcs(grid).wcs.crpix[0] == pytest.approx(51.0)


def test_order_choice_follows_pixel_size_and_caps():
    assert choose_tile_order(TILE_ARCSEC / 3600, 512, 3, 9) == 3
    assert choose_tile_order(TILE_ARCSEC / 3600 / 4, 512, 3, 9) == 5
    assert choose_tile_order(1e-6, 512, 3, 9) == 9
    assert choose_tile_order(1.0, 512, 3, 9) == 3


@pytest.mark.parametrize("arcsec, width", [(5.0, 512), (5.0, 128), (TILE_ARCSEC, 512), (101.25, 64), (1.3, 256)])
def test_a_generated_hips_is_no_coarser_than_the_training_pixels(arcsec, width):
    """predict_sky.py's order: tile pixels at most the cutout engine's 1.2 x the training pixel (a 5" model
    gets 3.2" pixels, not the nearer 6.4"), and the next order down would be coarser than that."""
    from data.sky.geometry import ORDER_TOLERANCE
    from data.sky.tile_grid import order_for_pixel, tile_pixel_deg

    order = order_for_pixel(arcsec / 3600, width)
    assert tile_pixel_deg(order, width) * 3600 <= ORDER_TOLERANCE * arcsec
    assert tile_pixel_deg(order - 1, width) * 3600 > ORDER_TOLERANCE * arcsec


@pytest.mark.parametrize("name,ra,dec", [
    ("Sargas", 264.32971, -42.99782),  # inside tile 661
    ("Shaula", 263.40217, -37.10382),  # 17 px from the edge of tile 661: neighbours across tiles
])
def test_bright_stars_land_at_the_centre_equatorial(samples, name, ra, dec):
    """Catalogue positions of saturated stars: the star's core must be the cutout centre (jpeg tiles)."""
    engine = CutoutEngine(open_survey(str(samples / "DSS2Red")))
    cut = engine.cutout(OutputGrid(ra, dec, 63 * TILE_ARCSEC / 3600, 63, 63))
    row, col = _peak_centroid(cut.values)
    assert abs(row - 31) <= 1.0 and abs(col - 31) <= 1.0, (name, row, col)


def _bright_isolated_pixel(tile: np.ndarray) -> tuple[int, int]:
    from scipy.ndimage import median_filter

    excess = tile - median_filter(tile, 7)
    inner = excess[12:-12, 12:-12]
    row, col = np.unravel_index(np.argmax(inner), inner.shape)
    return int(row) + 12, int(col) + 12


@pytest.mark.parametrize("fmt", ["fits", "jpeg"])
def test_fits_tile_star_lands_at_the_centre(samples, fmt):
    """The brightest isolated pixel of FITS tile 450 (rows flipped) is where HiPS puts it, in both formats."""
    data = (samples / "DSS2Red/Norder3/Dir0/Npix450.fits").read_bytes()
    tile = decode_tile(data, "fits", 512)[..., 0]
    row, col = _bright_isolated_pixel(tile)
    ra, dec = tile_pixel_sky(450, row, col, 3, 512)
    assert nearest_tile_pixel(ra, dec, 3, 512) == (450, row, col)
    engine = CutoutEngine(open_survey(str(samples / "DSS2Red")), fmt)
    cut = engine.cutout(OutputGrid(ra, dec, 31 * TILE_ARCSEC / 3600, 31, 31))
    v = cut.values[..., 0]
    peak = np.unravel_index(np.nanargmax(v), v.shape)
    assert abs(peak[0] - 15) <= 1 and abs(peak[1] - 15) <= 1, peak


def _png_copy_with_spike(src, dst, ipix: int, row: int, col: int):
    """A HiPS copy whose tiles are PNG (properties say png) with one bright pixel in tile ipix."""
    (dst / "Norder3" / "Dir0").mkdir(parents=True)
    text = (src / "properties").read_text()
    lines = [("hips_tile_format   = png" if line.startswith("hips_tile_format") else line)
             for line in text.splitlines() if not line.startswith("format")]
    (dst / "properties").write_text("\n".join(lines) + "\n")
    for jpg in (src / "Norder3" / "Dir0").glob("*.jpg"):
        image = np.asarray(Image.open(jpg).convert("L")).copy()
        if jpg.stem == f"Npix{ipix}":
            image = (image // 3).astype(np.uint8)
            image[row, col] = 255
        Image.fromarray(image).save(dst / "Norder3" / "Dir0" / f"{jpg.stem}.png")


def test_png_tiles_galactic_frame_pixel_lands_at_the_centre(samples, tmp_path):
    """A galactic HiPS (Planck, 256 px tiles) as PNG with one spike pixel: it lands at the centre."""
    ipix, row, col = 293, 100, 37
    hips = tmp_path / "PlanckPNG"
    _png_copy_with_spike(samples / "Planck-HFI143", hips, ipix, row, col)
    survey = open_survey(str(hips))
    assert survey.properties.formats == ("png",) and survey.properties.frame == "galactic"
    l, b = tile_pixel_sky(ipix, row, col, 3, 256)
    ra, dec = frame_to_icrs(np.array([l]), np.array([b]), "galactic")
    engine = CutoutEngine(survey)
    cut = engine.cutout(OutputGrid(float(ra[0]), float(dec[0]), 21 * 2 * TILE_ARCSEC / 3600, 21, 21))
    v = cut.values[..., 0]
    assert np.unravel_index(np.nanargmax(v), v.shape) == (10, 10)
    assert v[10, 10] > 200


def test_galactic_survey_matches_equatorial_irac(shared_hips):
    """IRAC4 (galactic HiPS) and GLIMPSE360 (equatorial, same instrument) agree only when both are right."""
    grid = OutputGrid(266.6, -28.6, 1.0, 96, 96)
    irac = CutoutEngine(open_survey(str(shared_hips / "IRAC4"))).cutout(grid).values[..., 0]
    glimpse = CutoutEngine(open_survey(str(shared_hips / "GLIMPSE360"))).cutout(grid).values[..., 0]
    ok = np.isfinite(irac) & np.isfinite(glimpse)
    aligned = np.corrcoef(irac[ok], glimpse[ok])[0, 1]
    flipped = np.corrcoef(irac[::-1][ok[::-1] & ok], glimpse[ok[::-1] & ok])[0, 1]
    assert aligned > 0.7 and aligned > flipped + 0.2, (aligned, flipped)


def test_bilinear_neighbours_cross_tile_borders():
    """At a tile corner the 4 neighbours come from different tiles (cdshealpix does the crossing)."""
    lon, lat = tile_pixel_sky(450, 0, 0, 3, 512)
    look = bilinear_lookup(np.array([lon]), np.array([lat - 0.01]), 3, 512)
    assert len(set(look.tiles[0].tolist())) >= 2
    assert np.isclose(look.weights.sum(), 1.0)


def test_missing_tiles_are_masked_and_counted(samples):
    engine = CutoutEngine(open_survey(str(samples / "DSS2Red")), "fits")  # fits only for 450, 451
    ra, dec = tile_pixel_sky(450, 0, 256, 3, 512)  # on the edge of tile 450
    cut = engine.cutout(OutputGrid(ra, dec, 1.0, 64, 64))
    assert 0.2 < cut.coverage < 0.9
    assert np.isnan(cut.values).any() and np.isfinite(cut.values).any()


def test_allsky_used_for_coarse_pixels(samples):
    engine = CutoutEngine(open_survey(str(samples / "GLIMPSE360")))
    coarse = engine.cutout(OutputGrid(266.4, -28.9, 20.0, 64, 64))
    fine = engine.cutout(OutputGrid(266.4, -28.9, 2.0, 64, 64))
    assert coarse.used_allsky and not fine.used_allsky
    assert coarse.coverage > 0.05


@pytest.mark.parametrize("projection", ["TAN", "SIN", "ZEA"])
@pytest.mark.parametrize("ra,dec", [(266.4, -28.9), (10.0, 89.5), (359.9, -60.0), (120.0, 0.0)])
def test_fast_grid_equals_astropy_wcs(projection, ra, dec):
    from data.sky.geometry import pixel_frame_coords, wcs_pixel_sky_coords
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    grid = OutputGrid(ra, dec, 2.5, 40, 30, projection)
    fast = pixel_frame_coords(grid)
    slow = wcs_pixel_sky_coords(grid)
    sep = SkyCoord(fast[0] * u.deg, fast[1] * u.deg).separation(SkyCoord(slow[0] * u.deg, slow[1] * u.deg))
    assert sep.arcsec.max() < 1e-6
    gal = pixel_frame_coords(grid, "galactic")
    ref = SkyCoord(slow[0] * u.deg, slow[1] * u.deg).galactic
    assert SkyCoord(gal[0] * u.deg, gal[1] * u.deg, frame="galactic").separation(ref).arcsec.max() < 1e-5
