"""Fast, reproducible DataLoader workers: persistent across epochs, pinned memory on CUDA,
and per-item random streams that do not depend on which worker decodes an item.

Persistent workers keep their RNG streams from epoch to epoch, which would make a resumed run
(fresh workers) augment differently from an uninterrupted one. So each item reseeds the worker's
torch/python/numpy RNGs from (epoch seed, item index); the epoch seed is drawn from the global
torch RNG when an epoch starts, exactly where a non-persistent loader draws its base seed, so
the global stream (which exact resume replays) is consumed as before. Bonus: the augmentations
are the same for any --num_threads > 0.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
import torch.utils.data as torch_data

_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant: spreads consecutive indices over the seed space


def item_seed(epoch_seed: int, index: int) -> int:
    """A 63-bit seed for one item of one epoch."""
    return ((epoch_seed * _MIX) ^ (index + 1) * 0xBF58476D1CE4E5B9) & (2**63 - 1)


def reseed_all(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


class EpochSeededDataset(torch_data.Dataset):
    """Wraps a map-style dataset; `new_epoch()` (main process) draws the seed the workers use."""

    def __init__(self, dataset: torch_data.Dataset):
        self.dataset = dataset
        self.epoch_seed = torch.zeros(1, dtype=torch.int64).share_memory_()  # seen by forked/spawned workers

    def new_epoch(self) -> None:
        self.epoch_seed[0] = int(torch.empty((), dtype=torch.int64).random_())

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        reseed_all(item_seed(int(self.epoch_seed[0]), int(index)))
        return self.dataset[index]


def build_loader(dataset: torch_data.Dataset, batch_size: int, shuffle: bool, num_workers: int,
                 sampler: torch_data.Sampler | None, pin_memory: bool, prefetch_factor: int = 4
                 ) -> tuple[torch_data.DataLoader, EpochSeededDataset | None]:
    """The DataLoader, and the wrapper whose new_epoch() must run before each iter() (None
    without workers: then the main process draws augmentations from the global RNG, as upstream)."""
    if num_workers <= 0:
        return torch_data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle if sampler is None else False,
                                     sampler=sampler, num_workers=0, pin_memory=pin_memory), None
    wrapped = EpochSeededDataset(dataset)
    if sampler is None:  # shuffles from the global RNG each epoch (what exact resume replays)
        sampler = torch_data.RandomSampler(wrapped) if shuffle else torch_data.SequentialSampler(wrapped)
    loader = torch_data.DataLoader(
        wrapped, batch_size=batch_size, sampler=sampler, num_workers=num_workers, pin_memory=pin_memory,
        persistent_workers=True, prefetch_factor=prefetch_factor,
        generator=torch.Generator().manual_seed(0))  # base seeds unused (items reseed): keep the global RNG out of it
    return loader, wrapped
