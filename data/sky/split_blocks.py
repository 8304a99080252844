"""Block split of a small field: square blocks of the field's own pixel grid (field_grid.py), each given
to one split.

With the split guard, a cutout belongs to a split when its footprint, widened by the guard band, touches
only blocks of that split; one that reaches a block of another split is dropped. So a cutout never overlaps
sky of another split. Without the guard, a cutout takes the split of the block under its centre.
The choice is written to dataset.json (`as_record`) and read back by predict_sky --truth (`from_record`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .field_grid import FieldGrid, cutout_boxes
from .split import MIXED, OUTSIDE, SPLITS

KIND = "blocks"
SLACK_PX = 0.5  # where a centre may lie is drawn this much tighter, so the exact footprints fit there


@dataclass(frozen=True)
class BlockSplit:
    """Blocks of `block_px` field pixels from `origin` (the pixel-edge corner of block (0, 0), field px);
    labels[row][col], row 0 = south. `size`, `projection`: the cutouts this split was chosen for."""

    field: FieldGrid
    block_px: float
    origin: tuple[float, float]
    labels: tuple[tuple[str, ...], ...]
    guard_px: float
    size: int
    projection: str = "TAN"
    notes: dict = field(default_factory=dict, compare=False)  # what the choice gives: reported and recorded

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.labels), len(self.labels[0])

    def block_counts(self) -> dict[str, int]:
        flat = [label for row in self.labels for label in row]
        return {name: flat.count(name) for name in SPLITS}

    def _cells(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        col = np.floor((np.asarray(x) - self.origin[0]) / self.block_px).astype(np.int64)
        row = np.floor((np.asarray(y) - self.origin[1]) / self.block_px).astype(np.int64)
        return row, col

    def _label(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        rows, cols = self.shape
        table = np.array(self.labels, dtype=object)
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        out = np.full(np.shape(row), "", dtype=object)
        out[inside] = table[row[inside], col[inside]]
        return out

    def split_of_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """The one split every block under each box (x0, x1, y0, y1 widened by the guard band) belongs to;
        '' when the box reaches blocks of two splits or leaves the grid."""
        g = self.guard_px
        row0, col0 = self._cells(boxes[:, 0] - g, boxes[:, 2] - g)
        row1, col1 = self._cells(boxes[:, 1] + g, boxes[:, 3] + g)
        result = self._label(row0, col0)
        span = int(max(np.max(row1 - row0, initial=0), np.max(col1 - col0, initial=0)))
        for dr in range(span + 1):
            for dc in range(span + 1):
                row, col = np.minimum(row0 + dr, row1), np.minimum(col0 + dc, col1)
                result = np.where(self._label(row, col) == result, result, "")
        return result.astype(str)

    def split_of(self, ra: np.ndarray, dec: np.ndarray, fov: float | np.ndarray, guard: bool) -> np.ndarray:
        """The split of cutouts centred at (ra, dec) ('' = dropped by the guard, or off the grid)."""
        if guard:
            return self.split_of_boxes(cutout_boxes(self.field, ra, dec, fov, self.size, self.projection))
        x, y = self.field.to_pixels(np.atleast_1d(ra), np.atleast_1d(dec))
        return self._label(*self._cells(x, y)).astype(str)

    def centre_rectangles(self, name: str, guard: bool) -> np.ndarray:
        """(K, 4) rectangles x0, x1, y0, y1 (field px) whose union is where a cutout of split `name` may be
        centred: with the guard, inside each group of 1 or 2 x 1 or 2 blocks of that split by half a cutout
        and the guard band (a cutout no wider than a block touches at most such a group); without, its blocks.
        """
        table = np.array(self.labels, dtype=object) == name
        rows, cols = table.shape
        half = self.size / 2 + self.guard_px + SLACK_PX if guard else 0.0
        shapes = ((1, 1), (1, 2), (2, 1), (2, 2)) if guard else ((1, 1),)
        found = []
        for height, width in shapes:
            for row in range(rows - height + 1):
                for col in range(cols - width + 1):
                    if table[row:row + height, col:col + width].all():
                        x0, y0 = self.origin[0] + col * self.block_px, self.origin[1] + row * self.block_px
                        found.append((x0 + half, x0 + width * self.block_px - half,
                                      y0 + half, y0 + height * self.block_px - half))
        rects = np.array(found, dtype=np.float64).reshape(-1, 4)
        return rects[(rects[:, 1] > rects[:, 0]) & (rects[:, 3] > rects[:, 2])]

    def reached(self, rows: list[dict], fov: float) -> dict[tuple[int, int], str]:
        """The split of every block a dataset's cutouts touch (their footprints): the one split whose cutouts
        reach it, or MIXED when several do (as split.split_sky_cells does for HEALPix cells)."""
        if not rows:
            return {}
        ra = np.array([float(r["ra"]) for r in rows])
        dec = np.array([float(r["dec"]) for r in rows])
        fovs = np.array([float(r.get("fov") or fov) for r in rows])
        boxes = cutout_boxes(self.field, ra, dec, fovs, self.size, self.projection)
        row0, col0 = self._cells(boxes[:, 0], boxes[:, 2])
        row1, col1 = self._cells(boxes[:, 1], boxes[:, 3])
        found: dict[tuple[int, int], set[str]] = {}
        for index, row in enumerate(rows):
            for r in range(row0[index], row1[index] + 1):
                for c in range(col0[index], col1[index] + 1):
                    found.setdefault((int(r), int(c)), set()).add(row.get("split") or MIXED)
        return {key: splits.pop() if len(splits) == 1 else MIXED for key, splits in found.items()}

    def sky_labels(self, ra: np.ndarray, dec: np.ndarray, reached: dict[tuple[int, int], str]) -> np.ndarray:
        """The label of each position: the split of its block as `reached` gives it, else OUTSIDE."""
        shape = np.shape(ra)
        x, y = self.field.to_pixels(np.ravel(ra), np.ravel(dec))
        row, col = self._cells(x, y)
        labels = np.array([reached.get((int(r), int(c)), OUTSIDE) for r, c in zip(row, col)], dtype=object)
        return labels.astype(str).reshape(shape) if labels.size else np.full(shape, OUTSIDE, dtype="<U8")

    def as_record(self) -> dict:
        return {"kind": KIND, "field": self.field.as_record(), "cutout_px": self.size, "projection": self.projection,
                "block_px": round(self.block_px, 4), "origin_px": [round(v, 4) for v in self.origin],
                "guard_px": self.guard_px, "blocks_south_row_first": [list(row) for row in self.labels],
                **self.notes}

    @classmethod
    def from_record(cls, record: dict) -> "BlockSplit":
        return cls(FieldGrid.from_record(record["field"]), float(record["block_px"]),
                   (float(record["origin_px"][0]), float(record["origin_px"][1])),
                   tuple(tuple(str(v) for v in row) for row in record["blocks_south_row_first"]),
                   float(record["guard_px"]), int(record["cutout_px"]), str(record.get("projection", "TAN")))
