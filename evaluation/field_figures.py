"""Figures of the physical-unit report: example cutouts, residual maps, star flux scatter.

Arrays are in FITS row order (row 0 = south), so every picture is drawn with origin="lower": north up,
as the sky is shown in Aladin or DS9.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from evaluation.ablation_report import new_figure, save_png
from evaluation.references import LinearFit
from evaluation.science import AsinhStretch, ScienceItem

RESIDUAL_PERCENTILE = 99.0  # the residual colour scale: this percentile of |linear fit - real|


class VariantLike(Protocol):
    label: str
    input_panels: list[int]
    metrics: dict


Generated = dict[str, dict[str, np.ndarray]]  # variant label -> test stem -> its first training's band


def _fit(reference: dict) -> LinearFit:
    return LinearFit(tuple(reference["input_panels"]), tuple(reference["coefficients"]), reference["intercept"])


def _show(ax, image: np.ndarray, title: str | None, **kwargs) -> object:
    ax.set_xticks([])
    ax.set_yticks([])
    shown = ax.imshow(image, origin="lower", interpolation="nearest", **kwargs)
    if title:
        ax.set_title(title, fontsize=8)
    return shown


def plot_examples(items: list[ScienceItem], runs: list[VariantLike], generated: Generated, linear_fit: dict,
                  stretch: AsinhStretch, bands: dict[int, str], png: Path) -> bool:
    """Rows: test cutouts. Columns: each input band (its own asinh stretch), the linear fit, each model, the
    real band; the last three in the real band's stretch."""
    if not items:
        return False
    input_planes = sorted({p for run in runs for p in run.input_panels})
    input_stretch = {p: AsinhStretch.fit(np.concatenate([i.inputs[p].ravel() for i in items])) for p in input_planes}
    fit = _fit(linear_fit)
    titles = ([f"input: {bands[p]}" for p in input_planes] + [linear_fit["label"]]
              + [f"model: {r.label}" for r in runs] + [f"real {bands[0]}"])
    fig = new_figure(1.75 * len(titles), 1.9 * len(items) + 0.5)
    axes = fig.subplots(len(items), len(titles), squeeze=False)
    for row, item in enumerate(items):
        pictures = [input_stretch[p].apply(item.inputs[p]) for p in input_planes]
        pictures.append(stretch.apply(fit.predict(item.inputs)))
        for run in runs:
            band = generated[run.label].get(item.stem)
            pictures.append(stretch.apply(band) if band is not None else np.zeros_like(item.real))
        pictures.append(stretch.apply(item.real))
        for col, picture in enumerate(pictures):
            _show(axes[row, col], picture, _short(titles[col]) if row == 0 else None, cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(item.stem, fontsize=7)
    fig.tight_layout()
    save_png(fig, png)
    return True


def plot_residuals(items: list[ScienceItem], runs: list[VariantLike], generated: Generated, linear_fit: dict,
                   unit: str, png: Path) -> bool:
    """generated - real for the linear fit and each model, one symmetric colour scale for all."""
    if not items:
        return False
    fit = _fit(linear_fit)
    maps = []
    for item in items:
        row = [fit.predict(item.inputs) - item.real]
        for run in runs:
            band = generated[run.label].get(item.stem)
            row.append(band - item.real if band is not None else np.full_like(item.real, np.nan))
        maps.append(row)
    scale = float(np.nanpercentile(np.abs(np.concatenate([row[0].ravel() for row in maps])), RESIDUAL_PERCENTILE))
    scale = scale if scale > 0 else 1.0
    titles = [linear_fit["label"]] + [r.label for r in runs]
    fig = new_figure(1.9 * len(titles) + 0.8, 1.9 * len(items) + 0.5)
    axes = fig.subplots(len(items), len(titles), squeeze=False)
    shown = None
    for r, row in enumerate(maps):
        for c, residual in enumerate(row):
            shown = _show(axes[r, c], residual, _short(titles[c], 18) if r == 0 else None, cmap="RdBu_r",
                          vmin=-scale, vmax=scale)
        axes[r, 0].set_ylabel(items[r].stem, fontsize=7)
    bar = fig.colorbar(shown, ax=axes, shrink=0.8)
    bar.set_label(f"generated - real{f' ({unit})' if unit else ''}", fontsize=8)
    save_png(fig, png)
    return True


def plot_flux_scatter(runs: list[VariantLike], linear_fit: dict, unit: str, png: Path) -> bool:
    """One panel per model and one for the linear fit: generated vs real star flux, log-log, 1:1 line.
    Generated fluxes at or below zero (a star the model did not make) are drawn at the bottom edge."""
    panels = [(linear_fit["label"], linear_fit)] + [(r.label, r.metrics) for r in runs]
    panels = [(label, m) for label, m in panels if m.get("star_fluxes", {}).get("real")]
    if not panels:
        return False
    reals = np.concatenate([np.asarray(m["star_fluxes"]["real"]) for _, m in panels])
    reals = reals[reals > 0]
    low, high = float(np.percentile(reals, 1)) / 3, float(np.max(reals)) * 2  # a stray faint detection aside
    fig = new_figure(3.0 * len(panels), 3.3)
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False).ravel())
    for ax, (label, metrics) in zip(axes, panels):
        real = np.asarray(metrics["star_fluxes"]["real"])
        generated = np.clip(np.asarray(metrics["star_fluxes"]["generated"]), low, None)
        ax.loglog(real, generated, ".", markersize=2, alpha=0.5)
        ax.plot([low, high], [low, high], "k-", linewidth=0.8)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        error = metrics.get("flux_error")
        ax.set_title(_short(label) + (f"\nmedian error {error:.3f}" if error is not None else ""), fontsize=8)
        ax.set_xlabel(f"real flux{f' ({unit})' if unit else ''}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("generated flux", fontsize=8)
    fig.tight_layout()
    save_png(fig, png)
    return True


def _short(text: str, width: int = 26) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])
