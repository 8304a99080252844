"""scripts/evaluate.py on results folders in upstream's layout, built from the synthetic sky."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.sky import synthetic_sky
from data.sky.synthetic_sky import SkySettings

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "evaluate.py"
SIZE = 64


def save(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)


def make_results(root, n=3, fake=lambda real, stem_index: real, panels=(1, 2, 3), plain_input=False):
    """A test.py-like folder: X_real_B (target), X_fake_B (from `fake`), X_real_A_pK (inputs)."""
    images = root / "images"
    for i in range(n):
        pixels, _ = synthetic_sky.render_sample(np.random.default_rng([7, i]), SkySettings(size=SIZE))
        cut = [pixels[:, k * SIZE:(k + 1) * SIZE] for k in range(4)]
        stem = f"{i:05d}"
        save(images / f"{stem}_real_B.png", cut[0])
        save(images / f"{stem}_fake_B.png", fake(cut[0].astype(float), i))
        if plain_input:
            save(images / f"{stem}_real_A.png", cut[1][..., 0])
        else:
            for k in panels:
                save(images / f"{stem}_real_A_p{k}.png", cut[k][..., 0])
    return root


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=REPO)


def test_perfect_generator_scores_perfectly_and_beats_the_baseline(tmp_path):
    results = make_results(tmp_path / "test_latest")
    proc = run("--results_dir", results)
    assert proc.returncode == 0, proc.stderr
    assert "baseline (real_A_p1)" in proc.stdout and "model (3 images)" in proc.stdout
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["n_images"] == 3 and len(metrics["images"]) == 3
    assert metrics["L1"] == 0.0 and metrics["SSIM"] == pytest.approx(1.0) and metrics["CC"] == pytest.approx(1.0)
    assert metrics["PSNR"] == 100.0
    assert metrics["flux_error"] == 0.0 and metrics["colour_error"] == 0.0 and metrics["false_source_rate"] == 0.0
    assert metrics["n_sources"] > 10
    base = metrics["baseline"]
    assert base["input"] == "real_A_p1" and base["n_images"] == 3
    assert base["L1"] > 0.001 and base["SSIM"] < 0.99 and base["colour_error"] > 0.01
    assert {"L1", "PSNR", "SSIM", "CC", "flux_error"} <= set(metrics["images"][0])


def test_noisy_and_dimmed_generators_get_the_expected_figures(tmp_path):
    rng = np.random.default_rng(3)
    noisy = make_results(tmp_path / "noisy", fake=lambda real, i: real + rng.normal(0, 5.0, real.shape))
    dim = make_results(tmp_path / "dim", fake=lambda real, i: 0.5 * real)
    assert run("--results_dir", noisy).returncode == 0
    assert run("--results_dir", dim).returncode == 0
    noisy_m = json.loads((noisy / "metrics.json").read_text())
    dim_m = json.loads((dim / "metrics.json").read_text())
    # 8-bit rounding and clipping at 0 shift the noise a little; sigma 5/255 gives ~34.2 dB
    assert noisy_m["PSNR"] == pytest.approx(-20 * np.log10(5.0 / 255), abs=0.6)
    assert dim_m["CC"] == pytest.approx(1.0, abs=1e-3)
    assert dim_m["flux_error"] == pytest.approx(0.5, abs=0.02)
    assert dim_m["colour_error"] < 0.02  # halving every channel keeps the colours


def test_baseline_panel_choice_and_single_input_panel(tmp_path):
    results = make_results(tmp_path / "r")
    assert run("--results_dir", results, "--baseline_panel", "2").returncode == 0
    assert json.loads((results / "metrics.json").read_text())["baseline"]["input"] == "real_A_p2"
    plain = make_results(tmp_path / "plain", plain_input=True)
    assert run("--results_dir", plain).returncode == 0
    assert json.loads((plain / "metrics.json").read_text())["baseline"]["input"] == "real_A"


def test_images_folder_can_be_given_directly(tmp_path):
    results = make_results(tmp_path / "r", n=1)
    assert run("--results_dir", results / "images").returncode == 0
    assert (results / "images" / "metrics.json").exists()


def test_grey_png_beside_an_rgb_png_is_compared_as_grey(tmp_path):
    images = tmp_path / "r" / "images"
    grey = np.random.default_rng(0).integers(0, 255, (32, 32)).astype(float)
    save(images / "a_fake_B.png", grey)
    save(images / "a_real_B.png", np.repeat(grey[..., None], 3, axis=2))
    assert run("--results_dir", tmp_path / "r").returncode == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["L1"] == 0.0 and "baseline" not in metrics


def bad_folder(tmp_path, kind):
    root = tmp_path / kind
    if kind == "missing":
        return root
    (root / "images").mkdir(parents=True)
    if kind == "no_pairs":
        save(root / "images" / "a_fake_B.png", np.zeros((8, 8)))
        save(root / "images" / "b_real_B.png", np.zeros((8, 8)))
    elif kind == "mismatched":
        save(root / "images" / "a_fake_B.png", np.zeros((8, 8)))
        save(root / "images" / "a_real_B.png", np.zeros((16, 16)))
    elif kind == "corrupt":
        (root / "images" / "a_fake_B.png").write_bytes(b"not a png")
        save(root / "images" / "a_real_B.png", np.zeros((8, 8)))
    elif kind == "no_such_panel":
        make_results(root, n=1, panels=(1,))
    return root


@pytest.mark.parametrize("kind, words", [
    ("missing", "does not exist"), ("empty", "is empty"), ("no_pairs", "no matching"),
    ("mismatched", "a: generated image is"), ("corrupt", "cannot read image"), ("no_such_panel", "no input panel 3"),
])
def test_bad_results_folder_gives_one_line_error(tmp_path, kind, words):
    args = ["--results_dir", bad_folder(tmp_path, kind)]
    if kind == "no_such_panel":
        args += ["--baseline_panel", "3"]
    proc = run(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], proc.stderr
    assert not (Path(args[1]) / "metrics.json").exists()


def test_flat_image_reference_on_two_constant_targets(tmp_path):
    """Targets of levels 50 and 100 (half the pixels each): the median level is 75, so every pixel is
    25/255 off, L1 = 25/255 and PSNR = -20 log10(25/255); a constant has CC 0 and no sources."""
    images = tmp_path / "r" / "images"
    real = np.full((32, 32), 50.0)
    real[16:] = 100.0
    for i in range(2):
        save(images / f"{i}_real_B.png", real)
        save(images / f"{i}_fake_B.png", real)
    proc = run("--results_dir", tmp_path / "r")
    assert proc.returncode == 0, proc.stderr
    assert "flat image (level 75/255, median of the evaluated real targets)" in proc.stdout
    flat = json.loads((tmp_path / "r" / "metrics.json").read_text())["flat"]
    assert flat["level"] == [pytest.approx(75 / 255)] and flat["n_images"] == 2
    assert flat["L1"] == pytest.approx(25 / 255)
    assert flat["PSNR"] == pytest.approx(-20 * np.log10(25 / 255))
    assert flat["CC"] == 0.0 and flat["completeness"] is None  # a flat target has no sources either
    assert [row["image"] for row in flat["images"]] == ["0", "1"]

    given = run("--results_dir", tmp_path / "r", "--flat_level", str(50 / 255))
    assert given.returncode == 0, given.stderr
    flat = json.loads((tmp_path / "r" / "metrics.json").read_text())["flat"]
    assert flat["level_source"] == "given" and flat["L1"] == pytest.approx(25 / 255)  # half the pixels 50 off
    assert flat["PSNR"] == pytest.approx(-10 * np.log10(0.5 * (50 / 255) ** 2))


def test_flat_image_on_a_star_field_has_no_sources_and_loses_to_a_perfect_model(tmp_path):
    results = make_results(tmp_path / "r")
    assert run("--results_dir", results).returncode == 0
    metrics = json.loads((results / "metrics.json").read_text())
    flat = metrics["flat"]
    reals = np.stack([np.asarray(Image.open(results / "images" / f"{i:05d}_real_B.png"), float) / 255 for i in range(3)])
    assert flat["level"] == pytest.approx(list(np.median(reals.reshape(-1, 3), axis=0)))  # per channel
    assert flat["n_sources"] == metrics["n_sources"] > 10
    assert flat["flux_error"] == pytest.approx(1.0) and flat["completeness"] == 0.0 and flat["CC"] == 0.0
    assert flat["L1"] > metrics["L1"] and flat["PSNR"] < metrics["PSNR"]
    assert "baseline" in metrics and metrics["baseline"]["input"] == "real_A_p1"  # the baseline is unchanged


@pytest.mark.parametrize("level", ["1.5", "dark"])
def test_bad_flat_level_gives_one_line_error(tmp_path, level):
    proc = run("--results_dir", make_results(tmp_path / "r", n=1), "--flat_level", level)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:") and "flat" in proc.stderr
