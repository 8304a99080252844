"""Properties, tile decoding (FITS scaling/BLANK, truncation, blanks), targets and CSV errors."""
from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits

from data.sky.properties import parse_properties_text
from data.sky.targets import catalog_targets, read_coords_csv, resolve_names, unique_stems, Target
from data.sky.tiles import TileDecodeError, decode_tile, separate_blank
from util.errors import UserError


def test_properties_of_the_samples(samples):
    dss = parse_properties_text((samples / "DSS2Red/properties").read_text())
    assert (dss.frame, dss.max_order, dss.tile_width, dss.formats, dss.is_colour) == \
        ("equatorial", 3, 512, ("jpeg", "fits"), False)
    planck = parse_properties_text((samples / "Planck-HFI143/properties").read_text())
    assert (planck.frame, planck.tile_width) == ("galactic", 256)
    assert parse_properties_text((samples / "FermiColor/properties").read_text()).is_colour


@pytest.mark.parametrize("text,message", [
    ("hips_frame = ecliptic\nhips_order = 3\n", "not supported"),
    ("hips_frame = equatorial\n", "hips_order"),
    ("hips_order = 3\nhips_tile_format = webp\n", "unsupported"),
    # S01c, S01e of the fault sweep: cdshealpix's "Depth must be in the [0, 29] closed range" tracebacks
    ("hips_order = -1\n", "hips_order -1 is negative"),
    ("hips_order = 3\nhips_order_min = -2\n", "hips_order_min -2 is negative"),
    ("hips_order = 3\nhips_tile_width = 1073741824\n", r"HEALPix depth 30, .*deepest is 29"),
    ("hips_order = 12\nhips_order_min = 12\nhips_tile_width = 262144\n", r"HEALPix depth 30, .*deepest is 29"),
])
def test_bad_properties_are_user_errors(text, message):
    with pytest.raises(UserError, match=message):
        parse_properties_text(text)


def test_an_order_beyond_what_tiles_can_address_is_clamped():
    """hips_order 99 (S01a) keeps working: no tile of 512 px is deeper than order 20 (depth 29)."""
    props = parse_properties_text("hips_order = 99\nhips_tile_width = 512\n")
    assert (props.max_order, props.min_order) == (20, 0)


def test_hostile_properties_stop_the_builder_with_one_line(samples, tmp_path, capsys):
    import shutil

    from data.sky.cli import main as cli_main
    from util.errors import exit_on_user_error

    build = exit_on_user_error(cli_main)  # as aladin_data.py wraps it

    for change, message in ((("hips_order           = 3", "hips_order = -1"), "hips_order -1 is negative"),
                            (("hips_tile_width      = 512", "hips_tile_width = 1073741824"), "deepest is 29"),
                            # independent check of issue 19: 2^22 px passes the depth check (order 3 + 22 = 25)
                            # and then asked numpy for 128 TiB (_ArrayMemoryError, a traceback)
                            (("hips_tile_width      = 512", "hips_tile_width = 4194304"), "wider than any HiPS")):
        survey = tmp_path / "hostile"
        shutil.rmtree(survey, ignore_errors=True)
        shutil.copytree(samples / "DSS2Red", survey)
        text = (survey / "properties").read_text()
        assert change[0] in text
        (survey / "properties").write_text(text.replace(change[0], change[1]))
        with pytest.raises(SystemExit) as stop:
            build(["--surveys", str(survey), str(samples / "GLIMPSE360"), "--sample", "2", "--fov", "1.8",
                   "--size", "32", "--out", str(tmp_path / "out"), "--no_progress", "--quiet"])
        assert stop.value.code == 2
        assert message in capsys.readouterr().err


def _fits_bytes(raw: np.ndarray, **cards) -> bytes:
    hdu = fits.PrimaryHDU(raw)
    for key, value in cards.items():
        hdu.header[key] = value
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()


def test_fits_scaling_blank_and_row_flip(samples):
    real = decode_tile((samples / "DSS2Red/Norder3/Dir0/Npix450.fits").read_bytes(), "fits", 512)[..., 0]
    raw = np.arange(16, dtype=np.int16).reshape(4, 4)
    raw[0, 1] = -32768
    tile = decode_tile(_fits_bytes(raw, BSCALE=2.0, BZERO=10.0, BLANK=-32768), "fits", 4)[..., 0]
    # FITS row 0 is the bottom row: it becomes the last row
    assert tile[3, 0] == 10.0 and tile[3, 2] == 2 * 2 + 10 and tile[0, 0] == 2 * 12 + 10
    assert np.isnan(tile[3, 1]) and np.isfinite(real).all()


def test_truncated_or_corrupt_tiles_raise(samples):
    jpg = (samples / "DSS2Red/Norder3/Dir0/Npix450.jpg").read_bytes()
    assert decode_tile(jpg, "jpeg", 512, colour=False).shape == (512, 512, 1)
    for bad in (jpg[: len(jpg) // 2], b"not an image", jpg[:20]):
        with pytest.raises(TileDecodeError):
            decode_tile(bad, "jpeg", 512)
    fit = (samples / "DSS2Red/Norder3/Dir0/Npix450.fits").read_bytes()
    with pytest.raises(TileDecodeError):
        decode_tile(fit[:-5000], "fits", 512)
    with pytest.raises(TileDecodeError):
        decode_tile(jpg, "jpeg", 256)  # wrong size


def test_blank_regions_vs_dark_pixels():
    tile = np.full((32, 32, 1), 40, dtype=np.uint8)
    tile[:10, :10] = 0  # a no-data corner
    tile[20, 20] = 0  # one dark pixel of real data
    out, has_blank = separate_blank(tile)
    assert has_blank and out[0, 0, 0] == 0 and out[5, 5, 0] == 0 and out[20, 20, 0] == 1


def test_coords_csv_good_and_bad(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("name,ra,dec,fov\nM8,270.9,-24.38,\nfield,266.4,-28.9,0.5\n")
    targets = read_coords_csv(good)
    assert targets == [Target("M8", 270.9, -24.38, None), Target("field", 266.4, -28.9, 0.5)]
    cases = {
        "name,ra,dec\nA,1,2\nB,x,3\n": ":3: ra, dec and fov must be numbers",
        "name,ra,dec\nA,1,2\nB,10,95\n": ":3: position",
        "name,ra\nA,1\n": ":1: header lacks dec",
        "name,ra,dec\nA,1\n": ":2: 2 fields",
        "": "empty file",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(UserError, match=message):
            read_coords_csv(bad)
    with pytest.raises(UserError, match="cannot read"):
        read_coords_csv(tmp_path / "absent.csv")


def test_names_offline_and_catalogue():
    found, unknown = resolve_names(["NGC 6523", "M 20", "no such object 123"], online=False)
    assert [t.name for t in found] == ["NGC 6523", "M 20"] and unknown == ["no such object 123"]
    assert found[0].ra == pytest.approx(270.92, abs=0.05) and found[0].dec == pytest.approx(-24.38, abs=0.05)
    ngc = catalog_targets("ngc")
    assert 7500 < len(ngc) < 8400 and len({t.name for t in ngc}) == len(ngc)


def test_unique_file_stems():
    stems = unique_stems([Target("NGC 1", 0, 0), Target("NGC 1", 1, 0), Target("a/b", 2, 0), Target("../../x", 3, 0)])
    assert stems == ["NGC_1", "NGC_1_2", "a_b", "x"]
    long_a, long_b = "x" * 299 + "a", "x" * 299 + "b"
    stems = unique_stems([Target(long_a, 0, 0), Target(long_b, 1, 0), Target(long_a, 2, 0)])
    assert all(len(stem) <= 120 for stem in stems) and len(set(stems)) == 3
    assert stems == unique_stems([Target(long_a, 0, 0), Target(long_b, 1, 0), Target(long_a, 2, 0)])  # resume


def test_hips_order_min_defaults_to_the_standard_zero(samples, tmp_path):
    """HiPS 1.0: hips_order_min is optional with default 0; a local copy reads the orders it really has."""
    from data.sky.engine import CutoutEngine
    from data.sky.geometry import OutputGrid
    from data.sky.source import open_survey

    assert parse_properties_text("hips_order = 9\nhips_frame = equatorial\n").min_order == 0
    assert parse_properties_text("hips_order = 9\nhips_order_min = 2\n").min_order == 2
    survey = open_survey(str(samples / "DSS2Red"))  # no hips_order_min, tiles in Norder3 only
    assert survey.properties.min_order == 0 and survey.lowest_order == 3
    coarse = CutoutEngine(survey).cutout(OutputGrid(266.4, -28.9, 8.0, 32, 32))  # 900"/px: order 0 would do
    assert coarse.order == 3 and coarse.coverage > 0.5


def test_builder_imports_stay_light():
    """aladin_data.py must not pull torch in (data/__init__.py stays light)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    code = "import sys, data.sky.build, data.sky.cli; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_stale_temp_files_of_own_targets_are_removed(tmp_path):
    from data.sky.planning import Item, remove_stale_temps

    mine = Item(Target("a", 1.0, 2.0), "a", "train")
    (tmp_path / "train").mkdir()
    stale = [tmp_path / "train" / ".a.png.x1.tmp", tmp_path / "train" / ".a.fits.x2.tmp", tmp_path / ".manifest.csv.x3.tmp"]
    kept = [tmp_path / "train" / ".b.png.x4.tmp", tmp_path / "train" / "a.png", tmp_path / ".manifest.shard0of2.csv.x5.tmp"]
    for path in stale + kept:
        path.write_bytes(b"x")
    remove_stale_temps(tmp_path, [mine], "manifest.csv")
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def test_stretches_are_monotonic_and_respect_cuts():
    from data.sky.stretch import StretchSettings, stretch_to_unit, to_uint8

    values = np.linspace(0.0, 100.0, 1001, dtype=np.float32)[:, None, None]
    values[5] = np.nan
    for name in ("linear", "asinh", "log", "sqrt"):
        unit = stretch_to_unit(values, StretchSettings(name, 10.0, 90.0))[..., 0, 0]
        finite = unit[np.isfinite(unit)]
        assert np.all(np.diff(finite) >= 0) and finite.min() == 0.0 and finite.max() == 1.0
        assert np.isnan(unit[5])
    assert stretch_to_unit(values, StretchSettings("asinh"))[500, 0, 0] > \
        stretch_to_unit(values, StretchSettings("linear"))[500, 0, 0]
    picture = to_uint8(values, False, StretchSettings())
    assert picture.dtype == np.uint8 and picture[5, 0, 0] == 0 and picture[-1, 0, 0] == 255


def test_moc_round_trip_gives_the_footprint(tmp_path):
    from data.sky.aladin_backend import write_moc
    from data.sky.footprint import parse_moc_fits
    from data.sky.geometry import tile_pixel_sky

    write_moc(np.array([450, 451]), 3, "equatorial", tmp_path / "Moc.fits")
    footprint = parse_moc_fits((tmp_path / "Moc.fits").read_bytes(), "equatorial")
    inside = tile_pixel_sky(450, 100, 100, 3, 512)
    outside = tile_pixel_sky(452, 100, 100, 3, 512)
    assert footprint.contains(np.array([inside[0], outside[0]]), np.array([inside[1], outside[1]])).tolist() == \
        [True, False]
