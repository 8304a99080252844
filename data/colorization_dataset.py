"""Colour photos as (lightness -> colour) pairs in CIE Lab, for `--model colorization`.

Each RGB image under DATAROOT/PHASE gives A = L / 50 - 1 (1 channel) and B = ab / 110
(2 channels), both roughly in [-1, 1], as upstream. Lab separates what a grey survey shows
(lightness) from what the network must invent (colour), so G only predicts the two ab channels.
"""
from __future__ import annotations

import numpy as np
import torch

from data.aligned_dataset import list_aligned_images
from data.base_dataset import BaseDataset, check_preprocess, get_transform, load_rgb
from data.image_check import check_image_files
from util.errors import UserError
from util.util import rgb_to_normalized_lab

class ColorizationDataset(BaseDataset):
    """Items: A (L), B (ab), A_paths, B_paths (the same file)."""

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        """L in, ab out, AtoB: the only layout this dataset produces."""
        parser.set_defaults(input_nc=1, output_nc=2, direction="AtoB")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        if (opt.input_nc, opt.output_nc, opt.direction) != (1, 2, "AtoB"):
            raise UserError(f"--dataset_mode colorization gives L (1 channel) -> ab (2 channels), AtoB; drop "
                            f"--input_nc {opt.input_nc} / --output_nc {opt.output_nc} / --direction {opt.direction}")
        self.AB_paths = list_aligned_images(opt.dataroot, opt.phase, opt.max_dataset_size)
        check_image_files(self.AB_paths, lambda path, w, h: check_preprocess(opt, (w, h), f"image {path}"),
                          getattr(opt, "check_images", "header"))

    def __len__(self) -> int:
        return len(self.AB_paths)

    def __getitem__(self, index: int) -> dict:
        path = self.AB_paths[index]
        image = load_rgb(path)
        check_preprocess(self.opt, image.size, f"image {path}")
        cropped = get_transform(self.opt, convert=False)(image)
        A, B = (torch.from_numpy(x) for x in rgb_to_normalized_lab(np.asarray(cropped)))
        return {"A": A, "B": B, "A_paths": path, "B_paths": path}
