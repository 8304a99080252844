"""The default demo's report: references and variants scored in the band's unit, with pictures.

An offline page (index.html + PNG files beside it, no CDN) and metrics.json. Pictures share one asinh
stretch for the real band, every generated band and every reference, so brightness differences in the
pictures are differences in the data; residual maps (generated - real) share one colour scale; the star
flux scatter is log-log with the 1:1 line.
"""
from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation.ablation_report import STYLE, plot_loss_curves
from evaluation.field_figures import plot_examples, plot_flux_scatter, plot_residuals
from evaluation.science import AsinhStretch, ScienceItem
from evaluation.verdict import against_reference, statement
from util.fileio import atomic_write_text, json_safe

SUMMARY_KEYS = ("L1", "PSNR", "SSIM", "CC", "flux_error", "false_source_rate", "invented_source_rate",
                "completeness", "n_sources")
COLUMNS = (("L1", "L1", "lower"), ("PSNR", "PSNR (dB)", "higher"), ("SSIM", "SSIM (asinh picture)", "higher"),
           ("CC", "CC", "higher"), ("flux_error", "median star flux error", "lower"),
           ("completeness", "stars recovered", "higher"), ("false_source_rate", "false stars", "lower"),
           ("invented_source_rate", "invented stars", "lower"))
DIGITS = {"L1": 3, "PSNR": 2, "SSIM": 3, "CC": 4, "flux_error": 3, "completeness": 3, "false_source_rate": 3,
          "invented_source_rate": 3}
COMPARED_WITH_ROWS = ("CC", "L1", "flux_error", "false_source_rate", "invented_source_rate")
AGAINST_REFERENCES = ("CC", "L1", "flux_error", "false_source_rate")
L1_MIN_EFFECT = 0.005  # of the flat image's L1: the smallest L1 difference worth a word, in the band's unit


@dataclass
class FieldRun:
    """One variant: its trainings' averaged scores (`runs` holds each seed's) and where its files are."""
    name: str
    label: str
    input_panels: list[int]
    metrics: dict
    results_dir: Path
    run_dir: Path
    seeds: list[int] = field(default_factory=list)
    generated: dict[str, np.ndarray] = field(default_factory=dict)  # the first seed's test bands, by stem


def seed_spread(metrics: dict) -> dict[str, float]:
    """Standard deviation over the trainings (seeds) of each headline figure; empty for one training."""
    runs = metrics.get("runs") or []
    if len(runs) < 2:
        return {}
    return {key: float(np.std([r[key] for r in runs if r.get(key) is not None], ddof=1))
            for key in SUMMARY_KEYS if all(r.get(key) is not None for r in runs)}


def summary(metrics: dict) -> dict:
    out = {key: metrics.get(key) for key in SUMMARY_KEYS}
    out["n_images"] = metrics.get("n_images", len(metrics.get("images", [])))
    return out


def _cell(value, digits: int, spread: float | None = None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}"
    return f"{text} &plusmn; {spread:.{digits}f}" if spread is not None else text


def table(rows: list[tuple[str, dict, dict]], unit: str) -> str:
    heads = "".join(f"<th>{html.escape(title + (f' ({unit})' if key == 'L1' and unit else ''))}<br>"
                    f"<small>{better} is better</small></th>" for key, title, better in COLUMNS)
    body = [f"<tr><th>{html.escape(label)}</th>" + "".join(
        f"<td>{_cell(m.get(key), DIGITS[key], spread.get(key))}</td>" for key, _, _ in COLUMNS)
        + f"<td>{m.get('n_sources', 'n/a')}</td></tr>" for label, m, spread in rows]
    return (f"<table><tr><th></th>{heads}<th>stars</th></tr>\n" + "\n".join(body) + "</table>"
            "<p class=note>Models: mean over the trainings &plusmn; standard deviation over the seeds. L1 and CC over "
            "all test pixels pooled, in the band's unit; PSNR with the real test pixels' range as peak; SSIM on the "
            "shared asinh picture; photometry over every star detected in the real test band (pooled). False stars: "
            "generated stars with no real star of the 5-sigma catalogue within 2 px; invented stars: those with not even "
            "a 3-sigma peak of the real band there.</p>")


def verdict(runs: list[FieldRun], references: list[dict], comparisons: list[FieldRun] = ()) -> dict:
    """More bands (with the seeds' spread), then the most-bands model against each reference, then each
    model against the linear fit of its own bands, then against the comparison rows (the seeds' mean,
    pix2pix as the seed made it)."""
    flat = next(r for r in references if r["name"] == "flat")
    min_effect = {"L1": L1_MIN_EFFECT * flat["L1"]}
    result = statement([(r.label, r.metrics) for r in runs], None, None, min_effect)
    best = runs[-1]
    result["vs_references"] = []
    extra = []
    fits = ("linear_fit", "asinh_fit")
    for ref in references:
        if ref["name"] in fits and ref.get("input_panels") != max((r.input_panels for r in runs), key=len):
            continue
        # false stars too: a model level with a fit in CC and L1 may invent 10x its stars (independent check)
        keys = AGAINST_REFERENCES if ref["name"] != "flat" else AGAINST_REFERENCES[:3]  # no stars, none false
        sentence, detail = against_reference(best.label, best.metrics, ref["label"], ref, keys=keys,
                                             min_effect=min_effect)
        result["vs_references"].append(detail)
        extra.append(sentence)
    for run in runs[:-1]:
        for same in [r for r in references if r["name"] in fits and r.get("input_panels") == run.input_panels]:
            sentence, detail = against_reference(run.label, run.metrics, same["label"], same, min_effect=min_effect)
            result["vs_references"].append(detail)
            extra.append(sentence)
    for other in comparisons:
        sentence, detail = against_reference(best.label, best.metrics, other.label, other.metrics,
                                             keys=COMPARED_WITH_ROWS, min_effect=min_effect)
        result["vs_references"].append(detail)
        extra.append(sentence)
    result["sentences"] = result["sentences"][:-1] + extra + result["sentences"][-1:]
    return result


def write_field_report(out_dir: str | Path, runs: list[FieldRun], references: list[dict], items: list[ScienceItem],
                       stretch: AsinhStretch, bands: dict[int, str], settings: dict, unit: str = "",
                       n_examples: int = 4, comparisons: list[FieldRun] = (),
                       viewer: tuple[Path, str] | None = None) -> dict:
    """index.html, the figures and metrics.json in `out_dir`; returns metrics.json's content. `runs` are the
    band variants of the default recipe (fewest bands first); `comparisons` other rows on the most bands
    (the mean of the seeds, pix2pix as the seed made it), shown and judged beside them. `viewer`: the sky
    viewer page of the headline model over the test region (experiments.field_viewer) and a sentence."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    judged = verdict(runs, references, list(comparisons))
    shown = list(runs) + list(comparisons)
    figures = {}
    picks = example_items(items, n_examples)
    widest_fit = next(r for r in references if r["name"] == "linear_fit"
                      and r.get("input_panels") == max((run.input_panels for run in runs), key=len))
    drawn = list(runs) + [c for c in comparisons if not c.metrics.get("deterministic")]
    generated = {r.label: r.generated for r in drawn}
    if plot_examples(picks, drawn, generated, widest_fit, stretch, bands, out / "examples.png"):
        figures["Test cutouts: inputs, the linear fit, each model, the real band (one shared asinh stretch)"] = \
            "examples.png"
    if plot_residuals(picks, drawn, generated, widest_fit, unit, out / "residuals.png"):
        figures["Residuals, generated - real (one colour scale)"] = "residuals.png"
    if plot_flux_scatter(drawn, widest_fit, unit, out / "flux_scatter.png"):
        figures["Star fluxes: generated vs real (log-log, 1:1 line)"] = "flux_scatter.png"
    if plot_loss_curves([(r.label, r.run_dir) for r in drawn], out / "loss_curves.png"):
        figures["Training losses (first seed of each variant)"] = "loss_curves.png"
    rows = ([(r["label"], r, {}) for r in references] + [(r.label, r.metrics, seed_spread(r.metrics)) for r in shown])
    title = f"Band ablation: {bands[0]} from {len(runs)} input-band sets, in physical units"
    intro = intro_text(runs, references, bands, settings, unit)
    links = [(f"{r.label}: test results", os.path.relpath(r.results_dir / "index.html", out)) for r in drawn]
    if viewer is not None:
        links.insert(0, ("the sky viewer (served over http)", os.path.relpath(viewer[0], out)))
    page = render(title, intro, judged["sentences"], table(rows, unit), figures, links,
                  viewer_block(viewer[0], viewer[1], out) if viewer is not None else "")
    report = {
        "title": title, "unit": unit, "settings": settings,
        "stretch": {"kind": "asinh", "low": stretch.low, "high": stretch.high, "softening": stretch.softening},
        "variants": [{"name": r.name, "label": r.label, "input_panels": r.input_panels,
                      "bands": [bands[p] for p in r.input_panels], **summary(r.metrics),
                      "spread_over_seeds": seed_spread(r.metrics), "seeds": r.seeds,
                      "runs": [{"seed": run.get("seed"), **summary(run)} for run in r.metrics.get("runs", [])],
                      "results_dir": os.path.relpath(r.results_dir, out)} for r in runs],
        "comparisons": [{"name": r.name, "label": r.label, "input_panels": r.input_panels, **summary(r.metrics),
                         "spread_over_seeds": seed_spread(r.metrics), "seeds": r.seeds,
                         "runs": [{"seed": run.get("seed"), **summary(run)} for run in r.metrics.get("runs", [])]}
                        for r in comparisons],
        "references": [{key: value for key, value in ref.items()
                        if key not in ("images", "star_fluxes", "std", "deterministic")} for ref in references],
        "verdict": judged, "figures": figures,
    }
    atomic_write_text(out / "metrics.json", json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")
    atomic_write_text(out / "index.html", page)
    return report


def example_items(items: list[ScienceItem], count: int) -> list[ScienceItem]:
    """`count` test cutouts spread evenly over the (naturally ordered) test set."""
    if len(items) <= count:
        return list(items)
    return [items[int(round(i))] for i in np.linspace(0, len(items) - 1, count)]


def intro_text(runs: list[FieldRun], references: list[dict], bands: dict[int, str], settings: dict,
               unit: str) -> list[str]:
    budget = settings.get("budget", {})
    inputs = ", ".join(f"{p}: {name}" for p, name in sorted(bands.items()) if p > 0)
    return [
        f"Target band: <b>{html.escape(bands[0])}</b>{f' ({html.escape(unit)})' if unit else ''}. Input bands: "
        f"{html.escape(inputs)}. Real FITS images cut into {budget.get('size')} px cutouts, split by sky region "
        f"(no test cutout overlaps a training one), trained and scored on float values.",
        f"Every variant: {recipe_text(budget)}, trained with {len(runs[0].seeds)} seed(s) each"
        + (f"; beside them, pix2pix as the seed made it ({recipe_text(settings['pix2pix_budget'])}) on the most bands, "
           f"on the same seeds" if settings.get("pix2pix_budget") else "")
        + f". This invocation took {settings.get('minutes', 0):.1f} min (finished stages are reused)."
        + (" <b>Development split</b>: validation cells and held-out training sky, not the test cells."
           if settings.get("dev") else ""),
        "References, fitted on the training cubes only and scored like the models: "
        + "; ".join(html.escape(r["label"]) + (f" [{html.escape(r['formula'])}]" if r.get("formula") else "")
                    for r in references) + ".",
    ] + small_field_text(settings.get("split"))


def small_field_text(split: dict | None) -> list[str]:
    """A small field's test cutouts overlap: the reader must know how few independent ones the figures rest on."""
    test = ((split or {}).get("overlap") or {}).get("test")
    if not test:
        return []
    return [f"<b>Small field</b>: split in blocks of its own pixel grid; the {test['cutouts']} test cutouts lie on "
            f"the sky of {test['disjoint_equivalent']:g} disjoint ones (a covered pixel lies in "
            f"{test['mean_depth']:g} of them). The test figures describe about that much sky measured several times: "
            f"their spread understates how much a figure would move on other sky, and a gain of one variant over "
            f"another is a gain on that patch."]


def recipe_text(budget: dict) -> str:
    """One line for a Budget (as a dict): the model, generator and training it had."""
    model = budget.get("model", "pix2pix")
    what = ("regression (L1, no discriminator)" if model == "regression" else "pix2pix (adversarial + L1)")
    prior = ", correcting the linear colour fit" if budget.get("prior", "none") != "none" else ""
    return (f"{what} on the float cubes (per-band asinh normalisation fitted on the training set), "
            f"{html.escape(str(budget.get('netG')))} ngf {budget.get('ngf')}{prior}, {budget.get('crop_size')}-px crops, "
            f"batch {budget.get('batch_size')}, lr {budget.get('lr'):g}, "
            f"{budget.get('n_epochs', 0) + budget.get('n_epochs_decay', 0)} epochs")


def viewer_block(page: Path, sentence: str, out: Path) -> str:
    """The report's pointer to the sky viewer: browsers load it over http only, so the command comes first."""
    href = html.escape(os.path.relpath(page, out))
    return (f"<h2>The test region in the browser</h2><p>{html.escape(sentence)}</p>"
            f"<p><a href='{href}'>{href}</a> (Aladin Lite, offline; from a file:// page the link shows how to "
            f"serve it)</p>")


def render(title: str, intro: list[str], sentences: list[str], table_html: str, figures: dict[str, str],
           links: list[tuple[str, str]], viewer_html: str = "") -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{p}</p>" for p in intro]
    parts.append("<h2>Verdict</h2><div class=verdict>")
    parts += [f"<p>{html.escape(s)}</p>" for s in sentences]
    parts.append(f"</div><h2>Metrics</h2>{table_html}{viewer_html}")
    for caption, name in figures.items():
        parts.append(f"<h2>{html.escape(caption)}</h2><p><a href='{name}'><img src='{name}' "
                     f"alt='{html.escape(caption)}'></a></p>")
    parts.append("<h2>Files</h2><ul>" + "".join(f"<li><a href='{html.escape(h)}'>{html.escape(t)}</a></li>"
                                                for t, h in links + [("metrics.json", "metrics.json")]) + "</ul>")
    return "\n".join(parts) + "</body></html>\n"
