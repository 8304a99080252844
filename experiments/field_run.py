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
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.sky.dataset_record import recorded_split
from experiments import ablation, field_plan, field_viewer
from evaluation.evaluation import average_runs
from evaluation.field_report import FieldRun, write_field_report
from evaluation.physical_eval import fit_references
from evaluation.science import AsinhStretch, data_range, load_items, score_predictions
from experiments.dev_split import write_dev_split
from experiments.stages import Stages
from util.errors import UserError


PIX2PIX_PREFIX = "pix2pix_"  # checkpoints of the seed's pix2pix row: pix2pix_bands_1-2-3[_rN]


@dataclass(frozen=True)
class Training:
    """One training: its input bands, name (checkpoints/NAME), label, seed and recipe (budget)."""
    inputs: tuple[int, ...]
    name: str
    label: str
    seed: int
    budget: ablation.Budget
    group: str  # the report row it belongs to: a variant name, or the pix2pix row's


def plan_trainings(variants: list[tuple[int, ...]], repeats: int, bands: dict[int, str], seed: int,
                   budget: ablation.Budget, pix2pix: ablation.Budget | None = None) -> list[Training]:
    """Every variant with the default recipe, `repeats` seeds each; with `pix2pix`, the seed's pix2pix on
    the most-bands variant too, on the same seeds."""
    out = []
    rows = [(inputs, "", budget) for inputs in variants]
    if pix2pix is not None:
        rows.append((max(variants, key=len), PIX2PIX_PREFIX, pix2pix))
    for inputs, prefix, recipe in rows:
        group = prefix + ablation.variant_name(inputs)
        label = ablation.variant_label(inputs, bands)
        for repeat in range(1, repeats + 1):
            suffix = f"_r{repeat}" if repeat > 1 else ""
            out.append(Training(inputs, group + suffix, f"pix2pix (the seed's recipe): {label}" if prefix else label,
                                seed + repeat - 1, recipe, group))
    return out


def small_field_split(dataset: Path) -> dict | None:
    """What the report says of a small field's block split (how few independent test cutouts it holds); None
    for a HEALPix split."""
    split = recorded_split(dataset)
    if not split or split.get("kind") != "blocks":
        return None
    return {key: split.get(key) for key in ("kind", "block_px", "blocks_with_sky", "sky_fractions", "overlap")}


def build_dataset(args: argparse.Namespace, field: field_plan.Field, budget: ablation.Budget,
                  stages: Stages) -> tuple[Path, dict]:
    dataset = stages.out / "dataset"
    command = field_plan.dataset_command(sys.executable, field, dataset, budget, args.split, args.min_coverage,
                                         args.seed)
    params = {"kind": "fits_field", "command": command[1:]}
    stages.build_folder("dataset", params, command, dataset, "*.fits",
                        f"cutting {budget.n_samples} fields of {budget.size} px out of {', '.join(field.bands)}",
                        lambda phase: field_plan.empty_split_hint(phase, budget.n_samples, args.split,
                                                                  stages.log_path("dataset")))
    return dataset, params


def train_and_test(trainings: list[Training], dataset: Path, args: argparse.Namespace,
                   stages: Stages, dataset_params: dict) -> dict[str, Path]:
    """Train what is not trained yet (args.jobs at a time), then test; returns name -> results folder."""
    checkpoints, results_root = stages.out / "checkpoints", stages.out / "results"
    extra = ["--gpu_ids", args.gpu_ids] if args.gpu_ids is not None else []
    n_train = len(list((dataset / "train").glob("*.fits")))
    train_jobs, test_jobs, folders, takes = [], [], {}, []
    for run in trainings:
        train = field_plan.train_command(sys.executable, dataset, run.name, checkpoints, run.inputs, run.budget,
                                         n_train, run.seed, extra)
        train_params = {"command": train[1:], "dataset": dataset_params}
        weights = checkpoints / run.name / "latest_net_G.pth"
        if not (stages.done(f"train_{run.name}", train_params) and weights.exists()):
            stages.forget(f"test_{run.name}")  # new weights: old results no longer describe them
            takes.append((f"train_{run.name}", checkpoints / run.name, ()))
            train_jobs.append((f"train_{run.name}", train, train_params))
        test = field_plan.test_command(sys.executable, dataset, run.name, checkpoints, results_root, run.inputs,
                                       run.budget, extra)
        folders[run.name] = results_root / run.name / "test_latest"
        test_jobs.append((run, test, {"command": test[1:], "train": train_params}))
    stages.take_folders(takes)  # all checked before any is cleared
    done = len(trainings) - len(train_jobs)
    recipes = "; ".join(dict.fromkeys(f"{run.budget.model} {run.budget.netG} ngf {run.budget.ngf}, "
                                      f"{run.budget.n_epochs + run.budget.n_epochs_decay} epochs" for run in trainings))
    stages.say(f"train: {len(train_jobs)} trainings of {n_train} cubes ({recipes}), {args.jobs} at a time"
               + (f"; {done} already trained" if done else ""))
    stages.run_parallel(train_jobs, args.jobs)
    todo = [(run, command, params) for run, command, params in test_jobs
            if not (stages.done(f"test_{run.name}", params, folders[run.name])
                    and (folders[run.name] / "manifest.json").is_file())]
    stages.take_folders((f"test_{run.name}", folders[run.name], (checkpoints / run.name,)) for run, _, _ in todo)
    stages.say(f"test: {len(todo)} of {len(trainings)} trainings on the test cubes")
    stages.run_parallel([(f"test_{run.name}", command, params) for run, command, params in todo], args.jobs)
    return folders


def score_runs(trainings: list[Training], folders: dict[str, Path],
               real_sources: dict) -> tuple[dict, dict, list, AsinhStretch, float, str]:
    """Physical-unit scores of every training (grouped by report row), each training's generated test bands by
    stem (the report draws them), the test items of the first training, the shared display stretch and the
    PSNR range (both from the real test targets only), and the band's unit."""
    first_run, items = load_items(folders[trainings[0].name])
    stretch = AsinhStretch.fit(np.concatenate([i.real.ravel() for i in items]))
    peak = data_range([i.real for i in items])
    by_group: dict[str, list[dict]] = {}
    generated: dict[str, dict[str, np.ndarray]] = {}
    for run in trainings:
        _, run_items = load_items(folders[run.name]) if run is not trainings[0] else (first_run, items)
        scores = score_predictions([(i.stem, i.generated, i.real) for i in run_items], stretch, peak,
                                   real_sources=real_sources)
        scores["seed"] = run.seed
        by_group.setdefault(run.group, []).append(scores)
        generated[run.name] = {i.stem: i.generated for i in run_items}
    return by_group, generated, items, stretch, peak, first_run.units.get(0, "")


def field_row(group: list[Training], metrics: dict, folders: dict[str, Path], checkpoints: Path,
              generated: dict[str, dict[str, np.ndarray]]) -> FieldRun:
    first = group[0]
    return FieldRun(first.group, first.label, list(first.inputs), metrics, folders[first.name], checkpoints / first.name,
                    seeds=[t.seed for t in group], generated=generated[first.name])


def seed_ensemble(group: list[Training], items: list, generated: dict[str, dict[str, np.ndarray]],
                  stretch: AsinhStretch, peak: float, real_sources: dict, folders: dict[str, Path],
                  checkpoints: Path) -> FieldRun:
    """The mean of the seeds' generated bands, scored like a model (no training spread of its own)."""
    first = group[0]
    mean = {i.stem: np.mean([generated[t.name][i.stem] for t in group], axis=0) for i in items}
    metrics = {**score_predictions([(i.stem, mean[i.stem], i.real) for i in items], stretch, peak,
                                   real_sources=real_sources), "deterministic": True}
    label = f"the mean image of the {len(group)} seeds of {first.label}"
    return FieldRun(first.group + "_mean", label, list(first.inputs),
                    metrics, folders[first.name], checkpoints / first.name, seeds=[t.seed for t in group],
                    generated=mean)


def pix2pix_row_budget(args: argparse.Namespace, budget: ablation.Budget, stages: Stages) -> ablation.Budget | None:
    """The seed's pix2pix beside the default recipe with --pix2pix_row, unless the cutouts do not suit it."""
    if not args.pix2pix_row or budget.model == "pix2pix":
        return None
    try:
        return field_plan.seed_pix2pix_budget(args.budget, budget)
    except UserError as err:
        stages.say(f"note: no pix2pix row ({err})")
        return None


def run_field(args: argparse.Namespace) -> dict:
    """Every stage for the parsed command line of scripts/run_ablation.py (default mode)."""
    field = (field_plan.field_from_surveys(args.surveys, args.pixel_arcsec) if args.surveys
             else field_plan.GALACTIC_CENTRE)
    budget = field_plan.make_field_budget(args.budget, n_samples=args.n_samples, size=args.size, netG=args.netG,
                                          ngf=args.ngf, ndf=args.ndf, crop_size=args.crop_size,
                                          n_epochs=args.n_epochs, n_epochs_decay=args.n_epochs_decay,
                                          batch_size=args.batch_size, lr=args.lr, model=args.model,
                                          prior=args.prior)
    variants = ablation.parse_variants(args.variants or field.default_variants)
    if max(max(v) for v in variants) >= len(field.surveys):
        raise UserError(f"--variants names plane {max(max(v) for v in variants)} but there are "
                        f"{len(field.surveys)} surveys (planes 0..{len(field.surveys) - 1})")
    out = Path(args.out).resolve()
    stages = Stages(out, args.force, args.threads, cwd=ablation.REPO)
    bands = dict(enumerate(field.bands))
    pix2pix = pix2pix_row_budget(args, budget, stages)
    stages.say(f"band ablation in {out}: {bands[0]} from {'; '.join(ablation.variant_label(v, bands) for v in variants)}"
               f", {args.repeats} seeds each (budget {args.budget}: {budget})"
               + (", and the seed's pix2pix on the most bands" if pix2pix else ""))
    dataset, dataset_params = build_dataset(args, field, budget, stages)
    if args.dev:
        split = write_dev_split(dataset, out / "dev_dataset")
        dataset, dataset_params = out / "dev_dataset", {**dataset_params, "dev": {"n_train": len(split.train),
                                                                                 "n_val": len(split.val)}}
        stages.say(f"development split: {len(split.train)} training and {len(split.val)} validation cutouts "
                   f"(the validation cells and the training sky north of dec {split.dec_cut:.4f}); the test cells "
                   f"are not used, and the report's 'test' figures are validation figures")
    trainings = plan_trainings(variants, args.repeats, bands, args.seed, budget, pix2pix)
    folders = train_and_test(trainings, dataset, args, stages, dataset_params)
    viewer = field_viewer.start_viewer(stages, trainings, field, dataset, out / "report", args.gpu_ids)  # 2nd core
    stages.say("scoring in physical units and fitting the references on the training cubes")
    real_sources: dict = {}  # the real test stars, measured once for every training and reference
    by_group, generated, items, stretch, peak, unit = score_runs(trainings, folders, real_sources)
    references = fit_references(dataset, 0, variants, bands, items, stretch, peak, args.reference_band, args.seed,
                                real_sources)
    checkpoints = stages.out / "checkpoints"
    groups: dict[str, list[Training]] = {}
    for training in trainings:
        groups.setdefault(training.group, []).append(training)
    runs = [field_row(group, average_runs(by_group[name]), folders, checkpoints, generated)
            for name, group in groups.items() if not name.startswith(PIX2PIX_PREFIX)]
    widest = groups[runs[-1].name]
    comparisons = [seed_ensemble(widest, items, generated, stretch, peak, real_sources, folders, checkpoints)] \
        if len(widest) > 1 else []
    comparisons += [field_row(group, average_runs(by_group[name]), folders, checkpoints, generated)
                    for name, group in groups.items() if name.startswith(PIX2PIX_PREFIX)]
    shown = viewer.result(stretch)
    settings = {"budget_preset": args.budget, "budget": ablation.budget_dict(budget),
                "pix2pix_budget": ablation.budget_dict(pix2pix) if pix2pix else None, "dataset": dataset_params,
                "band_names": bands, "surveys": list(field.surveys), "repeats": args.repeats, "dev": bool(args.dev),
                "command": " ".join(sys.argv), "minutes": round((time.monotonic() - stages.started) / 60, 2),
                "split": small_field_split(stages.out / "dataset")}
    report = write_field_report(out / "report", runs, references, items, stretch, bands, settings, unit,
                                comparisons=comparisons, viewer=shown)
    for sentence in report["verdict"]["sentences"][:2]:
        print(sentence)
    stages.say(f"report: {out / 'report' / 'index.html'}")
    return report
