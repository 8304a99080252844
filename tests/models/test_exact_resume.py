"""Exact resume: N steps straight == N/2 steps, a stop, --continue_train, the rest (bit for bit,
CPU), with shuffling, random crops and flips, dropout and a decaying LR all switched on."""
import random

import numpy as np
import pytest
import torch
from PIL import Image

from engine.training import run_training
from options.train_options import TrainOptions


def write_four_panel_set(root, n_images=4, size=72):
    rng = np.random.default_rng(3)
    folder = root / "train"
    folder.mkdir(parents=True)
    for i in range(n_images):
        pixels = rng.integers(0, 256, size=(size, 4 * size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


def train(tmp_path, name, *extra, **stop):
    for seed_fn in (torch.manual_seed, random.seed, np.random.seed):
        seed_fn(0)
    argv = ["--dataroot", str(tmp_path / "data"), "--name", name, "--checkpoints_dir", str(tmp_path / "ck"),
            "--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9", "--netG", "unet_64", "--ngf", "8",
            "--ndf", "8", "--load_size", "72", "--crop_size", "64", "--n_epochs", "1", "--n_epochs_decay", "1",
            "--save_latest_freq", "3", "--save_epoch_freq", "1", "--print_freq", "2", "--display_freq", "1000",
            "--no_html", "--gpu_ids", "-1", *extra]
    return run_training(TrainOptions().parse(argv), **stop)


def assert_same_files(tmp_path, prefix, a="straight", b="resumed"):
    for net in ("G", "D"):
        mine = torch.load(tmp_path / "ck" / a / f"{prefix}_net_{net}.pth", weights_only=True)
        theirs = torch.load(tmp_path / "ck" / b / f"{prefix}_net_{net}.pth", weights_only=True)
        assert list(mine) == list(theirs)
        for key in mine:
            assert torch.equal(mine[key], theirs[key]), f"{net} {key} differs"
    mine = torch.load(tmp_path / "ck" / a / f"{prefix}_train_state.pth", weights_only=True)
    theirs = torch.load(tmp_path / "ck" / b / f"{prefix}_train_state.pth", weights_only=True)
    for opt_a, opt_b in zip(mine["optimizers"], theirs["optimizers"]):
        assert opt_a["param_groups"] == opt_b["param_groups"]
        for index, state in opt_a["state"].items():
            for key, value in state.items():
                assert torch.equal(value, opt_b["state"][index][key])
    assert mine["progress"]["total_iters"] == theirs["progress"]["total_iters"] == 8
    assert torch.equal(mine["rng"]["torch"], theirs["rng"]["torch"])


@pytest.mark.parametrize("workers", ["0", "1"])
def test_resume_mid_epoch_continues_bit_for_bit(tmp_path, workers):
    write_four_panel_set(tmp_path / "data")
    assert train(tmp_path, "straight", "--num_threads", workers) == {"epoch": 2, "total_iters": 8}
    # killed after iteration 7 of 8: the last save was `latest` at iteration 6 (epoch 2, 2 batches in)
    train(tmp_path, "resumed", "--num_threads", workers, stop_after_iters=7)
    result = train(tmp_path, "resumed", "--num_threads", workers, "--continue_train")
    assert result == {"epoch": 2, "total_iters": 8}
    assert_same_files(tmp_path, "latest")
    assert_same_files(tmp_path, "2")


def test_resume_at_an_epoch_boundary_restores_the_schedule(tmp_path):
    write_four_panel_set(tmp_path / "data")
    train(tmp_path, "straight", "--num_threads", "0")
    train(tmp_path, "resumed", "--num_threads", "0", stop_after_epoch=1)
    state = torch.load(tmp_path / "ck" / "resumed" / "latest_train_state.pth", weights_only=True)
    assert state["progress"]["epoch_finished"] and state["progress"]["epoch"] == 1
    # --epoch_count is derived from the saved state, whatever the command line says
    train(tmp_path, "resumed", "--num_threads", "0", "--continue_train", "--epoch_count", "1")
    assert_same_files(tmp_path, "latest")
    assert train(tmp_path, "resumed", "--num_threads", "0", "--continue_train") == {"epoch": 2, "total_iters": 8}
    assert_same_files(tmp_path, "latest")  # a finished run resumes to nothing and changes nothing
    lr = state["optimizers"][0]["param_groups"][0]["lr"]
    assert lr == pytest.approx(0.0002 * 0.5)  # linear decay: 1 - 1/(1 + 1) after epoch 1


def test_resume_without_state_file_falls_back_to_weights_only(tmp_path, capsys):
    write_four_panel_set(tmp_path / "data", n_images=2)
    train(tmp_path, "old", "--num_threads", "0", "--n_epochs_decay", "0")
    (tmp_path / "ck" / "old" / "latest_train_state.pth").unlink()  # as an upstream checkpoint folder
    result = train(tmp_path, "old", "--num_threads", "0", "--n_epochs_decay", "0", "--n_epochs", "2",
                   "--continue_train", "--epoch_count", "2")
    assert result == {"epoch": 2, "total_iters": 2}  # one more epoch of 2 images, counted from zero
    assert "resuming from the weights only" in capsys.readouterr().out


def test_resume_from_an_iteration_checkpoint_with_load_iter(tmp_path):
    write_four_panel_set(tmp_path / "data")
    train(tmp_path, "straight", "--num_threads", "0", "--save_by_iter")
    assert (tmp_path / "ck" / "straight" / "iter_6_net_G.pth").is_file()
    train(tmp_path, "resumed", "--num_threads", "0", "--save_by_iter", stop_after_iters=7)
    train(tmp_path, "resumed", "--num_threads", "0", "--save_by_iter", "--continue_train", "--load_iter", "6")
    assert_same_files(tmp_path, "2")
