"""Generated and real values in physical units, for results of float FITS cubes.

The results manifest of a cube dataset names, per item, the generated FITS (the network's output
with the training normalisation inverted) and where the real target is: the source cube, the
target planes and the crop box in picture rows. So the real values come straight from the cube,
not from an 8-bit picture of them. Both arrays are in FITS row order (row 0 = the bottom), the
orientation of the generated file: its writer undoes the training flip, so the flip needs no
second undoing here.

The manifest is a plain JSON file anyone can edit; the FITS files carry their own record (the
generated file: SRCFILE, TGPLANES, BUNIT and the sky WCS of its pixels; the source cube: PLNAMn,
PLUNIn). Where the two disagree, the files win and a note says so (`notes`); where the files cannot
settle it, a one-line error.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from data.sky.fits_io import FitsCube, celestial_wcs, read_cube, read_header
from util.errors import UserError
from util.results_manifest import Item, RunInfo

WCS_TOLERANCE_PX = 0.01  # a generated FITS cut from the cube sits on its pixel grid to rounding


def physical_pair(results_dir: str | Path, item: Item, notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(generated, real), each (planes, height, width) float32 with NaN where there is no data."""
    generated, source, planes = generated_and_source(results_dir, item, notes)
    return generated, source[planes]


def generated_and_source(results_dir: str | Path, item: Item, notes: list[str] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(generated, every plane of the source cube over the item's pixels, the target planes), each file
    read once. Disagreements between the manifest and the files are appended to `notes`."""
    if item.generated is None or item.generated.fits is None or item.target is None or not item.target.planes:
        raise UserError(f"{item.stem}: the results manifest names no FITS output and source planes "
                        f"(not a --dataset_mode fits_aligned result)")
    notes = [] if notes is None else notes
    generated = read_cube(str(Path(results_dir) / item.generated.fits))
    source_path = checked_source(item, generated.header, notes)
    cube = read_cube(source_path)
    planes = checked_planes(item, generated.header, cube, notes)
    height, width = cube.planes.shape[1:]
    x, y, w, h = item.target.crop_box or (0, 0, width, height)
    bottom = height - y - h  # picture row y is the top of the crop
    x, bottom = checked_position(item, generated, cube, (x, bottom), notes)
    h, w = generated.planes.shape[1:]
    source = cube.planes[:, max(bottom, 0):bottom + h, max(x, 0):x + w]
    if (len(planes), *source.shape[1:]) != generated.planes.shape:
        raise UserError(f"{item.stem}: the generated FITS is {generated.planes.shape}, the target's crop "
                        f"{(len(planes), *source.shape[1:])}")
    return generated.planes, source, planes


def checked_source(item: Item, header, notes: list[str]) -> str:
    """The cube the generated FITS was made from: the manifest's, unless the file's SRCFILE names another."""
    source = str(item.target.source)
    made_from = str(header.get("SRCFILE", "")).strip()
    if not made_from or os.path.basename(source)[-68:] == made_from:
        return source
    beside = Path(source).parent / made_from
    if not beside.is_file():
        raise UserError(f"{item.stem}: the results manifest names {source} as the real target, but the generated "
                        f"FITS was made from {made_from} (its SRCFILE), which is not beside it; run test.py again")
    notes.append(f"{item.stem}: the results manifest pairs it with {os.path.basename(source)}, but the generated "
                 f"FITS was made from {made_from} (its SRCFILE): scored against {made_from}")
    return str(beside)


def recorded_planes(header, key: str) -> list[int] | None:
    """TGPLANES / INPLANES of a generated FITS ('0' or '1,2'); None when absent or unreadable."""
    text = str(header.get(key, "")).strip()
    try:
        return [int(p) for p in text.split(",")] if text else None
    except ValueError:
        return None


def checked_planes(item: Item, header, cube: FitsCube, notes: list[str]) -> list[int]:
    """The target planes the generated FITS records (TGPLANES), else the manifest's; all inside the cube."""
    planes = list(item.target.planes)
    from_file = recorded_planes(header, "TGPLANES")
    if from_file is not None and from_file != planes:
        notes.append(f"the results manifest says target plane(s) {planes}, the generated FITS {from_file} "
                     f"(TGPLANES): {from_file} is used")
        planes = from_file
    n_planes = cube.planes.shape[0]
    outside = [p for p in planes if not 0 <= p < n_planes]
    if outside:
        raise UserError(f"{item.stem}: target plane {outside[0]} is not in {cube.path} ({n_planes} planes, "
                        f"0..{n_planes - 1}); the results manifest is damaged, run test.py again")
    return planes


def checked_position(item: Item, generated: FitsCube, cube: FitsCube, corner: tuple[int, int],
                     notes: list[str]) -> tuple[int, int]:
    """(column, row) of the generated pixels' first corner in the cube: the manifest's crop box when the
    generated FITS's sky WCS agrees, else where that WCS puts them on the cube's pixel grid."""
    gen_wcs, cube_wcs = celestial_wcs(generated.header), celestial_wcs(cube.header)
    if gen_wcs is None or cube_wcs is None:
        return corner  # nothing to compare (a cube without WCS, --allow_no_wcs)
    h, w = generated.planes.shape[1:]
    pixels = np.array([[0.0, 0.0], [w - 1.0, 0.0], [0.0, h - 1.0], [w - 1.0, h - 1.0], [(w - 1) / 2, (h - 1) / 2]])
    try:
        world = gen_wcs.pixel_to_world_values(pixels[:, 0], pixels[:, 1])
        in_cube = np.stack(cube_wcs.world_to_pixel_values(*world), axis=1)
    except Exception:  # noqa: BLE001 - a WCS astropy cannot invert: nothing to compare
        return corner
    offsets = in_cube - pixels
    if not np.all(np.isfinite(offsets)):
        return corner
    expected = np.array(corner, dtype=float)
    if np.all(np.abs(offsets - expected) < WCS_TOLERANCE_PX):
        return corner
    found = np.round(offsets[0])
    height, width = cube.planes.shape[1:]
    on_grid = np.all(np.abs(offsets - found) < WCS_TOLERANCE_PX)
    inside = 0 <= found[0] and 0 <= found[1] and found[0] + w <= width and found[1] + h <= height
    if not (on_grid and inside):
        raise UserError(f"{item.stem}: the generated FITS covers other sky than the target cube "
                        f"{os.path.basename(cube.path)} at the manifest's crop box, and does not lie on its pixel "
                        f"grid; the results manifest does not describe these files, run test.py again")
    column, row = int(found[0]), int(found[1])
    notes.append(f"{item.stem}: the results manifest's crop box puts it at pixel ({corner[0]}, {corner[1]}) of "
                 f"{os.path.basename(cube.path)}, the generated FITS's WCS at ({column}, {row}): scored there")
    return column, row


def checked_run(run: RunInfo, results_dir: str | Path, item: Item, notes: list[str]) -> RunInfo:
    """The run's band names and units as the files record them: the source cube's PLNAMn/PLUNIn and the
    generated FITS's BUNIT win over an edited manifest (a note says what differed)."""
    generated = read_header(str(Path(results_dir) / item.generated.fits))
    cube_header = read_header(checked_source(item, generated, []))
    target, inputs = list(run.target), list(run.input)
    for key, planes, what in (("TGPLANES", target, "target"), ("INPLANES", inputs, "input")):
        from_file = recorded_planes(generated, key)
        if from_file is not None and from_file != planes:
            notes.append(f"the results manifest says {what} plane(s) {planes}, the generated FITS {from_file} "
                         f"({key}): {from_file} is used")
            planes[:] = from_file
    bands, units = dict(run.bands), dict(run.units)
    for plane in sorted(set(bands) | set(units)):
        name, unit = cube_header.get(f"PLNAM{plane + 1}"), cube_header.get(f"PLUNI{plane + 1}")
        if name is not None and plane in bands and bands[plane] != str(name):
            notes.append(f"the results manifest names plane {plane} {bands[plane]!r}, the cube {str(name)!r} "
                         f"(PLNAM{plane + 1}): {str(name)!r} is used")
            bands[plane] = str(name)
        if unit is not None and plane in units and units[plane] != str(unit):
            notes.append(f"the results manifest gives plane {plane} the unit {units[plane]!r}, the cube "
                         f"{str(unit)!r} (PLUNI{plane + 1}): {str(unit)!r} is used")
            units[plane] = str(unit)
    made = str(generated.get("BUNIT", "")).strip()
    if len(target) == 1 and made and units.get(target[0], "") != made:
        notes.append(f"the generated FITS are in {made!r} (BUNIT), the results manifest says "
                     f"{units.get(target[0])!r}: {made!r} is used")
        units[target[0]] = made
    return replace(run, target=target, input=inputs, bands=bands, units=units)
