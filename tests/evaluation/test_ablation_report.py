"""The ablation report from hand-made results folders whose ranking is known."""
import json
import re

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from data.sky import synthetic_sky
from data.sky.synthetic_sky import SkySettings
from evaluation.ablation_report import Variant, write_report
from evaluation.evaluation import evaluate_folder
from evaluation.verdict import MIN_EFFECT
from util.loss_history import LossRecord, append_record
from util.results_manifest import Generated, InputFile, Item, ResultsManifest, RunInfo, Target, write_manifest

SIZE = 64
N_IMAGES = 6


def save(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8)).save(path)


def make_variant(root, name, panels, degrade, log_format="new"):
    """Results folder of a pretend model: the real target passed through `degrade`, plus a loss log.
    "new": as this program writes them (manifest.json, loss_log.jsonl); "old": upstream's layout
    and loss_log.txt only, read through the legacy adapter."""
    results = root / "results" / name / "test_latest"
    items = []
    for i in range(N_IMAGES):
        pixels, _ = synthetic_sky.render_sample(np.random.default_rng([11, i]), SkySettings(size=SIZE))
        cut = [pixels[:, k * SIZE:(k + 1) * SIZE].astype(float) for k in range(4)]
        stem = f"{i:03d}"
        save(results / "images" / f"{stem}_real_B.png", cut[0])
        save(results / "images" / f"{stem}_fake_B.png", degrade(cut[0], np.random.default_rng(i)))
        if len(panels) == 1:
            save(results / "images" / f"{stem}_real_A.png", cut[panels[0]][..., 0])
        for k in panels if len(panels) > 1 else []:
            save(results / "images" / f"{stem}_real_A_p{k}.png", cut[k][..., 0])
        inputs = [InputFile(f"images/{stem}_real_A{'' if len(panels) == 1 else f'_p{k}'}.png", k) for k in panels]
        items.append(Item(stem, inputs, Generated(f"images/{stem}_fake_B.png"), Target(f"images/{stem}_real_B.png")))
    (results / "index.html").write_text("<html></html>")
    if log_format == "new":
        write_manifest(results, ResultsManifest(RunInfo(name=name, input=list(panels), target=[0]), items))
    log = root / "checkpoints" / name / "loss_log.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    lines = ["================ Training Loss (Wed Nov 25 12:00:00 2026) ================"]
    for step in range(1, 41):
        epoch, iters = (step - 1) // 10 + 1, ((step - 1) % 10 + 1) * 4
        g_l1 = 40.0 / step + len(panels)
        if log_format == "new":
            lines.append(f"[Rank 0] (epoch: {epoch}, iters: {iters}, time: 0.100, data: 0.010) , "
                         f"G_GAN: 0.800, G_L1: {g_l1:.3f}, D_real: 0.600, D_fake: 0.500\n")
            append_record(log.parent / "loss_log.jsonl", LossRecord(epoch, iters, {
                "G_GAN": 0.8, "G_L1": g_l1, "D_real": 0.6, "D_fake": 0.5}))
        else:
            lines.append(f"(epoch: {epoch}, iters: {iters}, time: 0.100, data: 0.010) "
                         f"G_GAN: 0.800 G_L1: {g_l1:.3f} D_real: 0.600 D_fake: 0.500 ")
    log.write_text("\n".join(lines) + "\n")
    return Variant(name, f"{len(panels)} band{'s' if len(panels) > 1 else ''}", list(panels),
                   evaluate_folder(results), results, log.parent)


def grey_and_blurred(real, rng):
    return ndimage.gaussian_filter(np.repeat(real.mean(axis=2, keepdims=True), 3, axis=2), (1.5, 1.5, 0))


def slightly_noisy(real, rng):
    return real + rng.normal(0, 2.0, real.shape)


def png_size(path):
    with Image.open(path) as image:
        return image.size


def test_report_shows_a_real_gain_with_offline_files(tmp_path):
    variants = [make_variant(tmp_path, "bands_1", [1], grey_and_blurred),
                make_variant(tmp_path, "bands_2", [1, 2], slightly_noisy, log_format="old"),
                make_variant(tmp_path, "bands_3", [1, 2, 3], lambda real, rng: real)]
    report = write_report(tmp_path / "report", "Band ablation (test)", variants, intro=["A test."],
                          settings={"budget": "test"})
    page = (tmp_path / "report" / "index.html").read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # nothing from the network
    for name in ("loss_curves.png", "examples.png"):
        assert f"src='{name}'" in page
        width, height = png_size(tmp_path / "report" / name)
        assert width > 300 and height > 200
    for href in re.findall(r"href='([^']+)'", page):
        assert (tmp_path / "report" / href).exists(), href
    assert report["verdict"]["most_vs_fewest"]["verdict"] == "gain"
    assert page.count("More bands helped on this data") == 1
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert [v["name"] for v in saved["variants"]] == ["bands_1", "bands_2", "bands_3"]
    assert saved["variants"][2]["L1"] == 0.0 and saved["variants"][0]["L1"] > 0.005
    assert saved["baseline"]["label"] == "baseline: input band 1 resampled, no model"
    assert saved["verdict"]["most_vs_fewest"]["metrics"]["L1"]["call"] == "better"
    # the 3-band "model" is the real image: it beats the input-band baseline on every metric
    assert saved["verdict"]["vs_baseline"][2]["verdict"] == "gain"


def test_identical_variants_give_no_clear_gain(tmp_path):
    variants = [make_variant(tmp_path, "bands_1", [1], slightly_noisy),
                make_variant(tmp_path, "bands_3", [1, 2, 3], slightly_noisy)]
    report = write_report(tmp_path / "report", "same", variants)
    assert report["verdict"]["most_vs_fewest"]["verdict"] == "no clear gain"
    assert "No clear gain from more bands" in (tmp_path / "report" / "index.html").read_text()


def test_worse_with_more_bands_is_said_plainly(tmp_path):
    variants = [make_variant(tmp_path, "bands_1", [1], lambda real, rng: real),
                make_variant(tmp_path, "bands_3", [1, 2, 3], grey_and_blurred)]
    report = write_report(tmp_path / "report", "worse", variants)
    assert report["verdict"]["most_vs_fewest"]["verdict"] == "loss"
    assert "made it worse" in report["verdict"]["sentences"][0]


def test_missing_loss_logs_leave_out_the_plot(tmp_path):
    variant = make_variant(tmp_path, "bands_1", [1], slightly_noisy)
    for log in variant.run_dir.iterdir():
        log.unlink()
    report = write_report(tmp_path / "report", "no logs", [variant])
    assert "loss_curves.png" not in report["figures"].values()
    assert not (tmp_path / "report" / "loss_curves.png").exists()
    assert (tmp_path / "report" / "examples.png").exists()


def test_repeated_trainings_are_averaged_and_their_spread_can_veto_a_gain(tmp_path):
    from evaluation.evaluation import average_runs

    def noisy(real, rng):
        return real + rng.normal(0, 6.0, real.shape)

    one = [make_variant(tmp_path / f"a{i}", "bands_1", [1], noisy) for i in range(2)]
    # the two trainings of the 3-band variant disagree wildly: one perfect, one as bad as the 1-band ones
    three = [make_variant(tmp_path / "b0", "bands_3", [1, 2, 3], lambda real, rng: real),
             make_variant(tmp_path / "b1", "bands_3", [1, 2, 3], noisy)]
    merged_one = average_runs([v.metrics for v in one])
    merged_three = average_runs([v.metrics for v in three])
    assert merged_three["L1"] == pytest.approx(np.mean([v.metrics["L1"] for v in three]))
    assert len(merged_three["runs"]) == 2 and merged_three["n_sources"] == three[0].metrics["n_sources"]
    row = merged_three["images"][0]
    assert row["L1"] == pytest.approx(np.mean([v.metrics["images"][0]["L1"] for v in three]))

    variants = [Variant("bands_1", "1 band", [1], merged_one, one[0].results_dir, one[0].run_dir),
                Variant("bands_3", "3 bands", [1, 2, 3], merged_three, three[0].results_dir, three[0].run_dir)]
    report = write_report(tmp_path / "report", "repeats", variants)
    l1 = report["verdict"]["most_vs_fewest"]["metrics"]["L1"]
    assert l1["se_training"] > 0
    # per image the 3-band mean is clearly better, but two so different trainings cannot back a claim
    assert abs(l1["diff"]) > max(2 * l1["se"], MIN_EFFECT["L1"])
    assert abs(l1["to"] - l1["from"]) < 2 * l1["se_training"] and l1["call"] == "no clear difference"
    assert "trained 2 times" in report["verdict"]["sentences"][-1]
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert len(saved["variants"][1]["runs"]) == 2


def test_flat_image_row_and_verdict(tmp_path):
    """The flat-image reference is a table row and a metrics.json block; the verdict names the metrics in
    which the most-bands model does not beat it (a black picture loses to it in L1 and PSNR)."""
    variants = [make_variant(tmp_path, "bands_1", [1], lambda real, rng: real),
                make_variant(tmp_path, "bands_3", [1, 2, 3], lambda real, rng: np.zeros_like(real))]
    report = write_report(tmp_path / "report", "flat", variants)
    page = (tmp_path / "report" / "index.html").read_text()
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    flat = saved["flat"]
    assert flat["label"].startswith("flat image: level ") and "median of the evaluated real targets" in flat["label"]
    assert flat["L1"] == pytest.approx(variants[0].metrics["flat"]["L1"]) and flat["CC"] == 0.0
    assert flat["completeness"] == 0.0 and flat["n_sources"] == variants[0].metrics["n_sources"]
    assert f"<tr><th>{flat['label']}</th>" in page
    assert "does not beat the flat image in a metric has not learnt that metric" in page
    vs_flat = saved["verdict"]["vs_flat"]
    assert vs_flat["variant"] == "3 bands" and {"L1", "PSNR"} <= set(vs_flat["not_beaten"])
    assert vs_flat["metrics"]["L1"]["call"] == "worse"
    sentence = [s for s in report["verdict"]["sentences"] if "flat image" in s]
    assert len(sentence) == 1 and sentence[0].startswith("3 bands does not beat the flat image")
    assert sentence[0] in page


def test_a_perfect_model_beats_the_flat_image_everywhere(tmp_path):
    variants = [make_variant(tmp_path, "bands_1", [1], slightly_noisy),
                make_variant(tmp_path, "bands_3", [1, 2, 3], lambda real, rng: real)]
    report = write_report(tmp_path / "report", "perfect", variants)
    assert report["verdict"]["vs_flat"]["not_beaten"] == []
    assert "3 bands beats the flat image" in " ".join(report["verdict"]["sentences"])
