"""Find image files under a folder: upstream's extensions plus .webp, sorted, recursive."""
from __future__ import annotations

import os

from util.errors import UserError
from util.util import is_image_file


def make_dataset(folder: str | os.PathLike, max_dataset_size: float = float("inf")) -> list[str]:
    """Every image path under `folder` in sorted order, at most max_dataset_size of them.

    A missing folder is a user mistake (wrong --dataroot / --phase), so it raises UserError.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise UserError(f"image folder not found: {folder}")
    images = sorted(
        os.path.join(root, name)
        for root, _dirs, names in os.walk(folder, followlinks=True)
        for name in names
        if is_image_file(name)
    )
    limit = len(images) if max_dataset_size == float("inf") else int(max_dataset_size)
    return images[:max(0, limit)]


def list_images_under(dataroot: str, subfolder: str, max_dataset_size: float, layout: str) -> list[str]:
    """Sorted images of DATAROOT/subfolder, checked as a user would want: a missing --dataroot,
    a missing subfolder (`layout` says where the mode reads from), no images, or empty files
    each give one clear UserError."""
    if not os.path.isdir(dataroot):
        raise UserError(f"--dataroot folder not found: {dataroot}")
    folder = os.path.join(dataroot, subfolder)
    if not os.path.isdir(folder):
        raise UserError(f"no '{subfolder}' folder in --dataroot {dataroot} ({layout}; set --phase)")
    paths = make_dataset(folder, max_dataset_size)
    if not paths:
        raise UserError(f"no images in {folder} (looked for .png, .jpg, .jpeg, .bmp, .ppm, .tif, .tiff, .webp)")
    empty = [p for p in paths if os.path.getsize(p) == 0]
    if empty:
        more = f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""
        raise UserError(f"empty image file: {empty[0]}{more}")
    return paths
