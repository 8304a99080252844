"""train.py and test.py end to end (real subprocesses) on a tiny generated 4-panel A|B|C|D set
with the seed's usage --model pix2pix --direction BtoA --input_nc 9, and their one-line errors."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.script_runner import run_script
from util.results_manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9", "--netG", "unet_64", "--ngf", "8",
        "--ndf", "8", "--crop_size", "64", "--load_size", "64", "--gpu_ids", "-1", "--num_threads", "0"]


run = run_script


def write_set(root, n_images=2, size=64):
    rng = np.random.default_rng(5)
    for phase in ("train", "test"):
        (root / phase).mkdir(parents=True)
        for i in range(n_images):
            pixels = rng.integers(0, 256, size=(size, 4 * size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / phase / f"sky{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real training run of 1 epoch on 2 images, shared by the tests below."""
    work = tmp_path_factory.mktemp("cli")
    data = write_set(work / "data")
    result = run("train.py", "--dataroot", data, "--name", "sky", "--checkpoints_dir", work / "ck", *TINY,
                 "--n_epochs", "1", "--n_epochs_decay", "0", "--save_epoch_freq", "1", "--display_freq", "1",
                 "--print_freq", "1", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work, data, result


def test_training_writes_upstream_files(trained):
    work, _, result = trained
    folder = work / "ck" / "sky"
    for name in ("latest_net_G.pth", "latest_net_D.pth", "1_net_G.pth", "1_net_D.pth", "latest_train_state.pth",
                 "train_opt.txt", "loss_log.txt", "loss_log.jsonl", "web/index.html"):
        assert (folder / name).is_file(), name
    state = torch.load(folder / "latest_net_G.pth", weights_only=True)
    assert state["model.model.0.weight"].shape == (8, 9, 4, 4)  # G reads the 9 stacked input channels
    log = (folder / "loss_log.txt").read_text()
    assert "G_GAN" in log and "G_L1" in log and "D_real" in log and "D_fake" in log
    pictures = {p.name for p in (folder / "web" / "images").iterdir()}
    assert {"epoch001_real_A_p1.png", "epoch001_real_A_p2.png", "epoch001_real_A_p3.png",
            "epoch001_fake_B.png", "epoch001_real_B.png"} <= pictures
    assert "End of epoch 1 / 1" in result.stdout + result.stderr
    assert "\r" not in result.stderr  # a log (not a terminal) gets lines, not progress-bar redraws


def test_test_py_writes_the_results_page_with_every_panel(trained):
    work, data, _ = trained
    (data / "bands.csv").write_text("panel,name\n0,optical\n1,UV\n2,IR\n3,radio\n")  # as the synthetic sky writes it
    result = run("test.py", "--dataroot", data, "--name", "sky", "--checkpoints_dir", work / "ck",
                 "--results_dir", work / "results", *TINY, "--eval", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test images: 2/2 image in " in result.stderr and "\r" not in result.stderr
    page = work / "results" / "sky" / "test_latest" / "index.html"
    assert page.is_file()
    images = {p.name for p in (page.parent / "images").iterdir()}
    for stem in ("sky0", "sky1"):
        for label in ("real_A_p1", "real_A_p2", "real_A_p3", "fake_B", "real_B"):
            assert f"{stem}_{label}.png" in images
            assert f"images/{stem}_{label}.png" in page.read_text()
    with Image.open(page.parent / "images" / "sky0_fake_B.png") as picture:
        assert picture.size == (64, 64)
    saved = (work / "ck" / "sky" / "test_opt.txt").read_text()
    assert "num_threads: 0" in " ".join(saved.split()) and "eval: True" in " ".join(saved.split())
    manifest = read_manifest(page.parent)  # which file is what, for evaluation
    assert (manifest.run.model, manifest.run.direction, manifest.run.kind) == ("pix2pix", "BtoA", "panels")
    assert (manifest.run.input, manifest.run.target) == ([1, 2, 3], [0])
    assert manifest.run.bands == {0: "optical", 1: "UV", 2: "IR", 3: "radio"}
    assert [item.stem for item in manifest.items] == ["sky0", "sky1"]
    item = manifest.items[0]
    assert [(f.file, f.panel, f.band) for f in item.inputs] == [
        ("images/sky0_real_A_p1.png", 1, "UV"), ("images/sky0_real_A_p2.png", 2, "IR"),
        ("images/sky0_real_A_p3.png", 3, "radio")]
    assert (item.generated.png, item.generated.fits) == ("images/sky0_fake_B.png", None)
    assert (item.target.png, item.target.source) == ("images/sky0_real_B.png", str(data / "test" / "sky0.png"))


def test_a_failed_start_keeps_the_options_record_of_the_last_run(trained):
    """{phase}_opt.txt is written once the dataset and the model are built: a command that fails
    before that (here: a missing --dataroot) leaves the record of the run that trained the weights."""
    work, data, _ = trained
    record = work / "ck" / "sky" / "train_opt.txt"
    before = record.read_bytes()
    result = run("train.py", "--dataroot", work / "missing", "--name", "sky", "--checkpoints_dir", work / "ck",
                 *TINY, "--lr", "0.5", cwd=work)
    assert "--dataroot folder not found" in one_line_error(result)
    assert record.read_bytes() == before


def test_num_test_limits_the_images(trained):
    work, data, _ = trained
    result = run("test.py", "--dataroot", data, "--name", "sky", "--checkpoints_dir", work / "ck", "--phase", "train",
                 "--results_dir", work / "results", *TINY, "--num_test", "1", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    images = {p.name for p in (work / "results" / "sky" / "train_latest" / "images").iterdir()}
    assert {name.split("_")[0] for name in images} == {"sky0"}


def one_line_error(result):
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_checkpoint_of_another_architecture_is_a_one_line_error(trained):
    work, data, _ = trained
    result = run("test.py", "--dataroot", data, "--name", "sky", "--checkpoints_dir", work / "ck",
                 "--results_dir", work / "results", *TINY, "--netG", "resnet_6blocks", cwd=work)
    message = one_line_error(result)
    assert "another architecture" in message and "missing keys: model.1.weight" in message


def test_non_finite_loss_stops_with_the_iteration_and_keeps_the_checkpoint(trained):
    work, data, _ = trained
    before = (work / "ck" / "sky" / "latest_net_G.pth").read_bytes()
    result = run("train.py", "--dataroot", data, "--name", "sky", "--checkpoints_dir", work / "ck", *TINY,
                 "--n_epochs", "2", "--n_epochs_decay", "0", "--save_epoch_freq", "1", "--save_latest_freq", "1",
                 "--continue_train", "--lambda_L1", "inf", cwd=work)
    message = one_line_error(result)
    assert "non-finite loss at iteration 3 (epoch 2)" in message and "G_L1" in message
    assert (work / "ck" / "sky" / "latest_net_G.pth").read_bytes() == before


def test_input_nc_that_does_not_fit_the_panels_is_a_one_line_error(trained):
    work, data, _ = trained
    args = [a if a != "9" else "6" for a in TINY]  # 6 channels over 3 input panels
    result = run("train.py", "--dataroot", data, "--name", "bad", "--checkpoints_dir", work / "ck", *args, cwd=work)
    assert "channels" in one_line_error(result)
    assert not (work / "ck" / "bad" / "latest_net_G.pth").exists()


def test_test_model_runs_a_pix2pix_generator_on_single_multi_panel_images(trained):
    work, data, _ = trained
    result = run("test.py", "--dataroot", data / "test", "--name", "sky", "--checkpoints_dir", work / "ck",
                 "--results_dir", work / "results", "--model", "test", "--dataset_mode", "single", "--n_panels", "4",
                 "--netG", "unet_64", "--ngf", "8", "--norm", "batch", "--input_nc", "9", "--crop_size", "64",
                 "--gpu_ids", "-1", "--eval", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    images = {p.name for p in (work / "results" / "sky" / "test_latest" / "images").iterdir()}
    assert {"sky0_real_p1.png", "sky0_real_p2.png", "sky0_real_p3.png", "sky0_fake.png"} <= images


def test_single_mode_feeds_the_input_panels_to_a_multi_band_generator(trained):
    """--model test (single mode) on A|B|C|D files with a 9-channel generator reads panels 1..3
    as the input, the way the generator was trained, and shows each as its own picture."""
    work, data, _ = trained
    result = run("test.py", "--dataroot", data / "test", "--name", "sky", "--checkpoints_dir", work / "ck",
                 "--results_dir", work / "results_single", "--model", "test", "--direction", "BtoA",
                 "--netG", "unet_64", "--ngf", "8", "--norm", "batch", "--input_nc", "9", "--crop_size", "64",
                 "--gpu_ids", "-1", cwd=work)
    assert result.returncode == 0, result.stderr
    images = {p.name for p in (work / "results_single" / "sky" / "test_latest" / "images").iterdir()}
    stems = {name.split("_", 1)[0] for name in images}
    assert stems and all({f"{s}_real_p1.png", f"{s}_real_p2.png", f"{s}_real_p3.png", f"{s}_fake.png"} <= images
                         for s in stems), sorted(images)


def test_a_test_run_that_fails_part_way_leaves_a_page_of_the_images_done(trained, tmp_path):
    """test.py writes index.html as it goes: a bad image at the end stops it with one line, and
    the page shows the images before it. A partial run writes no manifest (evaluation must not
    take it for a whole one)."""
    work, data, _ = trained
    partial = tmp_path / "partial"
    (partial / "test").mkdir(parents=True)
    for name in ("sky0.png", "sky1.png"):
        (partial / "test" / name).write_bytes((data / "test" / name).read_bytes())
    (partial / "test" / "sky2.png").write_bytes((data / "test" / "sky0.png").read_bytes()[:3000])  # pixels cut off
    result = run("test.py", "--dataroot", partial, "--name", "sky", "--checkpoints_dir", work / "ck",
                 "--results_dir", tmp_path / "results", *TINY, cwd=work)
    assert one_line_error(result).startswith(f"error: corrupt image file {partial / 'test' / 'sky2.png'}")
    page = tmp_path / "results" / "sky" / "test_latest" / "index.html"
    assert page.is_file()
    text = page.read_text()
    assert "images/sky0_fake_B.png" in text and "images/sky1_fake_B.png" in text and "sky2" not in text
    assert not (page.parent / "manifest.json").exists()


@pytest.mark.parametrize("script", ["train.py", "test.py"])
def test_a_name_that_leaves_the_checkpoints_dir_is_refused(trained, tmp_path, script):
    """Issue 19 S06: --name ../../esc_train wrote the checkpoints outside --checkpoints_dir (upstream joins it)."""
    work, data, _ = trained
    inner = tmp_path / "ckA" / "inner"
    inner.mkdir(parents=True)
    for name in ("../../esc_train", str(tmp_path / "abs_run")):
        extra = ["--n_epochs", "1", "--n_epochs_decay", "0"] if script == "train.py" else ["--results_dir",
                                                                                          tmp_path / "res"]
        result = run(script, "--dataroot", data, "--name", name, "--checkpoints_dir", inner, *TINY, *extra, cwd=work)
        assert "would put the run outside --checkpoints_dir" in one_line_error(result)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ckA", "inner"]  # nothing written anywhere


def test_mixed_colour_and_grey_panels_take_their_layout_from_dataset_json(tmp_path):
    """Issue 19: panels of a colour and a grey survey needed --panel_nc 3,1 although the builder's dataset.json
    records each survey's channels; --input_nc 4 alone was an error ('gives 2 per panel')."""
    from data.sky.cli import main as build

    samples = ROOT / "data" / "sky_samples"
    data = tmp_path / "mix"
    assert build(["--surveys", *(str(samples / s) for s in ("DSS2Red", "GLIMPSE360", "Planck-HFI143")),
                  "--sample", "4", "--fov", "1.5", "--size", "64", "--seed", "3", "--split", "0.5,0,0.5",
                  "--out", str(data), "--no_progress", "--quiet"]) == 0
    common = ["--dataroot", data, "--checkpoints_dir", tmp_path / "ck", *(a for a in TINY if a not in ("--input_nc", "9")),
              "--output_nc", "1", "--n_epochs", "1", "--n_epochs_decay", "0"]
    trained = run("train.py", *common, "--name", "mix", "--input_nc", "4", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "input panels 1,2 read as 3,1 channels, as the dataset's dataset.json records" in trained.stdout
    assert "panel_nc: 3,1" in (tmp_path / "ck" / "mix" / "train_opt.txt").read_text()
    state = torch.load(tmp_path / "ck" / "mix" / "latest_net_G.pth", weights_only=True)
    assert state["model.model.0.weight"].shape[1] == 4
    tested = run("test.py", *common[:-4], "--name", "mix", "--input_nc", "4", "--results_dir", tmp_path / "res",
                 cwd=tmp_path)
    assert tested.returncode == 0, tested.stderr[-3000:]
    # the upstream default --input_nc 3 cannot hold them: the line says what the data records
    wrong = run("train.py", *common, "--name", "three", cwd=tmp_path)
    assert "records these input panels as 3+1 channels (dataset.json): give --input_nc 4" in one_line_error(wrong)
    # an explicit --panel_nc still wins: both read grey on purpose
    grey = run("train.py", *common, "--name", "grey", "--input_nc", "2", "--panel_nc", "1,1", cwd=tmp_path)
    assert grey.returncode == 0, grey.stderr[-3000:]
    assert "panel_nc: 1,1" in (tmp_path / "ck" / "grey" / "train_opt.txt").read_text()
