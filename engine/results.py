"""What test.py writes per image: the HTML page and its PNGs (upstream's layout), the float FITS of
cube datasets, and manifest.json, which says which file is the input, the generated band and the
real target, for which panel and band (util.results_manifest holds its schema).

The page is rewritten as the images come (at most every PAGE_INTERVAL_S, and once more when the
run stops, finished or not), so a run that fails part-way leaves a page of what it did. The
manifest is written only by a finished run: evaluation must not take a partial run for a whole
one, so the manifest of an earlier run in the same folder is removed when a new run starts.
"""
from __future__ import annotations

import ntpath
import os
import time
from pathlib import Path
from typing import Mapping

from data.base_dataset import DatasetDescription
from engine.fits_results import FitsResultWriter
from util.html import HTML
from util.results_manifest import (MANIFEST, Generated, InputFile, Item, ResultsManifest, RunInfo, Target,
                                   write_manifest)
from util.util import save_image, tensor2im

PAGE_INTERVAL_S = 2.0


def results_dir_for(opt) -> Path:
    """results/NAME/{phase}_{epoch}, with _iter{N} when --load_iter > 0 (as upstream)."""
    folder = f"{opt.phase}_{opt.epoch}"
    if int(getattr(opt, "load_iter", 0) or 0) > 0:
        folder += f"_iter{opt.load_iter}"
    return Path(opt.results_dir) / opt.name / folder


def image_stem(image_path) -> str:
    """The file name of the (first) item without its extension: what names its result files."""
    first = image_path[0] if isinstance(image_path, (list, tuple)) else image_path
    return os.path.splitext(ntpath.basename(str(first)))[0]


def save_result_images(webpage: HTML, visuals: Mapping, stem: str, aspect_ratio: float = 1.0,
                       width: int = 256) -> dict[str, str]:
    """Save each visual as images/{stem}_{label}.png, add one row to the page; label -> file name."""
    webpage.add_header(stem)
    names = {}
    for label, image in visuals.items():
        names[label] = f"{stem}_{label}.png"
        save_image(tensor2im(image), os.path.join(webpage.get_image_dir(), names[label]), aspect_ratio=aspect_ratio)
    webpage.add_images(list(names.values()), list(names), list(names.values()), width=width)
    return names


def _first(value):
    """Item 0 of a batched value (test.py runs batches of one), as a plain Python value."""
    value = value[0] if isinstance(value, (list, tuple)) or getattr(value, "dim", lambda: 0)() > 0 else value
    return value.tolist() if hasattr(value, "tolist") else value


def run_info(opt, description: DatasetDescription, model) -> RunInfo:
    """Run-level facts of the manifest: which panels (or planes) went in and came out, their bands."""
    indices = description.panel_indices or ([], [])
    side = model.visual_side
    roles = model.result_visuals
    cube = description.cube
    return RunInfo(
        name=opt.name, model=opt.model, epoch=str(opt.epoch), phase=opt.phase, direction=opt.direction,
        dataset_mode=opt.dataset_mode, dataroot=str(opt.dataroot), kind=description.kind,
        input=list(indices[side(roles["input"])]) if roles.get("input") else [],
        target=list(indices[side(roles["target"])]) if roles.get("target") else [],
        bands=dict(description.bands), units={i: unit for i, (_, unit) in enumerate(cube.labels)} if cube else {},
        norm_file=str(cube.norm_file) if cube else None, notes=list(description.notes))


class ResultsWriter:
    """Collects test.py's results batch by batch; save() writes the page and the manifest."""

    def __init__(self, opt, description: DatasetDescription, model, web_dir: Path):
        self.opt = opt
        self.description = description
        self.web_dir = Path(web_dir)
        self.page = HTML(self.web_dir, f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}")
        # float cubes: each generated band also as FITS in physical units with the WCS of its pixels
        self.fits = FitsResultWriter(opt, description.cube, self.web_dir) if description.cube else None
        self.manifest = ResultsManifest(run=run_info(opt, description, model))
        (self.web_dir / MANIFEST).unlink(missing_ok=True)  # it described the images this run replaces
        self._page_saved_at: float | None = None

    def add(self, data: dict, model) -> Item:
        """The current visuals of `model` for batch `data`: PNGs, FITS, one manifest item."""
        parts = model.visual_parts()
        stem = image_stem(model.get_image_paths())
        names = save_result_images(self.page, {p.label: p.tensor for p in parts}, stem, self.opt.aspect_ratio,
                                   self.opt.display_winsize)
        written = self.fits(data, model) if self.fits is not None else []
        roles = model.result_visuals
        item = Item(stem=stem)
        for part in parts:
            file = f"images/{names[part.label]}"
            if part.name == roles.get("input"):
                item.inputs.append(InputFile(file, part.panel, self.description.bands.get(part.panel)))
            elif part.name == roles.get("generated"):
                item.generated = Generated(file, os.path.relpath(written[0], self.web_dir) if written else None)
            elif part.name == roles.get("target"):
                item.target = self._target(file, data)
            else:
                item.other[part.label] = file
        self.manifest.items.append(item)
        now = time.monotonic()
        if self._page_saved_at is None or now - self._page_saved_at >= PAGE_INTERVAL_S:
            self.save_page()
        return item

    def save_page(self) -> Path:
        """index.html of the images so far (also what a failed run leaves)."""
        self._page_saved_at = time.monotonic()
        return Path(self.page.save())

    def _target(self, file: str, data: dict) -> Target:
        """The real target's picture, and where its values come from (for cubes: planes, crop, flip)."""
        source_key = "B_paths" if self.opt.direction == "AtoB" else "A_paths"
        target = Target(file, source=str(_first(data[source_key])) if source_key in data else None)
        if self.description.cube is not None:
            target.planes = list(self.description.cube.target_planes)
            target.crop_box = [int(v) for v in _first(data["crop_box"])] if "crop_box" in data else None
            target.flip = bool(_first(data["flip"])) if "flip" in data else None
        return target

    def save(self) -> Path:
        """The finished run: the page and the manifest."""
        write_manifest(self.web_dir, self.manifest)
        return self.save_page()
