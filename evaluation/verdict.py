"""An honest, automatic statement of whether more input bands helped.

Two variants are compared image by image (the same test images): for each metric the mean of the
paired differences and its standard error. A difference counts only when it exceeds N_SIGMA standard
errors over at least MIN_IMAGES images and a minimal size (MIN_EFFECT); anything smaller is
"no clear difference", whatever its sign.
When each variant was trained several times (seeds), a difference must also exceed N_SIGMA standard
errors of the retraining spread; with one training each, the sentences say that training noise is not
included.
"""
from __future__ import annotations

import math

import numpy as np

# +1: higher is better, -1: lower is better
DIRECTIONS = {"L1": -1, "PSNR": +1, "SSIM": +1, "CC": +1, "flux_error": -1, "colour_error": -1,
              "completeness": +1, "false_source_rate": -1, "invented_source_rate": -1}
# smallest difference worth a word, whatever its error bar: half an 8-bit grey level in L1, a fifth of a dB...
MIN_EFFECT = {"L1": 0.002, "PSNR": 0.2, "SSIM": 0.005, "CC": 0.005, "flux_error": 0.02, "colour_error": 0.005,
              "completeness": 0.01, "false_source_rate": 0.01, "invented_source_rate": 0.01}
MIN_IMAGES = 3
N_SIGMA = 2.0
# how the sentences name a metric and its unit
METRIC_NAMES = {"flux_error": "flux error", "colour_error": "colour error", "completeness": "stars recovered",
                "false_source_rate": "false stars", "invented_source_rate": "invented stars"}
METRIC_UNITS = {"PSNR": " dB"}


def paired_difference(reference: list[dict], other: list[dict], key: str) -> tuple[float, float, int]:
    """Mean and standard error of other - reference over images present (and finite) in both."""
    ref = {row["image"]: row.get(key) for row in reference}
    diffs = [row[key] - ref[row["image"]] for row in other
             if row.get(key) is not None and ref.get(row["image"]) is not None
             and math.isfinite(row[key]) and math.isfinite(ref[row["image"]])]
    n = len(diffs)
    if n == 0:
        return math.nan, math.nan, 0
    se = float(np.std(diffs, ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    return float(np.mean(diffs)), se, n


def compare(reference: dict, other: dict, min_effect: dict[str, float] | None = None) -> dict[str, dict]:
    """Per metric: the two headline values, the paired difference, and better/worse/unclear.

    `min_effect` replaces MIN_EFFECT's sizes (physical units: L1 is in the band's own unit)."""
    sizes = {**MIN_EFFECT, **(min_effect or {})}
    out = {}
    for key, direction in DIRECTIONS.items():
        if reference.get(key) is None or other.get(key) is None:
            continue
        diff, se, n = paired_difference(reference["images"], other["images"], key)
        clear = n >= MIN_IMAGES and math.isfinite(se) and abs(diff) > max(N_SIGMA * se, sizes[key])
        entry = {"from": reference[key], "to": other[key], "diff": diff, "se": se, "n": n}
        runs_se = training_noise(reference, other, key)
        if runs_se is not None:  # repeated trainings: the gain must also beat the retraining spread
            entry["se_training"] = runs_se
            clear = clear and abs(other[key] - reference[key]) > N_SIGMA * runs_se
        entry["call"] = ("better" if diff * direction > 0 else "worse") if clear else "no clear difference"
        out[key] = entry
    return out


def training_noise(reference: dict, other: dict, key: str) -> float | None:
    """Standard error of the difference of two variants' means over repeated trainings (`runs`),
    or None when either was trained only once. A no-model reference (`deterministic`: fitted, not
    trained) has no training noise and adds none."""
    spreads = []
    for metrics in (reference, other):
        if metrics.get("deterministic"):
            continue
        values = [run[key] for run in metrics.get("runs", []) if run.get(key) is not None]
        if len(values) < 2:
            return None
        spreads.append(float(np.var(values, ddof=1)) / len(values))
    return math.sqrt(sum(spreads)) if spreads else None


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def minimal_sizes(min_effect: dict[str, float] | None = None) -> str:
    """MIN_EFFECT (with `min_effect` replacing some) in words, neighbours with the same size named
    together: 'L1 0.002, PSNR 0.2 dB, SSIM and CC 0.005, ...'."""
    groups: list[tuple[list[str], str]] = []
    for key, size in {**MIN_EFFECT, **(min_effect or {})}.items():
        value = f"{size:.3g}{METRIC_UNITS.get(key, '')}"
        if groups and groups[-1][1] == value:
            groups[-1][0].append(METRIC_NAMES.get(key, key))
        else:
            groups.append(([METRIC_NAMES.get(key, key)], value))
    return ", ".join(f"{_list(names)} {value}" for names, value in groups)


def describe(comparison: dict[str, dict]) -> str:
    """'better in L1 (0.05 -> 0.04 +- 0.002), ...; no clear difference in ...' for one comparison."""
    parts = []
    for call in ("better", "worse", "no clear difference"):
        keys = [k for k, v in comparison.items() if v["call"] == call]
        if not keys:
            continue
        if call == "no clear difference":
            parts.append(f"no clear difference in {_list([METRIC_NAMES.get(k, k) for k in keys])}")
        else:
            details = [f"{METRIC_NAMES.get(k, k)} ({_fmt(comparison[k]['from'])} -> {_fmt(comparison[k]['to'])}, "
                       f"paired diff {_fmt(comparison[k]['diff'])} +- {_fmt(comparison[k]['se'])})" for k in keys]
            parts.append(f"{call} in {_list(details)}")
    return "; ".join(parts) if parts else "nothing to compare"


def overall(comparison: dict[str, dict]) -> str:
    """One word for a comparison: 'gain', 'loss', 'mixed' or 'no clear gain'."""
    calls = [v["call"] for v in comparison.values()]
    better, worse = calls.count("better"), calls.count("worse")
    if better and not worse and better * 2 >= len(calls):
        return "gain"
    if worse and not better:
        return "loss"
    if better and worse:
        return "mixed"
    return "no clear gain"


def against_flat(label: str, metrics: dict, flat_label: str, flat: dict,
                 min_effect: dict[str, float] | None = None) -> tuple[str, dict]:
    """A sentence naming the metrics in which a model does not clearly beat the flat image, and the numbers.

    `flat_label` names the reference in the sentence, e.g. 'the flat image (level 29/255)'."""
    # a constant image detects no stars, so it has no false ones: nothing a model could beat there
    against = {k: v for k, v in compare(flat, metrics, min_effect).items()
               if k not in ("false_source_rate", "invented_source_rate")}
    not_beaten = [k for k, v in against.items() if v["call"] != "better"]
    if not not_beaten:
        sentence = f"{label} beats {flat_label} in every metric."
    else:
        details = [f"{k} ({_fmt(against[k]['to'])} vs {_fmt(against[k]['from'])}: "
                   f"{'worse' if against[k]['call'] == 'worse' else 'no clear difference'})" for k in not_beaten]
        sentence = (f"{label} does not beat {flat_label} in {_list(details)}: "
                    f"in {'that metric' if len(not_beaten) == 1 else 'these metrics'} it has learnt nothing "
                    f"beyond the typical brightness.")
    return sentence, {"variant": label, "not_beaten": not_beaten, "metrics": against}


def against_reference(label: str, metrics: dict, reference_label: str, reference: dict,
                      keys: tuple[str, ...] = ("CC", "L1", "flux_error"),
                      min_effect: dict[str, float] | None = None) -> tuple[str, dict]:
    """'X beats the linear fit (J + H) in CC (0.95 vs 0.94), ...' or names where it does not."""
    against = {k: v for k, v in compare(reference, metrics, min_effect).items() if k in keys}
    beaten = [k for k in keys if k in against and against[k]["call"] == "better"]
    missed = [k for k in keys if k in against and against[k]["call"] != "better"]

    def detail(k: str) -> str:
        return f"{METRIC_NAMES.get(k, k)} ({_fmt(against[k]['to'])} vs {_fmt(against[k]['from'])})"

    parts = []
    if beaten:
        parts.append(f"beats {reference_label} in {_list([detail(k) for k in beaten])}")
    if missed:
        calls = {k: "worse" if against[k]["call"] == "worse" else "no clear difference" for k in missed}
        parts.append(f"does not beat it in {_list([f'{detail(k)}: {calls[k]}' for k in missed])}" if beaten else
                     f"does not beat {reference_label} in {_list([f'{detail(k)}: {calls[k]}' for k in missed])}")
    sentence = f"{label} {'; '.join(parts)}." if parts else f"{label}: nothing to compare with {reference_label}."
    return sentence, {"variant": label, "reference": reference_label, "beaten": beaten, "not_beaten": missed,
                      "metrics": against}


def statement(variants: list[tuple[str, dict]], baseline: tuple[str, dict] | None,
              flat: tuple[str, dict] | None = None, min_effect: dict[str, float] | None = None) -> dict:
    """Sentences for the report, and the numbers behind them, for variants ordered by band count.

    `variants` holds (label, metrics) with the fewest bands first; `baseline` and `flat` are the
    no-model references (input band; constant image), the flat one judged for the most-bands model.
    """
    sentences, details = [], {}
    first_label, first = variants[0]
    last_label, last = variants[-1]
    if len(variants) > 1:
        headline = compare(first, last, min_effect)
        verdict = overall(headline)
        details["most_vs_fewest"] = {"from": first_label, "to": last_label, "verdict": verdict, "metrics": headline}
        lead = {
            "gain": f"More bands helped on this data: {last_label} vs {first_label} is",
            "loss": f"More bands did not help on this data; they made it worse: {last_label} vs {first_label} is",
            "mixed": f"Mixed result: {last_label} vs {first_label} is",
            "no clear gain": f"No clear gain from more bands on this data: {last_label} vs {first_label} shows",
        }[verdict]
        sentences.append(f"{lead} {describe(headline)}.")
        for (label_a, metrics_a), (label_b, metrics_b) in zip(variants[:-1], variants[1:]):
            if (label_a, label_b) == (first_label, last_label):
                continue
            step = compare(metrics_a, metrics_b, min_effect)
            details.setdefault("steps", []).append({"from": label_a, "to": label_b, "verdict": overall(step), "metrics": step})
            sentences.append(f"Step {label_a} -> {label_b}: {describe(step)}.")
    if baseline is not None:
        base_label, base = baseline
        details["vs_baseline"] = []
        for label, metrics in variants:
            against = compare(base, metrics, min_effect)
            details["vs_baseline"].append({"variant": label, "verdict": overall(against), "metrics": against})
            sentences.append(f"{label} against the baseline ({base_label}): {describe(against)}.")
    if flat is not None:
        sentence, details["vs_flat"] = against_flat(last_label, last, *flat, min_effect=min_effect)
        sentences.append(sentence)
    n_images = min(m.get("n_images", len(m.get("images", []))) for _, m in variants)
    n_runs = min(len(m.get("runs", [])) or 1 for _, m in variants)
    training = (f"Each variant was trained {n_runs} times; figures are means over the trainings, and a difference "
                f"must also exceed {N_SIGMA:g} standard errors of the retraining spread."
                if n_runs > 1 else
                "Each variant was trained once, so run-to-run training noise is not included: treat small gains "
                "with caution (--repeats N trains each variant N times and accounts for it).")
    sentences.append(
        f"Error bars are standard errors of paired differences over {n_images} test images; a difference "
        f"counts only beyond {N_SIGMA:g} of them and beyond a minimal size ({minimal_sizes(min_effect)}). {training}")
    return {"sentences": sentences, **details}
