"""The band ablation run stage by stage (scripts/run_ablation.py is its command line).

Stages, each skipped when already done with the same settings, so a killed run resumes:
dataset (aladin_data.py on the bundled HiPS tiles, or the synthetic sky) -> train one pix2pix per
input-band set (same target, split and budget) -> test.py -> evaluate (metrics, the input-band
baseline and the flat image) -> report (OUT/report/index.html and metrics.json). The stages run
the entry points as child processes; this module only reads what they write.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from experiments import ablation
from evaluation.ablation_report import Variant, baseline_label, flat_label, write_report
from evaluation.evaluation import average_runs, evaluate_folder, format_table, write_metrics
from evaluation.metrics import SSIM_SIGMA, SSIM_TRUNCATE
from evaluation.photometry import PhotometryConfig
from experiments.stages import Stages
from data.sky.source import survey_name
from util.errors import UserError

SYNTHETIC_BANDS = {0: "optical RGB", 1: "optical grey low-res", 2: "UV", 3: "IR"}


def build_dataset(args: argparse.Namespace, budget: ablation.Budget, stages: Stages) -> tuple[Path, dict[int, str]]:
    """OUT/dataset with train/ and test/ A|B|C|D images; returns it and the band name of each panel."""
    dataset = stages.out / "dataset"
    if args.synthetic:
        params = {"kind": "synthetic", "n_train": budget.n_samples, "n_test": budget.n_test,
                  "size": budget.size, "seed": args.seed}
        names = dict(SYNTHETIC_BANDS)
        command = [sys.executable, str(ablation.REPO / "scripts" / "make_synthetic_sky.py"), "--out", str(dataset),
                   "--n_train", str(budget.n_samples), "--n_test", str(budget.n_test), "--size", str(budget.size),
                   "--seed", str(args.seed)]
    else:
        if len(args.surveys) < 2:
            raise UserError("--surveys needs a target band and at least one input band")
        fov = args.fov if args.fov is not None else round(budget.size * ablation.NATIVE_DEG_PER_PX, 4)
        surveys = [s if "://" in s or s.startswith("CDS/") else str(Path(s).resolve()) for s in args.surveys]
        params = {"kind": "sky", "surveys": surveys, "n_samples": budget.n_samples, "fov": fov,
                  "size": budget.size, "split": args.split, "min_coverage": args.min_coverage, "seed": args.seed}
        names = {i: survey_name(s) for i, s in enumerate(args.surveys)}
        command = [sys.executable, str(ablation.REPO / "aladin_data.py"), "--surveys", *surveys,
                   "--sample", str(budget.n_samples), "--fov", str(fov), "--size", str(budget.size),
                   "--out", str(dataset), "--split", args.split, "--min_coverage", str(args.min_coverage), "--seed", str(args.seed)]
    kind = "synthetic black-body sky" if args.synthetic else ", ".join(names.values())
    stages.build_folder("dataset", params, command, dataset, "*.png", f"building {dataset} ({kind})")
    return dataset, names


def count_images(folder: Path) -> int:
    return sum(1 for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def run_variant(panels: tuple[int, ...], dataset: Path, channels: list[int], names: dict[int, str],
                budget: ablation.Budget, args: argparse.Namespace, stages: Stages, dataset_params: dict) -> Variant:
    """Train, test and evaluate one input-band set (`--repeats` times; the first run's pictures are shown)."""
    runs = [run_training(panels, repeat, dataset, channels, names, budget, args, stages, dataset_params)
            for repeat in range(1, args.repeats + 1)]
    first = runs[0]
    return Variant(ablation.variant_name(panels), first.label, first.input_panels,
                   average_runs([run.metrics for run in runs]), first.results_dir, first.run_dir,
                   extra={**first.extra, "trainings": len(runs)})


def run_training(panels: tuple[int, ...], repeat: int, dataset: Path, channels: list[int], names: dict[int, str],
                 budget: ablation.Budget, args: argparse.Namespace, stages: Stages, dataset_params: dict) -> Variant:
    name = ablation.variant_name(panels) + (f"_r{repeat}" if repeat > 1 else "")
    label = ablation.variant_label(panels, names) + (f" (training {repeat})" if repeat > 1 else "")
    checkpoints, results_root = stages.out / "checkpoints", stages.out / "results"
    extra = ["--gpu_ids", args.gpu_ids] if args.gpu_ids is not None else []
    n_train = count_images(dataset / "train")
    # repeat r trains with seed + r - 1: reproducible, yet the repeats differ (their spread is the point)
    train = ablation.train_command(sys.executable, dataset, name, checkpoints, panels, channels, budget, n_train, extra,
                                   seed=args.seed + repeat - 1)
    train_params = {"command": train[1:], "dataset": dataset_params}
    if stages.done(f"train_{name}", train_params) and (checkpoints / name / "latest_net_G.pth").exists():
        stages.say(f"train {label}: already trained")
    else:
        stages.forget(f"test_{name}")  # new weights: the old test results no longer describe them
        stages.say(f"train {label}: {n_train} images x {budget.n_epochs + budget.n_epochs_decay} epochs "
                   f"({budget.netG}, ngf {budget.ngf}), log in {stages.out / 'logs' / f'train_{name}.log'}")
        stages.take_folder(f"train_{name}", checkpoints / name)
        stages.run(f"train_{name}", train)
        stages.mark(f"train_{name}", train_params)
    results = results_root / name / "test_latest"
    test = ablation.test_command(sys.executable, dataset, name, checkpoints, results_root, panels, channels, budget, extra)
    test_params = {"command": test[1:], "train": train_params}
    if stages.done(f"test_{name}", test_params, results) and results.is_dir():
        stages.say(f"test {label}: already done")
    else:
        stages.say(f"test {label}: {count_images(dataset / 'test')} test images")
        stages.take_folder(f"test_{name}", results, also=[checkpoints / name])
        stages.run(f"test_{name}", test)
        stages.mark(f"test_{name}", test_params)
    metrics = evaluate_folder(results)
    stages.adopt(write_metrics(metrics, results))
    return Variant(name, label, list(panels), metrics, results, checkpoints / name,
                   extra={"band_names": {p: names.get(p, f"panel {p}") for p in (0, *panels)}})


def intro_text(args: argparse.Namespace, names: dict[int, str], budget: ablation.Budget,
               dataset: Path, channels: list[int], seconds: float) -> list[str]:
    kind = "a synthetic black-body sky (known truth)" if args.synthetic else "the bundled real sky tiles"
    phot, ssim_window = PhotometryConfig(), 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1
    inputs = ", ".join(f"{p}: {names[p]}" for p in sorted(names) if p > 0)
    return [
        f"Target band (panel 0): <b>{names[0]}</b> ({'colour' if channels[0] == 3 else 'grey'}). "
        f"Input bands: {inputs}. Data: {kind}, {count_images(dataset / 'train')} training and "
        f"{count_images(dataset / 'test')} test images of {budget.size} px.",
        f"Every variant: pix2pix, {budget.netG}, ngf {budget.ngf}, ndf {budget.ndf}, crop {budget.crop_size}, "
        f"batch {budget.batch_size}, {budget.n_epochs}+{budget.n_epochs_decay} epochs, trained {args.repeats} time{'s' if args.repeats > 1 else ''}; same target, split and budget. "
        f"Budget preset <code>{args.budget}</code>; whole run {seconds / 60:.1f} min (this invocation).",
        "Baseline: no model, the first input band resampled to the target's size and channels, scored with the "
        "same metrics. Flat image: no model, every pixel the median level of the test targets (per channel; "
        "taken from the very images it is scored on, which slightly favours it). Metrics on images scaled to "
        f"[0, 1]: L1, PSNR (peak 1), SSIM (Wang et al. 2004, Gaussian window {ssim_window}, sigma {SSIM_SIGMA:g}), "
        "CC (Pearson r); photometry: point sources detected in the real target "
        f"({phot.k_sigma:g} sigma), aperture flux with a local background annulus in real and generated images, "
        "colour = each channel's share of the flux (colour targets only), false sources = generated sources with "
        f"no real source within {phot.match_radius:g} px.",
    ]


def run(args: argparse.Namespace) -> dict:
    """Every stage for the parsed command line of scripts/run_ablation.py; returns the report's metrics.json."""
    budget = ablation.make_budget(args.budget, n_samples=args.n_samples, n_test=args.n_test, size=args.size,
                                  netG=args.netG, ngf=args.ngf, ndf=args.ndf, crop_size=args.crop_size,
                                  n_epochs=args.n_epochs, n_epochs_decay=args.n_epochs_decay,
                                  batch_size=args.batch_size, lr=args.lr)
    variants = ablation.parse_variants(args.variants)
    n_panels = len(SYNTHETIC_BANDS) if args.synthetic else len(args.surveys)
    if max(max(v) for v in variants) >= n_panels:  # refused before the dataset is built
        raise UserError(f"--variants names panel {max(max(v) for v in variants)} but the dataset has "
                        f"panels 0..{n_panels - 1}")
    out = Path(args.out).resolve()
    stages = Stages(out, args.force, args.threads, cwd=ablation.REPO)
    stages.say(f"band ablation in {out} (budget {args.budget}: {budget})")
    dataset, names = build_dataset(args, budget, stages)
    dataset_params = json.loads(stages.stamp_path("dataset").read_text())
    channels = ablation.panel_channel_counts(dataset)
    if max(max(v) for v in variants) >= len(channels):
        raise UserError(f"--variants names panel {max(max(v) for v in variants)} but the dataset has "
                        f"panels 0..{len(channels) - 1}")
    results = [run_variant(panels, dataset, channels, names, budget, args, stages, dataset_params)
               for panels in variants]
    rows = [(v.label, v.metrics) for v in results]
    if "baseline" in results[0].metrics:
        rows.insert(0, (baseline_label(results[0]), results[0].metrics["baseline"]))
    if "flat" in results[0].metrics:
        rows.insert(len(rows) - len(results), (flat_label(results[0].metrics["flat"]), results[0].metrics["flat"]))
    print(format_table(rows), flush=True)
    title = f"Band ablation: {names[0]} from {len(variants)} input-band sets" + (" (synthetic sky)" if args.synthetic else "")
    settings = {"budget_preset": args.budget, "budget": ablation.budget_dict(budget), "dataset": dataset_params,
                "panel_channels": channels, "band_names": names, "command": " ".join(sys.argv)}
    report = write_report(out / "report", title, results,
                          intro=intro_text(args, names, budget, dataset, channels, time.monotonic() - stages.started),
                          settings=settings)
    for sentence in report["verdict"]["sentences"][:1]:
        print(sentence)
    stages.say(f"report: {out / 'report' / 'index.html'}")
    return report

