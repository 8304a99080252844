"""Find image files under a folder: upstream's extensions plus .webp, sorted, recursive."""
from __future__ import annotations

import os

from util.errors import UserError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")


def is_image_file(filename: str) -> bool:
    return filename.lower().endswith(IMG_EXTENSIONS)


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
