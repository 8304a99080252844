"""Seconds per training step and samples/s of pix2pix for chosen nets, batch, crop and channels.

    python scripts/bench_train.py --netG unet_256 --netD basic --batch_size 1 --crop_size 256 \
        --input_nc 9 --device cpu --threads 2 --steps 5

Synthetic tensors feed the real model (same code path as train.py minus data loading), with
warm-up steps, then the median of the timed steps. With --dataroot the data loader is timed
alone as well. The pieces (build_model, synthetic_batch, time_calls) are importable so other
comparisons (AMP, channels_last, compile) can reuse them.

--overhead times train.py's real loop against the bare model step instead (engine.loop_bench):
--steps steps in blocks of --block, then each piece of the loop alone.

--fits DATAROOT times the FITS recipes on real cubes, loader included (engine.recipe_bench):

    python scripts/bench_train.py --fits runs/ablation/dataset --threads 1 --steps 5 --block 20
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.bench import (MODE_HELP, apply_bench_device_args, parse_modes, plain_pix2pix_step,  # noqa: E402
                          ratio_table, summary, synchronize, time_interleaved, time_loader_items)
from engine.context import RunContext  # noqa: E402
from util.cli import ArgumentParser  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--netG", default="unet_256")
    parser.add_argument("--netD", default="basic")
    parser.add_argument("--norm", default="batch")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--crop_size", type=int, default=256)
    parser.add_argument("--input_nc", type=int, default=3)
    parser.add_argument("--output_nc", type=int, default=3)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--dataroot", default="", help="also time the aligned data loader on this dataset")
    parser.add_argument("--num_threads", type=int, default=0, help="data loader workers with --dataroot")
    parser.add_argument("--modes", default="fp32", help=MODE_HELP + "; several modes are timed in turns, "
                        "step by step, and compared in a ratio table")
    parser.add_argument("--target", type=float, default=1500.0,
                        help="samples/s the loader must feed (with --dataroot: workers needed for it)")
    parser.add_argument("--loader_batches", type=int, default=0,
                        help="batches timed for the loader (default: warmup + steps)")
    parser.add_argument("--overhead", action="store_true",
                        help="time train.py's loop around the step (progress bar, non-finite watch, loss lines, "
                             "curves, visuals) against the bare step, in blocks of --block steps, first mode's flags")
    parser.add_argument("--block", type=int, default=25, help="steps per block with --overhead or --fits")
    parser.add_argument("--fits", default="", metavar="DATAROOT",
                        help="instead: the FITS recipes on these cubes (the seed's pix2pix before and now, the default "
                             "regression recipe), data loading included, --steps blocks of --block steps each in turns")
    parser.add_argument("--input_planes", default="1,2", help="with --fits: the input planes")
    return parser.parse_args(argv)


def train_argv(args: argparse.Namespace, dataroot: str) -> list[str]:
    """The train.py command line equivalent to the benchmark settings (BtoA: B panels are the input)."""
    gpu = "-1" if args.device == "cpu" else "0"
    return ["--dataroot", dataroot, "--model", "pix2pix", "--direction", "BtoA", "--gpu_ids", gpu,
            "--netG", args.netG, "--netD", args.netD, "--norm", args.norm, "--ngf", str(args.ngf),
            "--ndf", str(args.ndf), "--batch_size", str(args.batch_size), "--crop_size", str(args.crop_size),
            "--load_size", str(args.crop_size), "--input_nc", str(args.input_nc), "--output_nc", str(args.output_nc),
            "--num_threads", str(args.num_threads), "--checkpoints_dir", "/nonexistent-bench", "--serial_batches"]


def build_model(opt):
    """A set-up pix2pix model, as train.py prepares it for one process (nothing written to disk)."""
    from engine.setup import prepare_model

    return prepare_model(opt, RunContext.from_environment(opt.gpu_ids))


def synthetic_batch(opt, device: torch.device) -> dict:
    """A batch shaped like the aligned loader's, with BtoA: B holds input_nc channels."""
    size = (opt.batch_size, opt.crop_size, opt.crop_size)
    return {"A": torch.rand(size[0], opt.output_nc, *size[1:], device=device) * 2 - 1,
            "B": torch.rand(size[0], opt.input_nc, *size[1:], device=device) * 2 - 1,
            "A_paths": ["synthetic"] * opt.batch_size, "B_paths": ["synthetic"] * opt.batch_size}


def time_calls(step: Callable[[], object], device: torch.device, warmup: int, steps: int) -> list[float]:
    """Wall-clock seconds of each timed call, after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def time_training_steps(opt, warmup: int, steps: int) -> list[float]:
    model = build_model(opt)
    batch = synthetic_batch(opt, model.device)

    def step() -> None:
        model.set_input(batch)
        model.optimize_parameters()

    return time_calls(step, model.device, warmup, steps)


def time_data_loader(opt, batches: int) -> list[float]:
    """Seconds per batch of the real loader (no model), over up to `batches` batches."""
    from data import create_dataset

    loader = create_dataset(opt)
    times = []
    start = time.perf_counter()
    for i, _ in enumerate(loader):
        now = time.perf_counter()
        times.append(now - start)
        start = now
        if i + 1 >= batches:
            break
    return times


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    apply_bench_device_args(args)
    from options.train_options import TrainOptions

    if args.fits:
        from engine.recipe_bench import measure_recipes

        print(f"FITS recipes on {args.fits} (input planes {args.input_planes}), {torch.get_num_threads()} threads, "
              f"{args.steps} rounds of {args.block} steps each, in turns:")
        for line in measure_recipes(args.fits, args.input_planes, args.steps, args.block):
            print(line)
        return
    modes = parse_modes(args.modes)
    opt = TrainOptions().parse(train_argv(args, args.dataroot or "/nonexistent-bench"))
    label = (f"{args.netG}+{args.netD} batch {args.batch_size} crop {args.crop_size} input_nc {args.input_nc} "
             f"on {RunContext.from_environment(opt.gpu_ids).device} ({torch.get_num_threads()} threads)")
    if args.overhead:
        loop_overhead(args, modes[0], label)
    elif [mode.label for mode in modes] == ["fp32"]:
        print(summary(label, time_training_steps(opt, args.warmup, args.steps), args.batch_size))
    else:
        compare_modes(args, modes, label)
    if args.dataroot:
        times = time_data_loader(opt, args.loader_batches or args.warmup + args.steps)
        print(summary(f"data loader alone ({args.num_threads} workers)", times[args.warmup:] or times, args.batch_size))
        loader_arithmetic(args)
        data_wait_share(args, modes[0])


def mode_step(args: argparse.Namespace, mode) -> Callable[[], None]:
    """One training step of a mode, on a fixed synthetic batch."""
    from options.train_options import TrainOptions

    opt = TrainOptions().parse(train_argv(args, "/nonexistent-bench") + mode.train_flags())
    device = RunContext.from_environment(opt.gpu_ids).device
    batch = synthetic_batch(opt, device)
    if mode.plain:
        return plain_pix2pix_step(opt, batch, device)
    model = build_model(opt)

    def step() -> None:
        model.set_input(batch)
        model.optimize_parameters()

    return step


def loop_overhead(args: argparse.Namespace, mode, label: str) -> None:
    """train.py's loop against the bare step of the same model (engine.loop_bench), then its pieces."""
    from engine.loop_bench import component_table, measure_loop, overhead_lines

    if mode.plain:
        raise UserError("--overhead times our loop: give a mode of ours (fp32, bf16, ...), not plain")
    argv = train_argv(args, "/nonexistent-bench") + mode.train_flags()
    loop, bare = measure_loop(argv, synthetic_batch, args.warmup, args.steps, args.block)
    print(f"[{mode.label}] {label}, {args.steps} steps in blocks of {args.block}")
    for line in overhead_lines(loop, bare, args.block):
        print(line)
    for line in component_table(argv, synthetic_batch, statistics.median(bare)):
        print(line)


def compare_modes(args: argparse.Namespace, modes, label: str) -> None:
    """Every mode in turns, step by step (a busy machine slows them alike), then the ratios."""
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    steps = {mode.label: mode_step(args, mode) for mode in modes}
    times = time_interleaved(steps, device, args.warmup, args.steps)
    for mode_label, mode_times in times.items():
        print(summary(f"[{mode_label}] {label}", mode_times, args.batch_size))
    reference = "fp32" if "fp32" in times else modes[0].label
    print("ratios (measured in turns in this run):")
    for line in ratio_table(times, reference):
        print(line)


def data_wait_share(args: argparse.Namespace, mode) -> None:
    """Real training on the real loader (--num_threads workers), first mode's flags: the share
    of wall time spent waiting for the next batch (the GPU goal: under 5%)."""
    from data import create_dataset
    from options.train_options import TrainOptions

    if mode.plain:
        return
    opt = TrainOptions().parse(train_argv(args, args.dataroot) + mode.train_flags())
    loader = create_dataset(opt)
    model = build_model(opt)
    wait = busy = 0.0
    batches = args.loader_batches or args.warmup + args.steps
    done = 0
    while done < args.warmup + batches:
        start = time.perf_counter()
        for data in loader:
            fetched = time.perf_counter()
            model.set_input(data)
            model.optimize_parameters()
            synchronize(model.device)
            end = time.perf_counter()
            if done >= args.warmup:  # worker start-up and first steps excluded
                wait, busy = wait + fetched - start, busy + end - fetched
            done += 1
            start = end
            if done >= args.warmup + batches:
                break
    print(f"[{mode.label}] training on the loader ({args.num_threads} workers): data wait {100 * wait / (wait + busy):.1f}% "
          f"of wall time over {batches} steps ({1000 * wait / batches:.1f} ms wait, {1000 * busy / batches:.1f} ms compute per step)")


def loader_arithmetic(args: argparse.Namespace) -> None:
    """Per-item decode cost in one process, the rate of --num_threads workers, and the workers
    --target samples/s needs (cost x target, as each worker decodes one item at a time)."""
    import math

    from data import create_dataset
    from options.train_options import TrainOptions

    batches = args.loader_batches or args.warmup + args.steps
    rates = {}
    for workers in sorted({0, args.num_threads}):
        argv = train_argv(args, args.dataroot)
        argv[argv.index("--num_threads") + 1] = str(workers)
        loader = create_dataset(TrainOptions().parse(argv))
        seconds, samples = time_loader_items(loader, batches)
        rates[workers] = samples / seconds
        print(f"loader items/s with {workers} workers: {rates[workers]:.1f} ({1000 * seconds / samples:.2f} ms/item)")
    per_item = 1.0 / rates[0]
    print(f"decode cost {1000 * per_item:.2f} ms/item in one process: {args.target:.0f} samples/s needs "
          f"about {math.ceil(args.target * per_item)} worker processes (on as many free cores)")


if __name__ == "__main__":
    main(sys.argv[1:])
