"""CycleGAN: real training steps on CPU (3 and 9 channels), the G-then-D order, losses, identity,
image pools, upstream key names and strict loading of upstream-layout checkpoints."""
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image

from engine.training import run_training
from models import create_model
from models.cycle_gan_model import resolve_lambda_identity
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError

TINY = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--crop_size", "32",
        "--load_size", "32"]


def build(tmp_path, *extra, options=TrainOptions, model="cycle_gan"):
    opt = options().parse(["--dataroot", str(tmp_path), "--model", model, "--checkpoints_dir",
                            str(tmp_path / "ck"), *TINY, *extra])
    instance = create_model(opt)
    instance.setup(opt)
    return instance


def batch(nc_a=3, nc_b=3, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(1, nc_a, size, size, generator=gen) * 2 - 1,
            "B": torch.rand(1, nc_b, size, size, generator=gen) * 2 - 1,
            "A_paths": ["a.png"], "B_paths": ["b.png"]}


def snapshot(net):
    return [p.detach().clone() for p in net.parameters()]


def changed(before, net):
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_steps_update_all_four_networks_with_upstream_losses(tmp_path):
    model = build(tmp_path)
    assert model.opt.no_dropout and model.opt.lambda_identity == 0.5 and model.opt.pool_size == 50
    before = {name: snapshot(net) for name, net in model.networks()}
    for seed in range(2):
        model.set_input(batch(seed=seed))
        model.optimize_parameters()
    assert all(changed(before[name], net) for name, net in model.networks())
    losses = model.get_current_losses()
    assert list(losses) == ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
    assert losses["cycle_A"] == pytest.approx(10 * (model.rec_A - model.real_A).abs().mean().item(), rel=1e-5)
    assert losses["idt_A"] == pytest.approx(10 * 0.5 * (model.idt_A - model.real_B).abs().mean().item(), rel=1e-5)
    assert model.non_finite_losses() == []
    assert len(model.fake_A_pool) == 2 and len(model.fake_B_pool) == 2
    assert list(model.get_current_visuals()) == ["real_A", "fake_B", "rec_A", "idt_B",
                                                 "real_B", "fake_A", "rec_B", "idt_A"]


def test_generator_step_comes_first_with_frozen_discriminators(tmp_path):
    model = build(tmp_path, "--pool_size", "0")
    events = []
    for name, optimizer in (("G", model.optimizer_G), ("D", model.optimizer_D)):
        original = optimizer.step

        def step(*args, _name=name, _original=original, **kwargs):
            frozen = not any(p.requires_grad for net in (model.netD_A, model.netD_B) for p in net.parameters())
            events.append((_name, frozen))
            return _original(*args, **kwargs)
        optimizer.step = step
    model.set_input(batch())
    model.optimize_parameters()
    assert events == [("G", True), ("D", False)]


def test_nine_channel_domain_a_trains_end_to_end_with_per_band_visuals(tmp_path):
    """A real run through train.py's loop: trainA holds B|C|D bands (9 channels), trainB one band."""
    rng = np.random.default_rng(0)
    for folder, width in (("trainA", 96), ("trainB", 32)):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (32, width, 3), dtype=np.uint8)).save(
                tmp_path / "data" / folder / f"{i}.png")
    opt = TrainOptions().parse(["--dataroot", str(tmp_path / "data"), "--name", "nine", "--checkpoints_dir",
                                str(tmp_path / "ck"), *TINY, "--input_nc", "9", "--n_epochs", "1",
                                "--n_epochs_decay", "0", "--num_threads", "0", "--display_freq", "2",
                                "--print_freq", "1"])
    assert run_training(opt) == {"epoch": 1, "total_iters": 2}
    folder = tmp_path / "ck" / "nine"
    for name in ("G_A", "G_B", "D_A", "D_B"):
        assert (folder / f"latest_net_{name}.pth").is_file()
    g_a = torch.load(folder / "latest_net_G_A.pth", weights_only=True)
    d_b = torch.load(folder / "latest_net_D_B.pth", weights_only=True)
    assert g_a["model.1.weight"].shape == (8, 9, 7, 7) and g_a["model.23.weight"].shape == (3, 8, 7, 7)
    assert d_b["model.0.weight"].shape == (8, 9, 4, 4)  # D_B judges domain A
    images = {p.name for p in (folder / "web" / "images").iterdir()}
    assert {"epoch001_real_A_p0.png", "epoch001_real_A_p2.png", "epoch001_fake_A_p1.png",
            "epoch001_fake_B.png", "epoch001_rec_B.png"} <= images
    assert not any("idt" in name for name in images)  # identity is off for 9 -> 3 channels
    log = (folder / "loss_log.txt").read_text()
    assert "idt_A: 0.000" in log and "cycle_A:" in log


def test_identity_loss_needs_equal_channel_counts():
    assert resolve_lambda_identity(None, 3, 3) == (0.5, "")
    weight, note = resolve_lambda_identity(None, 9, 3)
    assert weight == 0.0 and "identity loss off" in note
    assert resolve_lambda_identity(0.0, 9, 3) == (0.0, "")
    with pytest.raises(UserError, match="--lambda_identity 0.5 needs --input_nc == --output_nc"):
        resolve_lambda_identity(0.5, 9, 3)


def test_explicit_identity_with_different_channels_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="pass --lambda_identity 0"):
        build(tmp_path, "--input_nc", "9", "--lambda_identity", "0.5")


def upstream_resnet_keys(n_blocks, input_nc, output_nc, ngf, dropout=False):
    """Key -> shape of an upstream ResnetGenerator with instance norm, written from the documented
    layout (not from our code): stem conv at 1, downs at 4 and 7, blocks from 10, two
    ConvTranspose layers, the head conv after a ReflectionPad; conv_block convs at 1 and 5 (6 with dropout)."""
    keys = OrderedDict()
    keys["model.1.weight"], keys["model.1.bias"] = (ngf, input_nc, 7, 7), (ngf,)
    keys["model.4.weight"], keys["model.4.bias"] = (2 * ngf, ngf, 3, 3), (2 * ngf,)
    keys["model.7.weight"], keys["model.7.bias"] = (4 * ngf, 2 * ngf, 3, 3), (4 * ngf,)
    second = 6 if dropout else 5
    for block in range(10, 10 + n_blocks):
        for conv in (1, second):
            keys[f"model.{block}.conv_block.{conv}.weight"] = (4 * ngf, 4 * ngf, 3, 3)
            keys[f"model.{block}.conv_block.{conv}.bias"] = (4 * ngf,)
    up1 = 10 + n_blocks
    keys[f"model.{up1}.weight"], keys[f"model.{up1}.bias"] = (4 * ngf, 2 * ngf, 3, 3), (2 * ngf,)
    keys[f"model.{up1 + 3}.weight"], keys[f"model.{up1 + 3}.bias"] = (2 * ngf, ngf, 3, 3), (ngf,)
    keys[f"model.{up1 + 7}.weight"], keys[f"model.{up1 + 7}.bias"] = (output_nc, ngf, 7, 7), (output_nc,)
    return keys


def upstream_basic_d_keys(input_nc, ndf):
    """NLayerDiscriminator(n_layers=3) with instance norm: convs at 0, 2, 5, 8, 11, all with biases."""
    shapes = [(ndf, input_nc), (2 * ndf, ndf), (4 * ndf, 2 * ndf), (8 * ndf, 4 * ndf), (1, 8 * ndf)]
    keys = OrderedDict()
    for index, (out_c, in_c) in zip((0, 2, 5, 8, 11), shapes):
        keys[f"model.{index}.weight"], keys[f"model.{index}.bias"] = (out_c, in_c, 4, 4), (out_c,)
    return keys


def shapes(state):
    return OrderedDict((key, tuple(value.shape)) for key, value in state.items())


def test_state_dict_keys_are_upstream(tmp_path):
    model = build(tmp_path, "--netG", "resnet_9blocks", "--input_nc", "9", "--lambda_identity", "0")
    assert shapes(model.netG_A.state_dict()) == upstream_resnet_keys(9, 9, 3, 8)
    assert shapes(model.netG_B.state_dict()) == upstream_resnet_keys(9, 3, 9, 8)
    assert shapes(model.netD_A.state_dict()) == upstream_basic_d_keys(3, 8)
    assert shapes(model.netD_B.state_dict()) == upstream_basic_d_keys(9, 8)
    assert list(upstream_resnet_keys(9, 3, 3, 64))[-4:] == ["model.22.weight", "model.22.bias",
                                                             "model.26.weight", "model.26.bias"]


def write_upstream_checkpoint(path, key_shapes, seed):
    """A plain OrderedDict of tensors as upstream saves it, plus a stale InstanceNorm entry that
    pre-0.4 checkpoints carry (upstream's loader drops it)."""
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict((key, torch.randn(*shape, generator=gen) * 0.05) for key, shape in key_shapes.items())
    state["model.2.num_batches_tracked"] = torch.tensor(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_upstream_cyclegan_checkpoints_load_strictly(tmp_path):
    folder = tmp_path / "ck" / "upstream"
    saved = {"G_A": write_upstream_checkpoint(folder / "latest_net_G_A.pth", upstream_resnet_keys(6, 3, 3, 8), 1),
             "G_B": write_upstream_checkpoint(folder / "latest_net_G_B.pth", upstream_resnet_keys(6, 3, 3, 8), 2)}
    model = build(tmp_path, "--name", "upstream", options=TestOptions)
    assert model.model_names == ["G_A", "G_B"]
    for name in ("G_A", "G_B"):
        for key, value in getattr(model, "net" + name).state_dict().items():
            assert torch.equal(value, saved[name][key])
    one_way = build(tmp_path, "--name", "upstream", "--model_suffix", "_A", "--no_dropout",
                    options=TestOptions, model="test")
    assert torch.equal(one_way.netG_A.model[1].weight, saved["G_A"]["model.1.weight"])
    with pytest.raises(UserError, match="another architecture"):  # dropout moves conv_block.5 to .6
        build(tmp_path, "--name", "upstream", "--model_suffix", "_A", options=TestOptions, model="test")


def test_cycle_gan_also_trains_on_aligned_four_panel_images(tmp_path):
    """The seed's A|B|C|D files with --dataset_mode aligned --direction BtoA: B|C|D is domain A."""
    from data.aligned_dataset import AlignedDataset

    (tmp_path / "train").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 128, 3), dtype=np.uint8)).save(tmp_path / "train" / "0.png")
    model = build(tmp_path, "--dataset_mode", "aligned", "--direction", "BtoA", "--input_nc", "9")
    dataset = AlignedDataset(model.opt)
    model.set_visual_panels(dataset.panel_channels, dataset.panel_indices)
    item = dataset[0]
    model.set_input({key: value[None] if isinstance(value, torch.Tensor) else [value] for key, value in item.items()})
    model.optimize_parameters()
    assert torch.equal(model.real_A[0], item["B"]) and torch.equal(model.real_B[0], item["A"])
    assert list(model.get_current_visuals()) == [
        "real_A_p1", "real_A_p2", "real_A_p3", "fake_B", "rec_A_p1", "rec_A_p2", "rec_A_p3",
        "real_B", "fake_A_p1", "fake_A_p2", "fake_A_p3", "rec_B"]
