"""Generators for physical values (float FITS bands): point sources at native resolution, no ceiling,
and a physics prior.

Upstream's generators were made for pictures: a U-Net halves the resolution six to eight times (a
star of one or two pixels survives only through the skip connections) and a Tanh head caps the
output at the top of the normalised range, which the FITS normalisation puts at the training
maximum. Here:
- `FullResGenerator` (`--netG fullres_<N>blocks`): a 3x3 stem, N residual blocks of two 3x3
  convolutions at full resolution, and a 1x1 head; fully convolutional (any image size), receptive
  field 3 + 4N pixels (19 for N = 4: several PSF widths and the local sky around a star).
- `--output_head linear`: no Tanh at the end (for any generator), so a star brighter than anything in
  the training set can come out brighter; the normalisation inverts exactly to the band's unit.
- `ColourPrior` (`--prior linear_fit` / `normalised_fit`): the network predicts the correction to a
  per-pixel linear fit of the target on the input bands, fitted on the training cubes, so training
  starts from a reference the model has to beat: `linear_fit` in the band's unit (the demo's "linear
  fit" reference), `normalised_fit` on the normalised values, which for the asinh normalisation is a
  fit in log flux, i.e. a colour relation in magnitudes (the physics of reddened stars: the better
  prior on real fields, docs/ablation.md). The fit and both normalisations are buffers of the module:
  they are saved in `{epoch}_net_G.pth` and come back with it.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

OUTPUT_HEADS = ("tanh", "linear")
FULLRES = re.compile(r"^fullres_(\d+)blocks$")


def fullres_blocks(netG: str) -> int | None:
    """N of 'fullres_<N>blocks', else None."""
    match = FULLRES.match(netG)
    return int(match.group(1)) if match else None


class FullResGenerator(nn.Module):
    """Stem, residual blocks and head, all at the input's resolution (see the module docstring).

    The blocks are `networks.ResnetBlock`s (reflection padding, the chosen norm, optional dropout);
    `model` is one Sequential, like upstream's generators, so the keys read model.<i>.*."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int, n_blocks: int,
                 block: Callable[[int], nn.Module], norm_layer: Callable[[int], nn.Module], use_bias: bool,
                 head: str = "linear"):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(input_nc, ngf, 3, bias=use_bias), norm_layer(ngf),
                                   nn.ReLU(True)]
        layers += [block(ngf) for _ in range(n_blocks)]
        layers += [nn.Conv2d(ngf, output_nc, 1), output_activation(head)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def output_activation(head: str) -> nn.Module:
    """Tanh (upstream, pictures in [-1, 1]) or Identity (float data, no ceiling); neither has parameters,
    so a generator's checkpoint keys do not depend on the head."""
    if head not in OUTPUT_HEADS:
        raise ValueError(f"unknown output head {head!r}")
    return nn.Tanh() if head == "tanh" else nn.Identity()


def use_output_head(net: nn.Module, head: str) -> nn.Module:
    """Swap the final Tanh of an upstream generator for `head` (in place; same keys, same indices)."""
    if head == "tanh":
        return net
    for module in net.modules():
        if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], nn.Tanh):
            module[-1] = output_activation(head)
    return net


# ---- the linear colour prior ------------------------------------------------------------------
def _to_physical(y: torch.Tensor, low, scale, span, asinh) -> torch.Tensor:
    t = (y + 1.0) * 0.5 * span
    return low + scale * torch.where(asinh > 0, torch.sinh(t), t)


def _to_normalised(x: torch.Tensor, low, scale, span, asinh) -> torch.Tensor:
    t = (x - low) / scale
    return 2.0 * torch.where(asinh > 0, torch.asinh(t), t) / span - 1.0


class ColourPrior(nn.Module):
    """net(x) + the linear colour fit of x, both in the target's normalised space.

    Each band's normalisation is written as x = low + scale * f((y + 1) / 2 * span), f = sinh (asinh
    mapping) or the identity (linear mapping; scale = high - low, span = 1); `set_fit` takes it in that
    form, with the fit target = intercept + coefficients @ inputs in the band's unit, or, when its
    'space' is 'normalised', in normalised values (no conversion at all)."""

    def __init__(self, net: nn.Module, input_nc: int, output_nc: int):
        super().__init__()
        self.net = net
        for side, n in (("in", input_nc), ("out", output_nc)):
            for name, value in (("low", 0.0), ("scale", 1.0), ("span", 2.0), ("asinh", 0.0)):
                self.register_buffer(f"{side}_{name}", torch.full((n,), value))
        self.register_buffer("coefficients", torch.zeros(output_nc, input_nc))
        self.register_buffer("intercept", torch.zeros(output_nc))
        self.register_buffer("normalised_space", torch.zeros(()))  # 1: the fit is on normalised values

    def set_fit(self, fit: Mapping[str, Sequence]) -> None:
        """Values from the dataset: {'in': [(low, scale, span, asinh), ...], 'out': [...], 'coefficients':
        [[...]], 'intercept': [...]} (the data layer computes them; models know no dataset)."""
        with torch.no_grad():
            for side in ("in", "out"):
                rows = torch.tensor(fit[side], dtype=torch.float32)
                for index, name in enumerate(("low", "scale", "span", "asinh")):
                    getattr(self, f"{side}_{name}").copy_(rows[:, index])
            self.coefficients.copy_(torch.tensor(fit["coefficients"], dtype=torch.float32))
            self.intercept.copy_(torch.tensor(fit["intercept"], dtype=torch.float32))
            self.normalised_space.fill_(1.0 if fit.get("space") == "normalised" else 0.0)

    def prior(self, x: torch.Tensor) -> torch.Tensor:
        """The linear fit of the bands in x, normalised like the target (computed in float32)."""
        def per_channel(t):
            return t.view(1, -1, 1, 1)

        x = x.float()
        if bool(self.normalised_space):
            return torch.einsum("oi,bihw->bohw", self.coefficients, x) + per_channel(self.intercept)
        physical = _to_physical(x, *(per_channel(getattr(self, f"in_{n}")) for n in ("low", "scale", "span", "asinh")))
        fitted = torch.einsum("oi,bihw->bohw", self.coefficients, physical) + per_channel(self.intercept)
        return _to_normalised(fitted, *(per_channel(getattr(self, f"out_{n}"))
                                        for n in ("low", "scale", "span", "asinh")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        correction = self.net(x)
        return self.prior(x).to(correction.dtype) + correction
