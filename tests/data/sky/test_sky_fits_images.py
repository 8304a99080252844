"""FITS images (and mosaic folders of them) as surveys of aladin_data.py: geometry, values, units, errors.

Synthetic images are written here with a star (a small Gaussian) at a known sky position, in several
projections (TAN, rotated; SIN; galactic CAR; TAN with SIP distortion), frames and pixel scales; the real
sn2010ag images (real data outside the repo, see conftest.py) check that real panels coincide.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, Sip
from PIL import Image

from data.sky.cli import main as cli_main
from data.sky.geometry import OutputGrid
from data.sky.surveys import open_engine, science_engine
from util.errors import UserError

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data" / "sky_samples"

STAR = SkyCoord(266.4090 * u.deg, -28.9320 * u.deg)  # ICRS
CENTRE = (266.405, -28.935)  # output grid centre: the star is ~2.8 px east and ~2.4 px north of it
FOV, SIZE = 0.05, 40  # 4.5"/px
STAR_SIGMA_ARCSEC = 9.0


def sky_wcs(ctype: tuple[str, str], crval: tuple[float, float], arcsec: float, shape: tuple[int, int],
            rotation_deg: float = 0.0, put: tuple[float, float] | None = None) -> WCS:
    """A 2-D WCS; `put` = 0-based pixel (x, y) where STAR should fall (CRPIX moved to put it there)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = list(ctype)
    wcs.wcs.crval = list(crval)
    wcs.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    wcs.wcs.cdelt = [-arcsec / 3600, arcsec / 3600]
    angle = math.radians(rotation_deg)
    wcs.wcs.pc = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    if put is not None:
        x, y = wcs.world_to_pixel(STAR)
        wcs.wcs.crpix = [wcs.wcs.crpix[0] + put[0] - float(x), wcs.wcs.crpix[1] + put[1] - float(y)]
    wcs.wcs.set()
    return wcs


def sip_wcs(shape: tuple[int, int], arcsec: float) -> WCS:
    """TAN-SIP with its reference pixel in a corner: around STAR the distortion moves pixels by ~10 px,
    more than a bounding box's margin."""
    wcs = sky_wcs(("RA---TAN-SIP", "DEC--TAN-SIP"), (STAR.ra.deg, STAR.dec.deg), arcsec, shape)
    wcs.wcs.crpix = [1, 1]
    wcs.wcs.set()
    corner = wcs.pixel_to_world(-75, -75)  # STAR 75 px from the reference pixel before distortion
    wcs.wcs.crval = [corner.ra.deg, corner.dec.deg]
    a, b = np.zeros((3, 3)), np.zeros((3, 3))
    a[2, 0] = b[0, 2] = -1.5e-3  # shrinking outwards: a box from the linear WCS alone would miss pixels
    wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    wcs.wcs.set()
    return wcs


def star_image(wcs: WCS, shape: tuple[int, int]) -> np.ndarray:
    """Background 10 plus a Gaussian star of peak 1000 at STAR, round on the sky (distance from STAR of
    every pixel's sky position, so projection and distortion cannot move its centroid)."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    distance = wcs.pixel_to_world(cols, rows).separation(STAR).arcsec
    return (10.0 + 1000.0 * np.exp(-distance**2 / (2 * STAR_SIGMA_ARCSEC**2))).astype(np.float32)


def write_image(path: Path, wcs: WCS, data: np.ndarray, unit: str | None = None) -> Path:
    header = wcs.to_header(relax=True)  # relax: SIP keywords too
    if unit is not None:
        header["BUNIT"] = unit
    fits.PrimaryHDU(data, header=header).writeto(path)
    return path


IMAGES = {  # name: (ctype, crval, arcsec per pixel, shape (rows, cols), rotation, unit)
    "tan": (("RA---TAN", "DEC--TAN"), (266.40, -28.94), 2.0, (150, 160), 25.0, "MJy/sr"),
    "sin": (("RA---SIN", "DEC--SIN"), (266.41, -28.93), 3.0, (100, 110), 0.0, None),
    "car": (("GLON-CAR", "GLAT-CAR"), (0.0, 0.0), 4.0, (90, 90), 0.0, "K"),
    "sip": (("RA---TAN-SIP", "DEC--TAN-SIP"), None, 1.5, (210, 220), 0.0, "DN"),
}


@pytest.fixture(scope="module")
def star_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("stars")
    files = {}
    for name, (ctype, crval, arcsec, shape, rotation, unit) in IMAGES.items():
        if name == "sip":
            wcs = sip_wcs(shape, arcsec)
        else:
            wcs = sky_wcs(ctype, crval, arcsec, shape, rotation, put=(shape[1] * 0.47, shape[0] * 0.52))
        files[name] = write_image(folder / f"{name}.fits", wcs, star_image(wcs, shape), unit)
    return files


def build(out: Path, surveys: list, *extra: str) -> None:
    cli_main(["--surveys", *map(str, surveys), "--ra", str(CENTRE[0]), "--dec", str(CENTRE[1]), "--fov", str(FOV),
              "--size", str(SIZE), "--out", str(out), "--no_progress", "--quiet", *extra])


def centroid(image: np.ndarray, half: int = 4) -> tuple[float, float]:
    """(x, y) intensity centroid in a window around the brightest pixel, background removed."""
    row, col = np.unravel_index(np.nanargmax(image), image.shape)
    window = image[row - half:row + half + 1, col - half:col + half + 1].astype(np.float64)
    weight = np.clip(window - np.nanmedian(image), 0, None)
    rows, cols = np.mgrid[row - half:row + half + 1, col - half:col + half + 1]
    return float((weight * cols).sum() / weight.sum()), float((weight * rows).sum() / weight.sum())


@pytest.mark.parametrize("resample", ["interp", "exact"])
def test_star_lands_on_its_pixel_in_every_panel_and_plane(star_files, tmp_path, resample):
    order = ["tan", "sin", "car", "sip"]
    out = tmp_path / "ds"
    build(out, [star_files[n] for n in order], "--fits", "--cuts", "0,100", "--resample", resample)
    with fits.open(out / "test" / "ra266.4050_dec-28.9350.fits") as hdul:
        cube, header = hdul[0].data, hdul[0].header
    x, y = (float(v) for v in WCS(header).celestial.world_to_pixel(STAR))
    assert abs(x - (19.5 - 2.8)) < 0.3 and abs(y - (19.5 + 2.4)) < 0.3  # east is left, north is up
    panels = np.asarray(Image.open(out / "test" / "ra266.4050_dec-28.9350.png"))[..., 0]
    for index, name in enumerate(order):
        cx, cy = centroid(cube[index])  # FITS orientation: row 0 = south
        assert abs(cx - x) < 0.1 and abs(cy - y) < 0.1, (name, cx, cy, x, y)
        px, py = centroid(panels[:, index * SIZE:(index + 1) * SIZE].astype(float))  # picture: row 0 = north
        assert abs(px - x) < 0.15 and abs((SIZE - 1 - py) - y) < 0.15, (name, px, py)
        unit = IMAGES[name][5] or "image value (no BUNIT)"
        assert header[f"PLUNI{index + 1}"] == unit and header[f"TILEFM{index + 1}"] == "image"
        assert header[f"COVER{index + 1}"] == 1.0 and np.isfinite(cube[index]).all()
        # values stay in the image's units: background 10, and the peak of a star 2 output px wide
        assert np.median(cube[index]) == pytest.approx(10.0, abs=0.5) and 500 < cube[index].max() < 1011
    assert header["PLNAM1"] == "tan:I" and header["SURVEY3"] == "car"


def test_mosaic_folder_equals_the_whole_image(star_files, tmp_path):
    """Two overlapping pieces of the TAN image give the cutout of the whole image (feathered seams)."""
    with fits.open(star_files["tan"]) as hdul:
        data, wcs = hdul[0].data, WCS(hdul[0].header)
    folder = tmp_path / "mosaic"
    folder.mkdir()
    for name, cols in (("left", slice(0, 90)), ("right", slice(70, 160))):
        write_image(folder / f"{name}.fits.gz", wcs[:, cols], data[:, cols], "MJy/sr")
    out = tmp_path / "ds"
    build(out, [star_files["tan"], folder], "--fits")
    cube = fits.getdata(out / "test" / "ra266.4050_dec-28.9350.fits")
    assert np.isfinite(cube).all()
    np.testing.assert_allclose(cube[1], cube[0], rtol=2e-5)
    engine = open_engine(str(folder))
    assert engine.name == "mosaic" and len(engine.pieces) == 2 and engine.unit == "MJy/sr"
    (folder / "other.fits").write_bytes(star_files["sin"].read_bytes())  # no BUNIT
    with pytest.raises(UserError, match="different units"):
        open_engine(str(folder))


def test_compressed_and_scaled_integer_files(star_files, tmp_path):
    """.fz (tile-compressed, in extension 1) and .bz2 files; int16 with BSCALE/BZERO, BLANK -> NaN."""
    with fits.open(star_files["car"]) as hdul:
        data, header = hdul[0].data, hdul[0].header
    raw = np.rint((data - 5.0) / 0.5).astype(np.int16)
    raw[:5] = -32768  # five rows without data
    header = header.copy()
    header["BSCALE"], header["BZERO"], header["BLANK"] = 0.5, 5.0, -32768
    compressed = fits.CompImageHDU(raw, header=header, compression_type="RICE_1")
    compressed.header["BSCALE"], compressed.header["BZERO"] = 0.5, 5.0
    fits.HDUList([fits.PrimaryHDU(), compressed]).writeto(tmp_path / "car.fits.fz")
    plain = open_engine(str(star_files["car"])).pieces[0].data
    piece = open_engine(str(tmp_path / "car.fits.fz")).pieces[0]
    assert np.isnan(piece.data[:5]).all() and np.isfinite(piece.data[5:]).all()
    np.testing.assert_allclose(piece.data[5:], plain[5:], atol=0.25)
    import bz2

    (tmp_path / "sin.fits.bz2").write_bytes(bz2.compress(star_files["sin"].read_bytes()))
    engine = open_engine(str(tmp_path / "sin.fits.bz2"))
    original = open_engine(str(star_files["sin"])).pieces[0].data
    assert engine.name == "sin" and np.array_equal(engine.pieces[0].data, original)


def test_same_interface_for_every_survey_kind(star_files):
    grid = OutputGrid(*CENTRE, FOV, SIZE, SIZE)
    image = open_engine(str(star_files["sin"]))
    hips = open_engine(str(SAMPLES / "DSS2Red"))
    for engine in (image, hips):
        cut = engine.cutout(grid)
        assert cut.values.shape == (SIZE, SIZE, engine.channels) and cut.values.dtype == np.float32
        assert 0 < cut.coverage <= 1 and engine.has_data(np.array([CENTRE[0]]), np.array([CENTRE[1]]), FOV / SIZE)[0]
        assert engine.footprint().contains(np.array([CENTRE[0]]), np.array([CENTRE[1]]))[0]
    assert image.unit == "image value (no BUNIT)" and not image.is_8bit and image.tile_format == "image"
    assert hips.is_8bit and open_engine(str(SAMPLES / "DSS2Red"), science=True).tile_format == "fits"
    assert science_engine(hips).tile_format == "fits" and science_engine(image) is None
    assert science_engine(open_engine(str(SAMPLES / "FermiColor"))) is None  # JPEG only


def test_fits_cube_holds_fits_tile_values_while_png_keeps_jpeg(tmp_path):
    """Bundled DSS2Red has FITS tiles Npix450/451: with --fits the cube plane comes from them."""
    surveys = [SAMPLES / "DSS2Red", SAMPLES / "FermiColor"]
    where = ["--ra", "270.9", "--dec", "-24.4", "--fov", "1.0", "--size", "32", "--no_progress", "--quiet"]
    runs = {"default": ["--fits"], "fits_tiles": ["--fits", "--tile_format", "fits", "jpeg"], "png_only": []}
    for name, extra in runs.items():
        cli_main(["--surveys", *map(str, surveys), *where, "--out", str(tmp_path / name), *extra])
    png = {name: np.asarray(Image.open(tmp_path / name / "test" / "ra270.9000_dec-24.4000.png")) for name in runs}
    cube = fits.getdata(tmp_path / "default" / "test" / "ra270.9000_dec-24.4000.fits")
    header = fits.getheader(tmp_path / "default" / "test" / "ra270.9000_dec-24.4000.fits")
    reference = fits.getdata(tmp_path / "fits_tiles" / "test" / "ra270.9000_dec-24.4000.fits")
    assert np.array_equal(cube[0], reference[0], equal_nan=True)  # the FITS tiles' values
    assert np.nanmax(cube[0]) > 1000 and header["TILEFM1"] == "fits" and header["PLUNI1"] != "8-bit tile level"
    assert np.array_equal(png["default"], png["png_only"])  # the PNG still from JPEG tiles
    assert not np.array_equal(png["default"], png["fits_tiles"])
    assert header["TILEFM2"] == "jpeg" and np.nanmax(cube[1:]) < 255.01  # FermiColor: JPEG only


def test_an_image_is_sampled_at_the_given_sky_positions(tmp_path):
    """HEALPix tile pixels follow no WCS: cutout(grid, sky=...) samples the image at exactly those positions
    (an FK5 ramp image, value = x + 1000 y: bilinear interpolation returns it exactly), and on a WCS grid
    it equals reproject_interp (frames converted exactly: ICRS -> FK5 moves pixels by 20 mas)."""
    import cdshealpix.nested as healpix

    from data.sky.geometry import pixel_sky_coords
    from data.sky.tile_grid import tile_pixel_lonlat

    shape = (150, 160)
    wcs = sky_wcs(("RA---TAN", "DEC--TAN"), (266.40, -28.94), 2.0, shape, 25.0)
    wcs.wcs.radesys, wcs.wcs.equinox = "FK5", 2000.0
    wcs.wcs.set()
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    engine = open_engine(str(write_image(tmp_path / "ramp.fits", wcs, (cols + 1000.0 * rows).astype(np.float32))))
    order, width = 10, 64  # 3.2" pixels, a tile of 3.4' inside the 5.3' image
    tile = int(healpix.lonlat_to_healpix(266.40 * u.deg, -28.94 * u.deg, order)[0])
    ra, dec = (v[0] for v in tile_pixel_lonlat([tile], order, width))
    values = engine.cutout(OutputGrid(float(ra[32, 32]), float(dec[32, 32]), 0.06, width, width),
                           sky=(ra, dec)).values[..., 0]
    x, y = wcs.world_to_pixel(SkyCoord(ra * u.deg, dec * u.deg, frame="icrs"))
    inside = (x >= 0) & (x <= shape[1] - 1) & (y >= 0) & (y <= shape[0] - 1)
    assert inside.mean() > 0.6 and np.array_equal(np.isfinite(values), inside | np.isfinite(values))
    np.testing.assert_allclose(values[inside], (x + 1000 * y)[inside], atol=0.05)
    grid = OutputGrid(266.401, -28.939, 0.05, 40, 30)
    np.testing.assert_allclose(engine.cutout(grid, sky=pixel_sky_coords(grid)).values, engine.cutout(grid).values,
                               atol=0.02)


def test_sample_over_small_fits_fields_splits_train_and_test_apart(tmp_path):
    """All surveys FITS images of a 1 x 1 deg field: the sky-cell split still gives every split."""
    shape, arcsec = (180, 180), 20.0
    rng = np.random.default_rng(0)
    equatorial = sky_wcs(("RA---TAN", "DEC--TAN"), (266.40, -28.93), arcsec, shape)
    gal = SkyCoord(266.40 * u.deg, -28.93 * u.deg).galactic
    galactic = sky_wcs(("GLON-CAR", "GLAT-CAR"), (float(gal.l.deg), float(gal.b.deg)), arcsec, shape, 58.0)
    surveys = [write_image(tmp_path / "a.fits", equatorial, rng.normal(size=shape).astype(np.float32)),
               write_image(tmp_path / "b.fits", galactic, rng.normal(size=shape).astype(np.float32))]
    out = tmp_path / "ds"
    fov = 0.0889
    cli_main(["--surveys", *map(str, surveys), "--sample", "40", "--fov", str(fov), "--size", "16",
              "--min_coverage", "0.99", "--out", str(out), "--no_progress", "--quiet"])
    with (out / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["split"] for r in rows).count("train") == 32
    assert sorted(r["split"] for r in rows).count("val") == 4 and sorted(r["split"] for r in rows).count("test") == 4
    assert "split" not in json.loads((out / "dataset.json").read_text())  # a degree keeps its HEALPix cells
    assert min(float(r[k]) for r in rows for k in r if k.startswith("coverage_")) >= 0.99
    pos = SkyCoord([float(r["ra"]) for r in rows] * u.deg, [float(r["dec"]) for r in rows] * u.deg)
    for index, row in enumerate(rows):
        other = np.array([r["split"] != row["split"] for r in rows])
        assert np.all(pos[index].separation(pos[other]).deg >= fov * math.sqrt(2) * 0.999)
    # a grid finer than the whole-sky scan's order 9 (6.9') reaches into a field of a degree
    cli_main(["--surveys", *map(str, surveys), "--sample", "40", "--sample_mode", "grid", "--fov", str(fov),
              "--size", "16", "--min_coverage", "0.99", "--out", str(tmp_path / "grid"), "--no_progress", "--quiet"])
    assert len(list((tmp_path / "grid").rglob("*.png"))) == 40


# ---- bad input ---------------------------------------------------------------------------------
def one_line_error(argv: list[str], match: str) -> str:
    with pytest.raises(UserError, match=match) as caught:
        cli_main(argv)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_file_without_celestial_wcs(tmp_path):
    fits.PrimaryHDU(np.ones((20, 20), dtype=np.float32)).writeto(tmp_path / "plain.fits")
    message = one_line_error(["--surveys", str(tmp_path / "plain.fits"), "--ra", "1", "--dec", "2", "--fov", "0.1",
                              "--size", "16", "--out", str(tmp_path / "o")], "no celestial WCS")
    assert "plain.fits" in message
    assert not (tmp_path / "o").exists()  # issue 19 (A02): a refused run leaves no empty --out behind


def test_cube_needs_a_plane(star_files, tmp_path):
    wcs = sky_wcs(("RA---TAN", "DEC--TAN"), (266.40, -28.94), 3.0, (100, 100))
    header = wcs.to_header()
    cube = np.stack([np.full((100, 100), 10.0 * (k + 1), dtype=np.float32) for k in range(3)])
    fits.PrimaryHDU(cube, header=header).writeto(tmp_path / "cube.fits")
    common = ["--ra", str(CENTRE[0]), "--dec", str(CENTRE[1]), "--fov", "0.03", "--size", "16", "--fits", "--quiet",
              "--no_progress"]
    message = one_line_error(["--surveys", str(tmp_path / "cube.fits"), *common, "--out", str(tmp_path / "a")],
                             r"a cube of 3 planes")
    assert "cube.fits[N]" in message
    one_line_error(["--surveys", f"{tmp_path / 'cube.fits'}[3]", *common, "--out", str(tmp_path / "b")],
                   r"it has 3 plane\(s\)")
    # issue 19 A05b: the file exists, only [-1] is wrong (was: 'no such folder or file')
    one_line_error(["--surveys", f"{tmp_path / 'cube.fits'}[-1]", *common, "--out", str(tmp_path / "b")],
                   r"\[-1\] is not a plane number")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # issue 19 (A03): no empty --out
    cli_main(["--surveys", f"{tmp_path / 'cube.fits'}[2]", *common, "--out", str(tmp_path / "c")])
    written = fits.open(next((tmp_path / "c" / "test").glob("*.fits")))[0]
    assert written.header["SURVEY1"] == "cube_p2" and np.allclose(written.data[0], 30.0)


def test_surveys_without_common_sky(star_files, tmp_path):
    far = sky_wcs(("RA---TAN", "DEC--TAN"), (10.0, 40.0), 3.0, (50, 50))
    write_image(tmp_path / "far.fits", far, np.ones((50, 50), dtype=np.float32))
    for mode in (["--sample", "4"], ["--ra", str(CENTRE[0]), "--dec", str(CENTRE[1])]):
        message = one_line_error(["--surveys", str(star_files["tan"]), str(tmp_path / "far.fits"), *mode,
                                  "--fov", "0.03", "--size", "16", "--out", str(tmp_path / "o")],
                                 "no sky area in common")
        assert "tan" in message and "far" in message


def test_field_smaller_than_the_cutout(tmp_path, capsys):
    small = sky_wcs(("RA---TAN", "DEC--TAN"), CENTRE, 2.0, (30, 30))  # 60" of a 180" cutout: 1/9 of it
    write_image(tmp_path / "small.fits", small, np.ones((30, 30), dtype=np.float32))
    argv = ["--surveys", str(tmp_path / "small.fits"), "--ra", str(CENTRE[0]), "--dec", str(CENTRE[1]),
            "--fov", "0.05", "--size", "36", "--no_progress", "--quiet"]
    cli_main(argv + ["--out", str(tmp_path / "kept")])
    reported = capsys.readouterr().err
    with (tmp_path / "kept" / "manifest.csv").open() as handle:
        cover = float(next(csv.DictReader(handle))["coverage_small"])
    assert cover == pytest.approx(1 / 9, abs=0.02) and f"small covers {cover:.1%}" in reported
    cli_main(argv + ["--out", str(tmp_path / "skipped"), "--min_coverage", "0.5"])
    assert "skipped 1 below --min_coverage 0.5" in capsys.readouterr().err
    assert not list((tmp_path / "skipped").rglob("*.png"))


def test_other_backends_refuse_fits_images(star_files, tmp_path):
    one_line_error(["--surveys", str(star_files["tan"]), "--ra", str(CENTRE[0]), "--dec", str(CENTRE[1]),
                    "--fov", "0.03", "--size", "128", "--backend", "aladin", "--out", str(tmp_path / "o")],
                   "only --backend builtin reads FITS images")


# ---- real panels coincide ------------------------------------------------------------------------
def band_pass(image: np.ndarray) -> np.ndarray:
    """Stars and knots, without the galaxy's smooth light: a difference of Gaussians (1 and 4 px)."""
    from scipy.ndimage import gaussian_filter

    image = np.nan_to_num(image - np.nanmedian(image))
    return gaussian_filter(image, 1.0) - gaussian_filter(image, 4.0)


def correlation_peak(reference: np.ndarray, image: np.ndarray, reach: int = 3) -> tuple[float, float, float]:
    """Shift (dx, dy) of `image` against `reference` at the peak of their normalised cross-correlation over
    +-reach px, refined by a parabola through the peak and its neighbours; and the peak value."""
    n = reference.shape[0]
    core = reference[reach:n - reach, reach:n - reach]
    core = (core - core.mean()) / core.std()
    score = np.zeros((2 * reach + 1, 2 * reach + 1))
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            window = image[reach + dy:n - reach + dy, reach + dx:n - reach + dx]
            score[dy + reach, dx + reach] = np.mean(core * (window - window.mean()) / window.std())
    row, col = np.unravel_index(np.argmax(score), score.shape)
    assert 0 < row < 2 * reach and 0 < col < 2 * reach, "peak on the edge of the search"

    def vertex(a: float, b: float, c: float) -> float:
        return 0.5 * (a - c) / (a - 2 * b + c)

    dy = row - reach + vertex(*score[row - 1:row + 2, col])
    dx = col - reach + vertex(*score[row, col - 1:col + 2])
    return float(dx), float(dy), float(score.max())


def test_real_panels_of_sn2010ag_coincide(tmp_path, sn2010ag):
    """GALEX (1.5" TAN), 2MASS (1" TAN) and WISE (1.375" SIN) on one 3.4"/px grid: every band's
    cross-correlation peak against 2MASS Ks within 0.3 px. FUV is compared with NUV instead: its light
    (hot young stars) hardly follows Ks (measured: r = 0.49, peak 1.6 px away, while FUV-NUV and NUV-Ks
    agree within 0.18 px), so against Ks it would measure the galaxy, not the registration."""
    bands = ["2mass_k", "2mass_j", "2mass_h", "galex_nuv", "galex_fuv", "wise_w1", "wise_w2", "wise_w3", "wise_w4"]
    out = tmp_path / "sn"
    cli_main(["--surveys", *(str(sn2010ag / f"{b}.fits.gz") for b in bands), "--ra", "255.9733", "--dec", "31.5019",
              "--fov", "0.06", "--size", "64", "--out", str(out), "--fits", "--no_progress", "--quiet"])
    cube = fits.getdata(next((out / "test").glob("*.fits"))).astype(np.float64)
    assert np.isfinite(cube).all()
    filtered = {band: band_pass(cube[i]) for i, band in enumerate(bands)}
    for band in bands[1:]:
        reference = "galex_nuv" if band == "galex_fuv" else "2mass_k"
        dx, dy, peak = correlation_peak(filtered[reference], filtered[band])
        assert math.hypot(dx, dy) < 0.3 and peak > 0.3, (band, dx, dy, peak)
    # the measure sees a shift of one pixel
    dx, dy, _ = correlation_peak(filtered["2mass_k"], np.roll(filtered["2mass_j"], 1, axis=1))
    assert abs(dx - 1) < 0.1 and abs(dy) < 0.1
