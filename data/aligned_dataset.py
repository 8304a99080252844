"""Aligned multi-panel images A|B|C|D...: panel 0 is the target A, the chosen input panels form B.

A classic two-panel A|B image gives exactly upstream's A (left half) and B (right half).
"""
from __future__ import annotations

import os

import numpy as np
import torch

from data.base_dataset import (BaseDataset, add_panel_options, check_preprocess, get_params,
                               get_transform, load_rgb, read_image_size, to_normalized_array)
from data.image_check import check_image_files, colour_panels, grey_note, grey_readings, refuse_implied_grey
from data.image_folder import list_images_under
from data.panels import count_panels, input_panel_indices, panel_boxes, recorded_layout
from util.errors import UserError


class AlignedDataset(BaseDataset):
    """Reads DATAROOT/PHASE. Items: A (panel 0), B (input panels stacked on channels), A_paths, B_paths."""

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        return add_panel_options(parser)

    def __init__(self, opt):
        super().__init__(opt)
        self.dir_AB = os.path.join(opt.dataroot, opt.phase)
        self.AB_paths = list_aligned_images(opt.dataroot, opt.phase, opt.max_dataset_size)
        first = self.AB_paths[0]
        width, height = read_image_size(first)
        self.n_panels = count_panels(width, height, getattr(opt, "n_panels", 0), first)
        inputs = input_panel_indices(getattr(opt, "input_panels", "") or "", self.n_panels)
        self.panel_indices = ([0], inputs)
        self.panel_channels, adopted = recorded_layout(opt, inputs, self.n_panels)
        if adopted:
            opt.panel_nc = adopted  # the layout dataset.json gives, kept in {phase}_opt.txt
        check_panel_channel_counts(self.panel_channels, self.panel_indices)
        check_preprocess(opt, _panel_size(width, height, self.n_panels), f"a panel of {first}")
        check_image_files(self.AB_paths, self._check_shape, getattr(opt, "check_images", "header"))
        self._check_colour()

    def _check_colour(self) -> None:
        """Colour panels read into one channel: an error where only the even split of
        --input_nc/--output_nc over the panels implies it, a note where the user asked for it."""
        if 1 not in self.panel_channels[0] + self.panel_channels[1]:
            return  # every panel keeps 3 channels: nothing to decode
        grey = grey_readings(self.panel_channels, self.panel_indices,
                             colour_panels(self.AB_paths, lambda w, h: panel_boxes(w, h, self.n_panels)))
        if not grey:
            return
        b_panels = self.panel_indices[1]
        explicit = bool(getattr(self.opt, "panel_nc", "")) or len(b_panels) == 1
        implied = [index for index in grey if index in b_panels and not explicit]
        if implied:
            option = "--input_nc" if self.opt.direction == "BtoA" else "--output_nc"
            refuse_implied_grey(implied, self.AB_paths[0], option, sum(self.panel_channels[1]), len(b_panels))
        print(grey_note(grey, "--panel_nc" if getattr(self.opt, "panel_nc", "") else "one channel asked for"))

    def __len__(self) -> int:
        return len(self.AB_paths)

    def __getitem__(self, index: int) -> dict:
        path = self.AB_paths[index]
        image = load_rgb(path)
        width, height = image.size
        self._check_shape(path, width, height)
        boxes = panel_boxes(width, height, self.n_panels)
        params = get_params(self.opt, _panel_size(width, height, self.n_panels))
        transforms = {nc: get_transform(self.opt, params, grayscale=(nc == 1), convert=False) for nc in (1, 3)}
        (a_nc,), b_ncs = self.panel_channels
        a_array = to_normalized_array(transforms[a_nc](image.crop(boxes[0])))
        b_arrays = [to_normalized_array(transforms[nc](image.crop(boxes[i])))
                    for i, nc in zip(self.panel_indices[1], b_ncs)]
        if any(b.shape[1:] != a_array.shape[1:] for b in b_arrays):
            raise UserError(f"the panels of {path} have different sizes after --preprocess "
                            f"{self.opt.preprocess}; make the width a multiple of --n_panels")
        b_array = np.concatenate(b_arrays, axis=0) if len(b_arrays) > 1 else b_arrays[0]
        return {"A": torch.from_numpy(a_array), "B": torch.from_numpy(b_array), "A_paths": path, "B_paths": path}

    def _check_shape(self, path: str, width: int, height: int) -> None:
        """Every file must have the panel count and a usable size: checked on every header before
        training (image_check) and again per item, on the decoded size."""
        if getattr(self.opt, "n_panels", 0) <= 0 and width != self.n_panels * height:
            raise UserError(f"{path} is {width}x{height}, but the dataset has {self.n_panels} square "
                            f"panels per image (from its first image); give --n_panels or fix the file")
        check_preprocess(self.opt, _panel_size(width, height, self.n_panels), f"a panel of {path}")


def _panel_size(width: int, height: int, n_panels: int) -> tuple[int, int]:
    return width // n_panels, height


def list_aligned_images(dataroot: str, phase: str, max_dataset_size: float) -> list[str]:
    return list_images_under(dataroot, phase, max_dataset_size, "aligned images are read from DATAROOT/PHASE")


def check_panel_channel_counts(channels: tuple[list[int], list[int]], indices: tuple[list[int], list[int]]) -> None:
    """A panel read from an image is grey (1) or colour (3); other counts come from wrong --*_nc options."""
    for side_channels, side_indices in zip(channels, indices):
        for nc, index in zip(side_channels, side_indices):
            if nc not in (1, 3):
                option = "--output_nc / --input_nc" if index == 0 else "--input_nc / --panel_nc"
                raise UserError(f"panel {index} would need {nc} channels, but an image panel has 1 (grey) "
                                f"or 3 (colour); check {option}")
