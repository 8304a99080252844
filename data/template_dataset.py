"""A starting point for a new dataset mode: copy this file to data/<name>_dataset.py and rename the
class to <Name>Dataset (`--dataset_mode <name>` finds it, ignoring case and underscores).

As it stands it is a working example: every image under DATAROOT/PHASE becomes a denoising
pair, A = the image plus Gaussian noise of std --new_dataset_option, B = the clean image.
It caps the data at 10 images by default (--max_dataset_size), as upstream's template does.
"""
from __future__ import annotations

import torch

from data.aligned_dataset import list_aligned_images
from data.base_dataset import BaseDataset, check_preprocess, get_params, get_transform, load_rgb
from data.image_check import check_image_files
from util.errors import UserError


class TemplateDataset(BaseDataset):
    """Items must be dicts of tensors and paths; models read `A`, `B`, `A_paths`, `B_paths`."""

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        """New options of this dataset, and new defaults for existing ones (third parsing pass)."""
        parser.add_argument("--new_dataset_option", type=float, default=0.2,
                            help="std of the noise added to A (images are in [-1, 1])")
        parser.set_defaults(max_dataset_size=10)
        return parser

    def __init__(self, opt):
        """List the files only; decoding happens per item in __getitem__ (in the loader's workers)."""
        super().__init__(opt)
        for option in ("input_nc", "output_nc"):
            if getattr(opt, option) not in (1, 3):
                raise UserError(f"--dataset_mode template reads plain images: --{option} must be 1 or 3")
        self.image_paths = list_aligned_images(opt.dataroot, opt.phase, opt.max_dataset_size)
        # every file's header (size) now, so a bad file stops the run before training, not mid-epoch
        check_image_files(self.image_paths, lambda path, w, h: check_preprocess(opt, (w, h), f"image {path}"),
                          getattr(opt, "check_images", "header"))

    def __len__(self) -> int:
        return len(self.image_paths)

    def __getitem__(self, index: int) -> dict:
        path = self.image_paths[index]
        image = load_rgb(path)
        check_preprocess(self.opt, image.size, f"image {path}")
        params = get_params(self.opt, image.size)  # one crop/flip for both sides keeps them aligned
        clean_A = get_transform(self.opt, params, grayscale=self.opt.input_nc == 1)(image)
        data_B = get_transform(self.opt, params, grayscale=self.opt.output_nc == 1)(image)
        data_A = (clean_A + self.opt.new_dataset_option * torch.randn_like(clean_A)).clamp(-1, 1)
        return {"A": data_A, "B": data_B, "A_paths": path, "B_paths": path}
