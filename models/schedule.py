"""The learning-rate schedule a run trains with, recorded in its training state, and rebuilt
when a resume (--continue_train) asks for another one.

Restoring the saved schedulers as they are is what makes a resume exact; but when the command
line changes the schedule (more epochs, another --lr or --lr_policy), the saved schedulers would
go on with the old one: past its end the linear decay turned the rate negative. So a changed
schedule is rebuilt from the options, standing where the saved one stood (the same number of
end-of-epoch steps): the resumed run trains as if these options had been given from the start.
"""
from __future__ import annotations

import argparse
import warnings
from typing import Any, Mapping

import torch

from models import networks

# the options each --lr_policy depends on (networks.get_scheduler)
SCHEDULE_OPTIONS = {"linear": ("lr", "n_epochs", "n_epochs_decay"), "step": ("lr", "lr_decay_iters"),
                    "cosine": ("lr", "n_epochs"), "plateau": ("lr",)}


def schedule_of(opt) -> dict[str, Any]:
    """The schedule the options describe: the policy and the options it reads."""
    policy = opt.lr_policy
    return {"lr_policy": policy, **{name: getattr(opt, name) for name in SCHEDULE_OPTIONS.get(policy, ("lr",))}}


def saved_schedule(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The schedule of a training state; for states saved before it was recorded, read back from
    the first scheduler (None when it cannot be: then the saved schedulers are restored as they are)."""
    if isinstance(state.get("schedule"), Mapping):
        return dict(state["schedule"])
    kinds, schedulers = state.get("scheduler_kinds") or [], state.get("schedulers") or []
    if not kinds or not schedulers:
        return None
    kind, saved = kinds[0], schedulers[0]
    lr = (saved.get("base_lrs") or [None])[0]
    if kind == "LambdaLR":
        decay = (saved.get("lr_lambdas") or [None])[0] or {}
        return {"lr_policy": "linear", "lr": lr, "n_epochs": decay.get("n_epochs"),
                "n_epochs_decay": decay.get("n_epochs_decay")}
    if kind == "StepLR":
        return {"lr_policy": "step", "lr": lr, "lr_decay_iters": saved.get("step_size")}
    if kind == "CosineAnnealingLR":
        return {"lr_policy": "cosine", "lr": lr, "n_epochs": saved.get("T_max")}
    return None


def describe_change(saved: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """'n_epochs 1 -> 2, lr 0.0002 -> 0.0001' for the options that differ."""
    names = list(dict.fromkeys([*saved, *current]))
    if saved.get("lr_policy") != current.get("lr_policy"):  # the other options belong to another policy
        names = ["lr_policy", "lr"]
    return ", ".join(f"{name} {saved.get(name, '-')} -> {current.get(name, '-')}"
                     for name in names if saved.get(name) != current.get(name))


def steps_taken(state: Mapping[str, Any]) -> int:
    """End-of-epoch scheduler steps of the saved run (the schedulers' last_epoch)."""
    schedulers = state.get("schedulers") or [{}]
    return max(0, int(schedulers[0].get("last_epoch", 0) or 0))


def resumed_epoch(progress: Mapping[str, Any]) -> int:
    """The epoch a resume trains first: the next one after a finished epoch, else the one in progress."""
    return int(progress["epoch"]) + (1 if progress.get("epoch_finished") else 0)


def rebuild_schedulers(optimizers: list[torch.optim.Optimizer], opt, epoch: int, steps: int) -> list[Any]:
    """Schedulers of the options' schedule on the (restored) optimizers, stepped `steps` times as
    the saved ones were, for a run that trains `epoch` next. The optimizers' rate starts from --lr."""
    start = max(1, epoch - steps)  # the epoch the run's schedule started at (its --epoch_count)
    options = argparse.Namespace(**{**vars(opt), "epoch_count": start})
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group.pop("initial_lr", None)  # the scheduler takes the base rate from "lr"
            group["lr"] = opt.lr
    schedulers = [networks.get_scheduler(optimizer, options) for optimizer in optimizers]
    if opt.lr_policy != "plateau":  # a plateau schedule follows the losses, which start afresh
        with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": intended here
            warnings.simplefilter("ignore")
            for _ in range(max(0, epoch - start)):
                for scheduler in schedulers:
                    scheduler.step()
    return schedulers
