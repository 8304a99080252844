"""Dataset registry and loader: `--dataset_mode X` -> data/X_dataset.py, class XDataset.

torch is imported only when a dataset is created, so `import data.sky` stays light.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from util.errors import UserError


def _mode_key(name: str) -> str:
    return name.replace("_", "").lower()


def available_dataset_modes() -> list[str]:
    """Every X with a data/X_dataset.py file."""
    here = Path(__file__).parent
    return sorted(p.name[: -len("_dataset.py")] for p in here.glob("*_dataset.py") if p.name != "base_dataset.py")


def find_dataset_using_name(dataset_name: str):
    """The XDataset class of data/X_dataset.py, matched ignoring case and underscores."""
    from data.base_dataset import BaseDataset

    modes = available_dataset_modes()
    mode = next((m for m in modes if _mode_key(m) == _mode_key(dataset_name)), None)
    if mode is None:
        raise UserError(f"unknown --dataset_mode {dataset_name!r}; available: {', '.join(modes)}")
    module = importlib.import_module(f"data.{mode}_dataset")
    wanted = _mode_key(mode) + "dataset"
    for name, cls in vars(module).items():
        if name.lower() == wanted and isinstance(cls, type) and issubclass(cls, BaseDataset):
            return cls
    raise UserError(f"data/{mode}_dataset.py defines no BaseDataset subclass named like {wanted!r}")


def get_option_setter(dataset_name: str):
    """The dataset's modify_commandline_options(parser, is_train), for the options' third pass."""
    return find_dataset_using_name(dataset_name).modify_commandline_options


def create_dataset(opt, rank: int = 0, world_size: int = 1, pin_memory: bool = False) -> "CustomDatasetDataLoader":
    """Build the dataset of --dataset_mode (checking data and options now) wrapped in a loader.
    The run engine passes its context's rank and world size (which shard to read) and whether
    batches go to a GPU (pinned memory)."""
    return CustomDatasetDataLoader(opt, rank, world_size, pin_memory)


def _clean_worker_error(err: UserError) -> UserError:
    """A UserError raised in a DataLoader worker comes back with a traceback; keep its own line."""
    text = str(err)
    if not text.startswith("Caught "):
        return err
    marker = "UserError: "
    lines = [line for line in text.splitlines() if marker in line]
    return UserError(lines[-1].split(marker, 1)[1] if lines else text.splitlines()[-1])


class CustomDatasetDataLoader:
    """Upstream's loader: batches, shuffles unless --serial_batches, stops after max_dataset_size.

    With world_size > 1 (torchrun) each rank reads its own shard through a DistributedSampler;
    call set_epoch(epoch) every epoch so the shards reshuffle.
    """

    def __init__(self, opt, rank: int = 0, world_size: int = 1, pin_memory: bool = False):
        import torch.utils.data as torch_data

        from data.worker_seeding import build_loader

        self.opt = opt
        self.dataset = find_dataset_using_name(opt.dataset_mode)(opt)
        print(f"dataset [{type(self.dataset).__name__}] was created")
        shuffle = not opt.serial_batches
        self.sampler = None
        if world_size > 1:
            self.sampler = torch_data.DistributedSampler(
                self.dataset, num_replicas=world_size, rank=rank, shuffle=shuffle)
        # workers persist across epochs and reseed per item (exact resume stays exact); pinned memory on CUDA
        self.dataloader, self._epoch_seeding = build_loader(
            self.dataset, opt.batch_size, shuffle, int(opt.num_threads), self.sampler, pin_memory=pin_memory)

    def load_data(self) -> "CustomDatasetDataLoader":
        return self

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return int(min(n, self.opt.max_dataset_size))

    def __iter__(self):
        if self._epoch_seeding is not None:
            self._epoch_seeding.new_epoch()
        batches = iter(self.dataloader)
        error = None
        try:
            for i, data in enumerate(batches):
                if i * self.opt.batch_size >= self.opt.max_dataset_size:
                    break
                yield data
        except UserError as err:
            error = _clean_worker_error(err)
        if error is not None:
            # Stop the workers now: the error's traceback would otherwise keep them alive until a
            # garbage collection, which then waits seconds for them to exit.
            shutdown = getattr(batches, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            del batches
            raise error
