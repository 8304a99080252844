"""Multi-panel aligned data: shared crop/flip, channel selection, grey panels, classic AB, loader."""
import argparse
import random

import numpy as np
import pytest
import torch
from PIL import Image

from data import create_dataset, find_dataset_using_name, get_option_setter
from data.base_dataset import get_params


def make_opt(dataroot, **overrides) -> argparse.Namespace:
    """Upstream defaults for the fields the data package reads, plus the panel options."""
    opt = dict(dataroot=str(dataroot), phase="train", dataset_mode="aligned", max_dataset_size=float("inf"),
               input_nc=3, output_nc=3, direction="AtoB", preprocess="resize_and_crop", load_size=286,
               crop_size=256, no_flip=False, serial_batches=False, num_threads=0, batch_size=1,
               n_panels=0, input_panels="", panel_nc="")
    opt.update(overrides)
    return argparse.Namespace(**opt)


def write_image(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def constant_panels(colours, size=16):
    """An image of square panels side by side, panel i filled with colours[i] (RGB or grey level)."""
    panels = []
    for colour in colours:
        shape = (size, size, 3) if isinstance(colour, tuple) else (size, size)
        panels.append(np.broadcast_to(np.array(colour, dtype=np.uint8), shape))
    return np.concatenate(panels, axis=1)


def level(v):
    return v / 255.0 * 2 - 1


def test_every_panel_gets_the_same_crop_and_flip(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(40, 40), dtype=np.uint8)  # the same texture in every panel
    image = np.zeros((40, 160, 3), dtype=np.uint8)
    for p in range(4):
        image[:, 40 * p:40 * (p + 1), 0] = base
        image[:, 40 * p:40 * (p + 1), 1] = 60 * p          # what tells the panels apart
    image[11, 7 + 40 * np.arange(4), 2] = 255             # a marker pixel at (7, 11) in every panel
    write_image(tmp_path / "train" / "x.png", image)
    opt = make_opt(tmp_path, preprocess="crop", crop_size=24, input_nc=3, output_nc=9)
    dataset = create_dataset(opt).dataset
    flips = set()
    for seed in range(12):
        random.seed(seed)
        params = get_params(opt, (40, 40))
        random.seed(seed)
        item = dataset[0]
        x, y = params["crop_pos"]
        expected = base[y:y + 24, x:x + 24].astype(np.float32)
        if params["flip"]:
            expected = expected[:, ::-1]
        flips.add(params["flip"])
        panels = [item["A"]] + list(item["B"].split(3))
        for p, panel in enumerate(panels):
            assert np.allclose(panel[0].numpy(), level(expected)), (seed, p)
            assert torch.allclose(panel[1], torch.full_like(panel[1], level(60 * p)))
            marker = (panel[2] > 0).nonzero().tolist()
            assert marker == ([[11 - y, (23 - (7 - x)) if params["flip"] else 7 - x]]
                              if 0 <= 11 - y < 24 and 0 <= 7 - x < 24 else [])
    assert flips == {True, False}


def test_resize_and_crop_keeps_panels_aligned(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    write_image(tmp_path / "train" / "x.png", np.concatenate([base] * 4, axis=1))
    opt = make_opt(tmp_path, load_size=40, crop_size=32, input_nc=9, output_nc=3, direction="BtoA")
    item = create_dataset(opt).dataset[0]
    assert item["A"].shape == (3, 32, 32) and item["B"].shape == (9, 32, 32)
    for panel in item["B"].split(3):
        assert torch.equal(panel, item["A"])


def test_input_panels_pick_and_concatenate_channels(tmp_path):
    colours = [(10, 20, 30), (40, 50, 60), (70, 80, 90), (100, 110, 120)]
    write_image(tmp_path / "train" / "x.png", constant_panels(colours))
    opt = make_opt(tmp_path, input_panels="1,3", input_nc=6, output_nc=3, direction="BtoA",
                   preprocess="none", no_flip=True)
    loader = create_dataset(opt)
    assert loader.dataset.panel_indices == ([0], [1, 3])
    assert loader.dataset.panel_channels == ([3], [3, 3])
    batch = next(iter(loader))
    assert batch["B"].shape == (1, 6, 16, 16) and batch["A"].shape == (1, 3, 16, 16)
    got_b = batch["B"][0, :, 0, 0].tolist()
    assert got_b == pytest.approx([level(v) for v in (40, 50, 60, 100, 110, 120)])
    assert batch["A"][0, :, 5, 5].tolist() == pytest.approx([level(v) for v in (10, 20, 30)])
    assert batch["A_paths"] == batch["B_paths"] == [str(tmp_path / "train" / "x.png")]


def test_grey_panels_load_as_one_channel(tmp_path):
    write_image(tmp_path / "train" / "x.png", constant_panels([50, 100, 150, 200]))  # a grey (mode L) file
    opt = make_opt(tmp_path, input_nc=3, output_nc=1, direction="BtoA", preprocess="none", no_flip=True)
    dataset = create_dataset(opt).dataset
    assert dataset.panel_channels == ([1], [1, 1, 1])
    item = dataset[0]
    assert item["A"].shape == (1, 16, 16) and item["B"].shape == (3, 16, 16)
    assert item["A"].unique().tolist() == pytest.approx([level(50)])
    assert item["B"][:, 3, 3].tolist() == pytest.approx([level(v) for v in (100, 150, 200)])


def test_mixed_panel_channels_with_panel_nc(tmp_path):
    colours = [(10, 20, 30), (40, 50, 60), (77, 77, 77), (70, 80, 90)]  # grey band stored as RGB
    write_image(tmp_path / "train" / "x.png", constant_panels(colours))
    opt = make_opt(tmp_path, input_nc=7, direction="BtoA", panel_nc="3,1,3", preprocess="none", no_flip=True)
    item = create_dataset(opt).dataset[0]
    assert item["B"][:, 0, 0].tolist() == pytest.approx([level(v) for v in (40, 50, 60, 77, 70, 80, 90)])


def test_classic_two_panel_image_matches_upstream_pipeline(tmp_path):
    from torchvision import transforms

    rng = np.random.default_rng(2)
    ab = rng.integers(0, 256, size=(30, 61, 3), dtype=np.uint8)  # odd width: upstream splits at int(w/2)
    path = write_image(tmp_path / "train" / "ab.png", ab)
    opt = make_opt(tmp_path, n_panels=2, load_size=36, crop_size=32)
    dataset = create_dataset(opt).dataset
    assert dataset.panel_channels == ([3], [3]) and dataset.panel_indices == ([0], [1])
    random.seed(5)
    params = get_params(opt, (30, 30))
    random.seed(5)
    item = dataset[0]
    full = Image.open(path).convert("RGB")
    x, y = params["crop_pos"]
    reference = transforms.Compose([
        transforms.Resize([36, 36], transforms.InterpolationMode.BICUBIC),
        transforms.Lambda(lambda im: im.crop((x, y, x + 32, y + 32))),
        transforms.Lambda(lambda im: im.transpose(Image.FLIP_LEFT_RIGHT) if params["flip"] else im),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])
    assert torch.equal(item["A"], reference(full.crop((0, 0, 30, 30))))
    assert torch.equal(item["B"], reference(full.crop((30, 0, 61, 30))))


def test_square_pair_inferred_as_two_panels(tmp_path):
    write_image(tmp_path / "train" / "ab.png", constant_panels([(1, 2, 3), (4, 5, 6)]))
    dataset = create_dataset(make_opt(tmp_path, preprocess="none", no_flip=True)).dataset
    assert dataset.n_panels == 2
    item = dataset[0]
    assert item["A"][:, 0, 0].tolist() == pytest.approx([level(v) for v in (1, 2, 3)])
    assert item["B"][:, 0, 0].tolist() == pytest.approx([level(v) for v in (4, 5, 6)])


def test_each_item_is_decoded_once(tmp_path, monkeypatch):
    write_image(tmp_path / "train" / "x.png", constant_panels([(1, 2, 3)] * 4))
    dataset = create_dataset(make_opt(tmp_path, input_nc=9, direction="BtoA", preprocess="none")).dataset
    calls = []
    original = Image.Image.convert
    monkeypatch.setattr(Image.Image, "convert", lambda self, *a, **k: calls.append(a) or original(self, *a, **k))
    dataset[0]
    assert calls == [("RGB",)]


def test_loader_batches_caps_and_serial_order(tmp_path):
    for i in range(5):
        write_image(tmp_path / "train" / f"{i}.png", constant_panels([(i, i, i), (0, 0, 0)]))
    loader = create_dataset(make_opt(tmp_path, preprocess="none", batch_size=2, serial_batches=True,
                                     max_dataset_size=3))
    assert len(loader) == 3 and len(loader.dataset) == 3
    batches = list(loader)
    assert [len(b["A_paths"]) for b in batches] == [2, 1]
    assert [p.rsplit("/", 1)[1] for b in batches for p in b["A_paths"]] == ["0.png", "1.png", "2.png"]
    uncapped = create_dataset(make_opt(tmp_path, preprocess="none", batch_size=2, max_dataset_size=4))
    assert len(uncapped) == 4 and len(uncapped.dataset) == 4


def test_loader_shards_with_distributed_sampler(tmp_path):
    for i in range(6):
        write_image(tmp_path / "train" / f"{i}.png", constant_panels([(i, i, i), (0, 0, 0)]))
    orders = {}
    for rank in (0, 1):  # the run context's rank and world size choose the shard
        loader = create_dataset(make_opt(tmp_path, preprocess="none"), rank=rank, world_size=2)
        assert len(loader) == 3
        loader.set_epoch(0)
        first = [b["A_paths"][0] for b in loader]
        loader.set_epoch(1)
        second = [b["A_paths"][0] for b in loader]
        assert sorted(first) == sorted(second) and len(set(first)) == 3
        orders[rank] = (first, second)
    assert set(orders[0][0]).isdisjoint(orders[1][0])
    assert orders[0][0] != orders[0][1] or orders[1][0] != orders[1][1]


def test_registry_ignores_case_and_underscores():
    assert find_dataset_using_name("Aligned").__name__ == "AlignedDataset"
    assert find_dataset_using_name("SIN_GLE").__name__ == "SingleDataset"
    parser = argparse.ArgumentParser()
    get_option_setter("aligned")(parser, True)
    get_option_setter("single")(parser, False)  # shares the panel options without clashing
    args = parser.parse_args(["--n_panels", "4", "--input_panels", "1,3"])
    assert (args.n_panels, args.input_panels, args.panel_nc) == (4, "1,3", "")
