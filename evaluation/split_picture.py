"""A picture of how a dataset's sky was split: the target band over the field, the blocks (or HEALPix cells)
coloured by split, and every cutout's outline in its split's colour.

Reads only the dataset's files (dataset.json, manifest.csv) and its target survey; scripts/plot_split.py
is the command. The figure in docs/sky-builder.md was made with it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data.sky.dataset_record import RECORD, recorded_split
from data.sky.field_grid import FieldGrid, cutout_boxes, field_around
from data.sky.geometry import OutputGrid
from data.sky.manifest import read_manifest
from data.sky.split import MIXED, SPLITS, split_sky_cells
from data.sky.split_blocks import BlockSplit
from evaluation.ablation_report import new_figure, save_png
from evaluation.science import AsinhStretch
from util.errors import UserError

COLOURS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#d62728", MIXED: "#7f7f7f"}


def _settings(dataset: Path) -> tuple[dict, list[str]]:
    try:
        record = json.loads((dataset / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{dataset}: no readable {RECORD} ({err}); give a folder aladin_data.py wrote") from None
    return record.get("settings", {}), list(record.get("sources", []))


def _background(field: FieldGrid, source: str | None, dataset: Path) -> np.ndarray | None:
    """The first survey over the field grid, row 0 = south (None when it cannot be read from here)."""
    from data.sky.surveys import open_engine

    if not source:
        return None
    for candidate in (source, str(dataset.parent / source)):
        try:
            engine = open_engine(candidate, science=True)
        except UserError:
            continue
        grid = OutputGrid(field.ra, field.dec, field.width * field.pixel_deg, field.width, field.height, "TAN")
        return engine.cutout(grid).values[::-1, :, 0]
    return None


def _healpix_cells(ax, field: FieldGrid, rows: list[dict], order: int, fov: float) -> None:
    import cdshealpix.nested as healpix

    cells = split_sky_cells(rows, order, fov)
    ids = np.array(sorted(cells), dtype=np.uint64)
    lon, lat = healpix.vertices(ids, order, step=16)
    for cell, cell_lon, cell_lat in zip(ids.tolist(), lon.deg, lat.deg):
        x, y = field.to_pixels(np.asarray(cell_lon), np.asarray(cell_lat))
        colour = COLOURS.get(cells[cell], COLOURS[MIXED])
        ax.fill(x, y, facecolor=colour, alpha=0.22, edgecolor=colour, linewidth=1.5)


def _blocks(ax, split: BlockSplit) -> None:
    from matplotlib.patches import Rectangle

    size = split.block_px
    for row, labels in enumerate(split.labels):
        for col, label in enumerate(labels):
            x0, y0 = split.origin[0] + col * size, split.origin[1] + row * size
            colour = COLOURS.get(label, COLOURS[MIXED])
            ax.add_patch(Rectangle((x0, y0), size, size, facecolor=colour, alpha=0.22, edgecolor=colour,
                                   linewidth=1.5))


def _view(boxes: np.ndarray, image: np.ndarray | None, size: int) -> tuple[float, float, float, float]:
    """The part of the field to show: the cutouts and the drawn survey's data, a fifth of a cutout around."""
    x0, x1, y0, y1 = boxes[:, 0].min(), boxes[:, 1].max(), boxes[:, 2].min(), boxes[:, 3].max()
    if image is not None and np.isfinite(image).any():
        rows, cols = np.nonzero(np.isfinite(image))
        x0, x1, y0, y1 = min(x0, cols.min() - 0.5), max(x1, cols.max() + 0.5), min(y0, rows.min() - 0.5), max(y1, rows.max() + 0.5)
    margin = size / 5
    return x0 - margin, x1 + margin, y0 - margin, y1 + margin


def draw_split(dataset: str | Path, png: str | Path, band: int = 0) -> Path:
    """Write the picture of `dataset`'s split to `png`; `band`: which survey to draw under it."""
    from matplotlib.lines import Line2D

    dataset = Path(dataset)
    settings, sources = _settings(dataset)
    rows = [r for r in read_manifest(dataset / "manifest.csv") if r.get("ra") and r.get("split")]
    if not rows:
        raise UserError(f"{dataset}: manifest.csv lists no cutout with a split")
    fov, size = float(settings.get("fov") or rows[0]["fov"]), int(settings.get("size") or rows[0]["size"])
    record = recorded_split(dataset)
    ra = np.array([float(r["ra"]) for r in rows])
    dec = np.array([float(r["dec"]) for r in rows])
    if record is not None:
        split = BlockSplit.from_record(record)
        field = split.field
        kind = f"blocks of {split.block_px:.0f} px ({split.block_px * field.pixel_deg * 60:.2f}')"
    else:
        split = None
        field = field_around(ra, dec, fov / size, pad_px=size)
        if field is None:
            raise UserError(f"{dataset}: its cutouts spread over too much sky for one picture")
        kind = f"HEALPix cells of order {settings.get('split_order')}"
    if max(field.width, field.height) > 4096:
        raise UserError(f"{dataset}: the field is {field.width} x {field.height} px; too large to draw")
    image = _background(field, sources[band] if band < len(sources) else None, dataset)
    boxes = cutout_boxes(field, ra, dec, np.array([float(r.get("fov") or fov) for r in rows]), size,
                         str(settings.get("projection", "TAN")))
    x0, x1, y0, y1 = _view(boxes, image, size)
    fig = new_figure(7.5, 6.6 * (y1 - y0) / (x1 - x0) + 0.9)
    ax = fig.add_axes((0.1, 0.08, 0.86, 0.84))
    if image is not None:
        stretch = AsinhStretch.fit(image)
        ax.imshow(stretch.apply(image), origin="lower", cmap="gray", interpolation="nearest",
                  extent=(-0.5, field.width - 0.5, -0.5, field.height - 0.5))
    if split is not None:
        _blocks(ax, split)
    else:
        _healpix_cells(ax, field, rows, int(settings.get("split_order")), fov)
    for (bx0, bx1, by0, by1), row in zip(boxes, rows):
        ax.plot([bx0, bx1, bx1, bx0, bx0], [by0, by0, by1, by1, by0], color=COLOURS.get(row["split"], COLOURS[MIXED]),
                linewidth=0.8, alpha=0.9)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    arcmin = field.pixel_deg * 60
    ax.set_xlabel(f"field pixel ({arcmin * 60:.3g}\"; east left)")
    ax.set_ylabel("field pixel (north up)")
    counts = {name: sum(1 for r in rows if r["split"] == name) for name in SPLITS}
    ax.legend(handles=[Line2D([], [], color=COLOURS[name], linewidth=6, alpha=0.5,
                              label=f"{name}: {counts[name]} cutouts") for name in SPLITS],
              loc="upper right", fontsize=8, framealpha=0.8)
    ax.set_title(f"{dataset.name}: {kind}; cutouts of {size} px ({size * arcmin:.2f}') outlined", fontsize=10)
    return save_png(fig, Path(png))
