"""Pix2Pix and test models: direction handling, the D-then-G step, losses, per-panel visuals,
input checks at the data/model boundary and the model registry."""
import pytest
import torch

from models import create_model
import models
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError

TINY = ["--netG", "unet_64", "--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--crop_size", "64"]


def build(tmp_path, *extra, options=TrainOptions, model="pix2pix"):
    opt = options().parse(["--dataroot", str(tmp_path), "--model", model, "--checkpoints_dir",
                            str(tmp_path / "ck"), *TINY, *extra])
    instance = create_model(opt)
    instance.setup(opt)
    return instance


def four_panel_batch(size=64):
    """BtoA batch of an A|B|C|D image: A = target (3 ch), B = three input panels (9 ch)."""
    return {"A": torch.rand(1, 3, size, size) * 2 - 1, "B": torch.rand(1, 9, size, size) * 2 - 1,
            "A_paths": ["x_A.png"], "B_paths": ["x_B.png"]}


def test_btoa_feeds_b_to_the_generator_and_targets_a(tmp_path):
    model = build(tmp_path, "--direction", "BtoA", "--input_nc", "9")
    data = four_panel_batch()
    model.set_input(data)
    assert torch.equal(model.real_A, data["B"]) and torch.equal(model.real_B, data["A"])
    assert model.get_image_paths() == ["x_B.png"]
    assert model.netD.model[0].in_channels == 12  # conditional D sees cat(input, output)


def test_a_training_step_updates_both_networks_and_reports_upstream_losses(tmp_path):
    model = build(tmp_path, "--direction", "BtoA", "--input_nc", "9")
    g_before = [p.detach().clone() for p in model.netG.parameters()]
    d_before = [p.detach().clone() for p in model.netD.parameters()]
    model.set_input(four_panel_batch())
    model.optimize_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(g_before, model.netG.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, model.netD.parameters()))
    losses = model.get_current_losses()
    assert list(losses) == ["G_GAN", "G_L1", "D_real", "D_fake"]
    assert losses["G_L1"] == pytest.approx(100 * (model.fake_B - model.real_B).abs().mean().item(), rel=1e-5)
    assert model.non_finite_losses() == []


def test_generator_step_sees_a_frozen_discriminator(tmp_path):
    model = build(tmp_path)
    model.set_input({**four_panel_batch(), "B": torch.rand(1, 3, 64, 64)})
    model.optimize_parameters()
    assert all(not p.requires_grad for p in model.netD.parameters())
    assert all(p.grad is not None for p in model.netD.parameters())  # from its own step only


def test_wgangp_adds_the_gradient_penalty(tmp_path):
    model = build(tmp_path, "--gan_mode", "wgangp")
    model.set_input({**four_panel_batch(), "B": torch.rand(1, 3, 64, 64)})
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert "D_GP" in losses and losses["D_GP"] > 0


def test_non_finite_losses_are_named(tmp_path):
    model = build(tmp_path, "--lambda_L1", "inf")
    model.set_input({**four_panel_batch(), "B": torch.rand(1, 3, 64, 64)})
    model.optimize_parameters()
    assert "G_L1" in model.non_finite_losses()


def test_each_input_panel_becomes_its_own_visual(tmp_path):
    model = build(tmp_path, "--direction", "BtoA", "--input_nc", "9")
    model.set_visual_panels(channels=([3], [3, 3, 3]), indices=([0], [1, 2, 3]))
    data = four_panel_batch()
    model.set_input(data)
    model.test()
    visuals = model.get_current_visuals()
    assert list(visuals) == ["real_A_p1", "real_A_p2", "real_A_p3", "fake_B", "real_B"]
    assert torch.equal(visuals["real_A_p2"], data["B"][:, 3:6])
    assert visuals["fake_B"].shape == (1, 3, 64, 64)


def test_panel_labels_follow_the_chosen_panels_and_direction(tmp_path):
    # AtoB: panel 0 is the input; the 2 chosen grey panels (1 and 3) are the output side
    model = build(tmp_path, "--output_nc", "2")
    model.set_visual_panels(channels=([3], [1, 1]), indices=([0], [1, 3]))
    model.set_input({"A": torch.rand(1, 3, 64, 64), "B": torch.rand(1, 2, 64, 64), "A_paths": ["p"], "B_paths": ["p"]})
    model.test()
    assert list(model.get_current_visuals()) == ["real_A", "fake_B_p1", "fake_B_p3", "real_B_p1", "real_B_p3"]


def test_channel_mismatch_at_the_model_boundary_is_a_user_error(tmp_path):
    model = build(tmp_path, "--direction", "BtoA", "--input_nc", "9")
    with pytest.raises(UserError, match="has 6 channels but the network expects 9"):
        model.set_input({**four_panel_batch(), "B": torch.rand(1, 6, 64, 64)})
    with pytest.raises(UserError, match="multiples of 64"):
        model.set_input({"A": torch.rand(1, 3, 48, 48), "B": torch.rand(1, 9, 48, 48), "A_paths": [""], "B_paths": [""]})


def test_test_model_is_test_only_and_loads_the_suffixed_generator(tmp_path):
    trained = build(tmp_path)
    folder = tmp_path / "ck" / "experiment_name"
    trained.save_networks("latest")
    (folder / "latest_net_G.pth").rename(folder / "latest_net_G_A.pth")
    model = build(tmp_path, "--model_suffix", "_A", "--norm", "batch", options=TestOptions, model="test")
    assert model.model_names == ["G_A"] and model.netG is model.netG_A
    model.set_visual_panels(channels=([3, 3, 3], []), indices=([1, 2, 3], []))
    model.set_input({"A": torch.rand(1, 3, 64, 64), "A_paths": ["x.png"]})
    model.test()
    assert list(model.get_current_visuals()) == ["real", "fake"]
    with pytest.raises(UserError, match="test.py only"):
        build(tmp_path, model="test")


def test_registry_is_case_and_underscore_insensitive():
    assert models.find_model_using_name("Pix2Pix").__name__ == "Pix2PixModel"
    assert models.find_model_using_name("pix_2_pix").__name__ == "Pix2PixModel"
    with pytest.raises(UserError, match=r"unknown --model 'no_such' \(available: .*pix2pix.*, test"):
        models.find_model_using_name("no_such")
