"""The training loop's own cost: what engine.training does around the model's step (progress bar,
non-finite watch, loss lines and logs, loss curves, visuals, RNG capture), measured against the
bare step (`set_input` + `optimize_parameters`) of the same model, for scripts/bench_train.py.

Two measurements, in one run:
- end to end: the real loop (engine.training._train_epochs, train.py's default frequencies, a
  real Visualizer writing into a temp folder) over synthetic batches; every `block` steps the
  batch source pauses it and times as many bare steps of the same model, so a busy machine slows
  both alike. Blocks, not single steps: a device sync per step would hide what the loop saves by
  not syncing, so the device is synchronised only at block edges.
- per component: each piece timed alone, times how often train.py calls it per step.
Saves are left out (their cost is the checkpoint's size, the same for any loop).
"""
from __future__ import annotations

import contextlib
import io
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from math import gcd
from typing import Callable

import torch

from engine.bench import synchronize


@dataclass
class InterleavedBatches:
    """The data loader the loop sees: `steps` copies of one batch. Every `block` batches it times
    the loop's block, then runs as many bare steps and times them (seconds per step, per block)."""
    batch: dict
    steps: int
    block: int
    bare_step: Callable[[], None]
    device: torch.device
    loop: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return self.steps

    def set_epoch(self, epoch: int) -> None:
        pass

    def __iter__(self):
        done = 0
        while done < self.steps:
            n = min(self.block, self.steps - done)
            synchronize(self.device)
            start = time.perf_counter()
            for _ in range(n):
                yield self.batch
            synchronize(self.device)  # the loop asked for the next batch: its n steps are done
            self.loop.append((time.perf_counter() - start) / n)
            start = time.perf_counter()
            for _ in range(n):
                self.bare_step()
            synchronize(self.device)
            self.bare.append((time.perf_counter() - start) / n)
            done += n


def loop_options(train_argv: list[str], checkpoints_dir: str):
    """train.py's options for the bench: default display/print/HTML frequencies, no saves within the run."""
    from options.train_options import TrainOptions

    never = str(10 ** 12)
    return TrainOptions().parse(train_argv + ["--checkpoints_dir", checkpoints_dir, "--name", "loop_bench",
                                              "--n_epochs", never, "--n_epochs_decay", "0",
                                              "--save_epoch_freq", never, "--save_latest_freq", never])


def measure_loop(train_argv: list[str], batch_of: Callable, warmup: int, steps: int, block: int) -> tuple[list, list]:
    """(loop, bare) seconds per step, per block: the real loop against the bare step, interleaved.
    Its stdout (loss lines) goes to a file, as in a `> log` run."""
    from engine.context import RunContext
    from engine.setup import prepare_model
    from engine.training import _train_epochs
    from engine.visualizer import Visualizer

    with tempfile.TemporaryDirectory() as folder:
        opt = loop_options(train_argv, folder)
        ctx = RunContext.from_environment(opt.gpu_ids)
        with open(os.path.join(folder, "stdout.log"), "w") as log, contextlib.redirect_stdout(log):
            model = prepare_model(opt, ctx)
            batch = batch_of(opt, model.device)

            def bare_step() -> None:
                model.set_input(batch)
                model.optimize_parameters()

            for _ in range(warmup):
                bare_step()
            batches = InterleavedBatches(batch, steps, block, bare_step, model.device)
            visualizer = Visualizer(opt, ctx)
            try:
                _train_epochs(opt, batches, model, visualizer, ctx, None, 1)
            finally:
                visualizer.close()
    return batches.loop, batches.bare


def overhead_lines(loop: list[float], bare: list[float], block: int, goal: float = 0.02) -> list[str]:
    """The loop's overhead over the bare step: after the first block (steady state, what a long run
    pays) and, apart, the first block's extra seconds (once per run: the first loss-curve drawing
    with matplotlib's import, the first HTML page)."""
    steady_loop, steady_bare = (loop[1:], bare[1:]) if len(loop) > 1 else (loop, bare)
    steady = sum(steady_loop) / sum(steady_bare) - 1
    per_block = statistics.median(l_ / b - 1 for l_, b in zip(steady_loop, steady_bare))
    fastest = min(steady_loop) / min(steady_bare) - 1  # on a shared machine: the least disturbed blocks
    verdict = "met" if steady <= goal else "NOT met"
    return [f"[loop] train.py's loop: {statistics.median(loop):.4f} s/step (median of {len(loop)} blocks of {block}), "
            f"bare model step {statistics.median(bare):.4f} s/step",
            f"[loop] overhead after the first block: {100 * steady:+.2f}% (block median {100 * per_block:+.2f}%, "
            f"fastest blocks {100 * fastest:+.2f}%); goal <= {100 * goal:.0f}%: {verdict}",
            f"[loop] first block: {block * (loop[0] - bare[0]):+.2f} s in all (once per run: first loss curves "
            f"and HTML page)"]


def every(freq: int, batch_size: int) -> float:
    """Calls per step of `total_iters % freq == 0` when total_iters grows by batch_size per step."""
    return 1.0 / (freq // gcd(freq, batch_size))


def _per_call(call: Callable[[], object], device: torch.device, min_seconds: float = 0.2,
              max_calls: int = 2000) -> float:
    """Seconds per call, over as many calls as fit in about `min_seconds` (at least 2)."""
    call()
    synchronize(device)
    calls, start = 0, time.perf_counter()
    while calls < 2 or (calls < max_calls and time.perf_counter() - start < min_seconds):
        call()
        calls += 1
    synchronize(device)
    return (time.perf_counter() - start) / calls


def component_table(train_argv: list[str], batch_of: Callable, bare_step_s: float,
                    history_records: int = 20000, min_seconds: float = 0.2) -> list[str]:
    """Each piece of the loop timed alone; share of the bare step = cost x calls per step with
    train.py's defaults. The loss-curve PNG is drawn from a history of `history_records` lines."""
    from tqdm import tqdm

    from engine.context import RunContext
    from engine.loss_plot import draw_loss_curves
    from engine.setup import prepare_model
    from engine.visualizer import CURVE_INTERVAL_S, CURVE_SHARE, Visualizer
    from models.checkpoint import capture_rng_state
    from util.loss_history import LossRecord, append_record

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        opt = loop_options(train_argv, folder)
        ctx = RunContext.from_environment(opt.gpu_ids)
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            model = prepare_model(opt, ctx)
            model.set_input(batch_of(opt, model.device))
            model.optimize_parameters()
            visualizer = Visualizer(opt, ctx)
            device, b = model.device, opt.batch_size
            bar = tqdm(total=10 ** 12, file=io.StringIO(), mininterval=0.1)
            losses = model.get_current_losses()
            history = os.path.join(folder, "history.jsonl")
            for i in range(history_records):
                append_record(history, LossRecord(1 + i // 1000, i, losses, i))
            print_rate = every(opt.print_freq, b)
            pieces = [
                ("progress bar update (tqdm)", lambda: bar.update(1), 1.0),
                ("non-finite watch (no sync)", lambda: model.track_non_finite_losses(0), 1.0),
                ("  before: read back every step (a sync)", model.non_finite_losses, 0.0),
                ("loss line: read, print, loss_log.txt/.jsonl",
                 lambda: visualizer.print_current_losses(1, 1, model.get_current_losses(), 0.1, 0.0, 1), print_rate),
                (f"loss-curve PNG ({history_records} records)", lambda: draw_loss_curves(history, history + ".png"),
                 None),  # at most every CURVE_INTERVAL_S and cost / CURVE_SHARE seconds: rate set below
                ("visuals at --display_freq (no page)", lambda: (model.compute_visuals(), model.get_current_visuals()),
                 every(opt.display_freq, b)),
                ("HTML page of visuals", lambda: visualizer.display_current_results(
                    model.get_current_visuals(), 1, 1, True), every(opt.update_html_freq, b)),
                ("RNG capture (per epoch and save)", capture_rng_state, 0.0),
            ]
            visualizer._last_curve_draw = time.monotonic()  # the loss line alone, the curves are a row of their own
            for name, call, rate in pieces:
                cost = _per_call(call, device, min_seconds)
                if rate is None:
                    rate = min(print_rate, bare_step_s / max(CURVE_INTERVAL_S, cost / CURVE_SHARE))
                share = f"{100 * cost * rate / bare_step_s:7.3f}%" if rate else "    -   "
                rows.append(f"  {name:<46} {1000 * cost:9.3f} ms/call  {rate:9.5f} calls/step  {share}")
            bar.close()
    header = (f"the loop's pieces alone (share of the bare step {bare_step_s:.4f} s at print_freq {opt.print_freq}, "
              f"display_freq {opt.display_freq}, update_html_freq {opt.update_html_freq}, batch {b}):")
    return [header, *rows]
