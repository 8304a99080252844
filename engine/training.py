"""train.py's loop: upstream's epochs/iterations, saves and logs, plus exact resume.

Exact resume: each save also writes `{prefix}_train_state.pth` with the optimizers, schedulers,
counters, the RNG streams at the save and at the start of the epoch. A resume replays the
epoch's data order from the epoch-start RNG, skips the batches already trained on, then
restores the RNG of the save, so the run continues bit for bit (on the same device).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import distributed
from engine.context import RunContext, open_run
from engine.storage import storage_error_line, storage_errors_as_user_errors
from models.checkpoint import capture_rng_state, recover_interrupted_saves, restore_rng_state
from models.schedule import resumed_epoch
from options.base_options import check_run_name
from util.errors import UserError
from util.fileio import FileGroup, check_writable_folder
from util.progress import progress, write


@dataclass
class ResumePlan:
    """Where the loop starts: first epoch, batches of it already done, counters and this rank's RNG to restore."""
    start_epoch: int
    skip_batches: int = 0
    total_iters: int = 0
    rng: dict[str, Any] | None = None
    epoch_start_rng: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _own_streams(saved: list, fallback: Any, ctx: RunContext) -> Any:
    """This rank's entry of a per-rank list saved with the same world size; rank 0's for a state
    saved by one process (or before per-rank streams were kept); None when the saved run had fewer
    ranks than this one (the rank keeps the streams it was seeded with)."""
    if not saved:
        return fallback if ctx.rank == 0 else None
    return saved[ctx.rank] if ctx.rank < len(saved) else None


def plan_resume(opt, resume_state: dict[str, Any] | None, ctx: RunContext | None = None) -> ResumePlan:
    """Fresh run or weights-only resume: start at --epoch_count. Full state: where it stopped,
    each rank with its own random streams."""
    ctx = ctx or RunContext()
    if not resume_state:
        return ResumePlan(start_epoch=opt.epoch_count)
    progress_ = resume_state["progress"]
    rng = _own_streams(resume_state.get("rng_ranks") or [], resume_state["rng"], ctx)
    start = resumed_epoch(progress_)  # the schedule is rebuilt for the same epoch (models.schedule)
    if progress_["epoch_finished"]:
        plan = ResumePlan(start_epoch=start, total_iters=progress_["total_iters"], rng=rng)
    else:
        plan = ResumePlan(start_epoch=start, skip_batches=progress_["batches_done"],
                          total_iters=progress_["total_iters"], rng=rng,
                          epoch_start_rng=_own_streams(progress_.get("epoch_start_rng_ranks") or [],
                                                       progress_["epoch_start_rng"], ctx))
    saved_ranks = len(resume_state.get("rng_ranks") or [None])
    if saved_ranks != ctx.world_size:
        plan.notes.append(f"note: the checkpoint was saved by {saved_ranks} process(es), this run has "
                          f"{ctx.world_size}: the data shards differ, so the resume is not exact")
    plan.notes.append(f"resuming at epoch {plan.start_epoch}, after {plan.skip_batches} batches of it "
                      f"(total_iters {plan.total_iters}); --epoch_count set to {plan.start_epoch}")
    return plan


def make_progress(epoch: int, epoch_finished: bool, batches_done: int, epoch_iter: int, total_iters: int,
                  epoch_start_rng: dict[str, Any]) -> dict[str, Any]:
    return {"epoch": epoch, "epoch_finished": epoch_finished, "batches_done": batches_done,
            "epoch_iter": epoch_iter, "total_iters": total_iters, "epoch_start_rng": epoch_start_rng}


def save_checkpoint(model, prefixes: str | int | tuple[str | int, ...], progress_: dict[str, Any],
                    ctx: RunContext) -> None:
    """Network files (upstream format) and the resume state, all or none per prefix (util.fileio.FileGroup):
    a kill or a full disk half-way leaves the previous set whole. Weights and buffers with a NaN
    or an infinity are never saved: the run stops and the last good set stays.
    Under DDP every rank calls this: the ranks prove they hold the same weights and hand rank 0
    their random streams (each rank augments and drops out with its own), then rank 0 alone writes.
    Several prefixes (`latest` and the epoch) share one round of checks, streams and hashes."""
    stop_on_non_finite(model, progress_["epoch"], ctx)
    stop_on_non_finite_weights(model, progress_, ctx)
    streams = distributed.gather_objects({"rng": capture_rng_state(), "epoch_start_rng": progress_["epoch_start_rng"]},
                                         ctx)
    if ctx.is_distributed:
        digest = distributed.verify_replicas_in_sync(dict(model.networks()), ctx)
        if not ctx.is_main:
            return
        print(f"weights identical on all {ctx.world_size} ranks (sha256 {digest[:16]})")
    progress_ = {**progress_, "epoch_start_rng_ranks": [s["epoch_start_rng"] for s in streams]}
    for prefix in prefixes if isinstance(prefixes, tuple) else (prefixes,):
        try:
            with FileGroup(model.save_dir) as group:
                model.save_networks(prefix, group)
                model.save_train_state(prefix, progress_, rng_ranks=[s["rng"] for s in streams], group=group)
        except OSError as err:
            raise UserError(storage_error_line(err, f"checkpoint '{prefix}' not saved; "
                                                    f"{kept_checkpoint(model.save_dir)}")) from None


def kept_checkpoint(save_dir: str | Path) -> str:
    """What a stopped run leaves to resume from, as the folder holds it now."""
    if (Path(save_dir) / "latest_net_G.pth").is_file():
        return f"the previous one in {save_dir} is kept (resume with --continue_train)"
    return f"no earlier checkpoint is in {save_dir}, so the training starts from the beginning when re-run"


def stop_on_non_finite_weights(model, progress_: dict[str, Any], ctx: RunContext) -> None:
    """Before a save: losses can be finite while weights or BatchNorm statistics are not (an
    extreme input pixel), so check the tensors themselves (reduced over ranks under DDP)."""
    bad = model.non_finite_weights()
    ranks = distributed.ranks_with(bool(bad), ctx)
    if not ranks:
        return
    where = f" on rank {', '.join(map(str, ranks))}" if ctx.is_distributed else ""
    more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
    names = f": {', '.join(bad[:3])}{more}" if bad else ""
    raise UserError(f"non-finite weights at iteration {progress_['total_iters']} (epoch {progress_['epoch']}){where}"
                    f"{names}; stopped without saving, the last good checkpoint in {model.save_dir} is kept "
                    f"(lower --lr? extreme values in the data?)")


def stop_on_non_finite(model, epoch: int, ctx: RunContext) -> None:
    """Stop before anything is saved from a diverged step; the last good checkpoint stays.

    Every step only folds its losses into the model's LossWatch (no device sync); this reads it
    back at the check points (loss lines, saves, epoch ends), naming the first bad iteration.
    Under DDP the check is reduced over the ranks at those same points, so every rank stops
    together (a rank that stopped alone would leave the others waiting in their next reduction)."""
    found = model.first_non_finite_losses()
    ranks = distributed.ranks_with(found is not None, ctx)
    if not ranks:
        return
    first = min((f for f in distributed.gather_objects(found, ctx) if f is not None), key=lambda f: f[0])
    where = f" on rank {', '.join(map(str, ranks))}" if ctx.is_distributed else ""
    values = ": " + ", ".join(f"{name}={value}" for name, value in first[1].items()) if first[1] else ""
    raise UserError(f"non-finite loss at iteration {first[0]} (epoch {epoch}){where}{values}; stopped without "
                    f"saving, the last good checkpoint in {model.save_dir} is kept (lower --lr?)")


def run_training(opt, stop_after_iters: int | None = None, stop_after_epoch: int | None = None) -> dict[str, int]:
    """Train as upstream's train.py. `stop_after_iters` / `stop_after_epoch` end the run early,
    right after that iteration / after that epoch's end-of-epoch saves (a killed run, in tests)."""
    from data import create_dataset
    from engine.setup import prepare_model, record_options
    from engine.visualizer import SilentVisualizer, Visualizer

    check_run_name(opt.name)
    save_dir = Path(opt.checkpoints_dir) / opt.name
    check_writable_folder(save_dir, "--checkpoints_dir")
    with open_run(opt) as ctx, storage_errors_as_user_errors(lambda: f"training stopped; {kept_checkpoint(save_dir)}"):
        if ctx.is_main:
            for note in recover_interrupted_saves(save_dir):
                print(note)
        distributed.gather_objects(None, ctx)  # the other ranks load the checkpoint once it is whole
        dataset = create_dataset(opt, ctx.rank, ctx.world_size, ctx.pin_memory)
        if ctx.is_distributed:
            if ctx.is_main:
                print(f"The number of training images = {len(dataset.dataset)} "
                      f"({len(dataset)} per rank, {ctx.world_size} ranks)")
        else:
            print(f"The number of training images = {len(dataset)}")
        model = prepare_model(opt, ctx, dataset.dataset.describe())
        record_options(opt, ctx)
        if ctx.is_main:
            dataset.dataset.save_run_files()
        visualizer = Visualizer(opt, ctx) if ctx.is_main else SilentVisualizer(opt, ctx)
        try:
            result = _train_epochs(opt, dataset, model, visualizer, ctx, stop_after_iters, stop_after_epoch)
        except BaseException:
            with contextlib.suppress(Exception):  # the final curves must not hide why training stopped
                visualizer.close()
            raise
        visualizer.close()
        return result


def _train_epochs(opt, dataset, model, visualizer, ctx: RunContext, stop_after_iters: int | None,
                  stop_after_epoch: int | None) -> dict[str, int]:
    main = ctx.is_main
    # counters count samples over all ranks (a DDP step of K ranks trains K * batch_size samples)
    samples_per_step = opt.batch_size * ctx.world_size
    dataset_size = len(dataset) * ctx.world_size
    plan = plan_resume(opt, model.resume_state, ctx)
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
    # bars on a terminal; in a log, the "End of epoch" line below is the one line per epoch
    epoch_bar = progress(range(plan.start_epoch, last_epoch + 1), desc="epochs", unit="epoch",
                         initial=plan.start_epoch - 1, total=last_epoch, enabled=main, summary=False)
    for epoch in epoch_bar:
        epoch_start_time = iter_data_time = time.time()
        t_data = 0.0
        epoch_iter = 0
        visualizer.reset()
        skip = plan.skip_batches if epoch == plan.start_epoch else 0
        if skip and plan.epoch_start_rng is not None:
            epoch_start_rng = plan.epoch_start_rng
            restore_rng_state(epoch_start_rng)
        else:
            epoch_start_rng = capture_rng_state()
        dataset.set_epoch(epoch)
        seen = 0
        with progress(total=batches_per_epoch, desc=f"epoch {epoch}", unit="batch", leave=False, enabled=main,
                      summary=False) as bar:
            for i, data in enumerate(dataset):
                seen = i + 1
                bar.update(1)
                if i < skip:  # already trained on before the restart: replay the data stream only
                    epoch_iter += samples_per_step
                    if i == skip - 1 and plan.rng is not None:
                        restore_rng_state(plan.rng)
                    continue
                iter_start_time = time.time()
                if total_iters % opt.print_freq == 0:
                    t_data = iter_start_time - iter_data_time
                total_iters += samples_per_step
                epoch_iter += samples_per_step
                model.set_input(data)
                model.optimize_parameters()
                model.track_non_finite_losses(total_iters)  # read back at the check points below

                if main and total_iters % opt.display_freq == 0:
                    save_result = total_iters % opt.update_html_freq == 0
                    model.compute_visuals()
                    visualizer.display_current_results(model.get_current_visuals(), epoch, total_iters, save_result)
                if total_iters % opt.print_freq == 0:
                    stop_on_non_finite(model, epoch, ctx)
                    losses = distributed.average_losses(model.get_current_losses(), ctx)
                    t_comp = (time.time() - iter_start_time) / opt.batch_size
                    visualizer.print_current_losses(epoch, epoch_iter, losses, t_comp, t_data, total_iters)
                    visualizer.plot_current_losses(epoch, float(epoch_iter) / max(dataset_size, 1), losses,
                                                   total_iters=total_iters)
                if total_iters % opt.save_latest_freq == 0:
                    if main:
                        print(f"saving the latest model (epoch {epoch}, total_iters {total_iters})")
                    prefix = f"iter_{total_iters}" if opt.save_by_iter else "latest"
                    save_checkpoint(model, prefix, make_progress(epoch, False, i + 1, epoch_iter, total_iters,
                                                                 epoch_start_rng), ctx)
                iter_data_time = time.time()
                if stop_after_iters is not None and total_iters >= stop_after_iters:
                    stop_on_non_finite(model, epoch, ctx)
                    return {"epoch": epoch, "total_iters": total_iters}
        if skip and seen < skip and plan.rng is not None:  # the data shrank since the save: continue from its RNG
            restore_rng_state(plan.rng)
        stop_on_non_finite(model, epoch, ctx)
        old_lr, lr = model.update_learning_rate()
        if main:
            print(f"learning rate {old_lr:.7f} -> {lr:.7f}")
        done = make_progress(epoch, True, seen, epoch_iter, total_iters, epoch_start_rng)
        if epoch % opt.save_epoch_freq == 0:
            if main:
                print(f"saving the model at the end of epoch {epoch}, iters {total_iters}")
            save_checkpoint(model, ("latest", epoch), done, ctx)
        elif epoch == last_epoch:  # beyond upstream: a finished run always leaves `latest` for test.py
            if main:
                print(f"saving the final model (epoch {epoch}, iters {total_iters})")
            save_checkpoint(model, "latest", done, ctx)
        if main:
            write(f"End of epoch {epoch} / {last_epoch} \t Time Taken: {time.time() - epoch_start_time:.0f} sec")
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    return {"epoch": epoch, "total_iters": total_iters}
