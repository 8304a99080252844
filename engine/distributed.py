"""torchrun data parallelism: one process per device trains ONE model.

Upstream hard-codes NCCL (so no CPU run) and lets ranks log per-rank losses; here the backend
follows the device (nccl on CUDA, gloo on CPU), DDP broadcasts rank 0's weights when it wraps a
network, gradients are averaged every backward, only rank 0 writes logs, pages and checkpoints,
and logged losses are averaged over ranks. Without WORLD_SIZE > 1 every function is a no-op.
"""
from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Mapping

import torch
import torch.distributed as dist
from torch import nn

from util.errors import UserError


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def init_distributed(device: torch.device, timeout_s: float = 1800.0) -> bool:
    """Join the process group torchrun describes (MASTER_ADDR/PORT, RANK, WORLD_SIZE). False when
    not launched by torchrun with several processes."""
    if env_world_size() <= 1 or is_distributed():
        return is_distributed()
    if not dist.is_available():
        raise UserError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    dist.init_process_group(backend=backend_for(device), timeout=timedelta(seconds=timeout_s),
                            device_id=device if device.type == "cuda" else None)
    return True


def cleanup_distributed() -> None:
    if is_distributed():
        dist.destroy_process_group()


def check_options_for_ddp(opt) -> None:
    """Combinations DDP cannot train correctly, refused in one line before any step."""
    if is_distributed() and getattr(opt, "gan_mode", "") == "wgangp":
        raise UserError("--gan_mode wgangp cannot run under torchrun/DDP: its gradient penalty differentiates "
                        "through D with autograd.grad, which DDP does not support; train it in one process")


def check_norm_for_ddp(norm: str) -> str:
    """Upstream raises for syncbatch (its check is inverted). Here syncbatch is the right choice
    for batch norm across ranks; plain batch norm works but keeps per-rank statistics."""
    if is_distributed() and norm == "batch":
        return (f"note: --norm batch under DDP normalises each rank's batch on its own "
                f"({world_size()} ranks); --norm syncbatch computes the statistics over the global batch")
    return ""


def wrap_ddp(net: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around a network that has trainable parameters. Wrapping
    broadcasts rank 0's parameters and buffers, so every rank starts from the same weights."""
    if not is_distributed() or not any(p.requires_grad for p in net.parameters()):
        return net
    device_ids = [device.index] if device.type == "cuda" else None
    # buffers (batch-norm statistics) follow rank 0 at every forward, as DDP does by default
    return nn.parallel.DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=False)


def set_grad_sync(net: nn.Module, requires_grad: bool) -> None:
    """A frozen DDP network (pix2pix's D during the G step) must not prepare a gradient
    reduction in its forward: none of its parameters will get a gradient in that backward."""
    if isinstance(net, nn.parallel.DistributedDataParallel):
        net.require_backward_grad_sync = requires_grad


def average_losses(losses: Mapping[str, float]) -> dict[str, float]:
    """Mean of each logged loss over the ranks (a collective: every rank must call it)."""
    if not is_distributed() or not losses:
        return dict(losses)
    values = torch.tensor([float(v) for v in losses.values()], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        values = values.cuda()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    values = (values / dist.get_world_size()).cpu()
    return {name: float(v) for name, v in zip(losses, values)}


def state_digest(states: Mapping[str, Mapping[str, torch.Tensor]]) -> str:
    """SHA-256 over names and bytes of state_dicts (e.g. {'G': ..., 'D': ...}); equal digests
    mean bit-identical weights. Also works on saved checkpoint files' contents."""
    digest = hashlib.sha256()
    for name, state in states.items():
        for key, tensor in state.items():
            digest.update(f"{name}.{key}".encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def weights_digest(nets: Mapping[str, nn.Module]) -> str:
    """state_digest of the bare networks (keys as in the checkpoint files)."""
    from models.checkpoint import bare_module, strip_wrapper_prefixes

    return state_digest({name: strip_wrapper_prefixes(bare_module(net).state_dict()) for name, net in nets.items()})


def verify_replicas_in_sync(nets: Mapping[str, nn.Module]) -> str:
    """Every rank hashes its weights; a difference is a bug worth stopping for (a collective)."""
    digest = weights_digest(nets)
    if not is_distributed():
        return digest
    digests: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        raise RuntimeError(f"DDP replicas diverged: weight digests per rank {[d[:12] for d in digests]}")
    return digest


def barrier() -> None:
    if is_distributed():
        dist.barrier()


class SilentVisualizer:
    """What ranks other than 0 get instead of engine.visualizer.Visualizer: no files, no output."""

    def __init__(self, opt=None):
        self.opt = opt

    def reset(self) -> None:
        pass

    def display_current_results(self, *args, **kwargs) -> None:
        pass

    def plot_current_losses(self, *args, **kwargs) -> None:
        pass

    def print_current_losses(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass
