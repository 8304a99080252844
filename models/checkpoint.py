"""Checkpoint files: upstream-format network state_dicts plus a separate exact-resume state.

Network files stay plain state_dicts of the bare module (upstream can read ours, we read
theirs). Everything else a resume needs (optimizers, schedulers, RNG streams, counters) goes
to `{prefix}_train_state.pth` beside them. All writes are atomic, all reads weights_only.
"""
from __future__ import annotations

import hashlib
import pickle
import random
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from util.errors import UserError
from util.fileio import FileGroup, atomic_write_with, recover_file_groups

WRAPPER_PREFIXES = ("module.", "_orig_mod.")
TRAIN_STATE_FORMAT = 1
MAX_LISTED_KEYS = 4


def network_path(save_dir: str | Path, prefix: str | int, name: str) -> Path:
    return Path(save_dir) / f"{prefix}_net_{name}.pth"


def train_state_path(save_dir: str | Path, prefix: str | int) -> Path:
    return Path(save_dir) / f"{prefix}_train_state.pth"


def strip_wrapper_prefixes(state: Mapping[str, Any]) -> "OrderedDict[str, Any]":
    """Drop DDP's `module.` and torch.compile's `_orig_mod.` from every key (any order, repeated)."""
    cleaned: OrderedDict[str, Any] = OrderedDict()
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        cleaned[key] = value
    return cleaned


def bare_module(net: nn.Module) -> nn.Module:
    """The network inside DDP / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(net, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            net = net.module
        elif hasattr(net, "_orig_mod") and isinstance(net._orig_mod, nn.Module):
            net = net._orig_mod
        else:
            return net


class _SaveWriter:
    """The file handle torch.save writes through: it hashes what passes (the SHA-256 of a saved file without
    a second pass over its bytes; a unet_256 G is 200 MB) and keeps the first write error. torch's zip writer
    turns an OSError of the handle (a full disk) into 'RuntimeError: [enforce fail at inline_container.cc]
    unexpected pos', which hid the cause from the user."""

    def __init__(self, handle, hashing: bool):
        self.handle = handle
        self.sha256 = hashlib.sha256() if hashing else None
        self.error: OSError | None = None

    def write(self, data) -> int:
        if self.sha256 is not None:
            self.sha256.update(data)
        try:
            return self.handle.write(data)
        except OSError as err:
            self.error = self.error or err
            raise

    def flush(self) -> None:
        self.handle.flush()


def torch_save_into(handle, obj: Any, hashing: bool = False) -> str | None:
    """torch.save(obj) into an open binary handle; the SHA-256 of the bytes when hashing. A write error of
    the handle is raised as itself (an OSError with its errno), not as torch's RuntimeError."""
    writer = _SaveWriter(handle, hashing)
    try:
        torch.save(obj, writer)
    except RuntimeError:
        if writer.error is not None:
            raise writer.error from None
        raise
    if writer.error is not None:
        raise writer.error
    return writer.sha256.hexdigest() if writer.sha256 is not None else None


def save_network(net: nn.Module, path: str | Path, group: FileGroup | None = None) -> str:
    """Upstream format: a plain state_dict of the bare module, CPU tensors, written atomically
    (as one file of `group` when given). Returns the file's SHA-256, which the train state records."""
    state = strip_wrapper_prefixes(bare_module(net).state_dict())
    cpu_state = OrderedDict((key, value.detach().cpu()) for key, value in state.items())
    digest = {}

    def write(handle) -> None:
        digest["sha256"] = torch_save_into(handle, cpu_state, hashing=True)

    atomic_write_with(path, write, group)
    return digest["sha256"]


def atomic_save_torch(obj: Any, path: str | Path, group: FileGroup | None = None) -> Path:
    """torch.save through a temp file (util.fileio): the previous file survives a kill mid-save.
    Streamed into the temp file: no copy of the whole file in memory."""
    return atomic_write_with(path, lambda handle: torch_save_into(handle, obj), group)


def recover_interrupted_saves(save_dir: str | Path) -> list[str]:
    """Finish a checkpoint save killed while its files were being renamed into place, remove the
    temp files of saves killed earlier; the notes to print (none when there was nothing to do)."""
    completed, removed = recover_file_groups(save_dir)
    notes = []
    if completed:
        notes.append(f"note: completed an interrupted checkpoint save in {save_dir}: {', '.join(completed)}")
    if removed:
        notes.append(f"note: removed {len(removed)} temporary file(s) of an interrupted save in {save_dir}")
    return notes


def non_finite_entries(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity (one device sync for all).

    Each tensor's minimum and maximum (torch.aminmax: one read, no mask the size of the weights and
    the Adam moments, NaN-propagating): a tensor is finite exactly when both are. About 30x faster
    than isfinite().all() on a CPU, which made the check a visible part of a short run's saves."""
    named = [(name, torch.view_as_real(t.detach()) if t.is_complex() else t.detach()) for name, t in tensors.items()
             if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) and t.numel()]
    if not named:
        return []
    extremes = torch.stack([torch.stack(torch.aminmax(t)).double() for _, t in named])
    finite = torch.isfinite(extremes).all(dim=1).tolist()
    return [name for (name, _), ok in zip(named, finite) if not ok]


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_torch_file(path: str | Path) -> Any:
    """torch.load with weights_only=True onto the CPU; unreadable files become a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # Python objects beyond tensors: loading them could run code
        raise UserError(f"{path} is not a plain weights file ({_blocked_object(err)}); it will not be "
                        f"loaded") from None
    except Exception as err:  # corrupt, truncated or not a torch file
        raise UserError(f"cannot read checkpoint {path}: {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None


def _blocked_object(err: Exception) -> str:
    """What torch's weights-only unpickler refused, from its message (not its advice)."""
    for line in str(err).splitlines():
        line = line.strip()
        if "GLOBAL" in line or line.lower().startswith("unsupported"):
            return line.rstrip(".")[:200]
    return "it holds Python objects besides tensors"


def drop_instance_norm_stats(net: nn.Module, state: "OrderedDict[str, Any]") -> None:
    """Upstream's patch for checkpoints from before PyTorch 0.4: InstanceNorm layers without
    tracked statistics must not receive running_mean/var or num_batches_tracked."""
    for key in list(state):
        *path, leaf = key.split(".")
        module: nn.Module | None = net
        for part in path:
            module = getattr(module, part, None) if isinstance(module, nn.Module) else None
        if not isinstance(module, nn.Module) or not module.__class__.__name__.startswith("InstanceNorm"):
            continue
        if leaf in ("running_mean", "running_var") and getattr(module, leaf, None) is None:
            del state[key]
        elif leaf == "num_batches_tracked":
            del state[key]


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    return shown + (f" (+{len(keys) - MAX_LISTED_KEYS} more)" if len(keys) > MAX_LISTED_KEYS else "")


def describe_mismatch(expected: Mapping[str, torch.Tensor], loaded: Mapping[str, Any]) -> str:
    """'' when the key sets and shapes agree, else a one-line summary of the first differences."""
    missing = [key for key in expected if key not in loaded]
    unexpected = [key for key in loaded if key not in expected]
    mismatched = [f"{key} {tuple(loaded[key].shape)} vs {tuple(expected[key].shape)}"
                  for key in expected if key in loaded and hasattr(loaded[key], "shape")
                  and tuple(loaded[key].shape) != tuple(expected[key].shape)]
    parts = []
    if missing:
        parts.append(f"missing keys: {_listed(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {_listed(unexpected)}")
    if mismatched:
        parts.append(f"shape mismatch (checkpoint vs model): {_listed(mismatched)}")
    return "; ".join(parts)


def load_network(net: nn.Module, path: str | Path, options_hint: str = "") -> None:
    """Strictly load an upstream-format state_dict; another architecture is a UserError
    naming the first differing keys."""
    state = read_torch_file(path)
    if not isinstance(state, Mapping):
        raise UserError(f"checkpoint {path} is not a state_dict (found {type(state).__name__})")
    if hasattr(state, "_metadata"):
        del state._metadata
    target = bare_module(net)
    state = strip_wrapper_prefixes(state)
    drop_instance_norm_stats(target, state)
    problem = describe_mismatch(target.state_dict(), state)
    if problem:
        hint = f" (built with {options_hint})" if options_hint else ""
        raise UserError(f"checkpoint {path} was made for another architecture than this model{hint}: {problem}")
    target.load_state_dict(state, strict=True)


# --------------------------------------------------------------------------- RNG streams
def capture_rng_state() -> dict[str, Any]:
    """Every random stream training touches, in a weights_only-loadable form."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state((np_state["name"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)


# --------------------------------------------------------------------------- train state
def save_train_state(path: str | Path, optimizers: list[torch.optim.Optimizer], schedulers: list[Any],
                     progress: Mapping[str, Any], network_sha256: Mapping[str, str] | None = None,
                     extra: Mapping[str, Any] | None = None,
                     rng_ranks: list[dict[str, Any]] | None = None, schedule: Mapping[str, Any] | None = None,
                     group: FileGroup | None = None) -> Path:
    """Optimizers, schedulers, counters and RNG streams; `progress` comes from the train loop;
    `network_sha256` ties the state to the network files saved just before it; `extra` holds
    model-side state such as the fp16 gradient scaler. `rng_ranks` holds each DDP rank's streams
    (index = rank; every rank augments and drops out with its own), default this process's.
    `rng` (rank 0's) stays for readers of format 1 without `rng_ranks`. `schedule`: the options
    the LR schedule was built from (models.schedule), so a resume sees when they change."""
    rng_ranks = list(rng_ranks) if rng_ranks else [capture_rng_state()]
    state = {
        "network_sha256": dict(network_sha256 or {}),
        "format": TRAIN_STATE_FORMAT,
        "optimizers": [optimizer.state_dict() for optimizer in optimizers],
        "schedulers": [scheduler.state_dict() for scheduler in schedulers],
        "scheduler_kinds": [type(scheduler).__name__ for scheduler in schedulers],
        "progress": dict(progress),
        "rng": rng_ranks[0],
        "rng_ranks": rng_ranks,
        "extra": dict(extra or {}),
    }
    if schedule is not None:
        state["schedule"] = dict(schedule)
    return atomic_save_torch(state, path, group)


def read_train_state(path: str | Path) -> dict[str, Any]:
    state = read_torch_file(path)
    if not isinstance(state, Mapping) or state.get("format") != TRAIN_STATE_FORMAT:
        raise UserError(f"{path} is not a training-state file of this program")
    return dict(state)


def changed_networks(state: Mapping[str, Any], network_files: Mapping[str, Path]) -> list[str]:
    """Networks whose file is not the one saved together with this state (a save cut in half)."""
    recorded = state.get("network_sha256", {})
    return [name for name, path in network_files.items()
            if name in recorded and (not Path(path).is_file() or file_sha256(path) != recorded[name])]


def apply_train_state(state: Mapping[str, Any], optimizers: list[torch.optim.Optimizer], schedulers: list[Any],
                      path: str | Path = "train state", restore_schedulers: bool = True) -> dict[str, Any]:
    """Restore optimizers (and schedulers, unless the caller rebuilds them for a changed schedule)
    in place; return the rest (progress, rng, rng_ranks) for the loop."""
    if len(state["optimizers"]) != len(optimizers) or len(state["schedulers"]) != len(schedulers):
        raise UserError(f"{path} holds {len(state['optimizers'])} optimizers, this model has {len(optimizers)}")
    kinds = [type(scheduler).__name__ for scheduler in schedulers]
    if restore_schedulers and list(state.get("scheduler_kinds", kinds)) != kinds:
        raise UserError(f"{path} was saved with LR schedulers {state['scheduler_kinds']}, these options give {kinds} "
                        f"(resume with the same --lr_policy)")
    try:
        for optimizer, saved in zip(optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(schedulers if restore_schedulers else [], state["schedulers"]):
            scheduler.load_state_dict(saved)
    except (ValueError, KeyError, RuntimeError) as err:
        raise UserError(f"{path} does not fit these options (other --lr_policy or networks?): {err}") from None
    return {"progress": dict(state["progress"]), "rng": state["rng"], "rng_ranks": list(state.get("rng_ranks") or [])}
