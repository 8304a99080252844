"""Panel layout of multi-band aligned images: A|B|C|D..., panel 0 is the target band."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from util.errors import UserError

# what the dataset builders leave beside the images: aladin_data.py's manifest.csv names the surveys
# of every item (';'-separated, in panel order), the synthetic sky's bands.csv one panel per row
BUILDER_MANIFEST, BUILDER_SURVEYS, SYNTHETIC_BANDS = "manifest.csv", "surveys", "bands.csv"


def parse_index_list(text: str, option: str) -> list[int]:
    """'1,3' -> [1, 3]; '' -> []."""
    if not text.strip():
        return []
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"{option} must be comma-separated integers, got {text!r}") from None


def panel_channels(opt, n_input_panels: int) -> tuple[list[int], list[int]]:
    """Channels of each panel on the A side (target, panel 0) and the B side (input panels).

    A pure function of the options so that datasets, models and visualizers agree without
    reading any image. With BtoA the B side feeds the generator (input_nc) and A is the
    output (output_nc); with AtoB the roles swap.
    """
    a_nc, b_nc = (opt.output_nc, opt.input_nc) if opt.direction == "BtoA" else (opt.input_nc, opt.output_nc)
    n_b = n_input_panels
    explicit = parse_index_list(getattr(opt, "panel_nc", "") or "", "--panel_nc")
    if explicit:
        if len(explicit) != n_b or sum(explicit) != b_nc:
            raise UserError(
                f"--panel_nc {opt.panel_nc} must list one channel count per input panel "
                f"({n_b}) summing to {b_nc}")
        return [a_nc], explicit
    if b_nc % n_b:
        raise UserError(
            f"{b_nc} channels cannot be split evenly over {n_b} input panels; "
            f"give each panel's channels with --panel_nc (e.g. 3,1,3)")
    per_panel = b_nc // n_b
    if per_panel not in (1, 3):
        raise UserError(
            f"{b_nc} channels over {n_b} input panels gives {per_panel} per panel, "
            f"but a panel has 1 (grey) or 3 (colour) channels; check --input_nc / --input_panels")
    return [a_nc], [per_panel] * n_b


def count_panels(width: int, height: int, n_panels: int, path: str) -> int:
    """Panels in a width x height image: --n_panels when given (> 0), else width / height (square panels)."""
    if n_panels > 0:
        if width < n_panels:
            raise UserError(f"{path} is {width} pixels wide, too narrow for --n_panels {n_panels}")
        return n_panels
    if n_panels < 0:
        raise UserError(f"--n_panels must be 0 (infer from width / height) or positive, got {n_panels}")
    if width % height:
        raise UserError(
            f"{path} is {width}x{height}: width is not a multiple of height, so the number of "
            f"square panels cannot be inferred; give --n_panels")
    return width // height


def input_panel_indices(text: str, n_panels: int, allow_target: bool = False) -> list[int]:
    """Input panel numbers from --input_panels ('' = every panel but 0, the target A).

    allow_target: the files may hold inputs only (single mode, inference where the wanted band
    does not exist), so panel 0 may be an input too.
    """
    if n_panels < (1 if allow_target else 2):
        raise UserError(f"an aligned image needs at least 2 panels (A and an input), found {n_panels}")
    indices = parse_index_list(text, "--input_panels") or list(range(1, n_panels))
    for index in indices:
        if index == 0 and not allow_target:
            raise UserError("--input_panels cannot use panel 0: it is the target A")
        if not 0 <= index < n_panels:
            raise UserError(f"--input_panels {text}: panel {index} is out of range, the images have "
                            f"{n_panels} panels (0..{n_panels - 1}, 0 is the target A)")
    if len(set(indices)) != len(indices):
        raise UserError(f"--input_panels {text} lists a panel twice")
    return indices


def panel_boxes(width: int, height: int, n_panels: int) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) of each panel; for 2 panels exactly upstream's half split."""
    edges = [int(i * width / n_panels) for i in range(n_panels)] + [width]
    return [(edges[i], 0, edges[i + 1], height) for i in range(n_panels)]


def band_names(dataroot: str | os.PathLike) -> dict[int, str]:
    """Band name of each file panel, from the builder's files in --dataroot or its parent (a
    --phase folder or a single-mode folder inside a built dataset); {} when there are none."""
    for folder in (Path(dataroot), Path(dataroot).parent):
        try:
            with open(folder / SYNTHETIC_BANDS, newline="", encoding="utf-8") as handle:
                return {int(row["panel"]): row["name"] for row in csv.DictReader(handle)}
        except (OSError, KeyError, ValueError):
            pass
        try:
            with open(folder / BUILDER_MANIFEST, newline="", encoding="utf-8") as handle:
                first = next(csv.DictReader(handle), None)
        except OSError:
            continue
        if first and first.get(BUILDER_SURVEYS):
            return dict(enumerate(first[BUILDER_SURVEYS].split(";")))
    return {}
