"""The README's main job, end to end with a minimal budget: dataset -> trainings -> tests -> report.

The default mode runs on the bundled Galactic-centre FITS field (float cubes, physical units); the 8-bit
picture ablations (--hips, --synthetic) are in test_run_ablation_pictures.py (a file of their own, so the
test runner's workers share them out).
"""
import json

import pytest
from PIL import Image

from tests.script_runner import REPO, run_script

TINY = ["--budget", "tiny", "--n_samples", "12", "--repeats", "1"]


def run(*args, timeout=240):
    return run_script("scripts/run_ablation.py", *args, cwd=REPO, timeout=timeout)


@pytest.mark.timeout(300)
def test_default_demo_on_the_bundled_fits_field_with_minimal_budget(tmp_path):
    out = tmp_path / "field"
    args = ["--out", out, "--budget", "tiny", "--variants", "1;1,2", "--repeats", "2"]
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the terminal sees each training's epoch lines (prefixed by the stage), the log everything, no redraws
    assert "[train_bands_1-2_r2] End of epoch 1 / 1" in proc.stderr and "\r" not in proc.stderr
    assert "G_L1" in (out / "logs" / "train_bands_1-2_r2.log").read_text() and "G_L1" not in proc.stderr
    report = json.loads((out / "report" / "metrics.json").read_text())
    assert report["unit"] == "DN" and report["settings"]["band_names"]["0"] == "2MASS Ks"
    assert [v["bands"] for v in report["variants"]] == [["2MASS J"], ["2MASS J", "2MASS H"]]
    for variant in report["variants"]:
        assert [run["seed"] for run in variant["runs"]] == [0, 1] and variant["seeds"] == [0, 1]
        assert set(variant["spread_over_seeds"]) >= {"L1", "CC", "flux_error"}
        for key in ("L1", "PSNR", "SSIM", "CC", "flux_error"):
            assert variant[key] is not None
    names = [ref["name"] for ref in report["references"]]
    assert names == ["flat", "input_resampled", "linear_fit", "linear_fit", "asinh_fit", "asinh_fit"]
    flat, band, fit_j, fit_jh, asinh_j, asinh_jh = report["references"]
    assert flat["CC"] == 0.0 and band["input_panels"] == [2]  # H correlates best with Ks
    assert fit_jh["input_panels"] == [1, 2] and fit_jh["CC"] > fit_j["CC"] > 0.3  # the colour term is real physics
    assert fit_jh["L1"] < flat["L1"]
    assert asinh_jh["input_panels"] == [1, 2] and asinh_jh["CC"] > asinh_j["CC"] > 0.3
    assert "vs_references" in report["verdict"] and len(report["verdict"]["sentences"]) >= 4
    for name in ("examples.png", "residuals.png", "flux_scatter.png", "loss_curves.png"):
        with Image.open(out / "report" / name) as image:
            assert image.size[0] > 300 and image.size[1] > 200
    results = out / "report" / report["variants"][0]["results_dir"]
    assert (results / "manifest.json").exists() and list((results / "fits").glob("*_fake_B.fits"))
    # beside the default recipe: the mean of its seeds; the seed's pix2pix only when asked (--pix2pix_row)
    assert report["settings"]["budget"]["model"] == "regression" and report["settings"]["pix2pix_budget"] is None
    assert [c["name"] for c in report["comparisons"]] == ["bands_1-2_mean"]
    # the sky viewer of the headline model over the test cutouts, linked from the report (experiments/field_viewer.py)
    assert "href='sky/index.html'" in (out / "report" / "index.html").read_text()
    viewer = (out / "report" / "sky" / "index.html").read_text()
    assert "test cutouts" in viewer and '"id": "real"' in viewer
    # --pix2pix_row later: the finished stages are kept, only pix2pix trains (same seeds, most bands)
    args.append("--pix2pix_row")
    again = run(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "dataset: already built" in again.stdout and "4 already trained" in again.stdout
    assert "test: 2 of 6" in again.stdout and "viewer: already made" in again.stdout
    report = json.loads((out / "report" / "metrics.json").read_text())
    assert report["settings"]["pix2pix_budget"]["model"] == "pix2pix"
    mean, pix2pix = report["comparisons"]
    assert mean["name"] == "bands_1-2_mean" and pix2pix["name"] == "pix2pix_bands_1-2"
    assert pix2pix["seeds"] == [0, 1] and [run["seed"] for run in pix2pix["runs"]] == [0, 1]
    assert (out / "checkpoints" / "pix2pix_bands_1-2_r2" / "latest_net_D.pth").exists()
    assert any("pix2pix (the seed's recipe)" in s for s in report["verdict"]["sentences"])
    # issue 19 B13: a result FITS deleted by hand is written again (was: 'FITS file not found', exit 2)
    results_fits = out / "results" / "bands_1" / "test_latest" / "fits"
    deleted = sorted(results_fits.glob("*_fake_B.fits"))[0]
    deleted.unlink()
    redo = run(*args)
    assert redo.returncode == 0, redo.stderr[-3000:]
    assert "test: 1 of 6" in redo.stdout and deleted.is_file()
    # issue 19 B07: a redo never deletes a file the run did not write (was: rmtree of checkpoints/NAME)
    notes = out / "checkpoints" / "bands_1" / "notes.txt"
    notes.write_text("mine")
    refused = run(*args, "--force")
    assert refused.returncode == 2 and "notes.txt" in refused.stderr and "Traceback" not in refused.stderr
    assert notes.read_text() == "mine" and (out / "checkpoints" / "bands_1" / "latest_net_G.pth").is_file()


@pytest.mark.parametrize("args, words", [
    (["--variants", "1;x"], "--variants"),
    (["--variants", "1;7", "--synthetic"], "panel 7"),
    (["--netG", "unet_64", "--size", "100"], "multiple of 64"),
    (["--surveys", "data/sky_samples/DSS2Red"], "at least one input band"),
    (["--threads", "-1"], "--threads"),
    (["--repeats", "0"], "--repeats"),
    (["--variants", ""], "--variants ''"),  # issue 19 B05: was the default variants without a word
    (["--pixel_arcsec", "-5"], "--pixel_arcsec -5"),  # issue 19 B16: was reported as '--fov -0.088889'
    (["--pixel_arcsec", "nan"], "--pixel_arcsec nan"),
    # issue 22: --fov beside --pixel_arcsec was ignored without a word (the builder's advice names --fov)
    (["--surveys", "a.fits", "b.fits", "--pixel_arcsec", "1.5", "--fov", "0.0149867"], "give one of them"),
])
def test_bad_options_give_one_line_errors(tmp_path, args, words):
    proc = run("--out", tmp_path / "bad", *TINY, "--n_test", "2", *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and words in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "bad").exists()  # issue 19 (B02): a refused run leaves no empty --out behind
