"""Combine folders of single-band images into aligned A|B|C|D... panel images (scripts/combine_panels.py).

The multi-panel generalisation of upstream's combine_A_and_B: folder k gives panel k; files are
matched by name (the stem, so x.png in A pairs with x.jpg in B) inside each split subfolder
(train/, val/, test/ ...; or the folders' top level). Every file is checked (readable, sizes)
before the first output is written, so a bad input fails in seconds with one clear line
instead of leaving half a dataset behind.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from util.errors import UserError
from util.fileio import atomic_write_bytes
from util.util import is_image_file

PANEL_LETTERS = "ABCDEFGH"
GREY_MODES = {"1", "L", "LA"}
SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}


@dataclass(frozen=True)
class PanelSet:
    """One output image: its split subfolder ('' for the top level), its name and a file per panel."""
    split: str
    name: str
    sources: tuple[Path, ...]


def check_folders(folders: Sequence[Path], out: Path) -> None:
    """At least two existing input folders, none of them the output or inside it (or vice versa)."""
    if len(folders) < 2:
        raise UserError(f"give at least two input folders (panels A and B), got {len(folders)}")
    if len(folders) > len(PANEL_LETTERS):
        raise UserError(f"at most {len(PANEL_LETTERS)} panels are supported, got {len(folders)} folders")
    for letter, folder in zip(PANEL_LETTERS, folders):
        if not folder.is_dir():
            raise UserError(f"folder of panel {letter} not found: {folder}")
    out_resolved = out.resolve()
    for letter, folder in zip(PANEL_LETTERS, folders):
        resolved = folder.resolve()
        if resolved == out_resolved or out_resolved in resolved.parents or resolved in out_resolved.parents:
            raise UserError(f"the output folder {out} overlaps the folder of panel {letter} ({folder}); "
                            f"write the panels somewhere else")


def list_splits(first_folder: Path) -> list[str]:
    """'' when the folder holds images itself, plus every subfolder (train, val, test ...)."""
    splits = [""] if any(is_image_file(p.name) and p.is_file() for p in first_folder.iterdir()) else []
    return splits + sorted(p.name for p in first_folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def match_key(path: Path, letter: str, use_suffix: bool) -> str | None:
    """The name a file is matched by: its stem; with use_suffix, its stem without '_<letter>'
    (upstream's --use_AB naming, x_A.png with x_B.png), or None when the suffix is missing."""
    stem = path.stem
    if not use_suffix:
        return stem
    suffix = f"_{letter}"
    return stem[: -len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else None


def index_folder(folder: Path, letter: str, use_suffix: bool) -> dict[str, Path]:
    """Match key -> image file in one folder (not recursive); two files with one key are an error."""
    if not folder.is_dir():
        return {}
    index: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and is_image_file(path.name)):
            continue
        key = match_key(path, letter, use_suffix)
        if key is None:
            continue
        if key in index:
            raise UserError(f"two files of panel {letter} match the name {key!r}: {index[key]} and {path}; "
                            f"keep one of them")
        index[key] = path
    return index


def plan_panel_sets(folders: Sequence[Path], use_suffix: bool = False,
                    max_per_split: float = float("inf")) -> tuple[list[PanelSet], dict[str, int]]:
    """Every name present in all folders, per split, and how many files of each panel had no match."""
    sets: list[PanelSet] = []
    unmatched = {letter: 0 for letter in PANEL_LETTERS[: len(folders)]}
    for split in list_splits(folders[0]):
        indexes = [index_folder(folder / split, letter, use_suffix) for letter, folder in zip(PANEL_LETTERS, folders)]
        common = sorted(set.intersection(*(set(index) for index in indexes)))
        if max_per_split != float("inf"):
            common = common[: int(max_per_split)]
        for letter, index in zip(PANEL_LETTERS, indexes):
            unmatched[letter] += len(set(index) - set(common))
        sets += [PanelSet(split, key, tuple(index[key] for index in indexes)) for key in common]
    if not sets:
        counts = ", ".join(f"{letter}: {sum(1 for _ in _images_under(folder))} images"
                           for letter, folder in zip(PANEL_LETTERS, folders))
        how = "named NAME_<letter>.ext (--use_AB)" if use_suffix else "with the same name"
        raise UserError(f"no image is present {how} in every folder and split ({counts})")
    return sets, unmatched


def _images_under(folder: Path) -> Iterable[Path]:
    return (p for p in folder.rglob("*") if p.is_file() and is_image_file(p.name))


def read_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header; UserError for unreadable files."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None


def check_sizes(sets: Iterable[PanelSet], resize: bool) -> None:
    """Every panel of a set must have panel A's size, unless --resize will scale it there."""
    for panel_set in sets:
        sizes = [read_size(path) for path in panel_set.sources]
        if resize:
            continue
        for letter, path, size in zip(PANEL_LETTERS, panel_set.sources, sizes):
            if size != sizes[0]:
                raise UserError(f"{panel_set.name}: panel {letter} ({path}) is {size[0]}x{size[1]} but panel A is "
                                f"{sizes[0][0]}x{sizes[0][1]}; pass --resize to scale every panel to A's size")


def load_panel(path: Path) -> Image.Image:
    """Decode one band as 8-bit grey or RGB (16-bit greys are scaled down, as the loaders read 8 bits)."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in SIXTEEN_BIT_MODES:
                values = np.asarray(image, dtype=np.float64)
                return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")
            if mode == "F":
                raise UserError(f"{path} holds floating-point pixels; convert it to 8- or 16-bit first")
            return image.convert("L" if mode in GREY_MODES else "RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None


def combine_panels(panels: Sequence[Image.Image]) -> Image.Image:
    """Panels side by side, all resized to the first one's size; grey only if every panel is grey."""
    mode = "L" if all(p.mode == "L" for p in panels) else "RGB"
    width, height = panels[0].size
    canvas = Image.new(mode, (width * len(panels), height))
    for i, panel in enumerate(panels):
        if panel.size != (width, height):
            panel = panel.resize((width, height), Image.BICUBIC)
        canvas.paste(panel.convert(mode), (i * width, 0))
    return canvas


def write_panel_set(panel_set: PanelSet, out: Path) -> Path:
    """Decode, combine and atomically write out/split/name.png (lossless, whatever the inputs were)."""
    image = combine_panels([load_panel(path) for path in panel_set.sources])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    target = out / panel_set.split / f"{panel_set.name}.png"
    atomic_write_bytes(target, buffer.getvalue())
    return target


def summarize(sets: Sequence[PanelSet], unmatched: dict[str, int], out: Path) -> str:
    per_split: dict[str, int] = {}
    for panel_set in sets:
        per_split[panel_set.split or "."] = per_split.get(panel_set.split or ".", 0) + 1
    splits = ", ".join(f"{split}: {count}" for split, count in per_split.items())
    layout = "|".join(PANEL_LETTERS[: len(sets[0].sources)])
    text = f"wrote {len(sets)} {layout} images to {out} ({splits})"
    skipped = {letter: n for letter, n in unmatched.items() if n}
    if skipped:
        text += "; skipped files without a match in every folder: " + ", ".join(
            f"{letter} {n}" for letter, n in skipped.items())
    return text


def square_panel_note(sets: Sequence[PanelSet]) -> str:
    """A hint when panels are not square: the loaders then cannot infer the panel count."""
    width, height = read_size(sets[0].sources[0])
    if width == height:
        return ""
    return (f"note: panels are {width}x{height}, not square; train with --n_panels {len(sets[0].sources)}")
