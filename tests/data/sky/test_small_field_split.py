"""The sky split on a small pointed field (issue 22): a 5' field gets blocks of its own pixel grid, each split
its share of the sky, no cutout overlapping sky of another split, the choice recorded and followed by
predict_sky --truth; a field too small says so with the numbers.

Before the fix, this field was split by HEALPix cells of order 10 (3.4' across): 32 train, 0 val and 0 test
cutouts, and each of these tests failed.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from data.sky.cli import main as cli_main
from prediction.truth import sky_labels
from util.errors import UserError

CENTRE = (150.10, 2.20)
ARCSEC, SHAPE = 2.0, (150, 150)  # 5' x 5'
SIZE = 24
FOV = SIZE * 3.0 / 3600  # 3"/px: cutouts of 1.2'


def image(path: Path, ctype: str, rotation: float, shift: tuple[float, float], seed: int) -> Path:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = [f"RA---{ctype}", f"DEC--{ctype}"]
    wcs.wcs.crval = [CENTRE[0] + shift[0] / 3600, CENTRE[1] + shift[1] / 3600]
    wcs.wcs.crpix = [(SHAPE[1] + 1) / 2, (SHAPE[0] + 1) / 2]
    wcs.wcs.cdelt = [-ARCSEC / 3600, ARCSEC / 3600]
    angle = math.radians(rotation)
    wcs.wcs.pc = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    data = np.random.default_rng(seed).normal(100.0, 5.0, SHAPE).astype(np.float32)
    fits.PrimaryHDU(data, header=wcs.to_header()).writeto(path)
    return path


@pytest.fixture(scope="module")
def field(tmp_path_factory) -> list[Path]:
    """Three bands of one 5' pointing, as a user holds them: other projections, a rotation, small offsets."""
    folder = tmp_path_factory.mktemp("small_field")
    return [image(folder / "k.fits", "TAN", 0.0, (0.0, 0.0), 0), image(folder / "j.fits", "TAN", 12.0, (4.0, -3.0), 1),
            image(folder / "w.fits", "SIN", 0.0, (-5.0, 2.0), 2)]


def build(field: list[Path], out: Path, *extra: str, fov: float = FOV, size: int = SIZE) -> None:
    cli_main(["--surveys", *map(str, field), "--sample", "40", "--fov", f"{fov:.6f}", "--size", str(size),
              "--min_coverage", "0.99", "--fits", "--out", str(out), "--no_progress", "--quiet", *extra])


def manifest(out: Path) -> list[dict]:
    with (out / "manifest.csv").open() as handle:
        return list(csv.DictReader(handle))


def overlapping_pairs(out: Path, rows: list[dict], guard_px: float) -> list[tuple[str, str]]:
    """Pairs of cutouts of different splits whose footprints come closer than the guard band, judged from
    the written cubes' own WCS (astropy), not from the builder's geometry: every point of one cutout (its
    pixel edges, a 49 x 49 lattice) mapped into the other's pixels."""
    wcs = {r["file"]: WCS(fits.getheader(out / r["fits"])).celestial for r in rows}
    steps = np.linspace(-0.5, SIZE - 0.5, 49)
    px, py = np.meshgrid(steps, steps)
    found = []
    for index, a in enumerate(rows):
        sky = wcs[a["file"]].pixel_to_world(px.ravel(), py.ravel())
        for b in rows[index + 1:]:
            if a["split"] == b["split"]:
                continue
            x, y = wcs[b["file"]].world_to_pixel(sky)
            low, high = -0.5 - guard_px, SIZE - 0.5 + guard_px
            if np.any((x > low) & (x < high) & (y > low) & (y < high)):
                found.append((a["file"], b["file"]))
    return found


@pytest.fixture(scope="module")
def built(field, tmp_path_factory) -> tuple[Path, str]:
    """The 5' field's dataset (--sample 40) and what the run printed."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("built") / "ds"
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        build(field, out)
    return out, printed.getvalue()


def test_a_5_arcmin_field_is_split_in_blocks_at_the_requested_fractions(built):
    out, printed = built
    rows = manifest(out)
    counts = {name: sum(r["split"] == name for r in rows) for name in ("train", "val", "test")}
    assert counts == {"train": 32, "val": 4, "test": 4}
    record = json.loads((out / "dataset.json").read_text())["split"]
    assert record["kind"] == "blocks" and record["cutout_px"] == SIZE and record["guard_px"] >= 1
    shares = record["sky_fractions"]
    assert sum(abs(shares[k] - f) for k, f in zip(("train", "val", "test"), (0.8, 0.1, 0.1))) <= 0.1
    labels = {label for row in record["blocks_south_row_first"] for label in row}
    assert labels == {"train", "val", "test"}
    # the run says what it chose, in one line each for the split and for the overlap
    split_lines = [line for line in printed.splitlines() if line.startswith("split: ")]
    assert len(split_lines) == 1 and "blocks of its own pixel grid (not HEALPix cells" in split_lines[0]
    overlap = [line for line in printed.splitlines() if line.startswith("overlap: ")]
    assert len(overlap) == 1 and "test 4 over " in overlap[0]
    assert {k: v["cutouts"] for k, v in record["overlap"].items()} == counts
    assert all(0 < v["disjoint_equivalent"] <= v["cutouts"] for v in record["overlap"].values())
    # the guard: no cutout reaches within a pixel of a cutout of another split (and they do come close)
    assert overlapping_pairs(out, rows, record["guard_px"]) == []
    assert overlapping_pairs(out, rows, 30.0), "cutouts of different splits never came near: the check proves nothing"


def test_predict_sky_truth_follows_the_recorded_blocks(built):
    out, _ = built
    rows = manifest(out)
    for name in ("train", "val", "test"):
        ra = np.array([float(r["ra"]) for r in rows if r["split"] == name])
        dec = np.array([float(r["dec"]) for r in rows if r["split"] == name])
        assert set(sky_labels(ra, dec, str(out)).tolist()) == {name}
    far = sky_labels(np.array([CENTRE[0] + 1.0]), np.array([CENTRE[1]]), str(out))
    assert far.tolist() == ["outside"]


def test_the_split_picture(built, tmp_path):
    from PIL import Image

    from scripts.plot_split import main

    png = main([str(built[0]), "--out", str(tmp_path / "split.png")])
    with Image.open(png) as picture:
        assert picture.size[0] >= 600 and picture.size[1] >= 500
        colours = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    red = (colours[:, 0] > 150) & (colours[:, 1] < 90) & (colours[:, 2] < 90)  # the test cutouts' outlines
    assert red.sum() > 100


def test_grid_sampling_and_a_shard_agree_with_the_block_split(field, tmp_path):
    build(field, tmp_path / "grid", "--sample_mode", "grid")
    rows = manifest(tmp_path / "grid")
    assert sorted(r["split"] for r in rows).count("test") == 4 and len(rows) == 40
    build(field, tmp_path / "shard", "--shard", "1/2")
    with (tmp_path / "shard" / "manifest.shard1of2.csv").open() as handle:
        shard = list(csv.DictReader(handle))
    build(field, tmp_path / "whole")
    whole = {r["name"]: r["split"] for r in manifest(tmp_path / "whole")}
    assert shard and all(whole[r["name"]] == r["split"] for r in shard)


def test_a_field_too_small_says_so_with_the_numbers(field, tmp_path):
    with pytest.raises(UserError) as caught:
        build(field, tmp_path / "big", fov=SIZE * 8.0 / 3600)  # 3.2' cutouts in a 5' field
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300
    assert "field too small for train, val and test" in message and "3.20' (24 px at 8\"/px)" in message
    assert "--size" in message and "sample" not in message
    fits_at = int(message.split("use --size ")[1].split()[0])
    assert 8 <= fits_at < SIZE
    build(field, tmp_path / "fits", fov=fits_at * 8.0 / 3600, size=fits_at)  # the advice holds
    assert sum(r["split"] == "test" for r in manifest(tmp_path / "fits")) == 4
    finer = float(message.split("--fov ")[1].split()[0])  # and so does its finer pixel scale at the same size
    build(field, tmp_path / "finer", fov=finer, size=SIZE)
    assert sum(r["split"] == "test" for r in manifest(tmp_path / "finer")) == 4


def source_pixels_read(out: Path, rows: list[dict], source: Path) -> dict[str, set[tuple[int, int]]]:
    """Per split, the source pixels the bilinear resampling reads for its cutouts: every cutout pixel centre
    (the written cube's own WCS) mapped into the source image, its 4 neighbouring source pixels."""
    source_wcs = WCS(fits.getheader(source)).celestial
    read: dict[str, set[tuple[int, int]]] = {}
    for row in rows:
        header = fits.getheader(out / row["fits"])
        wcs = WCS(header).celestial
        py, px = np.mgrid[0:header["NAXIS2"], 0:header["NAXIS1"]]
        x, y = source_wcs.world_to_pixel(wcs.pixel_to_world(px.ravel(), py.ravel()))
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        found = read.setdefault(row["split"], set())
        for dx in (0, 1):
            for dy in (0, 1):
                found.update(zip((x0 + dx).tolist(), (y0 + dy).tolist()))
    return read


def test_no_source_pixel_is_read_by_two_splits_when_cutouts_are_finer_than_the_survey(tmp_path):
    """Cutouts at 2"/px from 6"/px images, one turned by 30 degrees: a 1 px guard band let train and test
    cutouts read the same source pixels (an independent check: 21 of a 5' Galactic-centre cut's 2MASS pixels);
    the band now grows with the coarsest source pixel."""
    def coarse(path: Path, rotation: float, seed: int) -> Path:
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = list(CENTRE)
        wcs.wcs.crpix = [25.5, 25.5]
        wcs.wcs.cdelt = [-6.0 / 3600, 6.0 / 3600]
        angle = math.radians(rotation)
        wcs.wcs.pc = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
        data = np.random.default_rng(seed).normal(100.0, 5.0, (50, 50)).astype(np.float32)
        fits.PrimaryHDU(data, header=wcs.to_header()).writeto(path)
        return path

    images = [coarse(tmp_path / "k.fits", 0.0, 0), coarse(tmp_path / "j.fits", 30.0, 1)]
    out = tmp_path / "ds"
    build(images, out, fov=SIZE * 2.0 / 3600)
    rows = manifest(out)
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    for source in images:
        read = source_pixels_read(out, rows, source)
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            assert not read[a] & read[b], (source.name, a, b, len(read[a] & read[b]))
