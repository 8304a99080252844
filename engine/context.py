"""The one place that decides where tensors live (later: DDP rank devices, AMP)."""
from __future__ import annotations

import os
from typing import Sequence

import torch


def parse_gpu_ids(text: str) -> list[int]:
    """'0,1' -> [0, 1]; '-1' (the 2022 spelling of CPU) or '' -> []."""
    ids = [int(part) for part in str(text).split(",") if part.strip()]
    return [i for i in ids if i >= 0]


def select_device(gpu_ids: Sequence[int], cudnn_benchmark: bool = True) -> torch.device:
    """CUDA when GPUs are asked for (default '0') and present, otherwise the CPU, silently.

    Under torchrun (LOCAL_RANK set) the rank's own GPU wins, as in upstream's 2025 code.
    cudnn autotuning is on as upstream (off for scale_width, whose image sizes vary)."""
    if not gpu_ids or not torch.cuda.is_available():
        return torch.device("cpu")
    local_rank = os.environ.get("LOCAL_RANK")
    index = int(local_rank) if local_rank is not None else gpu_ids[0]
    if index >= torch.cuda.device_count():
        index = 0
    torch.cuda.set_device(index)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    return torch.device("cuda", index)
