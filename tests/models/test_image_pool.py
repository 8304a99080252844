"""ImagePool (upstream semantics) and CycleGAN's exact resume, which must bring the pools back."""
import random

import numpy as np
import torch
from PIL import Image

from engine.training import run_training
from models.image_pool import ImagePool
from options.train_options import TrainOptions


def images(n, value):
    return torch.full((n, 1, 2, 2), float(value))


def test_size_zero_passes_images_through():
    pool = ImagePool(0)
    batch = images(2, 1)
    assert pool.query(batch) is batch and len(pool) == 0


def test_filling_returns_the_new_images_then_mixes_in_stored_ones():
    random.seed(0)
    pool = ImagePool(3)
    assert torch.equal(pool.query(images(2, 1)), images(2, 1))
    assert torch.equal(pool.query(images(1, 2)), images(1, 2))  # the pool is now full
    returned = torch.cat([pool.query(images(1, 10 + i)) for i in range(40)])
    values = returned[:, 0, 0, 0].tolist()
    new = [v == 10 + i for i, v in enumerate(values)]
    assert 5 < sum(new) < 35  # about half the queries swap in a stored image
    assert all(v in (1.0, 2.0) or v >= 10 for v in values)
    assert len(pool) == 3


def test_pool_never_keeps_the_graph():
    pool = ImagePool(2)
    fake = torch.ones(1, 1, 2, 2, requires_grad=True) * 2
    assert not pool.query(fake).requires_grad and not pool.images[0].requires_grad


def test_state_round_trip():
    pool = ImagePool(2)
    pool.query(images(2, 4))
    other = ImagePool(2)
    other.load_state_dict(pool.state_dict())
    assert [t.tolist() for t in other.images] == [t.tolist() for t in pool.images]


def train(tmp_path, name, *extra, **stop):
    for seed in (torch.manual_seed, random.seed, np.random.seed):
        seed(0)
    argv = ["--dataroot", str(tmp_path / "data"), "--name", name, "--checkpoints_dir", str(tmp_path / "ck"),
            "--model", "cycle_gan", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "36",
            "--crop_size", "32", "--pool_size", "2", "--n_epochs", "1", "--n_epochs_decay", "0",
            "--save_latest_freq", "2", "--print_freq", "100", "--display_freq", "100", "--no_html",
            "--num_threads", "0", "--gpu_ids", "-1", *extra]
    return run_training(TrainOptions().parse(argv), **stop)


def test_cycle_gan_resume_restores_the_pools_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ("trainA", "trainB"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(
                tmp_path / "data" / folder / f"{i}.png")
    train(tmp_path, "straight")
    train(tmp_path, "resumed", stop_after_iters=3)  # killed after iteration 3; `latest` is from iteration 2
    saved = torch.load(tmp_path / "ck" / "resumed" / "latest_image_pools.pth", weights_only=True)
    assert len(saved["fake_A_pool"]["images"]) == 2  # full: later queries draw from it
    train(tmp_path, "resumed", "--continue_train")
    for net in ("G_A", "G_B", "D_A", "D_B"):
        mine = torch.load(tmp_path / "ck" / "straight" / f"latest_net_{net}.pth", weights_only=True)
        theirs = torch.load(tmp_path / "ck" / "resumed" / f"latest_net_{net}.pth", weights_only=True)
        assert all(torch.equal(mine[key], theirs[key]) for key in mine), net
