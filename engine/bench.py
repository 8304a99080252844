"""Pieces shared by scripts/bench_train.py and scripts/bench_infer.py: speed modes, a plain
hand-written pix2pix step (the reference our framework must not be slower than), interleaved
timing (modes alternate step by step, so a busy machine slows them alike), loader timing.

torch is imported inside the functions that need it: a bench script checks its command line
(parse_modes) before it pays torch's start-up.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from util.errors import UserError

if TYPE_CHECKING:
    import torch

MODE_HELP = ("comma-separated modes, each a '+'-joined set of: fp32 (ours), plain (a minimal hand-written "
             "step, same networks), bf16, fp16, channels_last, compile; e.g. fp32,plain,bf16,bf16+channels_last")


@dataclass(frozen=True)
class Mode:
    label: str
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    plain: bool = False

    def train_flags(self) -> list[str]:
        flags = ["--amp", self.amp]
        if self.channels_last:
            flags.append("--channels_last")
        if self.compile:
            flags.append("--compile")
        return flags


def parse_modes(text: str) -> list[Mode]:
    modes = []
    for token in [t.strip() for t in text.split(",") if t.strip()]:
        parts = set(token.split("+"))
        unknown = parts - {"fp32", "plain", "bf16", "fp16", "channels_last", "compile"}
        if unknown or {"bf16", "fp16"} <= parts:
            raise UserError(f"unknown or conflicting mode {token!r}; {MODE_HELP}")
        if "plain" in parts and parts != {"plain"}:
            raise UserError("the plain reference step runs alone (fp32, no options): use 'plain'")
        amp = "bf16" if "bf16" in parts else "fp16" if "fp16" in parts else "none"
        modes.append(Mode(token, amp, "channels_last" in parts, "compile" in parts, "plain" in parts))
    if not modes:
        raise UserError(f"no benchmark mode given; {MODE_HELP}")
    return modes


def synchronize(device: "torch.device") -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def time_interleaved(steps: dict[str, Callable[[], object]], device: "torch.device", warmup: int,
                     rounds: int) -> dict[str, list[float]]:
    """Seconds of each call, the modes taking turns every round after `warmup` untimed calls each."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    synchronize(device)
    times: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(rounds):
        for label, step in steps.items():
            start = time.perf_counter()
            step()
            synchronize(device)
            times[label].append(time.perf_counter() - start)
    return times


def plain_pix2pix_step(opt, batch: dict, device: "torch.device") -> Callable[[], None]:
    """What a user would write by hand: the same G and D, Adam, GAN + 100 L1, D step then G step."""
    import torch
    from torch import nn

    from models import networks

    net_g = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm, not opt.no_dropout,
                              opt.init_type, opt.init_gain).to(device)
    net_d = networks.define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                              opt.init_type, opt.init_gain).to(device)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    gan, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()
    source, target = batch["B"].to(device), batch["A"].to(device)  # BtoA, as the benchmark's batch

    def step() -> None:
        fake = net_g(source)
        for p in net_d.parameters():
            p.requires_grad_(True)
        opt_d.zero_grad()
        pred_fake = net_d(torch.cat((source, fake.detach()), 1))
        pred_real = net_d(torch.cat((source, target), 1))
        loss_d = (gan(pred_fake, torch.zeros_like(pred_fake)) + gan(pred_real, torch.ones_like(pred_real))) * 0.5
        loss_d.backward()
        opt_d.step()
        for p in net_d.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad()
        pred = net_d(torch.cat((source, fake), 1))
        loss_g = gan(pred, torch.ones_like(pred)) + l1(fake, target) * 100.0
        loss_g.backward()
        opt_g.step()

    return step


def apply_bench_device_args(args) -> "torch.device":
    """--threads and --device of the bench scripts: CUDA asked for but absent is a user mistake."""
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but CUDA is not available")
    return torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")


def summary(label: str, times: list[float], batch_size: int, unit: str = "step") -> str:
    median = statistics.median(times)
    return (f"{label}: {median:.3f} s/{unit} (median of {len(times)}, min {min(times):.3f}, max {max(times):.3f}), "
            f"{batch_size / median:.2f} samples/s")


def ratio_table(times: dict[str, list[float]], reference: str) -> list[str]:
    """Speed of each mode relative to `reference` (>1 = faster), from the medians and from the
    fastest calls (on a shared machine the minimum is the call least disturbed by other jobs)."""
    base, base_min = statistics.median(times[reference]), min(times[reference])
    return [f"  {label:<28} {base / statistics.median(t):5.2f}x the speed of {reference} "
            f"(fastest calls: {base_min / min(t):5.2f}x)" for label, t in times.items()]


def time_loader_items(loader, batches: int, warmup: int = 1) -> tuple[float, int]:
    """(seconds, samples) over `batches` batches after `warmup` batches (worker start-up excluded);
    fewer on a small dataset."""
    available = len(loader)
    warmup = min(warmup, max(available - 1, 0))
    batches = max(1, min(batches, available - warmup))
    samples, start = 0, None
    start = time.perf_counter() if warmup == 0 else None
    for i, data in enumerate(loader):
        if i == warmup:
            start = time.perf_counter()
        if i >= warmup:
            samples += len(data["A_paths"]) if "A_paths" in data else len(next(iter(data.values())))
        if i + 1 >= warmup + batches:
            break
    if start is None or samples == 0:
        raise UserError("the dataset is empty: nothing to time")
    return time.perf_counter() - start, samples
