"""train.py's loop: upstream's epochs/iterations, saves and logs, plus exact resume.

Exact resume: each save also writes `{prefix}_train_state.pth` with the optimizers, schedulers,
counters, the RNG streams at the save and at the start of the epoch. A resume replays the
epoch's data order from the epoch-start RNG, skips the batches already trained on, then
restores the RNG of the save, so the run continues bit for bit (on the same device).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from engine import distributed
from models.checkpoint import capture_rng_state, restore_rng_state
from engine.determinism import apply_reproducibility
from util.errors import UserError


@dataclass
class ResumePlan:
    """Where the loop starts: first epoch, batches of it already done, counters and RNG to restore."""
    start_epoch: int
    skip_batches: int = 0
    total_iters: int = 0
    rng: dict[str, Any] | None = None
    epoch_start_rng: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def plan_resume(opt, resume_state: dict[str, Any] | None) -> ResumePlan:
    """Fresh run or weights-only resume: start at --epoch_count. Full state: where it stopped."""
    if not resume_state:
        return ResumePlan(start_epoch=opt.epoch_count)
    progress = resume_state["progress"]
    if progress["epoch_finished"]:
        plan = ResumePlan(start_epoch=progress["epoch"] + 1, total_iters=progress["total_iters"],
                          rng=resume_state["rng"])
    else:
        plan = ResumePlan(start_epoch=progress["epoch"], skip_batches=progress["batches_done"],
                          total_iters=progress["total_iters"], rng=resume_state["rng"],
                          epoch_start_rng=progress["epoch_start_rng"])
    plan.notes.append(f"resuming at epoch {plan.start_epoch}, after {plan.skip_batches} batches of it "
                      f"(total_iters {plan.total_iters}); --epoch_count set to {plan.start_epoch}")
    return plan


def make_progress(epoch: int, epoch_finished: bool, batches_done: int, epoch_iter: int, total_iters: int,
                  epoch_start_rng: dict[str, Any]) -> dict[str, Any]:
    return {"epoch": epoch, "epoch_finished": epoch_finished, "batches_done": batches_done,
            "epoch_iter": epoch_iter, "total_iters": total_iters, "epoch_start_rng": epoch_start_rng}


def save_checkpoint(model, prefix: str | int, progress: dict[str, Any]) -> None:
    """Network files (upstream format) then the resume state, each written atomically.
    Under DDP every rank calls this: the ranks first prove they hold the same weights, then
    rank 0 alone writes."""
    if distributed.is_distributed():
        digest = distributed.verify_replicas_in_sync(dict(model.networks()))
        if not distributed.is_main_process():
            return
        print(f"weights identical on all {distributed.world_size()} ranks (sha256 {digest[:16]})")
    model.save_networks(prefix)
    model.save_train_state(prefix, progress)


def stop_on_non_finite(model, epoch: int, total_iters: int) -> None:
    """Stop before anything is saved from a diverged step; the last good checkpoint stays."""
    bad = model.non_finite_losses()
    if bad:
        losses = model.get_current_losses()
        values = ", ".join(f"{name}={losses[name]}" for name in bad)
        raise UserError(f"non-finite loss at iteration {total_iters} (epoch {epoch}): {values}; stopped without "
                        f"saving, the last good checkpoint in {model.save_dir} is kept (lower --lr?)")


def attach_panels(model, dataset) -> None:
    """Give the model the dataset's panel layout so each input band is its own visual."""
    model.set_visual_panels(getattr(dataset, "panel_channels", None), getattr(dataset, "panel_indices", None))


def run_training(opt, stop_after_iters: int | None = None, stop_after_epoch: int | None = None) -> dict[str, int]:
    """Train as upstream's train.py. `stop_after_iters` / `stop_after_epoch` end the run early,
    right after that iteration / after that epoch's end-of-epoch saves (a killed run, in tests)."""
    from data import create_dataset
    from models import create_model
    from engine.visualizer import Visualizer

    started_here = not distributed.is_distributed() and distributed.init_distributed(opt.device)
    try:
        apply_reproducibility(opt, distributed.rank())
        dataset = create_dataset(opt)
        if distributed.is_distributed():
            if distributed.is_main_process():
                print(f"The number of training images = {len(dataset.dataset)} "
                      f"({len(dataset)} per rank, {distributed.world_size()} ranks)")
        else:
            print(f"The number of training images = {len(dataset)}")
        model = create_model(opt)
        attach_panels(model, dataset.dataset)
        model.setup(opt)
        visualizer = Visualizer(opt) if distributed.is_main_process() else distributed.SilentVisualizer(opt)
        try:
            return _train_epochs(opt, dataset, model, visualizer, stop_after_iters, stop_after_epoch)
        finally:
            close = getattr(visualizer, "close", None)
            if close is not None:
                close()
    finally:
        if started_here:
            distributed.cleanup_distributed()


def _train_epochs(opt, dataset, model, visualizer, stop_after_iters: int | None,
                  stop_after_epoch: int | None) -> dict[str, int]:
    main = distributed.is_main_process()
    # counters count samples over all ranks (a DDP step of K ranks trains K * batch_size samples)
    samples_per_step = opt.batch_size * distributed.world_size()
    dataset_size = len(dataset) * distributed.world_size()
    plan = plan_resume(opt, model.resume_state)
    for note in plan.notes if main else []:
        print(note)
    opt.epoch_count = plan.start_epoch
    if plan.rng is not None and plan.skip_batches == 0:
        restore_rng_state(plan.rng)

    last_epoch = opt.n_epochs + opt.n_epochs_decay
    total_iters = plan.total_iters
    batches_per_epoch = math.ceil(len(dataset) / opt.batch_size)
    epoch = plan.start_epoch
    if plan.start_epoch > last_epoch:
        print(f"nothing to train: epoch {plan.start_epoch} is past --n_epochs + --n_epochs_decay = {last_epoch}")
        return {"epoch": plan.start_epoch - 1, "total_iters": total_iters}
    epoch_bar = tqdm(range(plan.start_epoch, last_epoch + 1), desc="epochs", unit="epoch",
                     initial=plan.start_epoch - 1, total=last_epoch, disable=not main)
    for epoch in epoch_bar:
        epoch_start_time = iter_data_time = time.time()
        t_data = 0.0
        epoch_iter = 0
        visualizer.reset()
        skip = plan.skip_batches if epoch == plan.start_epoch else 0
        if skip:
            epoch_start_rng = plan.epoch_start_rng
            restore_rng_state(epoch_start_rng)
        else:
            epoch_start_rng = capture_rng_state()
        dataset.set_epoch(epoch)
        seen = 0
        with tqdm(total=batches_per_epoch, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not main) as bar:
            for i, data in enumerate(dataset):
                seen = i + 1
                bar.update(1)
                if i < skip:  # already trained on before the restart: replay the data stream only
                    epoch_iter += samples_per_step
                    if i == skip - 1:
                        restore_rng_state(plan.rng)
                    continue
                iter_start_time = time.time()
                if total_iters % opt.print_freq == 0:
                    t_data = iter_start_time - iter_data_time
                total_iters += samples_per_step
                epoch_iter += samples_per_step
                model.set_input(data)
                model.optimize_parameters()
                stop_on_non_finite(model, epoch, total_iters)

                if main and total_iters % opt.display_freq == 0:
                    save_result = total_iters % opt.update_html_freq == 0
                    model.compute_visuals()
                    visualizer.display_current_results(model.get_current_visuals(), epoch, total_iters, save_result)
                if total_iters % opt.print_freq == 0:
                    losses = distributed.average_losses(model.get_current_losses())
                    t_comp = (time.time() - iter_start_time) / opt.batch_size
                    visualizer.print_current_losses(epoch, epoch_iter, losses, t_comp, t_data)
                    visualizer.plot_current_losses(epoch, float(epoch_iter) / max(dataset_size, 1), losses,
                                                   total_iters=total_iters)
                if total_iters % opt.save_latest_freq == 0:
                    if main:
                        print(f"saving the latest model (epoch {epoch}, total_iters {total_iters})")
                    prefix = f"iter_{total_iters}" if opt.save_by_iter else "latest"
                    save_checkpoint(model, prefix, make_progress(epoch, False, i + 1, epoch_iter, total_iters,
                                                                 epoch_start_rng))
                iter_data_time = time.time()
                if stop_after_iters is not None and total_iters >= stop_after_iters:
                    return {"epoch": epoch, "total_iters": total_iters}
        if skip and seen < skip:  # the data shrank since the save: still continue from its RNG
            restore_rng_state(plan.rng)
        model.update_learning_rate()
        progress = make_progress(epoch, True, seen, epoch_iter, total_iters, epoch_start_rng)
        if epoch % opt.save_epoch_freq == 0:
            if main:
                print(f"saving the model at the end of epoch {epoch}, iters {total_iters}")
            save_checkpoint(model, "latest", progress)
            save_checkpoint(model, epoch, progress)
        elif epoch == last_epoch:  # beyond upstream: a finished run always leaves `latest` for test.py
            if main:
                print(f"saving the final model (epoch {epoch}, iters {total_iters})")
            save_checkpoint(model, "latest", progress)
        if main:
            tqdm.write(f"End of epoch {epoch} / {last_epoch} \t Time Taken: {time.time() - epoch_start_time:.0f} sec")
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    return {"epoch": epoch, "total_iters": total_iters}
