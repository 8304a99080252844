"""Generators for physical values: the full-resolution net, the linear head, the colour prior and the
regression model, through train.py and test.py to FITS in the band's unit."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.wcs import WCS

from data.fits_aligned_dataset import FitsAlignedDataset
from data.sky.fits_io import image_bytes, read_cube
from models import networks
from models.physical_networks import ColourPrior
from options.train_options import TrainOptions

REPO = Path(__file__).resolve().parents[2]


def write_cube(path: Path, planes: np.ndarray) -> None:
    """A cube as aladin_data.py --fits writes it: a TAN WCS, planes named survey1..3 in unit1..3."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.crpix, wcs.wcs.cdelt = [150.0, 2.0], [16.5, 16.5], [-1e-3, 1e-3]
    cards = [(f"PLNAM{i}", f"survey{i}:I", "") for i in (1, 2, 3)] + [(f"PLUNI{i}", f"unit{i}", "") for i in (1, 2, 3)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(planes, wcs, cards))


def star_field(rng, size=32, n_stars=12, brightest=400.0):
    """J, H as sky + Gaussian stars, Ks an exact linear combination of them: 3 + 2 J - 0.5 H."""
    rows, cols = np.mgrid[0:size, 0:size]
    j = 100.0 + rng.normal(0, 2.0, (size, size))
    h = 150.0 + rng.normal(0, 2.0, (size, size))
    for _ in range(n_stars):
        r, c = rng.uniform(3, size - 3, 2)
        psf = np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 2.0)
        flux = rng.uniform(20.0, brightest)
        j += flux * psf
        h += 1.3 * flux * psf
    k = 3.0 + 2.0 * j - 0.5 * h
    return np.stack([k, j, h]).astype(np.float32)


@pytest.fixture
def linear_sky(tmp_path):
    rng = np.random.default_rng(0)
    for phase, count in (("train", 6), ("test", 2)):
        for i in range(count):
            write_cube(tmp_path / phase / f"c{i}.fits", star_field(rng))
    return tmp_path


def train_options(root, *extra):
    return TrainOptions().parse(["--dataroot", str(root), "--model", "regression", "--checkpoints_dir",
                                 str(root / "ck"), "--name", "run", "--gpu_ids", "-1", "--input_nc", "2",
                                 "--crop_size", "32", "--num_threads", "0", "--prior", "linear_fit", *extra])


def prior_module(dataset, netG="fullres_4blocks"):
    """A ColourPrior around a generator whose correction is exactly zero, with the dataset's fit."""
    net = networks.define_G(2, 1, 8, netG, "none", False, output_head="linear")
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    prior = ColourPrior(net, 2, 1)
    prior.set_fit(dataset.describe().prior)
    return prior.eval()


def test_the_colour_prior_is_exact_on_data_with_a_known_linear_answer(linear_sky):
    dataset = FitsAlignedDataset(train_options(linear_sky, "--preprocess", "none", "--no_flip"))
    fit = dataset.describe().prior
    assert fit["coefficients"][0] == pytest.approx([2.0, -0.5], abs=1e-4)
    assert fit["intercept"][0] == pytest.approx(3.0, abs=0.05)
    prior = prior_module(dataset)
    for index in range(len(dataset)):
        item = dataset[index]
        normalised = prior(item["B"][None])[0, 0].detach().numpy()
        generated = dataset.norm.plane(0).invert(normalised)
        real = read_cube(dataset.cube_paths[index]).planes[0][::-1]  # picture orientation
        np.testing.assert_allclose(generated, real, rtol=2e-5, atol=2e-3)


def test_a_star_brighter_than_the_training_maximum_comes_out_brighter(linear_sky):
    """No ceiling: with the linear head and the prior, a star 3x the brightest training star comes out
    above the training maximum; upstream's Tanh head can never pass the top of the normalised range."""
    dataset = FitsAlignedDataset(train_options(linear_sky, "--preprocess", "none"))
    train_max = dataset.norm.plane(0).high  # cut 100 = the training maximum of Ks
    cube = star_field(np.random.default_rng(5), brightest=400.0)
    rows, cols = np.mgrid[0:32, 0:32]
    psf = np.exp(-((rows - 16) ** 2 + (cols - 16) ** 2) / 2.0)
    cube[1] += 3 * 400.0 * psf
    cube[2] += 3 * 1.3 * 400.0 * psf
    inputs = torch.from_numpy(np.stack([dataset.norm.plane(p).normalize(cube[p]) for p in (1, 2)]))[None]
    linear = dataset.norm.plane(0).invert(prior_module(dataset)(inputs)[0, 0].detach().numpy())
    assert linear.max() > 1.5 * train_max
    tanh_net = networks.define_G(2, 1, 8, "fullres_4blocks", "none", False, output_head="tanh").eval()
    capped = dataset.norm.plane(0).invert(tanh_net(inputs * 100)[0, 0].detach().numpy())
    assert capped.max() <= train_max * (1 + 1e-5)


@pytest.mark.parametrize("netG", ["fullres_4blocks", "unet_64", "resnet_6blocks"])
def test_the_linear_head_keeps_the_checkpoint_keys_of_the_tanh_head(netG):
    tanh = networks.define_G(2, 1, 8, netG, "batch", False)
    linear = networks.define_G(2, 1, 8, netG, "batch", False, output_head="linear")
    assert list(tanh.state_dict()) == list(linear.state_dict())
    assert any(isinstance(m, torch.nn.Tanh) for m in tanh.modules())
    assert not any(isinstance(m, torch.nn.Tanh) for m in linear.modules())


def run(script, *args, cwd):
    result = subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.parametrize("model_args, train_only", [
    (["--model", "regression", "--prior", "linear_fit"], []),
    (["--model", "regression", "--netG", "fullres_6blocks", "--ngf", "8"], ["--lambda_L1", "2"]),
    (["--model", "pix2pix", "--netG", "fullres_4blocks", "--ngf", "8", "--ndf", "8", "--norm", "none", "--no_dropout",
      "--output_head", "linear"], ["--lambda_GAN", "0"]),
], ids=["regression_prior", "regression_fullres6", "pix2pix_fullres_linear_noGAN"])
def test_each_new_generator_trains_and_writes_fits_in_the_band_unit(linear_sky, model_args, train_only):
    common = ["--dataroot", linear_sky, "--name", "run", "--checkpoints_dir", linear_sky / "ck", "--gpu_ids", "-1",
              "--dataset_mode", "fits_aligned", "--input_planes", "1,2", "--input_nc", "2", *model_args]
    run("train.py", *common, *train_only, "--crop_size", "32", "--batch_size", "2", "--n_epochs", "1", "--n_epochs_decay", "0",
        "--num_threads", "0", "--display_id", "0", "--no_html", cwd=linear_sky)
    run("test.py", *common, "--results_dir", linear_sky / "res", "--preprocess", "none", "--eval", cwd=linear_sky)
    written = sorted((linear_sky / "res" / "run" / "test_latest" / "fits").glob("*fake*.fits"))
    assert len(written) == 2
    with fits.open(written[0]) as hdul:
        header, values = hdul[0].header, hdul[0].data
    assert header["BUNIT"] == "unit1" and values.shape[-2:] == (32, 32) and np.isfinite(values).all()
    real = read_cube(str(linear_sky / "test" / "c0.fits")).planes[0]
    assert abs(float(np.median(values)) - float(np.median(real))) < 0.5 * float(np.ptp(real))


def test_the_normalised_prior_is_the_least_squares_fit_of_the_normalised_bands(linear_sky):
    """--prior normalised_fit: the fit is done on the normalised values (for asinh: log-like, a colour relation
    in magnitudes) and applied to the network's normalised inputs as they are."""
    dataset = FitsAlignedDataset(train_options(linear_sky, "--preprocess", "none", "--no_flip",
                                               "--prior", "normalised_fit"))
    fit = dataset.describe().prior
    assert fit["space"] == "normalised"
    cubes = [read_cube(p).planes for p in dataset.cube_paths]
    values = np.concatenate([np.stack([dataset.norm.plane(p).normalize(c[p]).ravel() for p in (0, 1, 2)], axis=1)
                             for c in cubes]).astype(np.float64)
    expected, *_ = np.linalg.lstsq(np.column_stack([values[:, 1:], np.ones(len(values))]), values[:, 0], rcond=None)
    np.testing.assert_allclose(fit["coefficients"][0] + [fit["intercept"][0]], expected, rtol=1e-4, atol=1e-5)
    prior = prior_module(dataset)
    x = dataset[0]["B"][None]
    manual = fit["intercept"][0] + sum(c * x[0, i].numpy() for i, c in enumerate(fit["coefficients"][0]))
    np.testing.assert_allclose(prior(x)[0, 0].detach().numpy(), manual, rtol=1e-5, atol=1e-5)


def regression_argv(root, name, *extra):
    return ["--dataroot", str(root), "--name", name, "--checkpoints_dir", str(root / "ck"), "--model", "regression",
            "--input_planes", "1,2", "--input_nc", "2", "--prior", "normalised_fit", "--ngf", "8", "--crop_size", "16",
            "--batch_size", "2", "--n_epochs", "1", "--n_epochs_decay", "1", "--save_latest_freq", "4",
            "--save_epoch_freq", "1", "--print_freq", "2", "--display_freq", "1000", "--no_html", "--gpu_ids", "-1",
            "--num_threads", "0", "--seed", "5", *extra]


def test_the_regression_recipe_resumes_bit_for_bit(linear_sky):
    """Killed mid-epoch and resumed: the same weights, prior buffers and Adam state as a run straight through."""
    from engine.training import run_training

    straight = run_training(TrainOptions().parse(regression_argv(linear_sky, "straight")))
    run_training(TrainOptions().parse(regression_argv(linear_sky, "resumed")), stop_after_iters=10)
    resumed = run_training(TrainOptions().parse(regression_argv(linear_sky, "resumed", "--continue_train")))
    assert straight == resumed == {"epoch": 2, "total_iters": 12}
    a = torch.load(linear_sky / "ck" / "straight" / "latest_net_G.pth", weights_only=True)
    b = torch.load(linear_sky / "ck" / "resumed" / "latest_net_G.pth", weights_only=True)
    assert list(a) == list(b) and "coefficients" in a and float(a["normalised_space"]) == 1.0
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.timeout(240)
def test_the_regression_recipe_trains_under_torchrun(linear_sky):
    """2 CPU ranks (gloo): one model, the same prior on both ranks, checked identical at the save."""
    import os
    import re

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(REPO / "train.py"), *regression_argv(linear_sky, "ddp", "--n_epochs_decay", "0")],
                         capture_output=True, text=True, timeout=200, env=env, cwd=linear_sky)
    assert ddp.returncode == 0, ddp.stdout[-2000:] + ddp.stderr[-3000:]
    assert re.findall(r"weights identical on all 2 ranks", ddp.stdout)
    weights = torch.load(linear_sky / "ck" / "ddp" / "latest_net_G.pth", weights_only=True)
    assert float(weights["normalised_space"]) == 1.0 and weights["coefficients"].abs().sum() > 0
