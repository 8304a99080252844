"""--compile: torch.compile with one clear warning and eager mode when the toolchain is missing.

torch.compile is lazy, so a missing C++ compiler (CPU) or Triton (GPU) would only fail at the
first training step, deep in a traceback. A tiny probe compiles and runs first, once per process.
"""
from __future__ import annotations

import functools
import warnings

import torch
from torch import nn


@functools.lru_cache(maxsize=None)
def compiler_problem(device_type: str) -> str:
    """'' when torch.compile works on this device type, else why not (one line)."""
    def probe(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu(x) * 2 + 1

    try:
        compiled = torch.compile(probe)
        result = compiled(torch.ones(4, device=device_type))
        if not torch.equal(result.cpu(), torch.full((4,), 3.0)):
            return "the compiled probe computed a wrong result"
    except Exception as err:  # missing compiler, missing Triton, unsupported platform
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0][:200] if str(err).strip() else ''}"
    return ""


def compile_network(net: nn.Module, device: torch.device) -> nn.Module:
    problem = compiler_problem(device.type)
    if problem:
        warnings.warn(f"--compile ignored, torch.compile does not work here ({problem}); training runs eagerly",
                      RuntimeWarning, stacklevel=2)
        return net
    return torch.compile(net)
