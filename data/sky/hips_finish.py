"""Complete a HiPS tree from the tiles of its deepest order: lower orders, Allsky, MOC, properties.

Pure functions of what is on disk, so N shards writing the deepest order and one --finish pass give
the same tree as a single run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from util.fileio import atomic_write_bytes

from .hips_out import (DisplayStretch, fits_tile_bytes, png_tile_bytes, read_fits_tile, write_moc,
                       write_properties, write_tile, written_tiles)
from .source import ALLSKY_ORDER

ALLSKY_TILE = 64  # pixels per tile in Allsky images, as HipsGen writes them


def downsample_2x2(mosaic: np.ndarray) -> np.ndarray:
    """Mean of each 2x2 block, ignoring NaN; NaN where all four are NaN."""
    height, width = mosaic.shape
    blocks = mosaic.reshape(height // 2, 2, width // 2, 2)
    valid = np.isfinite(blocks)
    count = valid.sum(axis=(1, 3))
    total = np.where(valid, blocks, 0.0).sum(axis=(1, 3), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    mean[count == 0] = np.nan
    return mean.astype(np.float32)


def parent_tile(children: list[np.ndarray | None], width: int) -> np.ndarray:
    """Parent tile from its 4 children (nested index 4p + k): child k fills rows (k & 1) and columns
    (k >> 1) of the 2W mosaic, since index bit 0 is a row bit and bit 1 a column bit."""
    mosaic = np.full((2 * width, 2 * width), np.nan, dtype=np.float32)
    for k, child in enumerate(children):
        if child is not None:
            r, c = (k & 1) * width, (k >> 1) * width
            mosaic[r:r + width, c:c + width] = child
    return downsample_2x2(mosaic)


def build_lower_orders(root: Path, order: int, min_order: int, stretch: DisplayStretch,
                       progress: Callable[[str, int], Callable[[], None]] | None = None) -> dict[int, np.ndarray]:
    """Write orders order-1 .. min_order by 2x2 averaging; returns the tiles of every order."""
    tiles = {order: written_tiles(root, order)}
    for level in range(order - 1, min_order - 1, -1):
        children = tiles[level + 1]
        parents = np.unique(children >> 2)
        step = progress(f"order {level}", len(parents)) if progress else None
        present = set(children.tolist())
        for parent in parents.tolist():
            kids = [read_fits_tile(root, level + 1, 4 * parent + k) if 4 * parent + k in present else None
                    for k in range(4)]
            width = next(k for k in kids if k is not None).shape[0]
            write_tile(root, level, parent, parent_tile(kids, width), stretch)
            if step:
                step()
        tiles[level] = parents
    return tiles


def allsky_mosaic(root: Path, tiles: np.ndarray, order: int = ALLSKY_ORDER) -> np.ndarray:
    """Allsky layout read by clients (and tiles.allsky_tile): every tile of `order` shrunk to
    ALLSKY_TILE px, floor(sqrt(12 4^order)) per row, in tile order; NaN where there is no tile."""
    n_tiles = 12 * 4**order
    per_row = int(np.sqrt(n_tiles))
    rows = -(-n_tiles // per_row)
    first = read_fits_tile(root, order, int(tiles[0]))
    small = min(ALLSKY_TILE, first.shape[0])
    mosaic = np.full((rows * small, per_row * small), np.nan, dtype=np.float32)
    for ipix in tiles.tolist():
        values = read_fits_tile(root, order, ipix)
        factor = values.shape[0] // small
        shrunk = np.nanmean(values.reshape(small, factor, small, factor), axis=(1, 3)) if factor > 1 else values
        row, col = divmod(ipix, per_row)
        mosaic[row * small:(row + 1) * small, col * small:(col + 1) * small] = shrunk
    return mosaic


def write_allsky(root: Path, tiles: np.ndarray, stretch: DisplayStretch, order: int = ALLSKY_ORDER) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN block is NaN, as wanted
        mosaic = allsky_mosaic(root, tiles, order)
    atomic_write_bytes(root / f"Norder{order}" / "Allsky.fits", fits_tile_bytes(mosaic))  # flipped as a whole
    atomic_write_bytes(root / f"Norder{order}" / "Allsky.png", png_tile_bytes(stretch.levels(mosaic)))


def finish_tree(root: Path, order: int, min_order: int, stretch: DisplayStretch, properties: dict,
                progress=None) -> np.ndarray:
    """Lower orders, Allsky (when order 3 is in range), Moc.fits and properties; returns the deepest tiles."""
    tiles = build_lower_orders(root, order, min_order, stretch, progress)
    if min_order <= ALLSKY_ORDER <= order and len(tiles[ALLSKY_ORDER]):
        write_allsky(root, tiles[ALLSKY_ORDER], stretch)
    fraction = write_moc(root, tiles[order], order)
    write_properties(root, {**properties, "moc_sky_fraction": f"{fraction:.6g}"})
    return tiles[order]
