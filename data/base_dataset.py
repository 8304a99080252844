"""Dataset base class and the upstream image transforms (resize / crop / flip / normalise).

The transforms work on PIL images with the same operations and the same random draws as
upstream (python `random` for shared parameters), so a classic A|B dataset gives the same
tensors. get_params draws one crop position and flip; applying that one dict to every panel
is what keeps multi-band panels aligned.
"""
from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.utils.data as torch_data
from PIL import Image

from util.errors import UserError

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")


@dataclass(frozen=True)
class CubeBands:
    """Float FITS cubes: what it takes to turn the generator's output back into physical values
    (the engine writes the generated planes as FITS with it) and where the real values are."""
    norm: Any  # data.fits_norm.CubeNorm
    norm_file: Path
    labels: list[tuple[str, str]]  # (name, unit) of every cube plane
    target_planes: list[int]
    input_planes: list[int]


@dataclass(frozen=True)
class DatasetDescription:
    """What a dataset tells the run about its items, for the visuals and the results manifest.

    panel_channels / panel_indices: (A side, B side) channels and file panel (or cube plane)
    numbers of the stacked items, None when items are not multi-panel; bands: band name of a
    panel or plane when the data says it; cube: set for float FITS cubes; prior: the values of the
    generator's colour prior (--prior linear_fit) when this dataset fitted them."""
    mode: str
    kind: str = "panels"  # or "planes" (FITS cubes)
    panel_channels: tuple[list[int], list[int]] | None = None
    panel_indices: tuple[list[int], list[int]] | None = None
    bands: dict[int, str] = field(default_factory=dict)
    cube: CubeBands | None = None
    prior: dict | None = None
    notes: tuple[str, ...] = ()  # what the run must record about its data (inputs unlike training...)


class BaseDataset(torch_data.Dataset):
    """Subclasses set their own options in modify_commandline_options and implement __len__/__getitem__.
    A multi-panel dataset sets panel_channels and panel_indices (see DatasetDescription)."""

    def __init__(self, opt):
        self.opt = opt
        self.root = opt.dataroot

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        return parser

    def describe(self) -> DatasetDescription:
        """The panel layout and band names of the items (see DatasetDescription)."""
        from data.panels import band_names

        return DatasetDescription(mode=self.opt.dataset_mode, panel_channels=getattr(self, "panel_channels", None),
                                  panel_indices=getattr(self, "panel_indices", None),
                                  bands=band_names(self.opt.dataroot))

    def save_run_files(self) -> None:
        """Files the dataset keeps with the run (e.g. a fitted normalisation). The engine calls it
        when the run really starts, so a failed start overwrites nothing of an earlier run."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        raise NotImplementedError


def add_panel_options(parser):
    """Multi-panel options shared by aligned and single modes; skipped if already defined elsewhere."""
    known = getattr(parser, "_option_string_actions", {})
    if "--n_panels" not in known:
        parser.add_argument("--n_panels", type=int, default=0,
                            help="panels per image (A|B|C|D... side by side); 0 = width / height")
    if "--input_panels" not in known:
        parser.add_argument("--input_panels", type=str, default="",
                            help="comma-separated input panel numbers, e.g. 1,3 (panel 0 is A); default: all but 0")
    if "--panel_nc" not in known:
        parser.add_argument("--panel_nc", type=str, default="",
                            help="channels of each input panel when they differ, e.g. 3,1,3 (default: even split)")
    return parser


def get_params(opt, size: tuple[int, int]) -> dict:
    """One random crop position and flip for an image of `size` (w, h), as upstream draws them."""
    w, h = size
    new_w, new_h = w, h
    if opt.preprocess == "resize_and_crop":
        new_w = new_h = opt.load_size
    elif opt.preprocess == "scale_width_and_crop":
        new_w, new_h = opt.load_size, opt.load_size * h // w
    x = random.randint(0, max(0, new_w - opt.crop_size))
    y = random.randint(0, max(0, new_h - opt.crop_size))
    flip = random.random() > 0.5
    return {"crop_pos": (x, y), "flip": flip}


def size_before_crop(opt, size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) an image of `size` has after the resize step of --preprocess, before cropping."""
    w, h = size
    if "resize" in opt.preprocess:
        return opt.load_size, opt.load_size
    if "scale_width" in opt.preprocess:
        if w == opt.load_size and h >= opt.crop_size:
            return w, h
        return opt.load_size, int(max(opt.load_size * h / w, opt.crop_size))
    return w, h


def check_preprocess(opt, size: tuple[int, int], what: str) -> None:
    """UserError when --preprocess is unknown or `what` (an image/panel) is smaller than --crop_size."""
    if opt.preprocess not in PREPROCESS_MODES:
        raise UserError(f"unknown --preprocess {opt.preprocess!r}; choose one of {', '.join(PREPROCESS_MODES)}")
    if "crop" not in opt.preprocess:
        return
    if "resize" in opt.preprocess and opt.load_size < opt.crop_size:
        raise UserError(f"--load_size {opt.load_size} is smaller than --crop_size {opt.crop_size}")
    w, h = size_before_crop(opt, size)
    if w < opt.crop_size or h < opt.crop_size:
        resized = "" if (w, h) == tuple(size) else f" after --preprocess {opt.preprocess}"
        raise UserError(f"{what} is {w}x{h} pixels{resized}, smaller than --crop_size {opt.crop_size}")


def to_normalized_array(image: Image.Image) -> np.ndarray:
    """PIL image -> float32 (C, H, W) in [-1, 1]: ToTensor then Normalize(0.5, 0.5), bit for bit.

    numpy rather than torch: single-threaded, so a loader on a busy CPU does not stall on
    intra-op thread hand-offs (measured: ~10x slower with torch on a loaded 2-core machine).
    """
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    array = array / 255
    array -= 0.5
    array /= 0.5
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def to_normalized_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(to_normalized_array(image))


def _scale_width(img: Image.Image, target_size: int, crop_size: int, method) -> Image.Image:
    ow, oh = img.size
    if ow == target_size and oh >= crop_size:
        return img
    return img.resize((target_size, int(max(target_size * oh / ow, crop_size))), method)


def _make_power_2(img: Image.Image, base: int, method) -> Image.Image:
    ow, oh = img.size
    w, h = int(round(ow / base) * base), int(round(oh / base) * base)
    if (w, h) == (ow, oh):
        return img
    warnings.warn(f"image size ({ow}, {oh}) is not a multiple of {base}; resizing to ({w}, {h}) "
                  f"(shown once)", stacklevel=2)
    return img.resize((w, h), method)


def _crop(img: Image.Image, pos: tuple[int, int], size: int) -> Image.Image:
    ow, oh = img.size
    x1, y1 = pos
    if ow > size or oh > size:
        return img.crop((x1, y1, x1 + size, y1 + size))
    return img


def _random_crop(img: Image.Image, size: int) -> Image.Image:
    ow, oh = img.size
    y = int(torch.randint(0, oh - size + 1, (1,)).item())  # top first, as torchvision draws them
    x = int(torch.randint(0, ow - size + 1, (1,)).item())
    return img.crop((x, y, x + size, y + size))


def get_transform(opt, params: Optional[dict] = None, grayscale: bool = False,
                  method=Image.BICUBIC, convert: bool = True) -> Callable[[Image.Image], object]:
    """The upstream pipeline: [grey] -> resize/scale -> crop -> [power-of-4] -> flip -> tensor in [-1, 1].

    With params (from get_params) the crop and flip are fixed; without, they are drawn per call.
    """
    steps: list[Callable[[Image.Image], Image.Image]] = []
    if grayscale:
        steps.append(lambda img: img.convert("L"))
    if "resize" in opt.preprocess:
        steps.append(lambda img: img.resize((opt.load_size, opt.load_size), method))
    elif "scale_width" in opt.preprocess:
        steps.append(lambda img: _scale_width(img, opt.load_size, opt.crop_size, method))
    if "crop" in opt.preprocess:
        if params is None:
            steps.append(lambda img: _random_crop(img, opt.crop_size))
        else:
            steps.append(lambda img: _crop(img, params["crop_pos"], opt.crop_size))
    if opt.preprocess == "none":
        steps.append(lambda img: _make_power_2(img, 4, method))
    if not opt.no_flip:
        if params is None:
            steps.append(lambda img: img.transpose(Image.FLIP_LEFT_RIGHT) if torch.rand(1).item() < 0.5 else img)
        elif params["flip"]:
            steps.append(lambda img: img.transpose(Image.FLIP_LEFT_RIGHT))

    def transform(img: Image.Image):
        for step in steps:
            img = step(img)
        return to_normalized_tensor(img) if convert else img

    return transform


def read_image_size(path: str) -> tuple[int, int]:
    """(w, h) from the file header only (no pixel decoding); UserError naming an unreadable file."""
    _check_not_empty(path)
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None


def load_rgb(path: str) -> Image.Image:
    """Decode an image file once as 8-bit RGB; UserError naming a corrupt or empty file."""
    _check_not_empty(path)
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UserError(f"corrupt image file {path}: {err}") from None


def _check_not_empty(path: str) -> None:
    try:
        empty = os.path.getsize(path) == 0
    except OSError as err:
        raise UserError(f"cannot read image {path}: {err.strerror}") from None
    if empty:
        raise UserError(f"empty image file: {path}")
