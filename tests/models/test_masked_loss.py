"""NaN masking in pix2pix's L1: pixels without data change neither the loss nor any gradient."""
import pytest
import torch

from models import create_model
from models.masked_loss import masked_l1
from options.train_options import TrainOptions

TINY = ["--netG", "unet_64", "--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--crop_size", "64"]


def build(tmp_path, *extra):
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "pix2pix", "--checkpoints_dir",
                                 str(tmp_path / "ck"), "--direction", "BtoA", "--input_nc", "2",
                                 "--output_nc", "1", *TINY, *extra])
    model = create_model(opt)
    model.setup(opt)
    return model


def fits_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(2, 1, 64, 64, generator=generator) * 2 - 1
    mask = torch.ones(2, 1, 64, 64, dtype=torch.bool)
    mask[0, :, 10:30, 5:50] = False
    mask[1, :, 40:, :] = False
    return {"A": target, "B": torch.rand(2, 2, 64, 64, generator=generator) * 2 - 1, "A_mask": mask,
            "B_mask": torch.ones(2, 2, 64, 64, dtype=torch.bool), "A_paths": ["a", "b"], "B_paths": ["a", "b"]}


def generator_step(model, batch):
    """The G loss and G's gradients for one batch, from the same dropout draw every time."""
    torch.manual_seed(123)
    model.set_input(batch)
    model.forward()
    model.optimizer_G.zero_grad()
    model.set_requires_grad(model.netD, False)
    model.backward_G()
    grads = [p.grad.detach().clone() for p in model.netG.parameters()]
    return model.loss_G_L1.detach().clone(), grads


def test_masked_l1_is_l1_on_the_valid_pixels():
    output, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    full = torch.ones(2, 3, 8, 8, dtype=torch.bool)
    assert masked_l1(output, target, full) == pytest.approx(torch.nn.L1Loss()(output, target).item(), rel=1e-6)
    mask = torch.rand(2, 3, 8, 8) > 0.3
    expected = (output - target).abs()[mask].mean()
    assert masked_l1(output, target, mask) == pytest.approx(expected.item(), rel=1e-6)
    assert masked_l1(output, target, torch.zeros_like(mask)).item() == 0.0


def test_nan_targets_under_the_mask_give_finite_loss_and_zero_gradient():
    output = torch.rand(1, 1, 4, 4, requires_grad=True)
    target = torch.rand(1, 1, 4, 4)
    target[0, 0, 0, :] = float("nan")
    mask = torch.isfinite(target)
    loss = masked_l1(output, target, mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(output.grad).all()
    assert (output.grad[0, 0, 0] == 0).all() and (output.grad[0, 0, 1:] != 0).all()


def test_masked_region_does_not_change_the_pix2pix_loss_or_gradient(tmp_path):
    model = build(tmp_path)
    batch = fits_batch()
    loss, grads = generator_step(model, batch)
    changed = dict(batch, A=batch["A"].clone())
    changed["A"][~batch["A_mask"]] = 5.0  # wild values where the cube had no data
    loss_changed, grads_changed = generator_step(model, changed)
    assert torch.equal(loss, loss_changed)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_changed))
    # control: the same change on valid pixels does move the loss and the gradient
    valid_changed = dict(batch, A=batch["A"].clone())
    valid_changed["A"][0, :, 35:45, 5:50] = 5.0
    loss_valid, grads_valid = generator_step(model, valid_changed)
    assert loss_valid > loss
    assert any(not torch.equal(a, b) for a, b in zip(grads, grads_valid))


def test_without_a_mask_the_loss_is_upstreams_l1(tmp_path):
    model = build(tmp_path)
    batch = {k: v for k, v in fits_batch().items() if not k.endswith("_mask")}
    generator_step(model, batch)
    assert model.target_mask is None
    expected = torch.nn.L1Loss()(model.fake_B, model.real_B) * 100.0
    assert torch.equal(model.loss_G_L1, expected)
    # a full mask gives the same value (up to summation order)
    generator_step(model, dict(batch, A_mask=torch.ones(2, 1, 64, 64, dtype=torch.bool)))
    assert model.loss_G_L1.item() == pytest.approx(expected.item(), rel=1e-5)
