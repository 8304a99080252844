"""The band-ablation report: an offline HTML page, its figures, and a machine-readable metrics.json.

Everything the page shows is a file next to it (PNG figures, no CDN, no script), so the folder can be
copied or mailed and opened anywhere.
"""
from __future__ import annotations

import html
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evaluation.evaluation import flat_description, input_panels, load_image
from evaluation.results import load_results, loss_history
from evaluation.verdict import statement
from util.fileio import atomic_write_bytes, atomic_write_text, json_safe

SUMMARY_KEYS = ("L1", "PSNR", "SSIM", "CC", "flux_error", "colour_error", "false_source_rate", "completeness",
                "n_sources", "n_images")
TABLE_COLUMNS = (  # key, heading, digits, better
    ("L1", "L1", 4, "lower"), ("PSNR", "PSNR (dB)", 2, "higher"), ("SSIM", "SSIM", 3, "higher"),
    ("CC", "CC", 3, "higher"), ("flux_error", "median flux error", 3, "lower"),
    ("colour_error", "median colour error", 3, "lower"), ("false_source_rate", "false-source rate", 3, "lower"),
    ("completeness", "completeness", 3, "higher"))


@dataclass
class Variant:
    """One trained model of the ablation and where its outputs are."""
    name: str
    label: str  # e.g. "1 band (GLIMPSE360)"
    input_panels: list[int]
    metrics: dict  # evaluation.evaluation.evaluate_folder output
    results_dir: Path
    run_dir: Path | None = None  # checkpoints/NAME: its loss history
    extra: dict = field(default_factory=dict)


def summary(metrics: dict) -> dict:
    """Headline figures without per-image rows."""
    out = {key: metrics.get(key) for key in SUMMARY_KEYS}
    if "std" in metrics:
        out["std_over_images"] = metrics["std"]
    if "runs" in metrics:
        out["runs"] = metrics["runs"]
    return out


def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return atomic_write_bytes(path, buffer.getvalue())


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def plot_loss_curves(runs: list[tuple[str, Path | None]], png: Path) -> bool:
    """One panel per loss, one line per variant (x in epochs, lightly smoothed); False if no run logged losses."""
    series = {}
    for label, run_dir in runs:
        records = loss_history(run_dir) if run_dir is not None else []
        if records:
            series[label] = records
    if not series:
        return False
    names = list(dict.fromkeys(name for records in series.values() for r in records for name in r.losses))
    cols = min(2, len(names))
    rows = (len(names) + cols - 1) // cols
    fig = new_figure(5.0 * cols, 2.6 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax, name in zip(axes, names):
        for label, records in series.items():
            epoch_size = max(r.iters for r in records) or 1
            points = [(r.epoch - 1 + r.iters / epoch_size, r.losses[name]) for r in records if name in r.losses]
            if points:
                x, y = np.array(points).T
                ax.plot(x, _smooth(y, max(1, len(y) // 15)), label=label, linewidth=1.4)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, png)
    return True


def example_columns(variants: list[Variant], n_examples: int) -> tuple[list[str], list[str], list[list[Path | None]]]:
    """Titles, row names and image paths for the example grid: inputs, each variant's output, real."""
    widest = max(variants, key=lambda v: len(v.input_panels))
    stems = [row["image"] for row in widest.metrics.get("images", [])][:n_examples]
    results = {v.name: {item.stem: item for item in load_results(v.results_dir).items} for v in variants}
    titles, grid = [], []
    panels_of_first = input_panels(widest.results_dir, results[widest.name][stems[0]]) if stems else {}
    for number in sorted(panels_of_first):
        titles.append(f"input {number}" + (f" ({widest.extra['band_names'][number]})"
                                           if number in widest.extra.get("band_names", {}) else ""))
    titles += [f"generated: {v.label}" for v in variants] + ["real target"]
    for stem in stems:
        item = results[widest.name][stem]
        panels = input_panels(widest.results_dir, item)
        row: list[Path | None] = [panels.get(number) for number in sorted(panels_of_first)]
        for variant in variants:
            other = results[variant.name].get(stem)
            row.append(Path(variant.results_dir) / other.generated.png if other and other.generated else None)
        row.append(Path(widest.results_dir) / item.target.png)
        grid.append(row)
    return titles, stems, grid


def plot_examples(titles: list[str], row_names: list[str], grid: list[list[Path | None]], png: Path) -> bool:
    """A labelled grid of pictures (rows = test images); False when there is nothing to show."""
    if not grid:
        return False
    n_rows, n_cols = len(grid), len(titles)
    fig = new_figure(1.9 * n_cols, 2.0 * n_rows + 0.5)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(grid):
        for c, path in enumerate(row):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if path is not None and Path(path).exists():
                image = load_image(Path(path))
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            if r == 0:
                ax.set_title("\n".join(_wrap(titles[c], 22)), fontsize=8)
            if c == 0:
                ax.set_ylabel(row_names[r], fontsize=8)
    fig.tight_layout()
    save_png(fig, png)
    return True


def _wrap(text: str, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return lines + [current] if current else lines


def _cell(value, digits: int, std: float | None = None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}"
    return f"{text} &plusmn; {std:.{digits}f}" if std is not None else text


FLAT_NOTE = ("Flat image: every pixel one constant level per channel, no model. A model that does not beat the "
             "flat image in a metric has not learnt that metric. Its CC is 0 (a constant has no correlation) and "
             "it has no sources (flux error 1, completeness 0).")


def _table(rows: list[tuple[str, dict]], notes: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th>{html.escape(title)}<br><small>{better} is better</small></th>"
                   for _, title, _, better in TABLE_COLUMNS)
    body = []
    for label, metrics in rows:
        spread = metrics.get("std") or {}
        cells = "".join(f"<td>{_cell(metrics.get(key), digits, spread.get(key))}</td>"
                        for key, _, digits, _ in TABLE_COLUMNS)
        body.append(f"<tr><th>{html.escape(label)}</th>{cells}<td>{metrics.get('n_sources', 'n/a')}</td></tr>")
    return (f"<table><tr><th>variant</th>{head}<th>sources</th></tr>\n" + "\n".join(body) + "\n</table>"
            "<p class=note>Pixel metrics: mean &plusmn; standard deviation over test images. Photometry: medians "
            "over all point sources detected in the real target images (pooled).</p>"
            + "".join(f"<p class=note>{html.escape(note)}</p>" for note in notes))


STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}
tr th:first-child{text-align:left}.note{color:#555;font-size:13px}img{max-width:100%}
.verdict{background:#f4f4ee;border-left:4px solid #887;padding:0.5em 1em}code{background:#eee;padding:1px 3px}"""


def render_html(title: str, intro: list[str], table_rows: list[tuple[str, dict]], verdict: dict,
                figures: dict[str, str], links: list[tuple[str, str]], notes: tuple[str, ...] = ()) -> str:
    """The page as a string; `figures` maps a caption to a PNG file name next to the page."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{paragraph}</p>" for paragraph in intro]
    parts.append("<h2>Did more bands help?</h2><div class=verdict>")
    parts += [f"<p>{html.escape(sentence)}</p>" for sentence in verdict["sentences"]]
    parts.append("</div><h2>Metrics</h2>")
    parts.append(_table(table_rows, notes))
    for caption, file_name in figures.items():
        parts.append(f"<h2>{html.escape(caption)}</h2><p><a href='{html.escape(file_name)}'>"
                     f"<img src='{html.escape(file_name)}' alt='{html.escape(caption)}'></a></p>")
    if links:
        parts.append("<h2>Files</h2><ul>")
        parts += [f"<li><a href='{html.escape(href)}'>{html.escape(text)}</a></li>" for text, href in links]
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def baseline_label(variant: Variant) -> str:
    """'baseline: input band 1 (GLIMPSE360) resampled, no model' from the input panel the baseline used."""
    baseline = variant.metrics["baseline"]
    number = baseline.get("panel") or variant.input_panels[0]
    name = variant.extra.get("band_names", {}).get(number) or baseline.get("band")
    return f"baseline: input band {number}{f' ({name})' if name else ''} resampled, no model"


def flat_label(flat: dict) -> str:
    """'flat image: level 31/255, median of the evaluated real targets, no model'."""
    return f"flat image: {flat_description(flat)}, no model"


def write_report(out_dir: str | Path, title: str, variants: list[Variant], intro: list[str] | None = None,
                 settings: dict | None = None, n_examples: int = 4) -> dict:
    """index.html, loss_curves.png, examples.png and metrics.json in `out_dir`; returns metrics.json's content.

    `variants` go fewest bands first; the baseline and the flat image are taken from the first
    variant's evaluation (the flat image depends only on the real targets, the same for every variant).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    baseline = variants[0].metrics.get("baseline")
    base_label = baseline_label(variants[0]) if baseline else None
    flat = variants[0].metrics.get("flat")
    verdict = statement([(v.label, v.metrics) for v in variants], (base_label, baseline) if baseline else None,
                        (f"the flat image ({flat_description(flat)})", flat) if flat else None)
    figures = {}
    if plot_loss_curves([(v.label, v.run_dir) for v in variants], out / "loss_curves.png"):
        figures["Training losses"] = "loss_curves.png"
    titles, stems, grid = example_columns(variants, n_examples)
    if plot_examples(titles, stems, grid, out / "examples.png"):
        figures["Examples (test images): inputs, generated by each variant, real target"] = "examples.png"
    links = [(f"{v.label}: test results page", os.path.relpath(v.results_dir / "index.html", out))
             for v in variants if (v.results_dir / "index.html").exists()]
    links += [(f"{v.label}: per-image metrics.json", os.path.relpath(v.results_dir / "metrics.json", out))
              for v in variants if (v.results_dir / "metrics.json").exists()]
    links.append(("metrics.json of this report", "metrics.json"))
    table_rows = (([(base_label, baseline)] if baseline else []) + ([(flat_label(flat), flat)] if flat else [])
                  + [(v.label, v.metrics) for v in variants])
    page = render_html(title, intro or [], table_rows, verdict, figures, links, (FLAT_NOTE,) if flat else ())
    report = {
        "title": title,
        "settings": settings or {},
        "baseline": {"label": base_label, **summary(baseline)} if baseline else None,
        "flat": {"label": flat_label(flat), "level": flat["level"], "level_source": flat["level_source"],
                 **summary(flat)} if flat else None,
        "variants": [{"name": v.name, "label": v.label, "input_panels": v.input_panels, **summary(v.metrics),
                      "results_dir": os.path.relpath(v.results_dir, out), **v.extra} for v in variants],
        "verdict": verdict,
        "figures": figures,
    }
    atomic_write_text(out / "metrics.json", json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")
    atomic_write_text(out / "index.html", page)
    return report
