"""aladin_data.py end to end on the bundled HiPS sample: datasets, FITS cubes, splits, resume, errors."""
from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from data.sky.cli import main as cli_main
from util.errors import UserError

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "sky_samples"
FOUR = [str(SAMPLES / s) for s in ("DSS2Red", "GLIMPSE360", "Planck-HFI143", "FermiColor")]


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "aladin_data.py"), *args, "--no_progress"], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def manifest(out: Path) -> list[dict]:
    with (out / "manifest.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_sample_dataset_four_surveys(tmp_path):
    out = tmp_path / "ds"
    done = run_cli("--surveys", *FOUR, "--sample", "10", "--fov", "1.8", "--size", "32", "--out", str(out),
                   "--min_coverage", "0.95", "--seed", "3", "--split", "0.6,0.2,0.2")
    assert done.returncode == 0, done.stderr
    rows = manifest(out)
    assert 8 <= len(rows) <= 10
    assert set(rows[0]) >= {"file", "name", "ra", "dec", "fov", "size", "surveys", "split",
                            "coverage_DSS2Red", "coverage_GLIMPSE360", "coverage_Planck-HFI143",
                            "coverage_FermiColor"}
    for row in rows:
        assert row["file"].startswith(row["split"] + "/")
        with Image.open(out / row["file"]) as image:
            assert image.size == (4 * 32, 32) and image.mode == "RGB"
        assert min(float(row[k]) for k in row if k.startswith("coverage_")) >= 0.95
    assert {r["split"] for r in rows} <= {"train", "val", "test"}
    pngs = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert pngs == sorted(r["file"] for r in rows)
    assert not list(out.rglob("*.tmp"))
    again = run_cli("--surveys", *FOUR, "--sample", "10", "--fov", "1.8", "--size", "32", "--out", str(out),
                    "--min_coverage", "0.95", "--seed", "3", "--split", "0.6,0.2,0.2")
    assert again.returncode == 0 and f"wrote 0 targets" in again.stderr and f"{len(rows)} already done" in again.stderr


def test_one_target_for_test_py_and_fits_cube(tmp_path):
    out = tmp_path / "one"
    done = run_cli("--surveys", *FOUR, "--target", "NGC 6523", "--fov", "1.0", "--size", "40", "--out", str(out),
                   "--fits")
    assert done.returncode == 0, done.stderr
    rows = manifest(out)
    assert [(r["file"], r["split"], r["fits"]) for r in rows] == [("test/NGC_6523.png", "test", "test/NGC_6523.fits")]
    assert sorted(os.listdir(out / "test")) == ["NGC_6523.fits", "NGC_6523.png"]
    with fits.open(out / "test/NGC_6523.fits") as hdul:
        cube, header = hdul[0].data, hdul[0].header
    assert cube.dtype.kind == "f" and cube.dtype.itemsize == 4 and cube.shape == (1 + 3 + 1 + 3, 40, 40)
    assert [header[f"SURVEY{i}"] for i in range(1, 5)] == ["DSS2Red", "GLIMPSE360", "Planck-HFI143", "FermiColor"]
    assert header["PLNAM2"] == "GLIMPSE360:R" and header["PLUNI2"] == "8-bit tile level"
    # DSS2Red offers FITS tiles here (Npix451): the cube holds their values, the PNG the JPEG look
    assert header["TILEFM1"] == "fits" and header["PLUNI1"] != "8-bit tile level" and np.nanmax(cube[0]) > 255
    wcs = WCS(header).celestial
    x, y = wcs.world_to_pixel_values(270.925, -24.38)  # M8 / NGC 6523 from OpenNGC
    assert abs(x - 19.5) < 0.6 and abs(y - 19.5) < 0.6
    png = np.asarray(Image.open(out / "test/NGC_6523.png"))
    # PNG row 0 = north = last FITS row; a JPEG-only panel (FermiColor R, plane 6) equals its plane rounded
    assert np.abs(png[:, 120:160, 0].astype(float) - np.rint(np.nan_to_num(cube[5][::-1]))).max() <= 1
    from scipy.stats import spearmanr  # the JPEG levels are a monotonic stretch of the FITS values

    assert spearmanr(png[:, :40, 0].ravel(), cube[0][::-1].ravel())[0] > 0.9  # same sky in both


def test_fits_cube_marks_missing_data_nan(tmp_path):
    out = tmp_path / "nan"
    done = run_cli("--surveys", FOUR[0], "--ra", "261.5625", "--dec", "-32.786", "--fov", "2", "--size", "32",
                   "--out", str(out), "--fits", "--tile_format", "fits", "--stretch", "asinh")
    assert done.returncode == 0, done.stderr
    rows = manifest(out)
    cover = float(rows[0]["coverage_DSS2Red"])
    with fits.open(out / rows[0]["fits"]) as hdul:
        plane = hdul[0].data[0]
        assert hdul[0].header["PLUNI1"]
    assert 0 < cover < 1 and np.isnan(plane).mean() == pytest.approx(1 - cover, abs=0.01)


def test_split_never_overlaps_across_splits(tmp_path):
    """Dense overlapping positions: every cross-split pair is farther apart than two footprints."""
    rng = np.random.default_rng(1)
    coords = tmp_path / "many.csv"
    lines = ["name,ra,dec"] + [f"p{i},{ra:.4f},{dec:.4f}" for i, (ra, dec) in
                               enumerate(zip(rng.uniform(262, 272, 150), rng.uniform(-32, -20, 150)))]
    coords.write_text("\n".join(lines) + "\n")
    out = tmp_path / "split"
    fov = 1.0
    done = run_cli("--surveys", FOUR[0], "--coords", str(coords), "--fov", str(fov), "--size", "16",
                   "--out", str(out), "--split", "0.5,0.25,0.25")
    assert done.returncode == 0, done.stderr
    rows = manifest(out)
    splits = {r["split"] for r in rows}
    assert splits == {"train", "val", "test"}
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    pos = SkyCoord([float(r["ra"]) for r in rows] * u.deg, [float(r["dec"]) for r in rows] * u.deg)
    for i, row in enumerate(rows):
        sep = pos[i].separation(pos).deg
        other = np.array([r["split"] != row["split"] for r in rows])
        assert np.all(sep[other] >= fov * math.sqrt(2) * 0.999)
    assert "whose field reaches another split" in done.stderr  # some were dropped, and said so


def test_workers_and_shards_match_serial(tmp_path):
    base = ["--surveys", FOUR[0], FOUR[2], "--sample", "8", "--fov", "1.5", "--size", "24", "--seed", "5",
            "--sample_mode", "grid"]
    serial, para = tmp_path / "serial", tmp_path / "para"
    assert run_cli(*base, "--out", str(serial)).returncode == 0
    done = run_cli(*base, "--out", str(para), "--workers", "2")
    assert done.returncode == 0, done.stderr
    for shard in ("0/2", "1/2"):
        assert run_cli(*base, "--out", str(tmp_path / "shards"), "--shard", shard).returncode == 0
    files = sorted(r["file"] for r in manifest(serial))
    assert files == sorted(r["file"] for r in manifest(para))
    shard_rows = []
    for name in ("manifest.shard0of2.csv", "manifest.shard1of2.csv"):
        with (tmp_path / "shards" / name).open() as handle:
            shard_rows += list(csv.DictReader(handle))
    assert sorted(r["file"] for r in shard_rows) == files
    for file in files:
        assert (serial / file).read_bytes() == (para / file).read_bytes() == (tmp_path / "shards" / file).read_bytes()
    merged = run_cli(*base, "--out", str(tmp_path / "shards"))  # a plain run merges the shard manifests
    assert merged.returncode == 0 and "wrote 0 targets" in merged.stderr
    assert sorted(r["file"] for r in manifest(tmp_path / "shards")) == files


def test_resume_after_kill(tmp_path):
    out = tmp_path / "killed"
    args = ["--surveys", *FOUR, "--sample", "60", "--fov", "1.8", "--size", "96", "--out", str(out),
            "--seed", "2"]
    proc = subprocess.Popen([sys.executable, str(REPO / "aladin_data.py"), *args, "--no_progress"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.rglob("*.png"))) < 5 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = len(list(out.rglob("*.png")))
    assert 0 < first < 60, "the run must be killed mid-way"
    for png in out.rglob("*.png"):  # what the killed run left in place is complete
        with Image.open(png) as image:
            image.load()
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    rows = manifest(out)
    assert len(rows) == 60
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == sorted(r["file"] for r in rows)
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    for row in rows:
        with Image.open(out / row["file"]) as image:
            image.load()  # every file complete


def test_unknown_names_listed_and_one_line_errors(tmp_path):
    out = tmp_path / "names"
    done = run_cli("--surveys", FOUR[0], "--targets", "NGC 6523", "Nowhere 42", "--fov", "1", "--size", "16",
                   "--out", str(out), "--offline")
    assert done.returncode == 0 and "unknown names (1): Nowhere 42" in done.stderr
    bad = run_cli("--surveys", str(tmp_path), "--sample", "3", "--fov", "1", "--size", "16", "--out", str(out))
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: survey")
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("extra,message", [
    (["--surveys", "/no/such/hips", "--sample", "2"], "no such folder"),
    (["--surveys", str(SAMPLES / "DSS2Red"), "--sample", "2", "--tile_format", "png"], "tile format 'png' not offered"),
    (["--surveys", str(SAMPLES / "DSS2Red"), "--sample", "2", "--fov", "0"], "--fov 0"),
    (["--surveys", str(SAMPLES / "DSS2Red"), "--sample", "2", "--size", "3"], "--size 3"),
    (["--surveys", str(SAMPLES / "DSS2Red"), "--ra", "10", "--dec", "40"], "outside every survey"),
    (["--surveys", str(SAMPLES / "DSS2Red"), "--sample", "2", "--split", "a,b"], "--split"),
    (["--surveys", str(SAMPLES / "DSS2Red"), "--sample", "2", "--shard", "2/2"], "--shard"),
    (["--surveys", str(SAMPLES / "DSS2Red"), "--targets", "Nowhere 42", "--offline"], "unknown: Nowhere 42"),
    (["--surveys", str(SAMPLES / "DSS2Red")], "one of the arguments"),
])
def test_bad_input_is_a_user_error(tmp_path, extra, message):
    argv = extra + [a for a in ["--fov", "1", "--size", "16"] if a not in extra[extra.index("--surveys"):]]
    if "--fov" in extra:
        argv = extra + ["--size", "16"]
    if "--size" in extra:
        argv = extra + ["--fov", "1"]
    with pytest.raises(UserError, match=message):
        cli_main(argv + ["--out", str(tmp_path / "o"), "--no_progress", "--quiet"])
    assert not (tmp_path / "o").exists()  # issue 19 (A01-A03): a refused run leaves no empty --out behind


def test_unwritable_output_and_unsupported_format(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        cli_main(["--surveys", str(SAMPLES / "DSS2Red"), "--sample", "1", "--fov", "1", "--size", "16",
                  "--out", str(blocker / "sub"), "--quiet"])
    hips = tmp_path / "webp"
    hips.mkdir()
    (hips / "properties").write_text("hips_order = 3\nhips_frame = equatorial\nhips_tile_format = webp\n")
    with pytest.raises(UserError, match="unsupported"):
        cli_main(["--surveys", str(hips), "--sample", "1", "--fov", "1", "--size", "16",
                  "--out", str(tmp_path / "o"), "--quiet"])


def test_progress_in_a_log_is_one_line_not_redraws(tmp_path):
    """stderr piped (a log, CI, nohup): no tqdm redraws with carriage returns, one line for the stage."""
    out = tmp_path / "logged"
    done = subprocess.run([sys.executable, str(REPO / "aladin_data.py"), "--surveys", *FOUR[:2], "--sample", "6",
                           "--fov", "1.8", "--size", "32", "--out", str(out), "--seed", "1"], cwd=REPO,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    assert any(line.startswith("cutouts: ") and " target in " in line for line in done.stderr.splitlines())
