"""The prediction generator: options replayed from train_opt.txt, receptive field, hashed dropout."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from models import networks
from models.networks import receptive_radius
from options.test_options import TestOptions
from options.train_options import TrainOptions
from prediction.generate import REPLAYED, Generator, LoadedModel, TileKey, read_saved_options, replay_argv


def test_saved_options_replay_through_the_option_parser(tmp_path):
    argv = ["--dataroot", str(tmp_path), "--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9",
            "--netG", "unet_64", "--ngf", "16", "--no_dropout", "--input_panels", "1,3", "--panel_nc", "3,6",
            "--load_size", "80", "--crop_size", "64", "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path)]
    options = TrainOptions()
    opt = options.parse(argv)
    (tmp_path / "train_opt.txt").write_text(options.format_options(opt))
    saved = read_saved_options(tmp_path / "train_opt.txt")
    assert saved["netG"] == "unet_64" and saved["no_dropout"] == "True" and saved["input_panels"] == "1,3"
    parser = TestOptions().parser_for("pix2pix", "aligned")
    replayed = TestOptions().parse(["--dataroot", "x", "--model", "pix2pix", *replay_argv(saved, parser)])
    for key in REPLAYED:
        if key in saved and hasattr(replayed, key):
            assert str(getattr(replayed, key)) == saved[key], key


@pytest.mark.parametrize("netG, size", [("unet_64", 384), ("unet_128", 768), ("resnet_6blocks", 192),
                                         ("fullres_4blocks", 64)])
def test_receptive_radius_matches_the_generators_gradient(netG, size):
    torch.manual_seed(0)
    net = networks.define_G(1, 1, 2, netG, "none", False).eval()
    x = torch.randn(1, 1, size, size, requires_grad=True)
    net(x)[0, 0, size // 2, size // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1) > 0)[:, 0] - size // 2
    assert max(-int(rows.min()), int(rows.max())) == receptive_radius(netG)


def tiny_generator(seed=0):
    torch.manual_seed(0)
    net = networks.define_G(2, 1, 8, "unet_64", "batch", True).eval()
    loaded = LoadedModel(argparse.Namespace(amp="none", channels_last=False), net, torch.device("cpu"), {},
                         Path("w.pth"))
    return Generator(loaded, seed)


def test_stochastic_passes_do_not_depend_on_the_batch():
    gen = tiny_generator()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 128, 128)).astype(np.float32)
    keys = [TileKey(4, 64 * i - 32, -32) for i in range(3)]
    together = gen.run(x, keys, passes=3)
    alone = gen.run(x[2:], keys[2:], passes=3)
    np.testing.assert_array_equal(together[:, 2], alone[:, 0])
    assert not np.allclose(together[0], together[1])  # passes differ
    deterministic = gen.run(x, keys)
    assert deterministic.shape[0] == 1 and not np.allclose(deterministic[0], together[0])
    assert not np.allclose(tiny_generator(seed=1).run(x[2:], keys[2:], passes=3), alone)


def test_dropout_masks_agree_where_tiles_overlap():
    gen = tiny_generator()
    size, width, margin = 128, 64, 32
    first, below = TileKey(4, 0 - margin, 64 - margin), TileKey(4, width - margin, 64 - margin)
    masks = [gen._make_masks([key], 0, size)[0][0].numpy()[:, ::-1, :] for key in (first, below)]  # tile frame
    factor = size // masks[0].shape[1]
    shift = width // factor
    np.testing.assert_array_equal(masks[0][:, shift:, :], masks[1][:, :-shift, :])
    other_cell = gen._make_masks([TileKey(5, first.row0, first.col0)], 0, size)[0][0].numpy()[:, ::-1, :]
    assert not np.array_equal(other_cell, masks[0])
    assert 0.4 < (masks[0] > 0).mean() < 0.6  # dropout p = 0.5


def test_a_generator_without_dropout_takes_its_passes_from_flips_and_rotations():
    """Pass p sees the input turned and turns its output back: pass 0 is the plain output, the passes
    differ, and overlapping tiles agree on their shared sky beyond the receptive field (seamless maps)."""
    from prediction.generate import MAX_TURNS, turn, turn_back

    torch.manual_seed(0)
    net = networks.define_G(2, 1, 8, "fullres_4blocks", "none", False, output_head="linear").eval()
    gen = Generator(LoadedModel(argparse.Namespace(amp="none", channels_last=False), net, torch.device("cpu"), {},
                                Path("w.pth")))
    assert not gen.stochastic and gen.max_passes == MAX_TURNS
    x = torch.randn(1, 2, 12, 12)
    for p in range(MAX_TURNS):
        assert torch.equal(turn_back(turn(x, p), p), x)
    sky = np.random.default_rng(1).normal(size=(2, 96, 80)).astype(np.float32)
    tiles = np.stack([sky[:, :64, :64], sky[:, 32:, 16:]])  # overlap: rows 32..63, cols 16..63
    passes = gen.run(tiles, None, passes=MAX_TURNS)
    np.testing.assert_allclose(passes[0], gen.run(tiles)[0], rtol=1e-6, atol=1e-6)
    assert not np.allclose(passes[0], passes[1])
    r = receptive_radius("fullres_4blocks")
    for p in range(MAX_TURNS):
        first = passes[p, 0, :, 32 + r:64 - r, 16 + r:64 - r]
        second = passes[p, 1, :, r:32 - r, r:48 - r]
        np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-5)


def test_a_windows_values_do_not_depend_on_its_batch():
    """P07c/P08 of the fault sweep: with 2 threads the convolutions split a batch's work differently for
    each batch size, so a tile computed in a batch of 4 differed (in the last bits) from the same tile
    alone or in a batch of 3; shards, resumed runs and grown regions then wrote other bytes."""
    gen = tiny_generator()
    torch.set_num_threads(2)  # the suite's one thread hides it (the conftest fixture restores the count)
    x = np.random.default_rng(1).normal(size=(4, 2, 192, 192)).astype(np.float32)
    keys = [TileKey(4, 64 * i - 64, -64) for i in range(4)]
    for passes in (0, 2):
        alone = np.concatenate([gen.run(x[i:i + 1], keys[i:i + 1], passes) for i in range(4)], axis=1)
        for size in (2, 3, 4):
            together = gen.run(x[:size], keys[:size], passes)
            assert together.tobytes() == alone[:, :size].tobytes(), (passes, size)
