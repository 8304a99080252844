"""test.py with --model test (one direction of a CycleGAN: G_A, --model_suffix _A) end to end, on
plain images through the real command line and on multi-band A|B|C|D files; and --model cycle_gan
at test time (both generators) on testA/testB."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data.base_dataset import to_normalized_tensor
from engine.inference import run_test
from engine.training import run_training
from models import networks
from models.checkpoint import load_network
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.util import tensor2im

ROOT = Path(__file__).resolve().parents[1]
NETS = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--crop_size", "32"]


def write_images(folder, n, width, size=32, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, width, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def train_cycle_gan(tmp_path, name, width_a=32, *extra):
    write_images(tmp_path / name / "trainA", 2, width_a, seed=1)
    write_images(tmp_path / name / "trainB", 2, 32, seed=2)
    opt = TrainOptions().parse(["--dataroot", str(tmp_path / name), "--name", name, "--checkpoints_dir",
                                str(tmp_path / "ck"), *NETS, "--load_size", "32", "--n_epochs", "1",
                                "--n_epochs_decay", "0", "--num_threads", "0", "--no_html",
                                "--display_freq", "100", "--print_freq", "100", *extra])
    run_training(opt)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 3-channel CycleGAN (2 steps) shared by the tests that only read its checkpoints."""
    root = tmp_path_factory.mktemp("trained")
    train_cycle_gan(root, "cg")
    return root


def test_test_py_runs_the_cycle_gan_g_a_alone(trained, tmp_path):
    photos = write_images(tmp_path / "photos", 2, 32, seed=3)
    command = [sys.executable, "test.py", "--dataroot", str(photos), "--name", "cg", "--checkpoints_dir",
               str(trained / "ck"), "--results_dir", str(tmp_path / "res"), "--model", "test",
               "--model_suffix", "_A", "--no_dropout", *NETS]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "res" / "cg" / "test_latest"
    assert sorted(p.name for p in (out / "images").iterdir()) == ["000_fake.png", "000_real.png",
                                                                  "001_fake.png", "001_real.png"]
    assert "001_fake.png" in (out / "index.html").read_text()
    # the saved picture is G_A of the input, computed here independently from the checkpoint
    g_a = networks.define_G(3, 3, 8, "resnet_6blocks", "instance", False)
    load_network(g_a, trained / "ck" / "cg" / "latest_net_G_A.pth")
    with torch.no_grad():
        fake = g_a(to_normalized_tensor(Image.open(photos / "001.png").convert("RGB"))[None])
    saved = np.asarray(Image.open(out / "images" / "001_fake.png")).astype(int)
    assert np.abs(saved - tensor2im(fake).astype(int)).max() <= 1


def test_a_missing_generator_is_a_one_line_error(tmp_path):
    photos = write_images(tmp_path / "photos", 1, 32)
    command = [sys.executable, "test.py", "--dataroot", str(photos), "--name", "none", "--checkpoints_dir",
               str(tmp_path / "ck"), "--results_dir", str(tmp_path / "res"), "--model", "test",
               "--model_suffix", "_A", "--no_dropout", *NETS]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: checkpoint")
    assert "latest_net_G_A.pth not found" in result.stderr and "Traceback" not in result.stderr


def test_nine_band_g_a_runs_on_aligned_four_panel_files(tmp_path):
    """Domain A of the CycleGAN held B|C|D files; test on A|B|C|D files, panels 1..3 as the input."""
    train_cycle_gan(tmp_path, "nine", 96, "--input_nc", "9", "--lambda_identity", "0")
    aligned = write_images(tmp_path / "aligned", 1, 128, seed=4)
    opt = TestOptions().parse(["--dataroot", str(aligned), "--name", "nine", "--checkpoints_dir", str(tmp_path / "ck"),
                               "--results_dir", str(tmp_path / "res"), "--model", "test", "--model_suffix", "_A",
                               "--no_dropout", "--input_nc", "9", "--n_panels", "4", *NETS])
    run_test(opt)
    images = sorted(p.name for p in (tmp_path / "res" / "nine" / "test_latest" / "images").iterdir())
    assert images == ["000_fake.png", "000_real_p1.png", "000_real_p2.png", "000_real_p3.png"]


def test_cycle_gan_model_at_test_time_runs_both_generators(trained, tmp_path):
    write_images(tmp_path / "data" / "testA", 1, 32, seed=5)
    write_images(tmp_path / "data" / "testB", 1, 32, seed=6)
    opt = TestOptions().parse(["--dataroot", str(tmp_path / "data"), "--name", "cg", "--checkpoints_dir",
                               str(trained / "ck"), "--results_dir", str(tmp_path / "res"), "--model", "cycle_gan",
                               "--dataset_mode", "unaligned", *NETS])
    run_test(opt)
    images = sorted(p.name for p in (tmp_path / "res" / "cg" / "test_latest" / "images").iterdir())
    assert images == sorted(f"000_{v}.png" for v in ("real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"))
