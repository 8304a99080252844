"""Colorization: pix2pix from lightness L to the ab colour channels of CIE Lab (upstream's model).

Training and losses are exactly pix2pix's (1 -> 2 channels, D on 3 channels); only the data
(`--dataset_mode colorization`) and the visuals differ: real_B_rgb / fake_B_rgb show the true
and predicted colours recombined with the input lightness, since raw ab maps mean little to the eye.
"""
from __future__ import annotations

import numpy as np
import torch

from models.pix2pix_model import Pix2PixModel
from util.util import normalized_lab_to_rgb


def lab_batch_to_rgb_tensor(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(N,1,H,W) L and (N,2,H,W) ab in dataset scale -> (N,3,H,W) RGB in [-1, 1] (a normal visual)."""
    images = [normalized_lab_to_rgb(l_one.detach().float().cpu().numpy(), ab_one.detach().float().cpu().numpy())
              for l_one, ab_one in zip(L, ab)]
    rgb = torch.from_numpy(np.stack(images).astype(np.float32)).permute(0, 3, 1, 2)
    return (rgb * 2 - 1).to(L.device)


class ColorizationModel(Pix2PixModel):
    result_visuals = {"input": "real_A", "generated": "fake_B_rgb", "target": "real_B_rgb"}

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        """pix2pix's options and defaults, with the Lab dataset."""
        Pix2PixModel.modify_commandline_options(parser, is_train)
        parser.set_defaults(dataset_mode="colorization")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.visual_names = ["real_A", "real_B_rgb", "fake_B_rgb"]

    def compute_visuals(self) -> None:
        self.real_B_rgb = lab_batch_to_rgb_tensor(self.real_A, self.real_B)
        self.fake_B_rgb = lab_batch_to_rgb_tensor(self.real_A, self.fake_B)
