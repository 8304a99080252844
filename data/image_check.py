"""Checks a dataset runs over its image files before training starts.

- Every file's header (size, hence panel count and crop size) is read when the dataset is built:
  a file of the wrong width, too small or unreadable stops the run at once, naming it, instead
  of mid-epoch after hours (reading a PNG header costs ~0.1 ms; decoding the file 50x more).
  `--check_images full` decodes every file too, which also finds truncated pixel data.
- Colour panels read as grey: an RGB panel whose channels differ carries colour, and reading it
  into one channel (e.g. the default --input_nc 3 spread over three input panels) throws the
  colour away. Where the option values only imply it, that is an error; where the user asked
  for it (--panel_nc, a single panel's --input_nc 1), a printed note.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from data.base_dataset import load_rgb, read_image_size
from util.errors import UserError
from util.progress import progress

CHECK_MODES = ("header", "full")
COLOUR_SAMPLES = 8  # files decoded to see which panels carry colour (a blank field looks grey)
SHOW_PROGRESS_FROM = 500  # files; fewer are checked in well under a second


def check_image_files(paths: Sequence[str], check_size: Callable[[str, int, int], None], mode: str = "header") -> None:
    """Read every file's header and call check_size(path, width, height), which raises UserError
    for a file that does not fit the dataset; mode 'full' also decodes every file. One UserError
    naming the first bad file and how many there are."""
    if mode not in CHECK_MODES:
        raise UserError(f"--check_images must be one of {', '.join(CHECK_MODES)}, got {mode!r}")
    problems: list[str] = []
    for path in progress(paths, desc="checking images", unit="image", leave=False,
                         enabled=len(paths) >= SHOW_PROGRESS_FROM):
        try:
            width, height = read_image_size(path)
            check_size(path, width, height)
            if mode == "full":
                load_rgb(path)
        except UserError as err:
            problems.append(str(err))
    if problems:
        more = f" (and {len(problems) - 1} more of the {len(paths)} images)" if len(problems) > 1 else ""
        raise UserError(f"{problems[0]}{more}")


def colour_panels(paths: Sequence[str], boxes_of: Callable[[int, int], list[tuple[int, int, int, int]]],
                  samples: int = COLOUR_SAMPLES) -> set[int]:
    """Numbers of the panels that carry colour (channels differ somewhere) in a few files spread
    over the dataset; boxes_of(width, height) gives a file's panel boxes."""
    step = max(1, len(paths) // samples)
    colour: set[int] = set()
    for path in list(paths)[::step][:samples]:
        image = load_rgb(path)
        for index, box in enumerate(boxes_of(*image.size)):
            if index not in colour:
                pixels = np.asarray(image.crop(box))
                if (pixels[..., 0] != pixels[..., 1]).any() or (pixels[..., 1] != pixels[..., 2]).any():
                    colour.add(index)
    return colour


def grey_readings(channels: Sequence[Sequence[int]], indices: Sequence[Sequence[int]], colour: set[int]) -> list[int]:
    """File panels read into one channel although they carry colour, over both sides."""
    return [index for side_channels, side_indices in zip(channels, indices)
            for nc, index in zip(side_channels, side_indices) if nc == 1 and index in colour]


def refuse_implied_grey(panels: list[int], first: str, option: str, total_nc: int, n_panels: int) -> None:
    """The option's channel count spread over several panels gives 1 per panel: an error for colour panels."""
    listed = ("panels " if len(panels) > 1 else "panel ") + ", ".join(map(str, panels))
    raise UserError(f"{option} {total_nc} over {n_panels} panels gives 1 channel per panel, but {listed} of "
                    f"{first} (and the files like it) carry colour and would be read as grey: give {option} "
                    f"{3 * n_panels} to keep the colours, or --panel_nc {','.join(['1'] * n_panels)} to read them "
                    f"as grey on purpose")


def grey_note(panels: list[int], why: str) -> str:
    listed = ("panels " if len(panels) > 1 else "panel ") + ", ".join(map(str, panels))
    return f"note: {listed} of the images carry colour and are read as grey ({why})"
