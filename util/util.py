"""Image conversion and small file helpers shared by the datasets, the models' visuals, the
training display and test.py. torch-free: a tensor is read through its numpy view.

Unlike upstream, tensor2im copes with any channel count (multi-band inputs stack 6, 9, 12...
channels) and clips, so a visual never crashes a training run or wraps around in uint8.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from util.fileio import atomic_write_bytes

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")
# CIE Lab scaled as upstream's colorization: L / 50 - 1 and ab / 110, both about [-1, 1]
L_SCALE, L_SHIFT, AB_SCALE = np.float32(50.0), np.float32(1.0), np.float32(110.0)


def is_image_file(filename: str) -> bool:
    return filename.lower().endswith(IMG_EXTENSIONS)


def rgb_to_normalized_lab(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HxWx3 uint8 RGB -> (L (1, H, W), ab (2, H, W)) float32, scaled as upstream's colorization."""
    from skimage import color

    lab = color.rgb2lab(rgb).astype(np.float32).transpose(2, 0, 1)
    return lab[[0]] / L_SCALE - L_SHIFT, lab[1:] / AB_SCALE


def normalized_lab_to_rgb(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The inverse for one image: (1, H, W) and (2, H, W) float arrays -> HxWx3 float RGB in [0, 1].

    Predicted colours often fall outside the RGB gamut; skimage clips them and warns each time,
    which would flood the training log, so that warning is silenced here."""
    import warnings

    from skimage import color

    lab = np.concatenate([(L.astype(np.float32) + L_SHIFT) * L_SCALE, ab.astype(np.float32) * AB_SCALE], axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return color.lab2rgb(lab.transpose(1, 2, 0))


def _grey_to_rgb(channel: np.ndarray) -> np.ndarray:
    return np.repeat(channel[:, :, None], 3, axis=2)


def _channel_tiles(chw: np.ndarray) -> list[np.ndarray]:
    """Split (C, H, W) into HxWx3 pictures: groups of three channels as colour, the rest as grey."""
    n_channels = chw.shape[0]
    if n_channels == 1:
        return [_grey_to_rgb(chw[0])]
    n_colour = n_channels // 3
    tiles = [np.transpose(chw[3 * i:3 * i + 3], (1, 2, 0)) for i in range(n_colour)]
    tiles += [_grey_to_rgb(chw[c]) for c in range(3 * n_colour, n_channels)]
    return tiles


def tensor2im(input_image: Any, imtype: type = np.uint8) -> np.ndarray:
    """A tensor in [-1, 1] -> an HxWx3 image in [0, 255] (only the first item of a batch).

    1 channel -> grey RGB, 3 -> RGB, any other count -> channel groups tiled side by side.
    A numpy array is taken as an image already (grey 2-D arrays become RGB).
    """
    if isinstance(input_image, np.ndarray):
        image = input_image if input_image.ndim == 3 else _grey_to_rgb(input_image)
        return image.astype(imtype)
    tensor = input_image.detach() if hasattr(input_image, "detach") else input_image
    array = np.asarray(tensor.cpu().float().numpy() if hasattr(tensor, "cpu") else tensor, dtype=np.float32)
    while array.ndim > 3:
        array = array[0]
    if array.ndim == 2:
        array = array[None]
    tiles = _channel_tiles(array)
    image = np.concatenate(tiles, axis=1) if len(tiles) > 1 else tiles[0]
    image = np.nan_to_num(image, nan=-1.0, posinf=1.0, neginf=-1.0)
    image = np.clip((image + 1.0) / 2.0 * 255.0, 0.0, 255.0)
    return image.astype(imtype)


def resized_for_aspect(width: int, height: int, aspect_ratio: float) -> tuple[int, int]:
    """(width, height) after the --aspect_ratio stretch: >1 widens, <1 heightens (upstream swaps them)."""
    if aspect_ratio > 1.0:
        return int(round(width * aspect_ratio)), height
    if aspect_ratio < 1.0:
        return width, int(round(height / aspect_ratio))
    return width, height


def save_image(image_numpy: np.ndarray, image_path: str | os.PathLike, aspect_ratio: float = 1.0) -> None:
    """Write an HxW(x3) uint8 array as an image file, atomically (format from the extension)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(image_numpy))
    size = resized_for_aspect(image.width, image.height, aspect_ratio)
    if size != image.size:
        image = image.resize(size, Image.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format=Image.registered_extensions().get(Path(image_path).suffix.lower(), "PNG"))
    atomic_write_bytes(image_path, buffer.getvalue())


def print_numpy(x: np.ndarray, val: bool = True, shp: bool = False) -> None:
    """Print shape and mean/min/max/median/std of an array (a quick look while debugging)."""
    x = np.asarray(x, dtype=np.float64)
    if shp:
        print("shape,", x.shape)
    if val:
        flat = x.flatten()
        print(f"mean = {np.mean(flat):3.3f}, min = {np.min(flat):3.3f}, max = {np.max(flat):3.3f}, "
              f"median = {np.median(flat):3.3f}, std={np.std(flat):3.3f}")


def mkdir(path: str | os.PathLike) -> None:
    os.makedirs(path, exist_ok=True)


def mkdirs(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> None:
    """Create one folder or each folder of a list (upstream accepts both)."""
    if isinstance(paths, (str, os.PathLike)):
        mkdir(paths)
    else:
        for path in paths:
            mkdir(path)
