"""predict_sky.py --truth on the bundled Galactic-centre FITS field with a tiny J -> Ks model trained here:
figures per kind of sky, the spread model fitted on validation cells only and judged on test cells only,
its use through --std_scale calibration.json, the real band written as a HiPS beside the generated one."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.sky.engine import CutoutEngine
from data.sky.geometry import OutputGrid
from data.sky.hips_out import written_tiles
from data.sky.source import open_survey, tile_path
from data.sky.surveys import open_engine

REPO = Path(__file__).resolve().parents[2]
FIELD = REPO / "data" / "real_fields" / "galactic_centre"
J, KS = str(FIELD / "2mass_j.fits.gz"), str(FIELD / "2mass_k.fits.gz")
ORDER, WIDTH = 7, 128  # 12.9"/px tiles: the field in 11 tiles, enough validation and test pixels, seconds
TINY = ["--model", "pix2pix", "--netG", "unet_64", "--ngf", "8", "--ndf", "8", "--crop_size", "64", "--seed", "0",
        "--gpu_ids", "-1", "--num_threads", "0", "--n_epochs", "3", "--n_epochs_decay", "0", "--print_freq", "1000"]


def run(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def predict(root, out, *extra):
    return run(REPO / "scripts" / "predict_sky.py", "--name", "jk", "--checkpoints_dir", root / "ck", "--surveys", J,
               "--truth", KS, "--region", "266.4 -28.9333 0.72", "--tile_width", WIDTH, "--order", ORDER,
               "--uncertainty", "3", "--gpu_ids", "-1", "--no_progress", "--out", out, *extra, cwd=root)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Cutouts of 5"/px split by order-8 cells (so the field holds cells of every split), a tiny model,
    a --truth run with the raw spread, then one with the spread model it fitted."""
    root = tmp_path_factory.mktemp("calibration")
    run(REPO / "aladin_data.py", "--surveys", KS, J, "--sample", "40", "--fov", "0.088889", "--size", "64", "--fits",
        "--split", "0.5,0.25,0.25", "--split_order", "8", "--min_coverage", "0.99", "--seed", "0",
        "--out", root / "data", "--no_progress", "--quiet", cwd=root)
    run(REPO / "train.py", "--dataroot", root / "data", "--name", "jk", "--checkpoints_dir", root / "ck", *TINY,
        "--dataset_mode", "fits_aligned", "--input_nc", "1", cwd=root)
    first_log = predict(root, root / "raw")
    second_log = predict(root, root / "calibrated", "--std_scale", root / "raw" / "calibration.json")
    first = json.loads((root / "raw" / "calibration.json").read_text())
    second = json.loads((root / "calibrated" / "calibration.json").read_text())
    return root, first, second, first_log, second_log


def test_figures_per_kind_of_sky_and_the_fit_on_validation_cells_only(runs):
    root, first, _, log, _ = runs
    by_sky = first["by_sky"]
    assert {"train", "val", "test"} <= set(by_sky)
    assert sum(f["pixels"] for f in by_sky.values()) == first["pixels"]
    assert by_sky["train"]["what"].startswith("training cells (seen in training)")
    val_pixels = by_sky["val"]["pixels"]
    assert first["fit"] == {"on": "val", "pixels": val_pixels, "pixels_by_sky": {"val": val_pixels}}
    assert first["held_out"]["on"] == "test" and first["held_out"]["pixels"] == by_sky["test"]["pixels"]
    assert first["std_in_effect"] == 1.0 and len(first["std_model"]["scale"]) > 1
    assert "validation cells r =" in log and "seen in training" in log and "on the test cells:" in log
    assert first["held_out"]["within_1std_raw"] == pytest.approx(by_sky["test"]["within_1std"])


def test_the_fitted_model_applied_gives_68_percent_on_validation_and_the_predicted_test_figure(runs):
    root, first, second, _, log = runs
    by_sky = second["by_sky"]
    assert by_sky["val"]["within_1std"] == pytest.approx(0.683, abs=0.01)  # fitted there, bin by bin
    assert by_sky["test"]["within_1std"] == pytest.approx(first["held_out"]["within_1std_std_model"], abs=2e-3)
    assert by_sky["test"]["within_1std"] > 5 * first["by_sky"]["test"]["within_1std"]  # the raw spread is far too small
    # fits are made on the raw spread: the calibrated run finds the same model again
    np.testing.assert_allclose(second["std_model"]["scale"], first["std_model"]["scale"], rtol=1e-3)
    assert second["std_in_effect"] == first["std_model"]
    record = json.loads((root / "calibrated" / "predict.json").read_text())
    assert record["settings"]["std_scale"] == first["std_model"]
    assert "by predicted brightness" in (root / "calibrated" / "uncertainty" / "properties").read_text()


def test_the_std_tiles_are_visible_and_the_real_band_is_a_hips_beside_the_generated_one(runs):
    root = runs[0]
    out = root / "calibrated"
    tiles = written_tiles(out, ORDER)
    assert written_tiles(out / "truth", ORDER).tolist() == tiles.tolist()  # the field fills every written tile
    levels = np.asarray(Image.open(out / "uncertainty" / tile_path(ORDER, int(tiles[len(tiles) // 2]), "png")))
    seen = levels[..., 0][levels[..., 1] > 0]
    assert 20 < np.median(seen) < 235  # a std map, not black (its levels come from its values)
    # the truth HiPS read back beside the image cut directly: both point-sample a star field of 5" pixels at
    # 12.9", so they agree in the structure of 7 x 7 blocks (1.5'), and one block off they do not
    grid = OutputGrid(266.3, -28.95, 0.5, 140, 140)  # inside the field, about the HiPS pixel scale
    from_hips = CutoutEngine(open_survey(str(out / "truth")), "fits").cutout(grid).values[..., 0]
    from_image = open_engine(KS).cutout(grid).values[..., 0]
    assert np.isfinite(from_hips).all() and np.isfinite(from_image).all()
    hips_blocks, image_blocks = (v.reshape(20, 7, 20, 7).mean(axis=(1, 3)) for v in (from_hips, from_image))
    r = np.corrcoef(hips_blocks.ravel(), image_blocks.ravel())[0, 1]
    shifted = np.corrcoef(hips_blocks[:, 1:].ravel(), image_blocks[:, :-1].ravel())[0, 1]
    assert r > 0.95 and shifted < r - 0.1, (r, shifted)
    with (root / "data" / "manifest.csv").open() as handle:
        assert {row["split"] for row in csv.DictReader(handle)} == {"train", "val", "test"}
