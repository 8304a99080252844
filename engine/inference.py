"""test.py's loop: run the generator over --num_test images and write an HTML page of results."""
from __future__ import annotations

import ntpath
import os
from pathlib import Path
from typing import Mapping

from tqdm import tqdm

from engine.training import attach_panels


def results_dir_for(opt) -> Path:
    """results/NAME/{phase}_{epoch}, with _iter{N} when --load_iter > 0 (as upstream)."""
    folder = f"{opt.phase}_{opt.epoch}"
    if int(getattr(opt, "load_iter", 0) or 0) > 0:
        folder += f"_iter{opt.load_iter}"
    return Path(opt.results_dir) / opt.name / folder


def save_result_images(webpage, visuals: Mapping, image_path, aspect_ratio: float = 1.0, width: int = 256) -> list[str]:
    """Save each visual as images/{stem}_{label}.png and add one row to the page."""
    from util.util import save_image, tensor2im

    first = image_path[0] if isinstance(image_path, (list, tuple)) else image_path
    stem = os.path.splitext(ntpath.basename(str(first)))[0]
    webpage.add_header(stem)
    names = []
    for label, image in visuals.items():
        name = f"{stem}_{label}.png"
        save_image(tensor2im(image), os.path.join(webpage.get_image_dir(), name), aspect_ratio=aspect_ratio)
        names.append(name)
    webpage.add_images(names, list(visuals), names, width=width)
    return names


def run_test(opt) -> Path:
    """Upstream test.py: results/NAME/{phase}_{epoch}/index.html plus images/; returns the page."""
    from data import create_dataset
    from models import create_model
    from engine.determinism import apply_reproducibility
    from util.html import HTML

    apply_reproducibility(opt)  # --seed / --deterministic: repeatable dropout and data order
    dataset = create_dataset(opt)
    model = create_model(opt)
    attach_panels(model, dataset.dataset)
    model.setup(opt)
    web_dir = results_dir_for(opt)
    print(f"creating web directory {web_dir}")
    webpage = HTML(web_dir, f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}")
    if opt.eval:
        model.eval()
    # a dataset may write extra results per batch (fits_aligned: generated bands as FITS with WCS)
    make_writer = getattr(dataset.dataset, "result_writer", None)
    write_extra = make_writer(web_dir) if make_writer is not None else None
    total = int(min(len(dataset), opt.num_test))
    for i, data in enumerate(tqdm(dataset, total=total, desc="test images", unit="image")):
        if i >= opt.num_test:
            break
        model.set_input(data)
        model.test()
        paths = model.get_image_paths()
        if i % 5 == 0:
            tqdm.write(f"processing ({i:04d})-th image... {paths}")
        save_result_images(webpage, model.get_current_visuals(), paths, opt.aspect_ratio, opt.display_winsize)
        if write_extra is not None:
            write_extra(data, model)
    return Path(webpage.save())
