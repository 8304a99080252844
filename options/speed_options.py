"""Speed, scale and reproducibility options (mixed precision, memory format, compile, seeding).

Kept apart from upstream's option list so that list stays recognisable; BaseOptions adds them."""
from __future__ import annotations

import argparse

AMP_MODES = ("none", "bf16", "fp16")


def add_speed_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    group = parser.add_argument_group("speed and reproducibility")
    group.add_argument("--amp", type=str, default="none", choices=AMP_MODES,
                       help="mixed precision: bf16 autocast, or fp16 autocast with a gradient scaler")
    group.add_argument("--channels_last", action="store_true",
                       help="NHWC memory format for the networks (faster convolutions on tensor-core GPUs)")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile the networks (falls back with a warning when the compiler is missing)")
    group.add_argument("--seed", type=int, default=None,
                       help="seed python/numpy/torch once at start (default: unseeded, or 0 with --deterministic)")
    group.add_argument("--deterministic", action="store_true",
                       help="deterministic algorithms, no cudnn autotuning, seeded data workers: runs repeat bit for bit")
    return parser
