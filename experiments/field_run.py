"""The default demo stage by stage: a real FITS field, float end to end, scored in the survey's units.

dataset (aladin_data.py --fits on the field's FITS images, split by sky region) -> train pix2pix on the
float cubes for every input-band set, each with several seeds, two trainings side by side -> test.py
(generated bands as FITS in physical units + results manifest) -> scores in physical units for every
training and for the no-model references fitted on the training cubes (flat image, input band resampled,
linear colour fit) -> report (OUT/report/index.html and metrics.json). Every stage is skipped when it
was already done with the same settings, so a killed run resumes.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments import ablation, field_plan
from evaluation.evaluation import average_runs
from evaluation.field_report import FieldRun, write_field_report
from evaluation.physical_eval import fit_references
from evaluation.science import AsinhStretch, data_range, load_items, score_predictions
from experiments.stages import Stages
from util.errors import UserError


@dataclass(frozen=True)
class Training:
    """One training of one variant: its name (checkpoints/NAME), label and seed."""
    inputs: tuple[int, ...]
    name: str
    label: str
    seed: int


def plan_trainings(variants: list[tuple[int, ...]], repeats: int, bands: dict[int, str], seed: int) -> list[Training]:
    out = []
    for inputs in variants:
        for repeat in range(1, repeats + 1):
            suffix = f"_r{repeat}" if repeat > 1 else ""
            out.append(Training(inputs, ablation.variant_name(inputs) + suffix,
                                ablation.variant_label(inputs, bands), seed + repeat - 1))
    return out


def build_dataset(args: argparse.Namespace, field: field_plan.Field, budget: ablation.Budget,
                  stages: Stages) -> tuple[Path, dict]:
    dataset = stages.out / "dataset"
    command = field_plan.dataset_command(sys.executable, field, dataset, budget, args.split, args.min_coverage,
                                         args.seed)
    params = {"kind": "fits_field", "command": command[1:]}
    stages.build_folder("dataset", params, command, dataset, "*.fits",
                        f"cutting {budget.n_samples} fields of {budget.size} px out of {', '.join(field.bands)}")
    return dataset, params


def train_and_test(trainings: list[Training], dataset: Path, budget: ablation.Budget, args: argparse.Namespace,
                   stages: Stages, dataset_params: dict) -> dict[str, Path]:
    """Train what is not trained yet (args.jobs at a time), then test; returns name -> results folder."""
    checkpoints, results_root = stages.out / "checkpoints", stages.out / "results"
    extra = ["--gpu_ids", args.gpu_ids] if args.gpu_ids is not None else []
    n_train = len(list((dataset / "train").glob("*.fits")))
    train_jobs, test_jobs, folders = [], [], {}
    for run in trainings:
        train = field_plan.train_command(sys.executable, dataset, run.name, checkpoints, run.inputs, budget, n_train,
                                         run.seed, extra)
        train_params = {"command": train[1:], "dataset": dataset_params}
        weights = checkpoints / run.name / "latest_net_G.pth"
        if not (stages.done(f"train_{run.name}", train_params) and weights.exists()):
            stages.forget(f"test_{run.name}")  # new weights: old results no longer describe them
            shutil.rmtree(checkpoints / run.name, ignore_errors=True)
            train_jobs.append((f"train_{run.name}", train, train_params))
        test = field_plan.test_command(sys.executable, dataset, run.name, checkpoints, results_root, run.inputs,
                                       budget, extra)
        folders[run.name] = results_root / run.name / "test_latest"
        test_jobs.append((run, test, {"command": test[1:], "train": train_params}))
    done = len(trainings) - len(train_jobs)
    stages.say(f"train: {len(train_jobs)} trainings of {n_train} cubes x {budget.n_epochs + budget.n_epochs_decay} "
               f"epochs ({budget.netG}, ngf {budget.ngf}), {args.jobs} at a time"
               + (f"; {done} already trained" if done else ""))
    stages.run_parallel(train_jobs, args.jobs)
    todo = [(run, command, params) for run, command, params in test_jobs
            if not (stages.done(f"test_{run.name}", params) and (folders[run.name] / "manifest.json").is_file())]
    for run, _, _ in todo:
        shutil.rmtree(folders[run.name], ignore_errors=True)
    stages.say(f"test: {len(todo)} of {len(trainings)} trainings on the test cubes")
    stages.run_parallel([(f"test_{run.name}", command, params) for run, command, params in todo], args.jobs)
    return folders


def score_runs(trainings: list[Training], folders: dict[str, Path],
               real_sources: dict) -> tuple[dict, dict, list, AsinhStretch, float, str]:
    """Physical-unit scores of every training (grouped by variant), each training's generated test bands by
    stem (the report draws them), the test items of the first training, the shared display stretch and the
    PSNR range (both from the real test targets only), and the band's unit."""
    first_run, items = load_items(folders[trainings[0].name])
    stretch = AsinhStretch.fit(np.concatenate([i.real.ravel() for i in items]))
    peak = data_range([i.real for i in items])
    by_variant: dict[tuple[int, ...], list[dict]] = {}
    generated: dict[str, dict[str, np.ndarray]] = {}
    for run in trainings:
        _, run_items = load_items(folders[run.name]) if run is not trainings[0] else (first_run, items)
        scores = score_predictions([(i.stem, i.generated, i.real) for i in run_items], stretch, peak,
                                   real_sources=real_sources)
        scores["seed"] = run.seed
        by_variant.setdefault(run.inputs, []).append(scores)
        generated[run.name] = {i.stem: i.generated for i in run_items}
    return by_variant, generated, items, stretch, peak, first_run.units.get(0, "")


def run_field(args: argparse.Namespace) -> dict:
    """Every stage for the parsed command line of scripts/run_ablation.py (default mode)."""
    field = (field_plan.field_from_surveys(args.surveys, args.pixel_arcsec) if args.surveys
             else field_plan.GALACTIC_CENTRE)
    budget = field_plan.make_field_budget(args.budget, n_samples=args.n_samples, size=args.size, netG=args.netG,
                                          ngf=args.ngf, ndf=args.ndf, crop_size=args.crop_size,
                                          n_epochs=args.n_epochs, n_epochs_decay=args.n_epochs_decay,
                                          batch_size=args.batch_size, lr=args.lr)
    variants = ablation.parse_variants(args.variants or field.default_variants)
    if max(max(v) for v in variants) >= len(field.surveys):
        raise UserError(f"--variants names plane {max(max(v) for v in variants)} but there are "
                        f"{len(field.surveys)} surveys (planes 0..{len(field.surveys) - 1})")
    out = Path(args.out).resolve()
    stages = Stages(out, args.force, args.threads, cwd=ablation.REPO)
    bands = dict(enumerate(field.bands))
    stages.say(f"band ablation in {out}: {bands[0]} from {'; '.join(ablation.variant_label(v, bands) for v in variants)}"
               f", {args.repeats} seeds each (budget {args.budget}: {budget})")
    dataset, dataset_params = build_dataset(args, field, budget, stages)
    trainings = plan_trainings(variants, args.repeats, bands, args.seed)
    folders = train_and_test(trainings, dataset, budget, args, stages, dataset_params)
    stages.say("scoring in physical units and fitting the references on the training cubes")
    real_sources: dict = {}  # the real test stars, measured once for every training and reference
    by_variant, generated, items, stretch, peak, unit = score_runs(trainings, folders, real_sources)
    references = fit_references(dataset, 0, variants, bands, items, stretch, peak, args.reference_band, args.seed,
                                real_sources)
    runs = []
    for inputs in variants:
        group = [t for t in trainings if t.inputs == inputs]
        metrics = average_runs(by_variant[inputs])
        runs.append(FieldRun(ablation.variant_name(inputs), group[0].label, list(inputs), metrics,
                             folders[group[0].name], stages.out / "checkpoints" / group[0].name,
                             seeds=[t.seed for t in group], generated=generated[group[0].name]))
    settings = {"budget_preset": args.budget, "budget": ablation.budget_dict(budget), "dataset": dataset_params,
                "band_names": bands, "surveys": list(field.surveys), "repeats": args.repeats,
                "command": " ".join(sys.argv), "minutes": round((time.monotonic() - stages.started) / 60, 2)}
    report = write_field_report(out / "report", runs, references, items, stretch, bands, settings, unit)
    for sentence in report["verdict"]["sentences"][:2]:
        print(sentence)
    stages.say(f"report: {out / 'report' / 'index.html'}")
    return report
