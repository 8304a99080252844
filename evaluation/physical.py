"""Generated and real values in physical units, for results of float FITS cubes.

The results manifest of a cube dataset names, per item, the generated FITS (the network's output
with the training normalisation inverted) and where the real target is: the source cube, the
target planes and the crop box in picture rows. So the real values come straight from the cube,
not from an 8-bit picture of them. Both arrays are in FITS row order (row 0 = the bottom), the
orientation of the generated file: its writer undoes the training flip, so the flip needs no
second undoing here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data.sky.fits_io import read_cube
from util.errors import UserError
from util.results_manifest import Item


def physical_pair(results_dir: str | Path, item: Item) -> tuple[np.ndarray, np.ndarray]:
    """(generated, real), each (planes, height, width) float32 with NaN where there is no data."""
    generated, source = generated_and_source(results_dir, item)
    return generated, source[item.target.planes]


def generated_and_source(results_dir: str | Path, item: Item) -> tuple[np.ndarray, np.ndarray]:
    """(generated, every plane of the source cube over the item's crop), each file read once."""
    if item.generated is None or item.generated.fits is None or item.target is None or not item.target.planes:
        raise UserError(f"{item.stem}: the results manifest names no FITS output and source planes "
                        f"(not a --dataset_mode fits_aligned result)")
    generated = read_cube(str(Path(results_dir) / item.generated.fits)).planes
    cube = read_cube(item.target.source).planes
    height, width = cube.shape[1:]
    x, y, w, h = item.target.crop_box or (0, 0, width, height)
    bottom = height - y - h  # picture row y is the top of the crop
    source = cube[:, bottom:bottom + h, x:x + w]
    if (len(item.target.planes), *source.shape[1:]) != generated.shape:
        raise UserError(f"{item.stem}: the generated FITS is {generated.shape}, the target's crop "
                        f"{(len(item.target.planes), *source.shape[1:])}")
    return generated, source
