"""Mixed precision for a model with several optimizers (pix2pix: D then G; CycleGAN: G then D).

One GradScaler serves every optimizer of a step: each loss is scaled before its backward, each
optimizer step is skipped when its own gradients overflowed, and `end_step()` updates the scale
once per iteration. bf16 needs no scaler (same exponent range as fp32). The scaler's state goes
into the train state, so an fp16 run resumes with the same loss scale.
"""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Mapping

import torch

from util.errors import UserError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """autocast + optional loss scaling, or plain fp32 calls when mode is 'none'."""

    def __init__(self, mode: str, device: torch.device):
        if mode not in ("none", *_DTYPES):
            raise UserError(f"--amp must be one of none, bf16, fp16; got {mode!r}")
        if mode == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UserError("--amp bf16 needs a GPU with bfloat16 support (Ampere or newer); use --amp fp16")
        self.mode = mode
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(device.type, enabled=mode == "fp16")

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def autocast(self) -> ContextManager:
        """Forward passes and losses run under this; backward and optimizer steps outside it."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=_DTYPES[self.mode])

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward() if self.scaler.is_enabled() else loss.backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.step(optimizer) if self.scaler.is_enabled() else optimizer.step()

    def end_step(self) -> None:
        """Once per training iteration, after every optimizer stepped."""
        if self.scaler.is_enabled():
            self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler.is_enabled() else {}

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        """A state saved without fp16 (empty) keeps the fresh scaler: switching --amp on resume is allowed."""
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(dict(state))
