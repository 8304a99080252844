"""L1 over the pixels that have data: science cubes mark missing sky (NaN) in a mask."""
from __future__ import annotations

import torch


def masked_l1(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |output - target| over the pixels where mask is true (per channel); 0 when none is.

    Masked pixels give neither loss nor gradient whatever the target holds there (NaN included),
    so the network is never pulled towards the fill value of missing data. With an all-true
    mask this equals L1Loss.
    """
    valid = mask.to(device=output.device, dtype=torch.bool).expand_as(output)
    # compare masked pixels with the output itself: |0| with zero gradient, never NaN * 0
    target = torch.where(valid, target, output.detach())
    total = torch.abs(output - target).sum()
    return total / valid.sum().clamp(min=1).to(output.dtype)
