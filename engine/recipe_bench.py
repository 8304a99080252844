"""Training throughput of the FITS recipes on real cubes, data loading included (scripts/bench_train.py --fits).

Three ways to train on the same cubes, timed in turns (a busy machine slows them alike):
- the seed's recipe as it ran before this project reworked it: pix2pix, unet_64 and a PatchGAN, 64-px
  cutouts in batches of 16, every cube read from disk and normalised per item, Adam's per-parameter loop;
- the same recipe with what training now does for every model: the cubes normalised once and held in
  memory, Adam's fused kernels;
- the default recipe of FITS fields: regression, fullres_4blocks with the colour prior, 32-px crops in
  batches of 4.
Each timed step is one batch from the real loader plus one optimizer step.
"""
from __future__ import annotations

import contextlib
import io
import statistics
import time
from dataclasses import dataclass
from typing import Callable

SEED = ["--model", "pix2pix", "--netG", "unet_64", "--ngf", "32", "--ndf", "32", "--crop_size", "64",
        "--batch_size", "16", "--lr", "0.0008"]
# the default recipe of FITS fields (experiments.field_plan.RECIPE, which this layer cannot import: kept equal
# by hand; `--model regression` brings fullres_4blocks, ngf 32, no norm layers and the linear head)
DEFAULT = ["--model", "regression", "--prior", "normalised_fit", "--crop_size", "32", "--batch_size", "4",
           "--lr", "0.0005"]


@dataclass(frozen=True)
class Recipe:
    label: str
    argv: list[str]
    cached: bool = True  # cubes held in memory (else read per item, as before)
    fused: bool = True  # Adam's fused kernels (else its per-parameter loop, as before)


RECIPES = (Recipe("seed recipe, as before (per-item reads, Adam loop)", SEED, cached=False, fused=False),
           Recipe("seed recipe, now (cubes in memory, fused Adam)", SEED),
           Recipe("default recipe (regression fullres_4blocks + prior, 32-px crops)", DEFAULT))


def recipe_step(dataroot: str, input_planes: str, recipe: Recipe) -> tuple[Callable[[], None], int, int]:
    """(one training step on the next real batch, batch size, crop size) for a recipe."""
    import torch

    from data import create_dataset
    from engine.context import RunContext
    from engine.setup import prepare_model
    from options.train_options import TrainOptions

    n_inputs = len(input_planes.split(","))
    opt = TrainOptions().parse(["--dataroot", dataroot, "--dataset_mode", "fits_aligned", "--input_planes",
                                input_planes, "--input_nc", str(n_inputs), "--gpu_ids", "-1", "--num_threads", "0",
                                "--checkpoints_dir", "/nonexistent-bench", "--name", "bench", *recipe.argv])
    with contextlib.redirect_stdout(io.StringIO()):
        loader = create_dataset(opt)
        model = prepare_model(opt, RunContext(), loader.dataset.describe())
    if not recipe.cached:
        loader.dataset.cache = None
    if not recipe.fused:
        model.optimizers = [torch.optim.Adam(o.param_groups[0]["params"], lr=opt.lr, betas=(opt.beta1, 0.999),
                                             foreach=False, fused=False) for o in model.optimizers]
        for name, optimizer in zip(("optimizer_G", "optimizer_D"), model.optimizers):
            setattr(model, name, optimizer)
    batches = iter(())

    def step() -> None:
        nonlocal batches
        try:
            data = next(batches)
        except StopIteration:
            batches = iter(loader)
            data = next(batches)
        model.set_input(data)
        model.optimize_parameters()

    return step, opt.batch_size, opt.crop_size


def measure_recipes(dataroot: str, input_planes: str, rounds: int, block: int) -> list[str]:
    """Lines of a table: each recipe's s/step, samples/s and pixels/s, and its speed against the first."""
    steps = {r.label: recipe_step(dataroot, input_planes, r) for r in RECIPES}
    for step, _, _ in steps.values():  # warm-up: the first epoch fills the cache
        for _ in range(block):
            step()
    times: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(rounds):
        for label, (step, _, _) in steps.items():
            start = time.perf_counter()
            for _ in range(block):
                step()
            times[label].append((time.perf_counter() - start) / block)
    first = statistics.median(times[RECIPES[0].label])
    lines = [f"{'recipe':<66} {'s/step':>7} {'samples/s':>10} {'Mpx/s':>7} {'steps/s vs first':>17}"]
    for label, (_, batch, crop) in steps.items():
        median = statistics.median(times[label])
        lines.append(f"{label:<66} {median:7.3f} {batch / median:10.1f} {batch * crop * crop / median / 1e6:7.3f} "
                     f"{first / median:16.2f}x")
    return lines
