"""run_ablation.py's 8-bit picture ablations end to end with a minimal budget: --hips on the bundled HiPS
samples, --synthetic on a generated sky (resumes and redoes only what changed)."""
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.script_runner import REPO, run_script

TINY = ["--budget", "tiny", "--n_samples", "12", "--repeats", "1"]


def run(*args, timeout=240):
    return run_script("scripts/run_ablation.py", *args, cwd=REPO, timeout=timeout)


def check_report(out: Path, n_variants: int) -> dict:
    report = json.loads((out / "report" / "metrics.json").read_text())
    assert len(report["variants"]) == n_variants
    assert [len(v["input_panels"]) for v in report["variants"]] == sorted(len(v["input_panels"]) for v in report["variants"])
    assert report["baseline"]["L1"] is not None and report["verdict"]["sentences"]
    assert report["flat"]["L1"] is not None and report["flat"]["CC"] == 0.0
    assert report["verdict"]["vs_flat"]["variant"] == report["variants"][-1]["label"]
    for variant in report["variants"]:
        assert 0.0 <= variant["L1"] <= 1.0 and -1.0 <= variant["CC"] <= 1.0
        assert (out / "report" / variant["results_dir"] / "metrics.json").exists()
    page = (out / "report" / "index.html").read_text()
    assert "Did more bands help?" in page and "baseline" in page and "<tr><th>flat image: level " in page
    for name in ("examples.png", "loss_curves.png"):
        with Image.open(out / "report" / name) as image:
            assert image.size[0] > 300 and image.size[1] > 200
    return report


@pytest.mark.timeout(300)
def test_hips_ablation_stays_available(tmp_path):
    out = tmp_path / "hips"
    proc = run("--out", out, "--hips", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = check_report(out, 3)
    assert report["settings"]["band_names"]["0"] == "DSS2Red"
    assert report["variants"][2]["label"] == "3 bands (GLIMPSE360 + Planck-HFI143 + FermiColor)"
    assert report["variants"][0]["colour_error"] is None  # the DSS2Red target is grey
    assert "report:" in proc.stdout


@pytest.mark.timeout(300)
def test_synthetic_ablation_resumes_and_redoes_only_what_changed(tmp_path):
    out = tmp_path / "synthetic"
    first = run("--out", out, "--synthetic", *TINY, "--n_test", "3", "--variants", "1;1,2")
    assert first.returncode == 0, first.stderr[-3000:]
    report = check_report(out, 2)
    assert report["variants"][0]["colour_error"] is not None  # the synthetic target is a colour image
    weights = out / "checkpoints" / "bands_1" / "latest_net_G.pth"
    stamp = weights.stat().st_mtime_ns
    assert not list(weights.parent.glob("[0-9]*_net_G.pth"))  # one final copy of the weights, not two

    again = run("--out", out, "--synthetic", *TINY, "--n_test", "3", "--variants", "1;1,2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "dataset: already built" in again.stdout and again.stdout.count("already trained") == 2
    assert weights.stat().st_mtime_ns == stamp

    # deleted weights are retrained and retested, the rest is kept; the training is seeded (--seed), so
    # the retrained weights are the same bytes
    assert " --seed 0 " in (out / "logs" / "train_bands_1.log").read_text().splitlines()[0] + " "
    original = weights.read_bytes()
    other = out / "checkpoints" / "bands_1-2" / "latest_net_G.pth"
    other_stamp = other.stat().st_mtime_ns
    weights.unlink()
    redo = run("--out", out, "--synthetic", *TINY, "--n_test", "3", "--variants", "1;1,2")
    assert redo.returncode == 0, redo.stderr[-3000:]
    assert redo.stdout.count("already trained") == 1 and redo.stdout.count(": already done") == 1
    assert weights.exists() and other.stat().st_mtime_ns == other_stamp
    assert weights.read_bytes() == original

    # a new variant trains only itself
    third = run("--out", out, "--synthetic", *TINY, "--n_test", "3", "--variants", "1;1,2;1,2,3")
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count("already trained") == 2 and "train 3 bands" in third.stdout
    check_report(out, 3)
