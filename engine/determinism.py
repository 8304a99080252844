"""Seeding and deterministic mode: with --deterministic two runs give bit-identical weights.

The data order and the augmentations derive from the global RNGs seeded here: data loader
workers reseed torch/python/numpy per item from an epoch seed drawn from the global torch RNG
(data/worker_seeding.py), so no worker stream escapes the seed. No separate DataLoader generator
carries the data order: exact resume replays the global RNG.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def resolve_seed(seed: int | None, deterministic: bool) -> int | None:
    """--seed wins; --deterministic alone means seed 0; neither: unseeded (upstream)."""
    if seed is not None:
        return int(seed)
    return 0 if deterministic else None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_determinism(deterministic: bool) -> None:
    """Deterministic kernels and no cudnn autotuning. An op without a deterministic kernel warns
    instead of stopping the run (on CUDA, e.g. the reflection-pad backward of resnet generators)."""
    if not deterministic:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS reproducibility
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def apply_reproducibility(opt, rank: int = 0) -> int | None:
    """Seed (offset by the DDP rank, so ranks augment differently; DDP then broadcasts rank 0's
    initial weights) and switch deterministic mode on. Returns the seed used, or None."""
    configure_determinism(bool(getattr(opt, "deterministic", False)))
    seed = resolve_seed(getattr(opt, "seed", None), bool(getattr(opt, "deterministic", False)))
    if seed is not None:
        seed_everything(seed + rank)
    return seed

