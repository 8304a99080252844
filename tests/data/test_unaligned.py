"""Unaligned (CycleGAN) data: trainA/trainB, serial or random B, lengths, multi-panel domains, errors."""
import random

import numpy as np
import pytest
import torch
from PIL import Image

from data import create_dataset
from data.unaligned_dataset import UnalignedDataset
from options.train_options import TrainOptions
from util.errors import UserError


def save(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def make_domains(root, n_a=3, n_b=5, size=16, panels_a=1, grey_b=False):
    """trainA: n_a images of `panels_a` colour panels; trainB: n_b plain images (grey or colour)."""
    rng = np.random.default_rng(0)
    for i in range(n_a):
        save(root / "trainA" / f"a{i}.png", rng.integers(0, 256, (size, size * panels_a, 3), dtype=np.uint8))
    for i in range(n_b):
        shape = (size, size) if grey_b else (size, size, 3)
        save(root / "trainB" / f"b{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


def options(root, *extra):
    return TrainOptions().parse(["--dataroot", str(root), "--model", "cycle_gan", "--gpu_ids", "-1",
                                  "--load_size", "16", "--crop_size", "16", "--num_threads", "0", *extra])


def as_tensor(pixels):
    return torch.from_numpy(pixels.astype(np.float32) / 255 * 2 - 1).permute(2, 0, 1)


def test_length_is_the_larger_folder_and_serial_batches_cycle_through_both(tmp_path):
    dataset = UnalignedDataset(options(make_domains(tmp_path), "--serial_batches"))
    assert len(dataset) == 5
    names = [(item["A_paths"].split("/")[-1], item["B_paths"].split("/")[-1]) for item in (dataset[i] for i in range(len(dataset)))]
    assert names == [("a0.png", "b0.png"), ("a1.png", "b1.png"), ("a2.png", "b2.png"),
                     ("a0.png", "b3.png"), ("a1.png", "b4.png")]
    assert dataset[0]["A"].shape == (3, 16, 16) and dataset[0]["B"].shape == (3, 16, 16)


def test_without_serial_batches_b_is_drawn_at_random(tmp_path):
    dataset = UnalignedDataset(options(make_domains(tmp_path, n_a=2, n_b=6)))
    random.seed(0)
    drawn = [dataset[0]["B_paths"] for _ in range(30)]
    assert {path.split("/")[-1] for path in drawn} == {f"b{i}.png" for i in range(6)}
    assert all(dataset[1]["A_paths"].endswith("a1.png") for _ in range(3))  # A stays in order
    random.seed(0)
    assert [dataset[0]["B_paths"] for _ in range(30)] == drawn  # from Python's seeded `random`


def test_loader_and_max_dataset_size(tmp_path):
    root = make_domains(tmp_path, n_a=4, n_b=2)
    loader = create_dataset(options(root, "--batch_size", "2", "--max_dataset_size", "3"))
    assert len(loader.dataset) == 3  # each folder capped at 3, then max(3, 2)
    batches = list(loader)
    assert [batch["A"].shape[0] for batch in batches] == [2, 1]


def test_a_multi_panel_domain_stacks_its_panels_with_one_crop_and_flip(tmp_path):
    rng = np.random.default_rng(5)
    panel = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    save(tmp_path / "trainA" / "a0.png", np.concatenate([panel, panel, panel], axis=1))  # identical bands
    save(tmp_path / "trainB" / "b0.png", panel)
    dataset = UnalignedDataset(options(tmp_path, "--input_nc", "9", "--load_size", "20", "--crop_size", "12"))
    assert dataset.panel_channels == ([3, 3, 3], [3]) and dataset.panel_indices == ([0, 1, 2], [0])
    for _ in range(6):  # random crops and flips: every band must get the same one
        a = dataset[0]["A"]
        assert a.shape == (9, 12, 12)
        assert torch.equal(a[0:3], a[3:6]) and torch.equal(a[0:3], a[6:9])


def test_panels_are_cut_in_order_and_grey_panels_are_one_channel(tmp_path):
    rng = np.random.default_rng(6)
    bands = [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in range(3)]
    save(tmp_path / "trainA" / "a0.png", np.concatenate(bands, axis=1))
    save(tmp_path / "trainB" / "b0.png", bands[0])
    opt = options(tmp_path, "--input_nc", "3", "--output_nc", "1", "--n_panels_A", "3", "--no_flip")
    item = UnalignedDataset(opt)[0]
    for i, band in enumerate(bands):
        assert torch.allclose(item["A"][i], as_tensor(band[:, :, None])[0], atol=1e-6)
    assert item["B"].shape == (1, 16, 16)


def test_btoa_reads_folder_a_with_output_nc_channels(tmp_path):
    root = make_domains(tmp_path, panels_a=1)
    rng = np.random.default_rng(7)
    for i in range(5):  # domain B now holds the 9-channel (3-panel) input
        save(root / "trainB" / f"b{i}.png", rng.integers(0, 256, (16, 48, 3), dtype=np.uint8))
    dataset = UnalignedDataset(options(root, "--direction", "BtoA", "--input_nc", "9"))
    item = dataset[0]
    assert item["A"].shape == (3, 16, 16) and item["B"].shape == (9, 16, 16)
    assert dataset.panel_channels == ([3], [3, 3, 3])


@pytest.mark.parametrize("case, expected", [
    ("no_root", "--dataroot folder not found"),
    ("no_b", "no 'trainB' folder"),
    ("empty_a", "no images in"),
    ("bad_count", "5 channels cannot come from"),
    ("not_multiple", "width is not a multiple of height"),
    ("other_width", "square panels (from the first image)"),
    ("too_small", "smaller than --crop_size"),
])
def test_bad_data_is_one_clear_user_error(tmp_path, case, expected):
    root = make_domains(tmp_path / "d", panels_a=3)
    extra = ["--input_nc", "9"]
    if case == "no_root":
        root = tmp_path / "missing"
    elif case == "no_b":
        for path in (root / "trainB").iterdir():
            path.unlink()
        (root / "trainB").rmdir()
    elif case == "empty_a":
        for path in (root / "trainA").iterdir():
            path.unlink()
    elif case == "bad_count":
        extra = ["--input_nc", "5"]
    elif case == "not_multiple":
        save(root / "trainA" / "a0.png", np.zeros((16, 40, 3), dtype=np.uint8))
    elif case == "other_width":
        save(root / "trainA" / "a2.png", np.zeros((16, 64, 3), dtype=np.uint8))
    elif case == "too_small":
        extra += ["--preprocess", "crop", "--crop_size", "32"]
    with pytest.raises(UserError) as err:
        dataset = UnalignedDataset(options(root, "--serial_batches", *extra))
        for i in range(len(dataset)):
            dataset[i]
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_iterating_the_dataset_ends(tmp_path):
    dataset = UnalignedDataset(options(make_domains(tmp_path, n_a=2, n_b=3), "--serial_batches"))
    assert len(list(dataset)) == 3
