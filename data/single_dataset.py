"""Single images for `--model test`: every image under --dataroot, one direction only.

Plain images load whole, as upstream. With --n_panels or --input_panels, or when the generator
takes neither 1 nor 3 channels, the files are taken as square panels side by side and item A is
the chosen input panels stacked on channels (the generator's input). Files may hold the target
band too (A|B|C|D, as training data: inputs default to panels 1..N-1) or only the input bands
(B|C|D, for a patch of sky where the wanted band is missing: every panel is an input when their
channels add up to --input_nc).
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from data.aligned_dataset import check_panel_channel_counts
from data.base_dataset import (BaseDataset, add_panel_options, check_preprocess, get_params,
                               get_transform, load_rgb, read_image_size, to_normalized_array)
from data.image_check import check_image_files, colour_panels, grey_note, grey_readings, refuse_implied_grey
from data.image_folder import make_dataset
from data.panels import count_panels, input_panel_indices, panel_boxes, recorded_layout
from util.errors import UserError


def choose_input_panels(text: str, n_panels: int, input_nc: int) -> list[int]:
    """--input_panels if given (panel 0 allowed); else all panels when they alone fill input_nc
    (a B|C|D file of grey or colour panels), else panels 1..N-1 (an A|B|C|D file)."""
    if not text and input_nc in (n_panels, 3 * n_panels):
        return list(range(n_panels))
    if not text and n_panels < 2:
        raise UserError(f"the images are one square panel, which cannot give --input_nc {input_nc} "
                        f"(a panel has 1 or 3 channels); give --n_panels / --input_panels for multi-panel files")
    return input_panel_indices(text, n_panels, allow_target=True)


class SingleDataset(BaseDataset):
    """Items: A (the input picture or stacked input panels) and A_paths.

    panel_channels / panel_indices describe item A on the first (A) side; the B side is empty.
    """

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        return add_panel_options(parser)

    def __init__(self, opt):
        super().__init__(opt)
        if not os.path.isdir(opt.dataroot):
            raise UserError(f"--dataroot folder not found: {opt.dataroot}")
        self.A_paths = make_dataset(opt.dataroot, opt.max_dataset_size)
        if not self.A_paths:
            raise UserError(f"no images under {opt.dataroot}")
        first = self.A_paths[0]
        width, height = read_image_size(first)
        self.split_panels = (getattr(opt, "n_panels", 0) > 0 or bool(getattr(opt, "input_panels", ""))
                             or opt.input_nc not in (1, 3))
        if self.split_panels:
            self.n_panels = count_panels(width, height, opt.n_panels, first)
            inputs = choose_input_panels(opt.input_panels, self.n_panels, opt.input_nc)
            # The chosen panels feed the generator, whose input is always input_nc channels.
            as_input = argparse.Namespace(**{**vars(opt), "direction": "BtoA"})
            channels, adopted = recorded_layout(as_input, inputs, self.n_panels)
            if adopted:
                opt.panel_nc = adopted  # the layout dataset.json gives, kept in {phase}_opt.txt
            self.panel_channels = (channels[1], [])
            self.panel_indices = (inputs, [])
            size = (width // self.n_panels, height)
        else:
            self.n_panels = 1
            nc = opt.output_nc if opt.direction == "BtoA" else opt.input_nc
            if nc not in (1, 3):
                raise UserError(f"a plain image gives 1 or 3 channels, not {nc}; for multi-panel images "
                                f"give --n_panels or --input_panels")
            self.panel_channels = ([nc], [])
            self.panel_indices = ([0], [])
            size = (width, height)
        check_panel_channel_counts(self.panel_channels, self.panel_indices)
        check_preprocess(opt, size, f"image {first}" if not self.split_panels else f"a panel of {first}")
        check_image_files(self.A_paths, self._check_size, getattr(opt, "check_images", "header"))
        if self.split_panels:
            self._check_colour()

    def _check_size(self, path: str, width: int, height: int) -> None:
        """What __getitem__ checks on the decoded image, from the header (image_check)."""
        if not self.split_panels:
            check_preprocess(self.opt, (width, height), f"image {path}")
            return
        if self.opt.n_panels <= 0 and width != self.n_panels * height:
            raise UserError(f"{path} is {width}x{height}, but the images have {self.n_panels} square panels; "
                            f"give --n_panels or fix the file")
        check_preprocess(self.opt, (width // self.n_panels, height), f"a panel of {path}")

    def _check_colour(self) -> None:
        """Colour input panels read into one channel (see data.image_check): an error where the even
        split of --input_nc over several panels implies it, a note where --panel_nc asks for it."""
        inputs, channels = self._input_side()
        if 1 not in channels:
            return
        grey = grey_readings([channels], [inputs], colour_panels(
            self.A_paths, lambda w, h: panel_boxes(w, h, self.n_panels)))
        if not grey:
            return
        if len(inputs) > 1 and not getattr(self.opt, "panel_nc", ""):
            refuse_implied_grey(grey, self.A_paths[0], "--input_nc", sum(channels), len(inputs))
        print(grey_note(grey, "--panel_nc" if getattr(self.opt, "panel_nc", "") else "--input_nc 1"))

    def __len__(self) -> int:
        return len(self.A_paths)

    def __getitem__(self, index: int) -> dict:
        path = self.A_paths[index]
        image = load_rgb(path)
        if not self.split_panels:
            check_preprocess(self.opt, image.size, f"image {path}")
            nc = self.panel_channels[0][0]
            return {"A": get_transform(self.opt, grayscale=(nc == 1))(image), "A_paths": path}
        width, height = image.size
        self._check_size(path, width, height)
        panel_size = (width // self.n_panels, height)
        params = get_params(self.opt, panel_size)
        transforms = {nc: get_transform(self.opt, params, grayscale=(nc == 1), convert=False) for nc in (1, 3)}
        boxes = panel_boxes(width, height, self.n_panels)
        arrays = [to_normalized_array(transforms[nc](image.crop(boxes[i]))) for i, nc in zip(*self._input_side())]
        if any(a.shape[1:] != arrays[0].shape[1:] for a in arrays):
            raise UserError(f"the panels of {path} have different sizes after --preprocess {self.opt.preprocess}")
        return {"A": torch.from_numpy(np.concatenate(arrays, axis=0)), "A_paths": path}

    def _input_side(self) -> tuple[list[int], list[int]]:
        return self.panel_indices[0], self.panel_channels[0]
