"""Non-finite losses, watched without a device sync per step.

Reading a loss on the host (`bool(...)`, `float(...)`) makes the CPU wait for the GPU to finish
the step, so the next step's kernels are queued only after an idle gap. The watch instead folds
each step's losses into two device tensors (the first iteration whose losses were not all
finite, and those losses) with a few tiny kernels, and the engine reads them back at points
where it syncs anyway: the loss lines, the saves and the ends of epochs. A diverged step is
therefore always found before anything is saved from it.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch


class LossWatch:
    """First iteration with a NaN or infinite loss, and the losses of that iteration."""

    def __init__(self) -> None:
        self._first: torch.Tensor | None = None  # int64, -1 = none yet
        self._losses: torch.Tensor | None = None
        self._names: list[str] = []
        self._host: tuple[int, dict[str, float]] | None = None  # losses that are plain floats

    def track(self, names: Sequence[str], values: Sequence[object], iteration: int) -> None:
        """Fold in one step's losses (tensors stay on the device; nothing is read back)."""
        tensors = [(n, v) for n, v in zip(names, values) if isinstance(v, torch.Tensor)]
        plain = {n: float(v) for n, v in zip(names, values) if not isinstance(v, torch.Tensor) and v is not None}
        if self._host is None and any(not math.isfinite(v) for v in plain.values()):
            self._host = (iteration, plain)
        if not tensors:
            return
        stacked = torch.stack([v.detach().reshape(()).double() for _, v in tensors])  # float32 would overflow 1e39
        if self._first is None or [n for n, _ in tensors] != self._names:
            self._names = [n for n, _ in tensors]
            self._first = torch.full((), -1, dtype=torch.int64, device=stacked.device)
            self._losses = torch.zeros_like(stacked)
        new = ~torch.isfinite(stacked).all() & (self._first < 0)
        self._first = torch.where(new, iteration, self._first)
        self._losses = torch.where(new, stacked, self._losses)

    def first(self) -> tuple[int, dict[str, float]] | None:
        """(iteration, {loss: value} of its non-finite losses) of the first bad step, or None (one sync)."""
        found = []
        if self._first is not None:
            iteration = int(self._first)
            if iteration >= 0:
                values = dict(zip(self._names, self._losses.tolist()))
                found.append((iteration, {n: v for n, v in values.items() if not math.isfinite(v)}))
        if self._host is not None:
            iteration, values = self._host
            found.append((iteration, {n: v for n, v in values.items() if not math.isfinite(v)}))
        return min(found, key=lambda item: item[0]) if found else None
