"""Evaluate a test.py results folder: pixel metrics, photometry, and two no-model references.

Which picture is generated, which is the real target and which are the input panels comes from
the folder's results manifest (evaluation.results; an upstream-layout folder through its adapter).
The baseline is "no model at all": the first input band, resampled to the target's size and channel
count, compared with the real target by the very same metrics. A model that cannot beat it has not
learnt anything the input did not already show.
The flat image is the second reference: every pixel one constant level per channel (by default the
median of the evaluated real targets' pixels). It knows the typical brightness and nothing about
where the light is; a model that does not beat it in a metric has not learnt that metric. Taking the
median of the very images it is scored on slightly favours it (a stricter flat image would use the
training targets' median, which this folder does not hold: pass it as `flat_level`).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from evaluation.metrics import pixel_metrics
from evaluation.photometry import PhotometryConfig, compare_sources, summarise
from evaluation.results import load_results, natural_key
from util.errors import UserError
from util.fileio import atomic_write_text
from util.results_manifest import Item

PIXEL_KEYS = ("L1", "PSNR", "SSIM", "CC")
PHOTOMETRY_KEYS = ("flux_error", "colour_error", "false_source_rate", "completeness", "n_sources")


def load_image(path: Path) -> np.ndarray:
    """A PNG as float in [0, 1]: (H, W) for grey, (H, W, 3) for colour (alpha dropped)."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I"):
                return np.asarray(image, dtype=np.float64) / 65535.0
            if image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            return np.asarray(image, dtype=np.float64) / 255.0
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None


def scored_items(results_dir: str | Path) -> list[Item]:
    """The manifest's items that have a generated picture and a real target, in natural order."""
    manifest = load_results(results_dir)
    items = [item for item in manifest.items if item.generated is not None and item.target is not None]
    if not items:
        raise UserError(f"{results_dir} holds no generated image with a real target to compare it with "
                        f"({len(manifest.items)} results; --model test has no targets)")
    return sorted(items, key=lambda item: natural_key(item.stem))


def input_panels(results_dir: str | Path, item: Item) -> dict[int, Path]:
    """Input panel number -> file of one item (an input without a number counts as panel 1)."""
    return {entry.panel if entry.panel is not None else 1: Path(results_dir) / entry.file for entry in item.inputs}


def match_target(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Resample an input band to the target's size and channel count (grey <-> colour by mean/copy)."""
    if image.shape[:2] != like.shape[:2]:
        pil = Image.fromarray(np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8))
        image = np.asarray(pil.resize((like.shape[1], like.shape[0]), Image.BILINEAR), dtype=np.float64) / 255.0
    want = 1 if like.ndim == 2 else like.shape[2]
    have = 1 if image.ndim == 2 else image.shape[2]
    if want == have:
        return image
    grey = image if image.ndim == 2 else image.mean(axis=2)
    return grey if want == 1 else np.repeat(grey[..., None], want, axis=2)


def flat_levels(reals: list[np.ndarray]) -> np.ndarray:
    """Per-channel median of all pixels of the real targets (one value for grey images)."""
    channels = [real.reshape(-1, 1) if real.ndim == 2 else real.reshape(-1, real.shape[2]) for real in reals]
    return np.median(np.concatenate(channels, axis=0), axis=0)


def flat_image(level: np.ndarray, like: np.ndarray) -> np.ndarray:
    """An image of `like`'s shape holding one constant level per channel."""
    return np.broadcast_to(level[0] if like.ndim == 2 else level, like.shape).astype(np.float64)


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _score(pairs: list[tuple[str, np.ndarray, np.ndarray]], cfg: PhotometryConfig) -> dict:
    """Means, spreads, pooled photometry and per-image rows for (stem, generated, real) triples."""
    rows, comparisons = [], []
    for stem, fake, real in pairs:
        comparison = compare_sources(fake, real, cfg)
        comparisons.append(comparison)
        per_image_phot = summarise([comparison])
        rows.append({"image": stem, **pixel_metrics(fake, real),
                     **{key: per_image_phot[key] for key in PHOTOMETRY_KEYS}})
    result = {key: _mean([row[key] for row in rows]) for key in PIXEL_KEYS}
    result["std"] = {key: float(np.std([row[key] for row in rows])) for key in PIXEL_KEYS}
    result.update(summarise(comparisons))
    result["images"] = rows
    return result


def evaluate_folder(results_dir: str | Path, baseline_panel: int | None = None,
                    cfg: PhotometryConfig = PhotometryConfig(), flat_level: float | None = None) -> dict:
    """Everything metrics.json holds for one results folder (the model, the baseline, the flat image).

    `flat_level` (in [0, 1], every channel) fixes the flat image's level; None = the per-channel
    median of the evaluated real targets.
    """
    if flat_level is not None and not 0.0 <= flat_level <= 1.0:
        raise UserError(f"the flat level must be in [0, 1] (images are scaled to [0, 1]), got {flat_level}")
    folder = Path(results_dir)
    items = scored_items(folder)
    model_pairs, baseline_pairs, panel_used = [], [], None
    for item in items:
        fake = load_image(folder / item.generated.png)
        real = load_image(folder / item.target.png)
        if fake.shape[:2] == real.shape[:2] and fake.ndim != real.ndim:  # grey PNG beside a grey-as-RGB one
            fake, real = match_target(fake, real), real
        if fake.shape != real.shape:
            raise UserError(f"{item.stem}: generated image is {fake.shape} but the real one is {real.shape}")
        model_pairs.append((item.stem, fake, real))
        panels = input_panels(folder, item)
        if panels:
            chosen = baseline_panel if baseline_panel is not None else min(panels)
            if chosen not in panels:
                raise UserError(f"{item.stem}: no input panel {chosen} (have {sorted(panels)})")
            band = next((entry.band for entry in item.inputs if entry.panel == chosen), None)
            panel_used = {"input": panels[chosen].name[len(item.stem) + 1: -len(".png")], "panel": chosen,
                          "band": band}
            baseline_pairs.append((item.stem, match_target(load_image(panels[chosen]), real), real))
    result = {"results_dir": str(results_dir), "n_images": len(items), **_score(model_pairs, cfg),
              "photometry_config": asdict(cfg)}
    if baseline_pairs:
        result["baseline"] = {**panel_used, "n_images": len(baseline_pairs), **_score(baseline_pairs, cfg)}
    result["flat"] = score_flat(model_pairs, cfg, flat_level)
    return result


def score_flat(pairs: list[tuple[str, np.ndarray, np.ndarray]], cfg: PhotometryConfig,
               flat_level: float | None = None) -> dict:
    """The flat-image reference for (stem, generated, real) triples: each real target against a constant
    image. Its CC is 0 (a constant has no defined Pearson r; evaluation.metrics counts it as uncorrelated) and
    it has no sources, so flux error 1 and completeness 0."""
    reals = [real for _, _, real in pairs]
    if flat_level is None:
        level, source = flat_levels(reals), "median of the evaluated real targets"
    else:
        channels = max(1 if real.ndim == 2 else real.shape[2] for real in reals)
        level, source = np.full(channels, float(flat_level)), "given"
    flat_pairs = [(stem, flat_image(level, real), real) for stem, _, real in pairs]
    return {"level": [float(v) for v in level], "level_source": source, "n_images": len(flat_pairs),
            **_score(flat_pairs, cfg)}


def flat_description(flat: dict) -> str:
    """'level 31/255, median of the evaluated real targets' (one level per channel when they differ)."""
    levels = flat["level"]
    shown = [f"{v * 255:.4g}/255" for v in (levels if len(set(levels)) > 1 else levels[:1])]
    return f"level {' '.join(shown)}, {flat['level_source']}"


def write_metrics(result: dict, results_dir: str | Path) -> Path:
    """metrics.json beside the results' index.html (written atomically)."""
    path = Path(results_dir) / "metrics.json"
    atomic_write_text(path, json.dumps(result, indent=2, allow_nan=False) + "\n")
    return path


def _cell(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_table(rows: list[tuple[str, dict]]) -> str:
    """A plain-text table of the headline figures for (label, metrics) rows."""
    header = ("", "L1", "PSNR", "SSIM", "CC", "flux err", "colour err", "false src", "complete", "sources")
    lines = [header]
    for label, m in rows:
        lines.append((label, _cell(m["L1"], 4), _cell(m["PSNR"], 2), _cell(m["SSIM"], 3), _cell(m["CC"], 3),
                      _cell(m["flux_error"], 3), _cell(m.get("colour_error"), 3), _cell(m["false_source_rate"], 3),
                      _cell(m["completeness"], 3), str(m["n_sources"])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
                     for line in lines)


def average_runs(runs: list[dict]) -> dict:
    """One metrics dict for several trainings of the same variant on the same test images: headline
    figures and per-image rows are means over the runs; `runs` keeps each training's headline figures
    so that the verdict can weigh a gain against the retraining spread."""
    if len(runs) == 1:
        return runs[0]
    keys = PIXEL_KEYS + PHOTOMETRY_KEYS + ("false_source_rate", "invented_source_rate", "completeness",
                                          "n_generated_sources")
    merged = {**runs[0], "runs": [{**({"seed": run["seed"]} if "seed" in run else {}),
                                   **{key: run.get(key) for key in keys}} for run in runs]}
    for key in keys:
        if key != "n_sources":  # detected in the real targets: the same for every run
            merged[key] = _mean([run.get(key) for run in runs])
    merged["std"] = {key: float(np.mean([run["std"][key] for run in runs])) for key in PIXEL_KEYS}
    rows = {}
    for run in runs:
        for row in run["images"]:
            rows.setdefault(row["image"], []).append(row)
    merged["images"] = [{"image": stem, **{key: _mean([r.get(key) for r in group]) for key in group[0] if key != "image"}}
                        for stem, group in rows.items()]
    return merged
