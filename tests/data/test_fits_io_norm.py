"""FITS reading (physical values, BLANK, MEF planes, WCS) and the per-band normalisation (fit, invert, save)."""
import json

import numpy as np
import pytest
from astropy.io import fits

from data.sky.fits_io import celestial_wcs, plane_labels, read_cube, require_wcs
from data.fits_norm import (PlaneNorm, PlaneSampler, fit_cube_norm, fit_plane, load_norm, parse_cuts,
                            save_norm)
from util.errors import UserError


def sky_like(rng, shape=(40, 40)):
    """Background noise around 100, negative pixels, a few sources 1e4 brighter, a NaN hole."""
    values = rng.normal(100.0, 5.0, shape)
    values[rng.integers(0, shape[0], 6), rng.integers(0, shape[1], 6)] = 1e6
    values[:5, :7] = -20.0
    values = values.astype(np.float32)
    values[30:, 30:] = np.nan
    return values


@pytest.mark.parametrize("mode", ["asinh", "linear"])
def test_normalise_then_invert_returns_the_physical_values(mode):
    rng = np.random.default_rng(0)
    values = sky_like(rng)
    sampler = PlaneSampler(per_cube=500)
    sampler.add(values)
    norm = fit_plane(sampler, mode, parse_cuts("auto", mode))
    back = norm.invert(norm.normalize(values))
    assert back.dtype == np.float32
    assert np.array_equal(np.isnan(back), np.isnan(values))
    finite = np.isfinite(values)
    np.testing.assert_allclose(back[finite], values[finite], rtol=2e-6, atol=1e-4)
    if mode == "asinh":  # default cuts 0.5,100: every training pixel above the low cut lands in [-1, 1]
        normalized = norm.normalize(values)[finite]
        assert normalized.max() == pytest.approx(1.0, abs=1e-6)
        assert normalized[values[finite] >= norm.low].min() >= -1.0
        # the background is not squashed as a linear map of the same range would: 1 sigma of noise
        # spans over 100 times more of [-1, 1]
        linear = PlaneNorm("linear", norm.low, norm.high)
        step = np.diff(norm.normalize(np.float32([100.0, 105.0])))[0]
        assert step > 100 * np.diff(linear.normalize(np.float32([100.0, 105.0])))[0] > 0


def test_linear_cuts_are_percentiles_of_the_training_pixels():
    sampler = PlaneSampler(per_cube=10_000)
    sampler.add(np.arange(1000, dtype=np.float32).reshape(10, 100))
    norm = fit_plane(sampler, "linear", (1.0, 99.0))
    assert norm.low == pytest.approx(9.99) and norm.high == pytest.approx(989.01)
    assert norm.normalize(np.float32([9.99, 989.01, 499.5])) == pytest.approx([-1.0, 1.0, 0.0], abs=1e-6)


def test_exact_extremes_and_empty_or_constant_planes():
    sampler = PlaneSampler(per_cube=10)  # subsampled, yet cuts 0 and 100 are the exact min and max
    sampler.add(np.linspace(-3.0, 7.0, 5000, dtype=np.float32))
    norm = fit_plane(sampler, "linear", (0.0, 100.0))
    assert (norm.low, norm.high) == (-3.0, 7.0)
    empty = PlaneSampler(per_cube=10)
    empty.add(np.full((4, 4), np.nan, np.float32))
    assert fit_plane(empty, "asinh", (0.5, 100.0)) is None
    flat = PlaneSampler(per_cube=10)
    flat.add(np.full((4, 4), 5.0, np.float32))
    constant = fit_plane(flat, "asinh", (0.5, 100.0))
    assert constant.high > constant.low and constant.softening > 0
    assert constant.invert(constant.normalize(np.float32([5.0]))) == pytest.approx([5.0])


def test_norm_file_round_trip_is_exact_and_atomic(tmp_path):
    rng = np.random.default_rng(1)
    samplers = [PlaneSampler(100) for _ in range(3)]
    samplers[0].add(sky_like(rng))
    samplers[1].add(rng.normal(0, 1, (20, 20)).astype(np.float32))  # plane 2 has no data
    norm = fit_cube_norm(samplers, "asinh", (0.5, 100.0), [("DSS2Red:I", "adu"), ("IRAC4:I", "MJy/sr"),
                                                           ("Empty:I", "")], n_files=1)
    path = tmp_path / "ck" / "run" / "fits_norm.json"
    save_norm(norm, path)
    assert [p.name for p in path.parent.iterdir()] == ["fits_norm.json"]  # no temp file left
    again = load_norm(path)
    assert again == norm  # floats survive JSON bit for bit
    saved = json.loads(path.read_text())
    assert saved["planes"][1]["unit"] == "MJy/sr" and saved["planes"][2]["mode"] is None
    with pytest.raises(UserError, match="plane 2 .*Empty:I.* no data"):
        again.plane(2)
    path.write_text("{not json")
    with pytest.raises(UserError, match="not a valid normalisation file"):
        load_norm(path)
    with pytest.raises(UserError, match="train this model with --dataset_mode fits_aligned"):
        load_norm(tmp_path / "missing.json")


@pytest.mark.parametrize("text", ["1", "a,b", "50,10", "-1,50", "0,101"])
def test_bad_cuts_are_one_line_errors(text):
    with pytest.raises(UserError, match="--fits_cuts"):
        parse_cuts(text, "linear")


def test_integer_fits_with_blank_becomes_nan(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    raw[0, 1, 2] = -32768
    raw[1, 0, 0] = -32768
    scaled = fits.PrimaryHDU(raw)
    scaled.header["BSCALE"], scaled.header["BZERO"], scaled.header["BLANK"] = 0.5, 10.0, -32768
    scaled.writeto(tmp_path / "scaled.fits")
    plain = fits.PrimaryHDU(raw)  # BLANK without scaling: astropy alone leaves -32768 in place
    plain.header["BLANK"] = -32768
    plain.writeto(tmp_path / "plain.fits")
    expected = raw.astype(np.float64)
    expected[raw == -32768] = np.nan
    cube = read_cube(str(tmp_path / "scaled.fits"))
    assert cube.planes.dtype == np.float32 and cube.planes.shape == (2, 3, 4)
    np.testing.assert_allclose(cube.planes, expected * 0.5 + 10.0)
    np.testing.assert_array_equal(read_cube(str(tmp_path / "plain.fits")).planes, expected)


def test_planes_from_extensions_and_shape_mismatch(tmp_path):
    good = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((8, 6), np.float32)),
                         fits.ImageHDU(np.zeros((8, 6), np.float32))])
    good.writeto(tmp_path / "mef.fits")
    cube = read_cube(str(tmp_path / "mef.fits"))
    assert cube.planes.shape == (2, 8, 6) and cube.planes[0].sum() == 48
    bad = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((8, 6), np.float32)),
                        fits.ImageHDU(np.ones((4, 6), np.float32))])
    bad.writeto(tmp_path / "bad.fits")
    with pytest.raises(UserError, match="planes of different shapes: extension 1 is 6x8, extension 2 is 6x4"):
        read_cube(str(tmp_path / "bad.fits"))
    (tmp_path / "empty.fits").write_bytes(b"")
    with pytest.raises(UserError, match="empty FITS file"):
        read_cube(str(tmp_path / "empty.fits"))
    (tmp_path / "junk.fits").write_bytes(b"SIMPLE  = nonsense" * 10)
    with pytest.raises(UserError, match="junk.fits"):
        read_cube(str(tmp_path / "junk.fits"))


def test_wcs_is_required_unless_allowed():
    header = fits.Header()
    header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, 10, 10
    with pytest.raises(UserError, match="no celestial WCS.*--allow_no_wcs"):
        require_wcs(header, "x.fits", allow_no_wcs=False)
    assert require_wcs(header, "x.fits", allow_no_wcs=True) is None
    header.update({"CTYPE1": "GLON-CAR", "CTYPE2": "GLAT-CAR", "CRPIX1": 5.0, "CRPIX2": 5.0,
                   "CDELT1": -0.1, "CDELT2": 0.1, "CRVAL1": 10.0, "CRVAL2": 0.0})
    assert celestial_wcs(header).wcs.ctype[0] == "GLON-CAR"
    assert plane_labels(header, 2) == [("plane 0", ""), ("plane 1", "")]
