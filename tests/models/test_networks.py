"""Networks: upstream's exact state_dict keys/shapes and parameter counts, forward shapes,
init, GAN losses, gradient penalty and LR schedules."""
import argparse

import pytest
import torch
from torch import nn

from models import networks
from util.errors import UserError


def shapes(net):
    return [(key, tuple(value.shape)) for key, value in net.state_dict().items()]


def million(net):
    return round(sum(p.numel() for p in net.parameters()) / 1e6, 3)


BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def bn(prefix, channels):
    return [(f"{prefix}.{k}", (channels,) if k != "num_batches_tracked" else ()) for k in BN_KEYS]


def expected_unet_256(input_nc=3, output_nc=3, ngf=64, batch_norm=True):
    """The key list of the facts file, written out level by level (outermost first)."""
    levels = [(ngf, ngf * 2), (ngf * 2, ngf * 4), (ngf * 4, ngf * 8)] + [(ngf * 8, ngf * 8)] * 3
    keys = [("model.model.0.weight", (ngf, input_nc, 4, 4))]
    if not batch_norm:
        keys.append(("model.model.0.bias", (ngf,)))
    tail = []
    prefix = "model.model.1"
    for outer, inner in levels:  # intermediate blocks: [1] conv, [2] norm, [3] sub, [5] convT, [6] norm
        keys.append((f"{prefix}.model.1.weight", (inner, outer, 4, 4)))
        keys += bn(f"{prefix}.model.2", inner) if batch_norm else [(f"{prefix}.model.1.bias", (inner,))]
        up = [(f"{prefix}.model.5.weight", (inner * 2, outer, 4, 4))]
        up += bn(f"{prefix}.model.6", outer) if batch_norm else [(f"{prefix}.model.5.bias", (outer,))]
        tail = up + tail
        prefix += ".model.3"
    inner = ngf * 8  # innermost: [1] conv, [3] convT, [4] norm, no down-norm
    keys.append((f"{prefix}.model.1.weight", (inner, inner, 4, 4)))
    if not batch_norm:
        keys.append((f"{prefix}.model.1.bias", (inner,)))
    keys.append((f"{prefix}.model.3.weight", (inner, inner, 4, 4)))
    keys += bn(f"{prefix}.model.4", inner) if batch_norm else [(f"{prefix}.model.3.bias", (inner,))]
    return keys + tail + [("model.model.3.weight", (ngf * 2, output_nc, 4, 4)), ("model.model.3.bias", (output_nc,))]


def test_unet_256_batch_norm_keys_shapes_and_count_match_upstream():
    net = networks.define_G(3, 3, 64, "unet_256", "batch", use_dropout=True)
    assert len(net.state_dict()) == 82
    assert shapes(net) == expected_unet_256()
    keys = list(net.state_dict())
    assert keys[:2] == ["model.model.0.weight", "model.model.1.model.1.weight"]
    assert "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight" in keys
    assert million(net) == 54.414


def test_unet_256_instance_norm_has_conv_biases_and_no_norm_entries():
    net = networks.define_G(3, 3, 64, "unet_256", "instance", use_dropout=True)
    assert len(net.state_dict()) == 32
    assert shapes(net) == expected_unet_256(batch_norm=False)
    assert million(net) == 54.410


@pytest.mark.parametrize("netG, norm, input_nc, count", [
    ("unet_256", "batch", 9, 54.420), ("unet_128", "batch", 3, 41.829), ("resnet_9blocks", "instance", 3, 11.378)])
def test_parameter_counts_match_upstream(netG, norm, input_nc, count):
    assert million(networks.define_G(input_nc, 3, 64, netG, norm, use_dropout=False)) == count


@pytest.mark.parametrize("dropout, convs", [(False, (1, 5)), (True, (1, 6))])
def test_resnet_9blocks_key_layout(dropout, convs):
    net = networks.define_G(3, 3, 64, "resnet_9blocks", "instance", use_dropout=dropout)
    expected = [("model.1.weight", (64, 3, 7, 7)), ("model.1.bias", (64,)),
                ("model.4.weight", (128, 64, 3, 3)), ("model.4.bias", (128,)),
                ("model.7.weight", (256, 128, 3, 3)), ("model.7.bias", (256,))]
    for block in range(10, 19):
        for conv in convs:
            expected += [(f"model.{block}.conv_block.{conv}.weight", (256, 256, 3, 3)),
                         (f"model.{block}.conv_block.{conv}.bias", (256,))]
    expected += [("model.19.weight", (256, 128, 3, 3)), ("model.19.bias", (128,)),
                 ("model.22.weight", (128, 64, 3, 3)), ("model.22.bias", (64,)),
                 ("model.26.weight", (3, 64, 7, 7)), ("model.26.bias", (3,))]
    assert shapes(net) == expected


def test_basic_discriminator_keys_for_batch_and_instance_norm():
    batch = networks.define_D(6, 64, "basic", norm="batch")
    expected = [("model.0.weight", (64, 6, 4, 4)), ("model.0.bias", (64,)), ("model.2.weight", (128, 64, 4, 4))]
    expected += bn("model.3", 128) + [("model.5.weight", (256, 128, 4, 4))] + bn("model.6", 256)
    expected += [("model.8.weight", (512, 256, 4, 4))] + bn("model.9", 512)
    expected += [("model.11.weight", (1, 512, 4, 4)), ("model.11.bias", (1,))]
    assert shapes(batch) == expected and len(expected) == 22
    assert million(batch) == 2.769
    instance = networks.define_D(6, 64, "basic", norm="instance")
    assert list(instance.state_dict()) == [f"model.{i}.{k}" for i in (0, 2, 5, 8, 11) for k in ("weight", "bias")]


def test_discriminator_output_sizes():
    basic = networks.define_D(12, 8, "basic", norm="batch")
    assert basic(torch.zeros(1, 12, 256, 256)).shape == (1, 1, 30, 30)  # 70x70 PatchGAN on 256
    deeper = networks.define_D(4, 8, "n_layers", n_layers_D=5, norm="instance")
    assert deeper(torch.zeros(1, 4, 256, 256)).shape[1] == 1
    pixel = networks.define_D(4, 8, "pixel", norm="batch")
    assert list(pixel.state_dict())[0] == "net.0.weight"
    assert pixel(torch.zeros(2, 4, 16, 16)).shape == (2, 1, 16, 16)


@pytest.mark.parametrize("netG, size", [("unet_64", 64), ("unet_128", 128), ("resnet_6blocks", 32)])
def test_generators_keep_size_and_map_channels(netG, size):
    net = networks.define_G(9, 3, 8, netG, "batch", use_dropout=True)
    out = net(torch.rand(2, 9, size, size) * 2 - 1)
    assert out.shape == (2, 3, size, size)
    assert out.abs().max() <= 1  # Tanh head


def test_norm_none_keeps_index_positions_without_biases():
    net = networks.define_D(6, 8, "basic", norm="none")
    assert isinstance(net.model[3], nn.Identity)
    assert list(net.state_dict()) == ["model.0.weight", "model.0.bias", "model.2.weight", "model.5.weight",
                                      "model.8.weight", "model.11.weight", "model.11.bias"]


def test_syncbatch_has_batch_norm_keys_and_runs_without_a_process_group():
    sync = networks.define_G(3, 3, 8, "unet_64", "syncbatch", use_dropout=True)
    assert shapes(sync) == shapes(networks.define_G(3, 3, 8, "unet_64", "batch", use_dropout=True))
    assert sync(torch.rand(2, 3, 64, 64)).shape == (2, 3, 64, 64)
    norm = sync.model.model[1].model[2]
    assert isinstance(norm, nn.SyncBatchNorm)
    assert norm.weight.std().item() > 0 and abs(norm.weight.mean().item() - 1.0) < 0.05  # N(1, gain), not ones


def test_unet_skip_carries_the_activated_input_as_upstream():
    """Upstream's in-place LeakyReLU makes the skip half of cat() equal LeakyReLU(x), not x."""
    block = networks.UnetSkipConnectionBlock(4, 8, innermost=True, norm_layer=networks.get_norm_layer("batch"))
    x = torch.randn(1, 4, 8, 8)
    expected = nn.functional.leaky_relu(x, 0.2)
    out = block(x.clone())
    assert torch.equal(out[:, :4], expected)


def test_init_weights_follow_the_chosen_scheme():
    torch.manual_seed(0)
    net = networks.define_G(3, 3, 64, "unet_128", "batch", init_gain=0.02)
    conv = net.model.model[0]
    assert abs(conv.weight.std().item() - 0.02) < 0.002
    norm = net.model.model[1].model[2]
    assert abs(norm.weight.mean().item() - 1.0) < 0.01 and torch.count_nonzero(norm.bias) == 0
    assert torch.count_nonzero(net.model.model[3].bias) == 0
    ortho = networks.define_D(3, 8, "pixel", norm="none", init_type="orthogonal", init_gain=1.0)
    w = ortho.net[0].weight.reshape(8, -1)
    assert torch.allclose(w.T @ w, torch.eye(3), atol=1e-5)
    with pytest.raises(UserError):
        networks.define_D(3, 8, "pixel", init_type="uniform")


def test_registry_errors_name_the_choices():
    with pytest.raises(UserError, match="unet_64"):
        networks.define_G(3, 3, 8, "unet_32", "batch")
    with pytest.raises(UserError, match="pixel"):
        networks.define_D(3, 8, "huge")
    with pytest.raises(UserError, match="instance"):
        networks.get_norm_layer("group")


def test_gan_losses():
    pred = torch.tensor([[0.3, -1.2], [2.0, 0.0]])
    vanilla = networks.GANLoss("vanilla")
    assert torch.allclose(vanilla(pred, True), nn.functional.binary_cross_entropy_with_logits(pred, torch.ones(2, 2)))
    assert torch.allclose(vanilla(pred, False), nn.functional.binary_cross_entropy_with_logits(pred, torch.zeros(2, 2)))
    lsgan = networks.GANLoss("lsgan")
    assert torch.allclose(lsgan(pred, True), ((pred - 1) ** 2).mean())
    wgan = networks.GANLoss("wgangp")
    assert torch.allclose(wgan(pred, True), -pred.mean()) and torch.allclose(wgan(pred, False), pred.mean())
    with pytest.raises(UserError):
        networks.GANLoss("hinge")


def test_gradient_penalty_of_a_linear_critic_is_exact():
    """D(x) = sum(w * x) has gradient w everywhere: penalty = 10 * (|w| - 1)^2."""
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False))
    with torch.no_grad():
        critic[1].weight.fill_(0.5)  # |w| = sqrt(12) / 2
    real, fake = torch.randn(3, 3, 2, 2), torch.randn(3, 3, 2, 2)
    penalty, grads = networks.cal_gradient_penalty(critic, real, fake, "cpu")
    assert torch.allclose(penalty, torch.tensor(10 * (12 ** 0.5 / 2 - 1) ** 2))
    assert grads.shape == (3, 12)
    assert networks.cal_gradient_penalty(critic, real, fake, "cpu", lambda_gp=0.0) == (0.0, None)


def schedule_opts(**kw):
    base = dict(lr_policy="linear", epoch_count=1, n_epochs=2, n_epochs_decay=2, lr_decay_iters=1)
    base.update(kw)
    return argparse.Namespace(**base)


def lrs_per_epoch(opt, epochs):
    """The LR used in each epoch with the scheduler stepped at the END of every epoch."""
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = networks.get_scheduler(optimizer, opt)
    used = []
    for _ in range(epochs):
        used.append(round(optimizer.param_groups[0]["lr"], 6))
        optimizer.step()
        scheduler.step(0.0) if opt.lr_policy == "plateau" else scheduler.step()
    return used


def test_lr_policies_stepped_at_the_end_of_each_epoch():
    # linear: n_epochs at full rate, then 1 - k/(n_decay + 1)
    assert lrs_per_epoch(schedule_opts(), 4) == [1.0, 1.0, round(2 / 3, 6), round(1 / 3, 6)]
    # a resumed run that starts at epoch 3 continues the same schedule
    assert lrs_per_epoch(schedule_opts(epoch_count=3), 2) == [round(2 / 3, 6), round(1 / 3, 6)]
    assert lrs_per_epoch(schedule_opts(lr_policy="step"), 3) == [1.0, 0.1, 0.01]
    assert lrs_per_epoch(schedule_opts(lr_policy="cosine"), 3) == [1.0, 0.5, 0.0]
    assert lrs_per_epoch(schedule_opts(lr_policy="plateau"), 8)[-1] == 0.2  # constant metric 0: one cut


def test_unknown_lr_policy_raises():
    with pytest.raises(UserError, match="lr_policy"):
        networks.get_scheduler(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0),
                               schedule_opts(lr_policy="exponential"))
