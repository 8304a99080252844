"""The run context: rank, local rank, world size, device and the distributed state, read from
torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE) and the options in ONE place.

The loops create it with `open_run(opt)` and pass it down: to the data loader (which shard), the
model's set-up (its device, DDP), the visualizer and checkpoint saving (who writes, whose random
streams) and determinism (the seed offset). Option parsing reads none of this and changes
nothing in the process; `open_run` is the one place where a run changes the process: it selects
the GPU, sets cudnn's flags, seeds, and joins (then leaves) torchrun's process group.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Iterator, Mapping, Sequence

import torch
import torch.distributed as dist

from engine.determinism import apply_reproducibility
from util.errors import UserError


@dataclass(frozen=True)
class RunContext:
    """Where this process stands in a run. The default is one process on the CPU."""
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0 alone prints, writes logs, pages and checkpoints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """Several processes train one model (torchrun); inside open_run the process group is joined."""
        return self.world_size > 1

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"

    @classmethod
    def from_environment(cls, gpu_ids: Sequence[int], environ: Mapping[str, str] | None = None,
                         cuda_count: int | None = None) -> "RunContext":
        """The context torchrun's variables and --gpu_ids describe; reads, changes nothing."""
        environ = os.environ if environ is None else environ
        world_size = _env_int(environ, "WORLD_SIZE", 1)
        rank = _env_int(environ, "RANK", 0)
        local_rank = _env_int(environ, "LOCAL_RANK", -1)
        if world_size < 1 or not 0 <= rank < world_size:
            raise UserError(f"RANK {rank} / WORLD_SIZE {world_size} in the environment do not describe a run; "
                            f"start several processes with torchrun")
        if cuda_count is None:
            cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        device = choose_device(gpu_ids, local_rank if local_rank >= 0 else None, cuda_count)
        return cls(rank=rank, local_rank=max(local_rank, 0), world_size=world_size, device=device)


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{name}={text!r} in the environment is not a number") from None


def choose_device(gpu_ids: Sequence[int], local_rank: int | None, cuda_count: int) -> torch.device:
    """CUDA when GPUs are asked for (default --gpu_ids 0) and present, otherwise the CPU.

    One process drives one GPU. Under torchrun (LOCAL_RANK set) each rank takes the GPU of its
    local rank, as upstream's 2025 code. Without torchrun --gpu_ids names that one GPU: several ids
    (upstream 2022 spread a batch over them with DataParallel, which this project does not do)
    and an id the machine does not have are one-line errors, never a silent GPU 0."""
    if not gpu_ids or cuda_count == 0:
        return torch.device("cpu")
    if local_rank is not None:
        if local_rank >= cuda_count:
            raise UserError(f"LOCAL_RANK {local_rank} but this machine has {cuda_count} GPU(s): start at most "
                            f"{cuda_count} processes per node (torchrun --nproc_per_node)")
        return torch.device("cuda", local_rank)
    if len(gpu_ids) > 1:
        ids = ",".join(map(str, gpu_ids))
        raise UserError(f"--gpu_ids {ids} names {len(gpu_ids)} GPUs, but one process drives one GPU: give one id, "
                        f"or use all of them with `torchrun --nproc_per_node={len(gpu_ids)} train.py ...`")
    if gpu_ids[0] >= cuda_count:
        raise UserError(f"--gpu_ids {gpu_ids[0]}: this machine has {cuda_count} GPU(s), ids 0..{cuda_count - 1} "
                        f"(-1 = the CPU)")
    return torch.device("cuda", gpu_ids[0])


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def join_process_group(ctx: RunContext, timeout_s: float = 1800.0) -> bool:
    """Join the process group torchrun describes (MASTER_ADDR/PORT, RANK, WORLD_SIZE). True when this
    call joined it (the caller leaves it again); False for one process or a group already joined."""
    if not ctx.is_distributed or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise UserError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    dist.init_process_group(backend=backend_for(ctx.device), timeout=timedelta(seconds=timeout_s),
                            rank=ctx.rank, world_size=ctx.world_size,
                            device_id=ctx.device if ctx.device.type == "cuda" else None)
    return True


@contextmanager
def open_run(opt, environ: Mapping[str, str] | None = None) -> Iterator[RunContext]:
    """The run's context, with the process set up for it until the block ends: the GPU selected,
    cudnn autotuning on (as upstream; off for scale_width, whose sizes vary, and for
    --deterministic), the seeds and deterministic mode of --seed/--deterministic (offset by the
    rank), and torchrun's process group joined and left again."""
    ctx = RunContext.from_environment(opt.gpu_ids, environ)
    if ctx.device.type == "cuda":
        torch.cuda.set_device(ctx.device)
        torch.backends.cudnn.benchmark = "scale_width" not in opt.preprocess and not opt.deterministic
    joined = join_process_group(ctx)
    try:
        apply_reproducibility(opt, ctx.rank)
        yield ctx
        if joined:  # leave together: a rank that tears down while rank 0 still writes can abort in gloo
            dist.barrier()
    finally:
        if joined:
            dist.destroy_process_group()
