"""predict_sky.py --truth: the generated band and its std against the real band, per kind of sky.

Each compared pixel is labelled by the training set's sky split (data.sky.split.split_sky_cells, or for
a small field the blocks recorded in dataset.json, data.sky.split_blocks): training cells (the model
saw them in training, so agreement there is not a held-out figure), validation cells, test cells,
cells reached by several splits, and sky outside the dataset. The
uncertainty's spread model (data.sky.hips_quality.fit_spread) is fitted on the validation cells
only and judged on the test cells only, so the held-out figure never saw the sky it is measured on.
Without validation cells in the region, the fit uses every pixel outside the test cells and says so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data.sky.dataset_record import recorded_settings, recorded_split
from data.sky.hips_quality import ONE_SIGMA, SpreadModel, calibration, fit_spread
from data.sky.manifest import read_manifest
from data.sky.split import OUTSIDE, auto_split_order, split_of_positions, split_sky_cells
from data.sky.split_blocks import KIND as BLOCKS, BlockSplit
from util.fileio import atomic_write_json

SKY_KINDS = {"train": "training cells (seen in training)", "val": "validation cells", "test": "test cells",
             "mixed": "cells of several splits", OUTSIDE: "outside the training set's cells"}
MIN_FIT_PIXELS = 1000  # fewer validation pixels than this: fit on all pixels outside the test cells


def _rows(root: Path) -> tuple[list[dict], float]:
    rows = [r for r in read_manifest(root / "manifest.csv") if r.get("split") and r.get("ra") and r.get("dec")]
    fov = float(np.median([float(r.get("fov") or 0) for r in rows])) if rows else 0.0
    return rows, fov


def training_sky(dataroot: str | None) -> tuple[int, dict[int, str]] | None:
    """(split order, {cell: split}) of a dataset split by HEALPix cells, None when it is unknown (or was
    split in blocks: `sky_labels` reads those from dataset.json)."""
    if not dataroot:
        return None
    root = Path(dataroot)
    rows, fov = _rows(root)
    if not rows:
        return None
    order = recorded_settings(root).get("split_order")
    order = int(order) if order is not None else auto_split_order(fov)
    return order, split_sky_cells(rows, order, fov)


def sky_labels(ra: np.ndarray, dec: np.ndarray, dataroot: str | None) -> np.ndarray:
    """The label of each position: the split of the training set's sky there, as the builder chose it (HEALPix
    cells, or the blocks of a small field recorded in dataset.json), else OUTSIDE."""
    record = recorded_split(Path(dataroot)) if dataroot else None
    if record is not None and record.get("kind") == BLOCKS:
        rows, fov = _rows(Path(dataroot))
        split = BlockSplit.from_record(record)
        return split.sky_labels(ra, dec, split.reached(rows, fov))
    known = training_sky(dataroot)
    if known is None:
        return np.full(np.shape(ra), OUTSIDE, dtype="<U8")
    order, cells = known
    return split_of_positions(ra, dec, cells, order)


def truth_report(mean: np.ndarray, std: np.ndarray | None, truth: np.ndarray, labels: np.ndarray,
                 in_effect: SpreadModel) -> dict:
    """calibration.json's figures: all pixels, each kind of sky, and (with a std) the spread model fitted
    on validation sky with its held-out coverage on the test cells.

    Fits are made on the raw dropout spread (the written std divided by the spread model in effect), so
    `--std_scale calibration.json` always means the same model whatever the run applied."""
    figures = calibration(mean, std, truth).as_dict()
    figures["by_sky"] = {}
    for label, words in SKY_KINDS.items():
        pick = labels == label
        if pick.any():
            part = calibration(mean[pick], None if std is None else std[pick], truth[pick]).as_dict()
            part.pop("fitted_std_scale")  # fits are made once, below, on the raw spread
            figures["by_sky"][label] = {"what": words, **part}
    if std is None:
        return figures
    raw = std / in_effect.factor(mean)
    usable = np.isfinite(mean) & np.isfinite(raw) & np.isfinite(truth)
    use_val = np.sum((labels == "val") & usable) >= MIN_FIT_PIXELS
    fit_pick = usable & ((labels == "val") if use_val else (labels != "test"))
    fit_on = "val" if use_val else "every pixel outside the test cells"
    if fit_pick.sum() < 2:
        return figures
    model = fit_spread(mean[fit_pick], raw[fit_pick], truth[fit_pick])
    single = fit_spread(mean[fit_pick], raw[fit_pick], truth[fit_pick], bins=1)
    counts = {label: int(np.sum(fit_pick & (labels == label))) for label in SKY_KINDS}
    figures["fit"] = {"on": fit_on, "pixels": int(fit_pick.sum()),
                      "pixels_by_sky": {k: v for k, v in counts.items() if v}}
    figures["std_model"] = model.as_setting()  # what --std_scale calibration.json applies
    figures["fitted_std_scale"] = single.scale[0]  # one factor on the raw spread, fitted on the same pixels
    figures["std_in_effect"] = in_effect.as_setting()
    held = (labels == "test") & usable
    if held.any():
        figures["held_out"] = {
            "on": "test", "pixels": int(held.sum()),
            "within_1std_raw": _within(mean, raw, truth, held, SpreadModel()),
            "within_1std_one_scale": _within(mean, raw, truth, held, single),
            "within_1std_std_model": _within(mean, raw, truth, held, model),
        }
    return figures


def _within(mean, raw, truth, pick, model: SpreadModel) -> float:
    return calibration(mean[pick], raw[pick] * model.factor(mean[pick]), truth[pick]).within_1std


def summary_lines(figures: dict, truth: str, calibration_path: Path) -> list[str]:
    """What the run prints: agreement per kind of sky, then the uncertainty's calibration."""
    parts = [f"{words.split(' (')[0]} r = {f['pearson_r']:.3f} ({f['pixels']} px)"
             for label, f in figures["by_sky"].items() for words in [SKY_KINDS[label]]
             if f["pixels"]]  # a kind of sky the region does not hold has no r to print ('r = nan (0 px)')
    lines = [f"against {truth}: r = {figures['pearson_r']:.3f} on {figures['pixels']} pixels; " + "; ".join(parts)]
    if "train" in figures["by_sky"]:
        lines.append("  (the training cells were seen in training: their figures are not held-out figures)")
    if "fit" in figures:
        written = {k: f"{100 * f['within_1std']:.1f}%" for k, f in figures["by_sky"].items()}
        lines.append(f"uncertainty as written: within 1 std: " + ", ".join(f"{k} {v}" for k, v in written.items())
                     + f" (goal {100 * ONE_SIGMA:.0f}% +- 10%)")
        fit = figures["fit"]
        model = SpreadModel.from_setting(figures["std_model"])
        line = (f"spread fitted on {'the validation cells' if fit['on'] == 'val' else fit['on']} ({fit['pixels']} px): "
                f"one factor {figures['fitted_std_scale']:.3g}, or {model.describe()}")
        held = figures.get("held_out")
        if held:
            line += (f"; on the test cells: {100 * held['within_1std_raw']:.1f}% within 1 raw std, "
                     f"{100 * held['within_1std_one_scale']:.1f}% with the one factor, "
                     f"{100 * held['within_1std_std_model']:.1f}% with the brightness model")
        lines.append(line + f" (apply: --std_scale {calibration_path})")
    return lines


def write_report(out: Path, figures: dict) -> Path:
    """calibration.json in strict JSON: an undefined figure (r of a constant band) is null, not NaN."""
    return atomic_write_json(out / "calibration.json", figures)
