"""The field's own pixel grid: a TAN grid, north up, at the cutouts' pixel scale, over the sky the surveys share.

A small field (a pointed observation of a few arcminutes) is split in blocks of this grid (split_blocks.py):
in its pixels a cutout is a size x size square, so blocks and guard bands are plain rectangles. Positions go
through astropy's WCS (the same `make_wcs` as the cutouts); a cutout's outline in the grid comes from its
own border, so a rotated or distorted footprint is bounded too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .geometry import ZENITHAL, OutputGrid, _lonlat, _unit_vectors, make_wcs

BORDER_POINTS = 5  # per side of a cutout, corners included: zenithal projections other than TAN bend edges
MAX_FIELD_PX = 16384  # a field wider than this many cutout pixels is not small: HEALPix cells split it


@dataclass(frozen=True)
class FieldGrid:
    """Centre (ICRS deg), pixel size (deg) and size (px); pixel (0, 0) is the south-east corner's centre
    (FITS order, 0-based: x grows west, y north)."""

    ra: float
    dec: float
    pixel_deg: float
    width: int
    height: int

    @cached_property
    def wcs(self):
        return make_wcs(OutputGrid(self.ra, self.dec, self.width * self.pixel_deg, self.width, self.height, "TAN"))

    def to_pixels(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.wcs.wcs_world2pix(np.ravel(ra), np.ravel(dec), 0)
        return x.reshape(np.shape(ra)), y.reshape(np.shape(ra))

    def to_sky(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ra, dec = self.wcs.wcs_pix2world(np.ravel(x), np.ravel(y), 0)
        return (ra % 360.0).reshape(np.shape(x)), dec.reshape(np.shape(x))

    def pixel_centres(self, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """ICRS (ra, dec) of every `step`-th pixel centre, arrays (rows, cols), row 0 = south."""
        ys, xs = np.mgrid[0:self.height:step, 0:self.width:step].astype(np.float64)
        return self.to_sky(xs, ys)

    def as_record(self) -> dict:
        return {"centre": [round(self.ra, 7), round(self.dec, 7)], "pixel_arcsec": round(self.pixel_deg * 3600, 6),
                "size_px": [self.width, self.height]}

    @classmethod
    def from_record(cls, record: dict) -> "FieldGrid":
        return cls(float(record["centre"][0]), float(record["centre"][1]), float(record["pixel_arcsec"]) / 3600,
                   int(record["size_px"][0]), int(record["size_px"][1]))


def field_around(ra: np.ndarray, dec: np.ndarray, pixel_deg: float, pad_px: float) -> FieldGrid | None:
    """The grid centred on positions spread over a field (e.g. random draws in the shared area), reaching
    `pad_px` beyond them; None when they span more than a hemisphere's tangent plane can hold or more than
    MAX_FIELD_PX pixels (not a small field)."""
    vectors = _unit_vectors(np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64))
    mean = vectors.mean(axis=1)
    if np.linalg.norm(mean) < 0.5:
        return None
    centre_ra, centre_dec = (float(v) for v in _lonlat(mean / np.linalg.norm(mean)))
    cosine = (mean / np.linalg.norm(mean)) @ vectors
    if cosine.min() < math.cos(math.radians(60)):
        return None
    probe = FieldGrid(centre_ra, centre_dec, pixel_deg, 1, 1)
    x, y = probe.to_pixels(np.asarray(ra), np.asarray(dec))  # offsets from the centre pixel (0, 0)
    half_w = float(np.max(np.abs(x))) + pad_px
    half_h = float(np.max(np.abs(y))) + pad_px
    width, height = 2 * math.ceil(half_w) + 1, 2 * math.ceil(half_h) + 1
    if max(width, height) > MAX_FIELD_PX:
        return None
    return FieldGrid(centre_ra, centre_dec, pixel_deg, width, height)


def _border_pixels(size: int) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixel coordinates along the outer edge of a size x size grid (pixel edges, not centres)."""
    edge = np.linspace(-0.5, size - 0.5, BORDER_POINTS)
    low, high = np.full(BORDER_POINTS, -0.5), np.full(BORDER_POINTS, size - 0.5)
    return np.concatenate([edge, edge, low, high]), np.concatenate([low, high, edge, edge])


def cutout_boxes(field: FieldGrid, ra: np.ndarray, dec: np.ndarray, fov: float | np.ndarray, size: int,
                 projection: str = "TAN") -> np.ndarray:
    """(N, 4) bounding boxes x0, x1, y0, y1 in field pixels (pixel edges) of the cutouts centred at (ra, dec).

    Zenithal grids: the border at (0, 0) rotated to each centre (geometry.centre_rotation), exact for them;
    others through one WCS per cutout.
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    fovs = np.broadcast_to(np.asarray(fov, dtype=np.float64), ra.shape)
    cols, rows = _border_pixels(size)
    boxes = np.empty((len(ra), 4))
    for value in np.unique(fovs):
        pick = np.flatnonzero(fovs == value)
        if projection in ZENITHAL:
            wcs = make_wcs(OutputGrid(0.0, 0.0, float(value), size, size, projection))
            origin = _unit_vectors(*wcs.wcs_pix2world(cols, rows, 0))  # (3, P)
            a, d = np.radians(ra[pick]), np.radians(dec[pick])
            # Rz(ra) . Ry(-dec) for every centre at once (centre_rotation, vectorised)
            x0, y0, z0 = origin
            x1 = np.cos(d)[:, None] * x0 - np.sin(d)[:, None] * z0
            z1 = np.sin(d)[:, None] * x0 + np.cos(d)[:, None] * z0
            xs = np.cos(a)[:, None] * x1 - np.sin(a)[:, None] * y0
            ys = np.sin(a)[:, None] * x1 + np.cos(a)[:, None] * y0
            lon, lat = _lonlat(np.stack([xs, ys, z1]))
        else:
            lon = np.empty((len(pick), len(cols)))
            lat = np.empty_like(lon)
            for row, index in enumerate(pick):
                wcs = make_wcs(OutputGrid(float(ra[index]), float(dec[index]), float(value), size, size, projection))
                lon[row], lat[row] = wcs.wcs_pix2world(cols, rows, 0)
        x, y = field.to_pixels(lon, lat)
        boxes[pick] = np.stack([x.min(axis=1), x.max(axis=1), y.min(axis=1), y.max(axis=1)], axis=1)
    return boxes

