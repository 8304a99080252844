"""Validation L1 of a bf16 (or fp16) run against an fp32 run: same data, same seed, same steps.

    python scripts/compare_precision.py --out /tmp/precision --amp bf16

Makes a synthetic A|B|C|D star-field dataset (scripts/make_synthetic_sky.py's generator) unless
--dataroot is given, trains pix2pix with each seed twice (fp32, then --amp; --deterministic), and
evaluates each generator on the test split the way test.py runs it (--eval; the mixed-precision
model under its own autocast): mean |fake_B - real_B| in the data's [-1, 1] units. The issue's
bound is on the mean over seeds: within 2%. A GAN's result moves with any numeric change (even
the CPU thread count), so the spread between seeds is printed as the noise floor.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from util.cli import ArgumentParser  # noqa: E402
from util.errors import exit_on_user_error  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for the dataset and the two runs")
    parser.add_argument("--dataroot", default="", help="an aligned dataset with train/ and test/ (default: synthetic)")
    parser.add_argument("--amp", choices=("bf16", "fp16"), default="bf16")
    parser.add_argument("--n_train", type=int, default=64)
    parser.add_argument("--n_test", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="panel size of the synthetic data")
    parser.add_argument("--netG", default="unet_64")
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--ndf", type=int, default=16)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--n_epochs", type=int, default=15)
    parser.add_argument("--n_epochs_decay", type=int, default=10)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (the data uses the first)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: tiny nets run fastest on one thread of a busy machine)")
    return parser.parse_args(argv)


def common_argv(args: argparse.Namespace, dataroot: Path, name: str) -> list[str]:
    return ["--dataroot", str(dataroot), "--name", name, "--checkpoints_dir", str(Path(args.out) / "checkpoints"),
            "--model", "pix2pix", "--direction", "BtoA", "--input_nc", "9", "--netG", args.netG,
            "--ngf", str(args.ngf), "--ndf", str(args.ndf), "--load_size", str(args.size),
            "--crop_size", str(args.size), "--gpu_ids", "-1" if not torch.cuda.is_available() else "0"]


def train(args: argparse.Namespace, dataroot: Path, name: str, amp: str, seed: int) -> float:
    from options.train_options import TrainOptions
    from engine.training import run_training

    argv = common_argv(args, dataroot, name) + [
        "--amp", amp, "--seed", str(seed), "--deterministic", "--batch_size", str(args.batch_size),
        "--n_epochs", str(args.n_epochs), "--n_epochs_decay", str(args.n_epochs_decay), "--num_threads", "0",
        "--print_freq", "100000", "--display_freq", "100000", "--no_html", "--save_epoch_freq", "100000"]
    start = time.perf_counter()
    run_training(TrainOptions().parse(argv))
    return time.perf_counter() - start


def validation_l1(args: argparse.Namespace, dataroot: Path, name: str, amp: str) -> float:
    """Mean absolute error of G on the test split, as test.py runs it (eval mode, batch 1)."""
    from data import create_dataset
    from engine.context import RunContext
    from engine.setup import prepare_model
    from options.test_options import TestOptions

    opt = TestOptions().parse(common_argv(args, dataroot, name) + ["--amp", amp, "--eval", "--phase", "test",
                                                                    "--num_test", "100000"])
    dataset = create_dataset(opt)
    model = prepare_model(opt, RunContext.from_environment(opt.gpu_ids))
    model.eval()
    total, count = 0.0, 0
    for data in dataset:
        model.set_input(data)
        model.test()
        total += float((model.fake_B.float() - model.real_B.float()).abs().mean()) * model.real_B.shape[0]
        count += model.real_B.shape[0]
    return total / count


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    dataroot = Path(args.dataroot) if args.dataroot else out / "data"
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    if not args.dataroot and not (dataroot / "test").is_dir():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_synthetic_sky.py"), "--out", str(dataroot),
                        "--n_train", str(args.n_train), "--n_test", str(args.n_test), "--size", str(args.size),
                        "--seed", str(seeds[0])], check=True)
    results: dict[str, list[float]] = {"fp32": [], args.amp: []}
    for seed in seeds:
        for amp, precision in (("none", "fp32"), (args.amp, args.amp)):
            name = f"{precision}_seed{seed}"
            seconds = train(args, dataroot, name, amp, seed)
            results[precision].append(validation_l1(args, dataroot, name, amp))
            print(f"seed {seed} {precision}: validation L1 {results[precision][-1]:.5f} (train {seconds:.0f} s)")
    reference, mixed = statistics.mean(results["fp32"]), statistics.mean(results[args.amp])
    change = (mixed - reference) / reference
    if len(seeds) > 1:
        spread = (max(results["fp32"]) - min(results["fp32"])) / reference
        print(f"fp32 seed-to-seed spread: {100 * spread:.2f}% of the mean (the noise floor of one comparison)")
    print(f"{args.amp} vs fp32 over {len(seeds)} seeds: mean validation L1 {mixed:.5f} vs {reference:.5f}, "
          f"relative difference {100 * change:+.2f}% ({'within' if abs(change) <= 0.02 else 'OUTSIDE'} the 2% bound)")


if __name__ == "__main__":
    main(sys.argv[1:])
