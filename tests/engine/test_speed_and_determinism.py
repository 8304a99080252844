"""--deterministic, --amp, --channels_last and --compile on real short CPU trainings."""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.distributed import state_digest


@pytest.fixture(autouse=True)
def one_thread_and_restored_determinism():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture
def data(tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "train").mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(4):  # A|B|C|D, 72 px panels: random 64 px crops and flips vary per run unless seeded
        Image.fromarray(rng.integers(0, 256, (72, 288, 3), dtype=np.uint8)).save(root / "train" / f"{i}.png")
    return root


def train(data: Path, name: str, *extra: str) -> Path:
    from options.train_options import TrainOptions
    from engine.training import run_training

    argv = ["--dataroot", str(data), "--name", name, "--checkpoints_dir", str(data.parent / "ck"),
            "--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9", "--netG", "unet_64", "--ngf", "8",
            "--ndf", "8", "--load_size", "72", "--crop_size", "64", "--batch_size", "2", "--n_epochs", "1",
            "--n_epochs_decay", "1", "--gpu_ids", "-1", "--print_freq", "4", "--display_freq", "100", *extra]
    run_training(TrainOptions().parse(argv))
    return data.parent / "ck" / name


def weights(folder: Path) -> dict:
    return {n: torch.load(folder / f"latest_net_{n}.pth", weights_only=True) for n in ("G", "D")}


def test_deterministic_runs_are_bit_identical_with_workers_crops_flips_and_dropout(data):
    # shuffled data, random crops and flips decoded in a worker, dropout in G, batch norm
    first = weights(train(data, "one", "--deterministic", "--num_threads", "1"))
    second = weights(train(data, "two", "--deterministic", "--num_threads", "1"))
    assert torch.are_deterministic_algorithms_enabled()
    assert state_digest(first) == state_digest(second)
    other_seed = weights(train(data, "three", "--deterministic", "--seed", "1", "--num_threads", "1"))
    assert state_digest(other_seed) != state_digest(first)  # the seed, not luck, made them equal


def test_worker_count_does_not_change_the_augmentations(data):
    # items reseed from (epoch seed, index): 1 worker and 2 workers decode the same crops/flips
    one = weights(train(data, "w1", "--seed", "4", "--num_threads", "1"))
    two = weights(train(data, "w2", "--seed", "4", "--num_threads", "2"))
    assert state_digest(one) == state_digest(two)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_and_fp16_scaler_state_resumes(data, amp):
    from models import create_model
    from options.train_options import TrainOptions

    folder = train(data, amp, "--amp", amp, "--num_threads", "0", "--serial_batches")
    saved = weights(folder)
    assert all(v.dtype == torch.float32 for v in saved["G"].values() if v.is_floating_point())  # fp32 master weights
    state = torch.load(folder / "latest_train_state.pth", weights_only=True)
    scaler = state["extra"]["grad_scaler"]
    if amp == "bf16":
        assert scaler == {}  # bf16 needs no loss scaling
        return
    # the loss scale starts at 2**16 and halves on each overflowing step: a power of two it reached
    assert scaler["scale"] in {2.0 ** k for k in range(17)} and 0 <= scaler["_growth_tracker"] <= 4
    opt = TrainOptions().parse(["--dataroot", str(data), "--name", amp, "--checkpoints_dir", str(folder.parent),
                                 "--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9", "--netG", "unet_64",
                                 "--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--amp", "fp16", "--continue_train"])
    model = create_model(opt)
    model.setup(opt)
    assert model.precision.scaler.state_dict() == scaler


def test_bf16_forward_passes_run_in_bfloat16(data):
    from models import create_model
    from options.train_options import TrainOptions

    opt = TrainOptions().parse(["--dataroot", str(data), "--name", "x", "--checkpoints_dir", str(data.parent / "ck"),
                                 "--model", "pix2pix", "--netG", "unet_64", "--ngf", "8", "--ndf", "8",
                                 "--gpu_ids", "-1", "--amp", "bf16"])
    model = create_model(opt)
    model.setup(opt)
    batch = {"A": torch.rand(1, 3, 64, 64) * 2 - 1, "B": torch.rand(1, 3, 64, 64) * 2 - 1,
             "A_paths": ["a"], "B_paths": ["a"]}
    model.set_input(batch)
    model.optimize_parameters()
    assert model.fake_B.dtype == torch.bfloat16
    assert model.netG.model.model[0].weight.grad.dtype == torch.float32
    assert not model.non_finite_losses()


def test_channels_last_trains_and_saves_upstream_layout(data):
    from models import networks

    folder = train(data, "nhwc", "--channels_last", "--num_threads", "0")
    plain = networks.define_G(9, 3, 8, "unet_64", "batch", True, "normal", 0.02)
    plain.load_state_dict(weights(folder)["G"], strict=True)


def test_compiled_networks_save_upstream_keys(tmp_path):
    from models import networks
    from models.checkpoint import save_network

    net = networks.define_G(3, 3, 8, "unet_64", "batch", True, "normal", 0.02)
    compiled = torch.compile(net)  # lazy: nothing is compiled until called
    assert all(k.startswith("_orig_mod.") for k in compiled.state_dict())
    save_network(compiled, tmp_path / "latest_net_G.pth")
    assert list(torch.load(tmp_path / "latest_net_G.pth", weights_only=True)) == list(net.state_dict())


def test_compile_falls_back_with_one_warning_when_the_toolchain_fails(monkeypatch):
    from engine import compile as compile_module

    monkeypatch.setattr(compile_module, "compiler_problem", lambda device_type: "InvalidCxxCompiler: no compiler")
    net = torch.nn.Conv2d(3, 3, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = compile_module.compile_network(net, torch.device("cpu"))
    assert result is net
    assert len(caught) == 1 and "--compile ignored" in str(caught[0].message)
    assert "InvalidCxxCompiler" in str(caught[0].message)


def test_fp16_resume_mid_epoch_is_bit_identical_to_a_straight_run(data):
    # the loss scale (halved on overflows, grown after clean steps) must survive the restart
    flags = ("--amp", "fp16", "--seed", "2", "--num_threads", "1", "--save_latest_freq", "4")
    from options.train_options import TrainOptions
    from engine.training import run_training

    straight = weights(train(data, "straight", *flags))
    argv = ["--dataroot", str(data), "--name", "resumed", "--checkpoints_dir", str(data.parent / "ck"),
            "--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9", "--netG", "unet_64", "--ngf", "8",
            "--ndf", "8", "--load_size", "72", "--crop_size", "64", "--batch_size", "2", "--n_epochs", "1",
            "--n_epochs_decay", "1", "--gpu_ids", "-1", "--print_freq", "4", "--display_freq", "100", *flags]
    run_training(TrainOptions().parse(argv), stop_after_iters=6)  # killed at 6; the last save (4) was in the loop
    saved = torch.load(data.parent / "ck" / "resumed" / "latest_train_state.pth", weights_only=True)
    assert saved["extra"]["grad_scaler"]["scale"] < 65536.0  # overflows happened before the save: state matters
    run_training(TrainOptions().parse(argv + ["--continue_train"]))
    assert state_digest(weights(data.parent / "ck" / "resumed")) == state_digest(straight)
