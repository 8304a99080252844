"""Panel layout of multi-band aligned images: A|B|C|D..., panel 0 is the target band."""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from util.errors import UserError

# what the dataset builders leave beside the images: aladin_data.py's manifest.csv names the surveys
# of every item (';'-separated, in panel order), the synthetic sky's bands.csv one panel per row
BUILDER_MANIFEST, BUILDER_SURVEYS, SYNTHETIC_BANDS = "manifest.csv", "surveys", "bands.csv"
# aladin_data.py's dataset.json names each survey with its channels: "2mass_j (fits, 1 ch)"
BUILDER_RECORD = "dataset.json"
_SURVEY_CHANNELS = re.compile(r"\([^()]*, (\d+) ch\)$")


def parse_index_list(text: str, option: str) -> list[int]:
    """'1,3' -> [1, 3]; '' -> []."""
    if not text.strip():
        return []
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"{option} must be comma-separated integers, got {text!r}") from None


def panel_channels(opt, n_input_panels: int, recorded: list[int] | None = None) -> tuple[list[int], list[int]]:
    """Channels of each panel on the A side (target, panel 0) and the B side (input panels).

    A pure function of the options (and of what the dataset records) so that datasets, models and
    visualizers agree without reading any image. With BtoA the B side feeds the generator (input_nc)
    and A is the output (output_nc); with AtoB the roles swap. The layout is --panel_nc when given;
    else the input panels' channels as the builder recorded them (`recorded`, see recorded_channels)
    when they add up to the side's channel count; else an even split.
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
    if recorded is not None and len(recorded) == n_b and sum(recorded) == b_nc:
        return [a_nc], list(recorded)
    option = "--input_nc" if opt.direction == "BtoA" else "--output_nc"
    hint = (f"; the dataset records these input panels as {'+'.join(map(str, recorded))} channels "
            f"({BUILDER_RECORD}): give {option} {sum(recorded)}" if recorded and len(recorded) == n_b else "")
    if b_nc % n_b:
        advice = hint or "; give each panel's channels with --panel_nc (e.g. 3,1,3)"
        raise UserError(f"{b_nc} channels cannot be split evenly over {n_b} input panels{advice}")
    per_panel = b_nc // n_b
    if per_panel not in (1, 3):
        raise UserError(
            f"{b_nc} channels over {n_b} input panels gives {per_panel} per panel, "
            f"but a panel has 1 (grey) or 3 (colour) channels{hint or '; check --input_nc / --input_panels'}")
    return [a_nc], [per_panel] * n_b


def recorded_layout(opt, inputs: list[int], n_panels: int) -> tuple[tuple[list[int], list[int]], str]:
    """panel_channels for these input panels with what the dataset records, and the --panel_nc text when
    that record decided an uneven layout ('' otherwise): the dataset sets it in the options, so that
    {phase}_opt.txt keeps the layout for test.py and predict_sky.py. An explicit --panel_nc always wins."""
    every = recorded_channels(opt.dataroot)
    recorded = [every[i] for i in inputs] if every and len(every) == n_panels else None
    channels = panel_channels(opt, len(inputs), recorded)
    adopted = ""
    if recorded and not getattr(opt, "panel_nc", "") and channels[1] == recorded and len(set(recorded)) > 1:
        adopted = ",".join(map(str, recorded))
        print(f"note: input panels {','.join(map(str, inputs))} read as {adopted} channels, as the dataset's "
              f"{BUILDER_RECORD} records their surveys (--panel_nc sets them otherwise)")
    return channels, adopted


def recorded_channels(dataroot: str | os.PathLike) -> list[int] | None:
    """Channels of every file panel as aladin_data.py's dataset.json records its surveys, from --dataroot
    or its parent (a --phase folder or a single-mode folder inside a built dataset); None without one."""
    for folder in (Path(dataroot), Path(dataroot).parent):
        try:
            surveys = json.loads((folder / BUILDER_RECORD).read_text(encoding="utf-8"))["settings"]["surveys"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        matches = [_SURVEY_CHANNELS.search(str(survey)) for survey in surveys] if isinstance(surveys, list) else []
        if matches and all(matches):
            return [int(match.group(1)) for match in matches]
    return None


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
