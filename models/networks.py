"""Generators, discriminators, GAN losses, weight init and LR schedules of the Pix2Pix framework.

Attribute names (`model`, nested `.model` Sequentials, `conv_block`, `net`) and the index
positions of parameterless layers reproduce upstream's layout exactly, so upstream
checkpoints load with strict=True. Changing the order of any layer list breaks that.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import nn
from torch.optim import lr_scheduler

from models.physical_networks import FullResGenerator, fullres_blocks, use_output_head
from util.errors import UserError

NormFactory = Callable[[int], nn.Module]

GENERATORS = ("unet_256", "unet_128", "unet_64", "resnet_9blocks", "resnet_6blocks",
              "fullres_4blocks", "fullres_6blocks", "fullres_8blocks")
DISCRIMINATORS = ("basic", "n_layers", "pixel")
NORMS = ("batch", "instance", "syncbatch", "none")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")
GAN_MODES = ("vanilla", "lsgan", "wgangp")
LR_POLICIES = ("linear", "step", "plateau", "cosine")
UNET_DOWNSAMPLINGS = {"unet_256": 8, "unet_128": 7, "unet_64": 6}


# --------------------------------------------------------------------------- norms and init
def get_norm_layer(norm_type: str = "instance") -> NormFactory:
    """A factory `f(num_features) -> norm module`; 'none' gives a parameterless Identity that
    still occupies its index position (so key numbering matches upstream)."""
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "syncbatch":
        return functools.partial(nn.SyncBatchNorm, affine=True, track_running_stats=True)
    if norm_type == "none":
        return lambda num_features: nn.Identity()
    raise UserError(f"unknown --norm {norm_type!r} (choose from {', '.join(NORMS)})")


def conv_bias_for(norm_layer: NormFactory) -> bool:
    """Upstream gives convs before a norm a bias only with InstanceNorm (affine=False has no
    shift of its own). Kept as is, also for 'none', because it decides the checkpoint keys."""
    func = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return func is nn.InstanceNorm2d


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> None:
    """Conv/Linear weights from the chosen scheme, biases 0; batch-norm scale ~ N(1, gain).

    Unlike upstream, SyncBatchNorm gets the batch-norm init too (upstream matched only the
    class name 'BatchNorm2d', which silently left SyncBatchNorm at PyTorch's default)."""
    if init_type not in INIT_TYPES:
        raise UserError(f"unknown --init_type {init_type!r} (choose from {', '.join(INIT_TYPES)})")

    def init_module(module: nn.Module) -> None:
        classname = module.__class__.__name__
        weight = getattr(module, "weight", None)
        if weight is not None and ("Conv" in classname or "Linear" in classname):
            if init_type == "normal":
                nn.init.normal_(weight, 0.0, init_gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(weight, gain=init_gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight, gain=init_gain)
            if getattr(module, "bias", None) is not None:
                nn.init.constant_(module.bias, 0.0)
        elif isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)) and weight is not None:
            nn.init.normal_(weight, 1.0, init_gain)
            nn.init.constant_(module.bias, 0.0)

    with torch.no_grad():
        net.apply(init_module)


# --------------------------------------------------------------------------- generators
class ResnetBlock(nn.Module):
    """x + conv_block(x); conv_block = pad, conv3, norm, ReLU, [dropout], pad, conv3, norm."""

    def __init__(self, dim: int, padding_type: str, norm_layer: NormFactory, use_dropout: bool, use_bias: bool):
        super().__init__()
        self.conv_block = nn.Sequential(*self._layers(dim, padding_type, norm_layer, use_dropout, use_bias))

    @staticmethod
    def _layers(dim, padding_type, norm_layer, use_dropout, use_bias) -> list[nn.Module]:
        pads = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": None}
        if padding_type not in pads:
            raise ValueError(f"padding {padding_type!r} is not implemented")
        pad_layer = pads[padding_type]
        conv_padding = 1 if pad_layer is None else 0

        def padded_conv() -> list[nn.Module]:
            prefix = [] if pad_layer is None else [pad_layer(1)]
            return prefix + [nn.Conv2d(dim, dim, kernel_size=3, padding=conv_padding, bias=use_bias), norm_layer(dim)]

        layers = padded_conv() + [nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        return layers + padded_conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """7x7 stem, two stride-2 downsamplings, n residual blocks, two upsamplings, 7x7 head, Tanh."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, norm_layer: NormFactory = nn.BatchNorm2d,
                 use_dropout: bool = False, n_blocks: int = 6, padding_type: str = "reflect"):
        if n_blocks < 0:
            raise ValueError("n_blocks must be >= 0")
        super().__init__()
        use_bias = conv_bias_for(norm_layer)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2 ** i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        mult = 2 ** n_downsampling
        layers += [ResnetBlock(ngf * mult, padding_type, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2, padding=1,
                                   output_padding=1, bias=use_bias),
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down, submodule, up; every level but the outermost returns cat(x, f(x)).

    The down-path LeakyReLU is in place, as upstream: the skip connection therefore carries
    the activated input. Keeping that is what makes an upstream checkpoint give the same output."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False, innermost: bool = False,
                 norm_layer: NormFactory = nn.BatchNorm2d, use_dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        use_bias = conv_bias_for(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            layers = [downrelu, downconv, uprelu, upconv, norm_layer(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            layers = [downrelu, downconv, norm_layer(inner_nc), submodule, uprelu, upconv, norm_layer(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with `num_downs` stride-2 levels: an input of 2**num_downs pixels reaches 1x1."""

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int = 64,
                 norm_layer: NormFactory = nn.BatchNorm2d, use_dropout: bool = False):
        if num_downs < 5:
            raise ValueError("a U-Net needs at least 5 downsamplings")
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm_layer=norm_layer)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer,
                                            use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                             outermost=True, norm_layer=norm_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def define_G(input_nc: int, output_nc: int, ngf: int, netG: str, norm: str = "batch",
             use_dropout: bool = False, init_type: str = "normal", init_gain: float = 0.02,
             output_head: str = "tanh") -> nn.Module:
    """Build and initialise a generator on the CPU (the caller moves it to its device, so the
    same seed gives the same weights on every device). `output_head` 'linear' drops the final Tanh
    (float data: no ceiling); the checkpoint keys stay the same."""
    norm_layer = get_norm_layer(norm)
    blocks = fullres_blocks(netG)
    if netG in UNET_DOWNSAMPLINGS:
        net = UnetGenerator(input_nc, output_nc, UNET_DOWNSAMPLINGS[netG], ngf, norm_layer, use_dropout)
    elif netG.startswith("resnet_") and netG.endswith("blocks") and netG[7:-6].isdigit():
        net = ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks=int(netG[7:-6]))
    elif blocks is not None:
        use_bias = conv_bias_for(norm_layer) or norm == "none"
        block = functools.partial(ResnetBlock, padding_type="reflect", norm_layer=norm_layer,
                                  use_dropout=use_dropout, use_bias=use_bias)
        net = FullResGenerator(input_nc, output_nc, ngf, blocks, block, norm_layer, use_bias, output_head)
    else:
        raise UserError(f"unknown --netG {netG!r} (choose from {', '.join(GENERATORS)})")
    init_weights(net, init_type, init_gain)
    return use_output_head(net, output_head)


def input_size_multiple(netG: str) -> int:
    """Image sides must be multiples of this for G's output to match its input size
    (2**levels for a U-Net, 4 for a resnet's two stride-2 stages, 1 for a full-resolution net)."""
    if fullres_blocks(netG) is not None:
        return 1
    return 2 ** UNET_DOWNSAMPLINGS[netG] if netG in UNET_DOWNSAMPLINGS else 4


def receptive_radius(netG: str) -> int:
    """Pixels an output pixel of the generator can depend on, each side (the theoretical receptive field).

    A U-Net of L levels (4x4 stride-2 convolutions down and up) reaches 2^(L+1) - 1 pixels; a ResNet
    generator 10 + 8 n (7x7 stem and head, two stride-2 stages, n blocks of two 3x3 convolutions at
    stride 4); a full-resolution net 1 + 2 n (3x3 stem, n blocks of two 3x3 convolutions, 1x1 head).
    Checked against the gradient of built generators in the tests."""
    blocks = fullres_blocks(netG)
    if blocks is not None:
        return 1 + 2 * blocks
    if netG in UNET_DOWNSAMPLINGS:
        return 2 ** (UNET_DOWNSAMPLINGS[netG] + 1) - 1
    return 10 + 8 * int(netG[len("resnet_"):-len("blocks")])


def make_adam(params, lr: float, beta1: float, device: torch.device | str = "cpu") -> torch.optim.Adam:
    """Adam with upstream's betas, on torch's multi-tensor path: fused kernels where torch has them for
    the device (CPU and CUDA), else foreach. One kernel per step for all parameters instead of a Python
    loop over them; the state_dict has the same layout, so resumes and checkpoints are unchanged."""
    device_type = torch.device(device).type
    kind = {"fused": True} if device_type in ("cpu", "cuda") else {"foreach": True}
    return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), **kind)


# --------------------------------------------------------------------------- discriminators
class NLayerDiscriminator(nn.Module):
    """PatchGAN: n stride-2 convs then a stride-1 conv and a 1-channel logit map (no sigmoid)."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm_layer: NormFactory = nn.BatchNorm2d):
        super().__init__()
        use_bias = conv_bias_for(norm_layer)
        kw, padw = 4, 1
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
                                   nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2 ** n, 8)
            layers += [
                nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw, bias=use_bias),
                norm_layer(ndf * nf_mult),
                nn.LeakyReLU(0.2, True),
            ]
        nf_mult_prev, nf_mult = nf_mult, min(2 ** n_layers, 8)
        layers += [
            nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias),
            norm_layer(ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN (PixelGAN): judges each pixel on its own."""

    def __init__(self, input_nc: int, ndf: int = 64, norm_layer: NormFactory = nn.BatchNorm2d):
        super().__init__()
        use_bias = conv_bias_for(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=1, stride=1, padding=0),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=use_bias),
            norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=use_bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def define_D(input_nc: int, ndf: int, netD: str, n_layers_D: int = 3, norm: str = "batch",
             init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Build and initialise a discriminator on the CPU."""
    norm_layer = get_norm_layer(norm)
    if netD == "basic":
        net = NLayerDiscriminator(input_nc, ndf, n_layers=3, norm_layer=norm_layer)
    elif netD == "n_layers":
        net = NLayerDiscriminator(input_nc, ndf, n_layers_D, norm_layer=norm_layer)
    elif netD == "pixel":
        net = PixelDiscriminator(input_nc, ndf, norm_layer=norm_layer)
    else:
        raise UserError(f"unknown --netD {netD!r} (choose from {', '.join(DISCRIMINATORS)})")
    init_weights(net, init_type, init_gain)
    return net


# --------------------------------------------------------------------------- losses
class GANLoss(nn.Module):
    """GAN objective on raw D logits: vanilla = BCE-with-logits, lsgan = MSE, wgangp = -/+ mean."""

    def __init__(self, gan_mode: str, target_real_label: float = 1.0, target_fake_label: float = 0.0):
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise UserError(f"unknown --gan_mode {gan_mode!r} (choose from {', '.join(GAN_MODES)})")
        self.register_buffer("real_label", torch.tensor(target_real_label))
        self.register_buffer("fake_label", torch.tensor(target_fake_label))
        self.gan_mode = gan_mode
        self.loss = {"vanilla": nn.BCEWithLogitsLoss(), "lsgan": nn.MSELoss(), "wgangp": None}[gan_mode]

    def get_target_tensor(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = self.real_label if target_is_real else self.fake_label
        return target.expand_as(prediction)

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        if self.gan_mode == "wgangp":
            return -prediction.mean() if target_is_real else prediction.mean()
        return self.loss(prediction, self.get_target_tensor(prediction, target_is_real))


def cal_gradient_penalty(netD: nn.Module, real_data: torch.Tensor, fake_data: torch.Tensor,
                         device: torch.device | str, type: str = "mixed", constant: float = 1.0,
                         lambda_gp: float = 10.0) -> tuple[torch.Tensor | float, torch.Tensor | None]:
    """WGAN-GP penalty lambda * (||grad D(x)|| - constant)^2 on real, fake or mixed samples."""
    if lambda_gp <= 0.0:
        return 0.0, None
    if type == "real":
        interpolates = real_data
    elif type == "fake":
        interpolates = fake_data
    elif type == "mixed":
        alpha = torch.rand(real_data.shape[0], 1, device=device)
        alpha = alpha.expand(real_data.shape[0], real_data.nelement() // real_data.shape[0])
        alpha = alpha.contiguous().view(*real_data.shape)
        interpolates = alpha * real_data + (1 - alpha) * fake_data
    else:
        raise ValueError(f"gradient penalty type {type!r} is not implemented")
    interpolates = interpolates.detach().requires_grad_(True)
    disc_interpolates = netD(interpolates)
    gradients = torch.autograd.grad(outputs=disc_interpolates, inputs=interpolates,
                                    grad_outputs=torch.ones_like(disc_interpolates),
                                    create_graph=True, retain_graph=True, only_inputs=True)[0]
    gradients = gradients.view(real_data.size(0), -1)
    penalty = (((gradients + 1e-16).norm(2, dim=1) - constant) ** 2).mean() * lambda_gp
    return penalty, gradients


# --------------------------------------------------------------------------- schedules
class LinearDecay:
    """LR multiplier: 1 for n_epochs, then linear decay to 0 over n_epochs_decay.

    A class rather than a closure so LambdaLR's state_dict stores (and a resume restores) the
    epoch_count the schedule was built with."""

    def __init__(self, epoch_count: int, n_epochs: int, n_epochs_decay: int):
        self.epoch_count = epoch_count
        self.n_epochs = n_epochs
        self.n_epochs_decay = n_epochs_decay

    def __call__(self, step: int) -> float:
        # never below 0: past the schedule's end (a resume with other epochs) the rate stays 0, it
        # does not turn negative (gradient ascent)
        return max(0.0, 1.0 - max(0, step + self.epoch_count - self.n_epochs) / float(self.n_epochs_decay + 1))


def get_scheduler(optimizer: torch.optim.Optimizer, opt) -> lr_scheduler.LRScheduler:
    """One scheduler per optimizer, stepped at the END of each epoch (upstream's 2025 order)."""
    policy = opt.lr_policy
    if policy == "linear":
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=LinearDecay(opt.epoch_count, opt.n_epochs, opt.n_epochs_decay))
    if policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=opt.lr_decay_iters, gamma=0.1)
    if policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    if policy == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=opt.n_epochs, eta_min=0)
    raise UserError(f"unknown --lr_policy {policy!r} (choose from {', '.join(LR_POLICIES)})")
