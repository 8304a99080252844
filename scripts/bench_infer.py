"""Images/s of test.py's model path (generator forward in eval mode, no grad) per batch size and mode.

    python scripts/bench_infer.py --netG unet_256 --crop_size 256 --input_nc 9 --device cpu \
        --threads 2 --batch_sizes 1,4 --modes fp32,bf16,channels_last --steps 5

The model is built exactly as test.py builds it (TestOptions, model.test() under no_grad and the
--amp autocast, --eval), with random weights instead of a checkpoint, fed synthetic tensors.
Modes take turns step by step so a busy machine slows them alike; ratios are against the first.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.bench import MODE_HELP, apply_bench_device_args, parse_modes, ratio_table, summary, time_interleaved  # noqa: E402
from util.cli import ArgumentParser  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="pix2pix", help="pix2pix (G of a pix2pix checkpoint) or test")
    parser.add_argument("--netG", default="unet_256")
    parser.add_argument("--norm", default="batch")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--crop_size", type=int, default=256)
    parser.add_argument("--input_nc", type=int, default=3)
    parser.add_argument("--output_nc", type=int, default=3)
    parser.add_argument("--batch_sizes", default="1", help="comma-separated batch sizes, e.g. 1,8,32")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--modes", default="fp32", help=MODE_HELP.replace("plain (a minimal hand-written step, "
                                                                           "same networks), ", ""))
    return parser.parse_args(argv)


def test_argv(args: argparse.Namespace, batch_size: int, flags: list[str]) -> list[str]:
    gpu = "-1" if args.device == "cpu" else "0"
    argv = ["--dataroot", "/nonexistent-bench", "--model", args.model, "--gpu_ids", gpu, "--netG", args.netG,
            "--norm", args.norm, "--ngf", str(args.ngf), "--crop_size", str(args.crop_size),
            "--input_nc", str(args.input_nc), "--output_nc", str(args.output_nc), "--eval",
            "--checkpoints_dir", "/nonexistent-bench", "--results_dir", "/nonexistent-bench", *flags]
    if args.model == "test":
        argv += ["--dataset_mode", "single"]
    return argv


def inference_step(args: argparse.Namespace, batch_size: int, flags: list[str]) -> Callable[[], None]:
    """test.py's per-batch work (set_input, test) on a model built as setup() builds it, minus the load."""
    import torch

    from engine.context import RunContext
    from engine.setup import wrap_for_run
    from models import create_model
    from options.test_options import TestOptions

    opt = TestOptions().parse(test_argv(args, batch_size, flags))
    opt.batch_size = batch_size
    ctx = RunContext.from_environment(opt.gpu_ids)
    opt.device = ctx.device  # as engine.setup.prepare_model hands it to the model
    model = create_model(opt)
    model.build()
    wrap_for_run(model, opt, ctx)
    model.eval()
    size = (batch_size, args.crop_size, args.crop_size)
    source = torch.rand(size[0], args.input_nc, *size[1:], device=ctx.device) * 2 - 1
    target = torch.rand(size[0], args.output_nc, *size[1:], device=ctx.device) * 2 - 1
    batch = {"A": source, "B": target, "A_paths": ["synthetic"] * batch_size, "B_paths": ["synthetic"] * batch_size}

    def step() -> None:
        model.set_input(batch)
        model.test()

    return step


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    modes = parse_modes(args.modes)  # a bad command line fails before torch starts
    if any(mode.plain for mode in modes):
        raise UserError("bench_infer has no plain mode")
    device = apply_bench_device_args(args)
    import torch
    for batch_size in [int(b) for b in args.batch_sizes.split(",") if b.strip()]:
        steps = {mode.label: inference_step(args, batch_size, mode.train_flags()) for mode in modes}
        times = time_interleaved(steps, device, args.warmup, args.steps)
        label = (f"{args.netG} G forward (test.py path, --eval) batch {batch_size} crop {args.crop_size} "
                 f"input_nc {args.input_nc} on {device} ({torch.get_num_threads()} threads)")
        for mode_label, mode_times in times.items():
            print(summary(f"[{mode_label}] {label}", mode_times, batch_size, unit="batch").replace("samples/s", "images/s"))
        if len(times) > 1:
            print(f"ratios at batch {batch_size} (measured in turns in this run):")
            for line in ratio_table(times, modes[0].label):
                print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
