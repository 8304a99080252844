"""torchrun data parallelism: one process per device trains ONE model.

Upstream hard-codes NCCL (so no CPU run) and lets ranks log per-rank losses; here the backend
follows the device (nccl on CUDA, gloo on CPU), DDP broadcasts rank 0's weights when it wraps a
network, gradients are averaged every backward, only rank 0 writes logs, pages and checkpoints,
logged losses are averaged over ranks, a non-finite loss on any rank stops every rank at the same
step, and a checkpoint keeps every rank's random streams. Who is who comes from the RunContext;
with one process every function here is a no-op or the identity.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

import torch
import torch.distributed as dist
from torch import nn

from engine.context import RunContext
from util.errors import UserError


def check_options_for_ddp(opt, ctx: RunContext) -> None:
    """Combinations DDP cannot train correctly, refused in one line before any step."""
    if ctx.is_distributed and getattr(opt, "gan_mode", "") == "wgangp":
        raise UserError("--gan_mode wgangp cannot run under torchrun/DDP: its gradient penalty differentiates "
                        "through D with autograd.grad, which DDP does not support; train it in one process")


def norm_note_for_ddp(norm: str, ctx: RunContext) -> str:
    """Upstream raises for syncbatch (its check is inverted). Here syncbatch is the right choice
    for batch norm across ranks; plain batch norm works but keeps per-rank statistics."""
    if ctx.is_distributed and norm == "batch":
        return (f"note: --norm batch under DDP normalises each rank's batch on its own "
                f"({ctx.world_size} ranks); --norm syncbatch computes the statistics over the global batch")
    return ""


def wrap_ddp(net: nn.Module, ctx: RunContext) -> nn.Module:
    """DistributedDataParallel around a network that has trainable parameters. Wrapping
    broadcasts rank 0's parameters and buffers, so every rank starts from the same weights."""
    if not ctx.is_distributed or not any(p.requires_grad for p in net.parameters()):
        return net
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # buffers (batch-norm statistics) follow rank 0 at every forward, as DDP does by default
    return nn.parallel.DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=False)


def _reduced(values: list[float], ctx: RunContext, op) -> torch.Tensor:
    """all_reduce of a few numbers (a collective: every rank must call it), back on the CPU."""
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.to(ctx.device)
    dist.all_reduce(tensor, op=op)
    return tensor.cpu()


def average_losses(losses: Mapping[str, float], ctx: RunContext) -> dict[str, float]:
    """Mean of each logged loss over the ranks (a collective)."""
    if not ctx.is_distributed or not losses:
        return dict(losses)
    values = _reduced([float(v) for v in losses.values()], ctx, dist.ReduceOp.SUM) / ctx.world_size
    return {name: float(v) for name, v in zip(losses, values)}


def ranks_with(flag: bool, ctx: RunContext) -> list[int]:
    """The ranks on which `flag` is true, known to every rank (a collective; one small all_reduce)."""
    if not ctx.is_distributed:
        return [0] if flag else []
    slots = [0.0] * ctx.world_size
    slots[ctx.rank] = 1.0 if flag else 0.0
    return [rank for rank, value in enumerate(_reduced(slots, ctx, dist.ReduceOp.SUM).tolist()) if value]


def gather_objects(obj: Any, ctx: RunContext) -> list[Any]:
    """obj of every rank, in rank order (a collective); [obj] for one process."""
    if not ctx.is_distributed:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


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


def verify_replicas_in_sync(nets: Mapping[str, nn.Module], ctx: RunContext) -> str:
    """Every rank hashes its weights; a difference is a bug worth stopping for (a collective)."""
    digests = gather_objects(weights_digest(nets), ctx)
    if len(set(digests)) != 1:
        raise RuntimeError(f"DDP replicas diverged: weight digests per rank {[d[:12] for d in digests]}")
    return digests[0]
