"""Unpaired images for CycleGAN: DATAROOT/PHASE + 'A' and DATAROOT/PHASE + 'B' (e.g. trainA/, trainB/).

As upstream: item i takes A image i (cycling) and a random B image (the i-th, cycling, with
--serial_batches); the length is the larger folder's. Each domain may hold several bands: a
domain whose channel count is not 1 or 3 reads every file as square panels side by side
(B|C|D for 9 channels), stacked on channels with one crop and flip shared by the panels.
--n_panels_A / --n_panels_B set the panel count instead (e.g. 3 grey panels as 3 channels).
"""
from __future__ import annotations

import os
import random

import torch
from PIL import Image

from data.base_dataset import BaseDataset, check_preprocess, get_params, get_transform, load_rgb, read_image_size
from data.image_check import check_image_files, colour_panels, grey_note
from data.image_folder import list_images_under
from data.panels import count_panels, panel_boxes
from util.errors import UserError


def list_domain_images(dataroot: str, folder_name: str, max_dataset_size: float) -> list[str]:
    return list_images_under(dataroot, folder_name, max_dataset_size,
                             "unaligned data is read from DATAROOT/PHASEA and DATAROOT/PHASEB")


def domain_panel_channels(nc: int, n_panels: int, width: int, height: int, path: str) -> list[int]:
    """Channels of each panel of a domain's files: 1 plain image for 1 or 3 channels (as upstream),
    else width / height square panels, unless n_panels (> 0) says how many."""
    if n_panels <= 0:
        n_panels = 1 if nc in (1, 3) else count_panels(width, height, 0, path)
    else:
        n_panels = count_panels(width, height, n_panels, path)
    per_panel, rest = divmod(nc, n_panels)
    if rest or per_panel not in (1, 3):
        raise UserError(f"{nc} channels cannot come from {n_panels} panel(s) of {path}: each panel gives 1 "
                        f"(grey) or 3 (colour) channels; check --input_nc/--output_nc/--n_panels_A/--n_panels_B")
    return [per_panel] * n_panels


def stack_panels(opt, image: Image.Image, channels: list[int], path: str) -> torch.Tensor:
    """Cut an image into len(channels) panels, transform them with one shared crop/flip, stack them."""
    width, height = image.size
    n_panels = len(channels)
    panel_size = (width // n_panels, height)
    check_preprocess(opt, panel_size, f"a panel of {path}")
    params = get_params(opt, panel_size)
    transforms = {nc: get_transform(opt, params, grayscale=(nc == 1)) for nc in set(channels)}
    boxes = panel_boxes(width, height, n_panels)
    tensors = [transforms[nc](image.crop(box)) for box, nc in zip(boxes, channels)]
    if any(t.shape[1:] != tensors[0].shape[1:] for t in tensors):
        raise UserError(f"the panels of {path} have different sizes after --preprocess {opt.preprocess}")
    return torch.cat(tensors, dim=0)


class UnalignedDataset(BaseDataset):
    """Items: A, B (each (C, H, W) in [-1, 1]), A_paths, B_paths.

    panel_channels / panel_indices describe item A on side 0 and item B on side 1, so the
    model shows each band of a multi-panel domain as its own visual.
    """

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        parser.add_argument("--n_panels_A", type=int, default=0,
                            help="panels per image in PHASEA (0: 1 for 1 or 3 channels, else width / height)")
        parser.add_argument("--n_panels_B", type=int, default=0,
                            help="panels per image in PHASEB (0: 1 for 1 or 3 channels, else width / height)")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.dir_A = os.path.join(opt.dataroot, opt.phase + "A")
        self.dir_B = os.path.join(opt.dataroot, opt.phase + "B")
        self.A_paths = list_domain_images(opt.dataroot, opt.phase + "A", opt.max_dataset_size)
        self.B_paths = list_domain_images(opt.dataroot, opt.phase + "B", opt.max_dataset_size)
        self.A_size, self.B_size = len(self.A_paths), len(self.B_paths)
        b_to_a = opt.direction == "BtoA"
        nc_A, nc_B = (opt.output_nc, opt.input_nc) if b_to_a else (opt.input_nc, opt.output_nc)
        channels_A = self._layout(nc_A, opt.n_panels_A, self.A_paths, 0)
        channels_B = self._layout(nc_B, opt.n_panels_B, self.B_paths, 1)
        self.panel_channels = (channels_A, channels_B)
        self.panel_indices = (list(range(len(channels_A))), list(range(len(channels_B))))

    def _layout(self, nc: int, n_panels: int, paths: list[str], side: int) -> list[int]:
        """A domain's panel channels (from its first file), then every file's header checked
        against them; a note when colour panels are read into one channel each."""
        first = paths[0]
        width, height = read_image_size(first)
        channels = domain_panel_channels(nc, n_panels, width, height, first)

        def check_size(path: str, w: int, h: int) -> None:
            if len(channels) > 1 and n_panels <= 0 and w != len(channels) * h:
                raise UserError(f"{path} is {w}x{h}, but its folder's images have {len(channels)} square panels "
                                f"(from the first image); fix the file or set --n_panels_{'AB'[side]}")
            what = f"image {path}" if len(channels) == 1 else f"a panel of {path}"
            check_preprocess(self.opt, (w // len(channels), h), what)

        check_image_files(paths, check_size, getattr(self.opt, "check_images", "header"))
        if len(channels) > 1 and 1 in channels:
            colour = colour_panels(paths, lambda w, h: panel_boxes(w, h, len(channels)))
            if colour:
                print(grey_note(sorted(colour), f"{nc} channels over the {len(channels)} panels of {first}"))
        return channels

    def __len__(self) -> int:
        return max(self.A_size, self.B_size)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):  # indices wrap below, so `for item in dataset` needs this to end
            raise IndexError(f"index {index} out of range for {len(self)} items")
        A_path = self.A_paths[index % self.A_size]
        index_B = index % self.B_size if self.opt.serial_batches else random.randint(0, self.B_size - 1)
        B_path = self.B_paths[index_B]
        return {"A": self._load(A_path, 0), "B": self._load(B_path, 1), "A_paths": A_path, "B_paths": B_path}

    def _load(self, path: str, side: int) -> torch.Tensor:
        """One domain image (side 0 = A, 1 = B) as a tensor of that domain's channels."""
        channels = self.panel_channels[side]
        image = load_rgb(path)
        if len(channels) == 1:  # a plain image: upstream's own crop and flip draws
            check_preprocess(self.opt, image.size, f"image {path}")
            return get_transform(self.opt, grayscale=(channels[0] == 1))(image)
        width, height = image.size
        auto = (self.opt.n_panels_A, self.opt.n_panels_B)[side] <= 0
        if auto and width != len(channels) * height:
            raise UserError(f"{path} is {width}x{height}, but its folder's images have {len(channels)} square "
                            f"panels (from the first image); fix the file or set --n_panels_{'AB'[side]}")
        return stack_panels(self.opt, image, channels, path)
