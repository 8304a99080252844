"""Colorization (Lab data, pix2pix on L -> ab, RGB visuals) and the template model/dataset."""
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color

from data import create_dataset
from data.colorization_dataset import ColorizationDataset
from data.template_dataset import TemplateDataset
from engine.inference import run_test
from engine.training import run_training
from models import create_model
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError

TINY = ["--netG", "unet_64", "--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--crop_size", "64",
        "--load_size", "64", "--num_threads", "0"]


def write_photos(folder, n=2, size=64, seed=0):
    """Smooth colour gradients: realistic enough for Lab, and in gamut."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        pixels = np.stack([a * x, b * y, c * (1 - x * y)], axis=2)
        Image.fromarray((pixels * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def test_colorization_items_are_scaled_lab(tmp_path):
    write_photos(tmp_path / "train")
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "colorization", "--no_flip", *TINY])
    assert (opt.dataset_mode, opt.input_nc, opt.output_nc, opt.netG) == ("colorization", 1, 2, "unet_64")
    item = ColorizationDataset(opt)[0]
    lab = color.rgb2lab(np.asarray(Image.open(tmp_path / "train" / "0.png").convert("RGB")))
    assert item["A"].shape == (1, 64, 64) and item["B"].shape == (2, 64, 64)
    assert np.allclose(item["A"][0].numpy(), lab[:, :, 0] / 50 - 1, atol=1e-5)
    assert np.allclose(item["B"].permute(1, 2, 0).numpy(), lab[:, :, 1:] / 110, atol=1e-5)


def test_colorization_trains_and_shows_rgb_visuals(tmp_path):
    write_photos(tmp_path / "data" / "train")
    opt = TrainOptions().parse(["--dataroot", str(tmp_path / "data"), "--model", "colorization", "--name", "col",
                                "--checkpoints_dir", str(tmp_path / "ck"), "--n_epochs", "1", "--n_epochs_decay", "0",
                                "--display_freq", "2", "--print_freq", "1", "--no_flip", "--serial_batches", *TINY])
    assert run_training(opt)["total_iters"] == 2
    state = torch.load(tmp_path / "ck" / "col" / "latest_net_D.pth", weights_only=True)
    assert state["model.0.weight"].shape[1] == 3  # conditional D on L + ab
    images = {p.name for p in (tmp_path / "ck" / "col" / "web" / "images").iterdir()}
    assert images == {"epoch001_real_A.png", "epoch001_real_B_rgb.png", "epoch001_fake_B_rgb.png"}
    shown = np.asarray(Image.open(tmp_path / "ck" / "col" / "web" / "images" / "epoch001_real_B_rgb.png"))
    original = np.asarray(Image.open(tmp_path / "data" / "train" / "1.png"))  # the last step's image
    assert np.abs(shown.astype(int) - original.astype(int)).max() <= 2  # L + true ab gives the photo back


def test_colorization_refuses_other_channel_counts(tmp_path):
    write_photos(tmp_path / "train", n=1)
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "colorization", *TINY, "--input_nc", "3"])
    with pytest.raises(UserError, match="L \\(1 channel\\) -> ab"):
        create_dataset(opt)


def test_template_model_regresses_a_to_b_on_aligned_data(tmp_path):
    folder = tmp_path / "data" / "train"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)).save(folder / "0.png")
    opt = TrainOptions().parse(["--dataroot", str(tmp_path / "data"), "--model", "template", "--name", "tpl",
                                "--checkpoints_dir", str(tmp_path / "ck"), "--n_epochs", "2", "--n_epochs_decay", "0",
                                "--lambda_regression", "3", "--print_freq", "1", "--display_freq", "100", *TINY])
    assert opt.dataset_mode == "aligned"
    run_training(opt)
    model = create_model(opt)
    model.setup(opt)
    model.set_input(next(iter(create_dataset(opt))))
    model.optimize_parameters()
    assert model.get_current_losses()["G"] == pytest.approx(
        3 * (model.output - model.data_B).abs().mean().item(), rel=1e-5)
    test_opt = TestOptions().parse(["--dataroot", str(tmp_path / "data"), "--phase", "train", "--model", "template",
                                    "--dataset_mode", "aligned", "--name", "tpl", "--checkpoints_dir",
                                    str(tmp_path / "ck"), "--results_dir", str(tmp_path / "res"), *TINY])
    run_test(test_opt)
    assert (tmp_path / "res" / "tpl" / "train_latest" / "images" / "0_output.png").is_file()


def test_template_dataset_gives_noisy_a_and_clean_b(tmp_path):
    write_photos(tmp_path / "train", n=12)
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "template", "--dataset_mode", "template",
                                 "--new_dataset_option", "0.3", *TINY])
    assert opt.max_dataset_size == 10
    dataset = TemplateDataset(opt)
    assert len(dataset) == 10
    torch.manual_seed(0)
    item = dataset[0]
    noise = (item["A"] - item["B"])
    assert 0.2 < noise.std().item() < 0.35 and abs(noise.mean().item()) < 0.05
    assert item["B"].min() >= -1 and item["A"].max() <= 1


@pytest.mark.parametrize("amp, dtype", [("none", torch.float32), ("bf16", torch.bfloat16)])
def test_template_steps_under_the_amp_autocast(tmp_path, amp, dtype):
    """A model copied from the template inherits --amp: its forward and loss run under autocast."""
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "template", "--dataset_mode", "aligned",
                                "--checkpoints_dir", str(tmp_path / "ck"), "--amp", amp, *TINY])
    model = create_model(opt)
    model.setup(opt)
    seen = []
    model.netG.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    model.set_input({"A": torch.rand(1, 3, 64, 64) * 2 - 1, "B": torch.rand(1, 3, 64, 64) * 2 - 1,
                     "A_paths": ["a"], "B_paths": ["a"]})
    before = model.netG.model.model[0].weight.detach().clone()
    model.optimize_parameters()
    assert seen == [dtype] and model.loss_G.dtype == torch.float32  # L1 runs in fp32 under autocast
    assert not torch.equal(model.netG.model.model[0].weight, before)  # the step went through precision.step
