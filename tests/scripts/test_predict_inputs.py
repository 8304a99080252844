"""Inputs unlike training are caught before any tile is written (P02, P02b, P03 of the fault sweep): a tiny
J+H -> Ks model trained here on the bundled Galactic-centre field records its inputs; predict_sky.py and
test.py compare what they are given with that record, --match_inputs puts images on the training scale
where their headers allow it, --accept_inputs goes on and the output says so."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from data.sky.hips_out import read_fits_tile, written_tiles
from tests.script_runner import call_main, load_script, run_script as run

REPO = Path(__file__).resolve().parents[2]
FIELD = REPO / "data" / "real_fields" / "galactic_centre"
J, H, K, MSX = (str(FIELD / f) for f in ("2mass_j.fits.gz", "2mass_h.fits.gz", "2mass_k.fits.gz", "msx_e.fits.gz"))
REGION = "266.4 -28.9333 0.04"  # a few 64 px tiles of 3.2"
TINY = ["--model", "pix2pix", "--netG", "unet_64", "--ngf", "8", "--ndf", "8", "--crop_size", "64", "--seed", "0",
        "--gpu_ids", "-1", "--num_threads", "0", "--n_epochs", "1", "--n_epochs_decay", "0", "--print_freq", "1000",
        "--dataset_mode", "fits_aligned", "--input_nc", "2"]


def predict(*args):
    """predict_sky.py in this process (a fresh import each time): (exit code, stderr)."""
    return call_main(load_script("scripts/predict_sky.py"), *args)


def edited_image(source: str, out: Path, scale: float = 1.0, offset: float = 0.0, pixel_factor: float = 1.0,
                 cards: dict | None = None, drop: tuple[str, ...] = ()) -> str:
    """A copy of a bundled image: values x scale + offset, pixels pixel_factor times the size, cards changed."""
    with fits.open(source) as hdul:
        header = hdul[0].header.copy()
        data = hdul[0].data.astype(np.float32) * scale + offset
    for key in ("BSCALE", "BZERO", "BLANK", *drop):
        header.remove(key, ignore_missing=True)
    header["CDELT1"] *= pixel_factor
    header["CDELT2"] *= pixel_factor
    for key, value in (cards or {}).items():
        header[key] = value
    fits.PrimaryHDU(data, header=header).writeto(out, overwrite=True)
    return str(out)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    for name, surveys in (("data", [K, J, H]), ("swapped", [K, H, J])):
        built = run("aladin_data.py", "--surveys", *surveys, "--sample", "12", "--fov", "0.088889", "--size", "64",
                    "--fits", "--seed", "0", "--min_coverage", "0.99", "--out", root / name, "--no_progress",
                    "--quiet", cwd=root)
        assert built.returncode == 0, built.stderr[-2000:]
    trained = run("train.py", "--dataroot", root / "data", "--name", "jh", "--checkpoints_dir", root / "ck", *TINY,
                  cwd=root)
    assert trained.returncode == 0, trained.stderr[-2000:]
    return root


def common(work, name="jh"):
    return ["--name", name, "--checkpoints_dir", work / "ck", "--tile_width", "64", "--gpu_ids", "-1",
            "--no_progress"]


def test_training_records_each_input_band(work):
    record = json.loads((work / "ck" / "jh" / "training_inputs.json").read_text())
    j, h = record["bands"]
    assert (j["survey"], j["unit"], h["survey"]) == ("2mass_j", "DN", "2mass_h")
    assert j["pixel_arcsec"] == pytest.approx(5.0, rel=1e-3) and j["source_pixel_arcsec"] == pytest.approx(5.0, rel=1e-3)
    assert (j["zero_point"], j["zero_point_key"]) == (20.9044, "MAGZP")
    low, sky, high = j["values"]["percentiles"]["1"], j["values"]["sky"], j["values"]["percentiles"]["99"]
    assert 140 < low < sky < high and 0 < j["values"]["noise"] < 20  # 2MASS J DN of the bulge: sky ~155
    assert h["values"]["sky"] > 400


def test_the_training_inputs_pass(work, tmp_path):
    code, log = predict(*common(work), "--surveys", J, H, "--region", REGION, "--out", tmp_path / "ok")
    assert code == 0 and "unlike" not in log and "note:" not in log, log


@pytest.mark.parametrize("case", ["swapped", "unit", "background_subtracted_1arcsec", "scaled"])
def test_inputs_unlike_training_are_refused_before_any_tile(work, tmp_path, case):
    if case == "swapped":  # P02
        surveys, words = [H, J], ["input 1 (", "is 2mass_h, which the model reads as input 2", "bands swapped",
                                  "sky level at 5"]
    elif case == "unit":  # P02b: MSX in W/m^2-sr in the J slot
        surveys, words = [MSX, H], ["input 1 (msx_e.fits.gz) is in W/m^2-sr, training in DN"]
        assert_note = "note: input 1 (msx_e.fits.gz) is msx_e, input 1 was 2mass_j in training"
    elif case == "background_subtracted_1arcsec":  # P03: the sn2010ag 2MASS cutouts: 1"/px, sky 0, no BUNIT
        surveys = [edited_image(J, tmp_path / "2mass_j.fits", offset=-155.0, pixel_factor=0.2, drop=("BUNIT",)),
                   edited_image(H, tmp_path / "2mass_h.fits", offset=-506.0, pixel_factor=0.2, drop=("BUNIT",))]
        words = ['has 1" pixels, training 5" (5x finer)', "has its sky level at"]
    else:  # another zero point: values x 2.5 (the header says so: MAGZP + 2.5 log10 2.5)
        surveys = [edited_image(J, tmp_path / "2mass_j.fits", scale=2.5, cards={"MAGZP": 20.9044 + 2.5 * math.log10(2.5)}),
                   H]
        words = ["has its sky level at 3", "try --match_inputs"]
    out = tmp_path / "out"
    code, log = predict(*common(work), "--surveys", *surveys, "--region", REGION, "--out", out)
    last = log.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: the inputs are unlike the model's training inputs:"), log
    for word in words:
        assert word in last, (word, last)
    assert "--accept_inputs" in last and not out.exists()
    if case == "unit":  # another survey's name alone is a note, not the reason
        assert assert_note in log
    if case == "background_subtracted_1arcsec":
        assert "note: input 1 (2mass_j.fits) has no unit (BUNIT) to compare with the training's DN" in log


def test_match_inputs_puts_images_on_the_training_scale(work, tmp_path):
    """A J image with its sky subtracted and its values on another zero point comes back to the training scale:
    the tiles equal those of the original J (to float rounding)."""
    base = tmp_path / "base"
    assert predict(*common(work), "--surveys", J, H, "--region", REGION, "--out", base)[0] == 0
    other = edited_image(J, tmp_path / "2mass_j.fits", scale=2.5, offset=-2.5 * 155.0,
                         cards={"MAGZP": 20.9044 + 2.5 * math.log10(2.5)})
    out = tmp_path / "matched"
    code, log = predict(*common(work), "--surveys", other, H, "--region", REGION, "--out", out, "--match_inputs")
    assert code == 0, log
    assert "--match_inputs: input 1 (2mass_j): sky level" in log and "scaled by 0.4" in log
    assert "not scaled" not in log.split("input 2")[0]
    record = json.loads((out / "predict.json").read_text())
    assert record["settings"]["match_inputs"] is True and len(record["input_match"]) == 2
    assert "put on the training scale (--match_inputs)" in (out / "properties").read_text()
    order = record["settings"]["order"]
    tiles = written_tiles(base, order)
    assert written_tiles(out, order).tolist() == tiles.tolist()
    for ipix in tiles.tolist():
        a, b = read_fits_tile(base, order, ipix), read_fits_tile(out, order, ipix)
        ok = np.isfinite(a)
        # the images differ only by their sky levels (the original's sigma-clipped sky is not exactly 155)
        assert np.isfinite(b[ok]).all() and np.corrcoef(a[ok], b[ok])[0, 1] > 0.999


def test_a_background_subtracted_image_without_zero_point_is_said_plainly(work, tmp_path):
    other = edited_image(J, tmp_path / "2mass_j.fits", offset=-155.0, drop=("MAGZP", "BUNIT"))
    code, log = predict(*common(work), "--surveys", other, H, "--region", REGION, "--out", tmp_path / "o",
                        "--match_inputs")
    assert code == 0, log
    assert "not scaled (no zero point (MAGZP, MAGZPT, PHOTZP, BUNIT nanomaggy) in" in log


def test_accept_inputs_goes_on_and_the_output_says_so(work, tmp_path):
    out = tmp_path / "accepted"
    code, log = predict(*common(work), "--surveys", MSX, H, "--region", REGION, "--out", out, "--accept_inputs")
    assert code == 0 and "warning: accepted with --accept_inputs: input 1" in log, log
    assert "INPUTS UNLIKE TRAINING, accepted with --accept_inputs" in (out / "properties").read_text()
    report = json.loads((out / "report.json").read_text())
    assert any("is in W/m^2-sr, training in DN" in line for line in report["inputs"]["accepted_unlike_training"])
    one = tmp_path / "one"
    code, log = predict(*common(work), "--surveys", MSX, H, "--ra", "266.4", "--dec", "-28.93", "--out", one,
                        "--accept_inputs")
    assert code == 0, log
    header = fits.getheader(next(one.glob("*.fits")))
    assert header["INPUTCHK"] == "accepted unlike training"
    assert "INPUTS UNLIKE TRAINING" in "".join(str(v) for v in header["HISTORY"])


def test_a_model_trained_before_the_record_says_so_and_goes_on(work, tmp_path):
    ck = tmp_path / "ck"
    shutil.copytree(work / "ck" / "jh", ck / "old")
    (ck / "old" / "training_inputs.json").unlink()
    code, log = predict(*common(work), "--checkpoints_dir", ck, "--name", "old", "--surveys", H, J,
                        "--region", REGION, "--out", tmp_path / "o")
    assert code == 0, log
    notes = [line for line in log.splitlines() if "training_inputs.json not found" in line]
    assert len(notes) == 1 and "not compared with training" in notes[0]


def test_test_py_compares_new_cubes_with_the_training_inputs(work, tmp_path):
    args = ["--name", "jh", "--checkpoints_dir", work / "ck", "--model", "pix2pix", "--netG", "unet_64", "--ngf", "8",
            "--crop_size", "64", "--gpu_ids", "-1", "--num_threads", "0", "--dataset_mode", "fits_aligned",
            "--input_nc", "2", "--results_dir", tmp_path / "results"]
    same = run("test.py", "--dataroot", work / "data", *args, cwd=tmp_path)
    assert same.returncode == 0 and "unlike" not in same.stdout + same.stderr, same.stderr[-2000:]
    refused = run("test.py", "--dataroot", work / "swapped", *args, cwd=tmp_path)
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 2 and last.startswith("error: the cubes in") and "bands swapped" in last, last
    accepted = run("test.py", "--dataroot", work / "swapped", *args, "--accept_inputs", cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    manifest = json.loads(next((tmp_path / "results").rglob("manifest.json")).read_text())
    assert any("accepted unlike training (--accept_inputs)" in note for note in manifest["run"]["notes"])
