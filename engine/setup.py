"""What a run does between parsing and its first step: the model built for the run context, and
the record of the options ({phase}_opt.txt), written only once the run really starts."""
from __future__ import annotations

from pathlib import Path

from data.base_dataset import DatasetDescription
from engine import distributed
from engine.compile import compile_network
from engine.context import RunContext
from options.record import options_text
from util.fileio import atomic_write_text


def prepare_model(opt, ctx: RunContext, description: DatasetDescription | None = None):
    """The --model of the options, built and loaded (test, --continue_train) on the context's
    device, told the data's panel layout (and the colour prior's values when the data fitted them),
    wrapped in DDP (training under torchrun) and --compile; rank 0 prints its networks."""
    from models import create_model

    opt.device = ctx.device  # models read opt.device, where upstream's train.py puts it
    model = create_model(opt)
    if description is not None:
        model.set_visual_panels(description.panel_channels, description.panel_indices)
        model.prior_fit = description.prior  # --prior linear_fit, fitted on this run's training data
    model.setup(opt)
    wrap_for_run(model, opt, ctx)
    if ctx.is_main:
        model.print_networks(bool(getattr(opt, "verbose", False)))
    return model


def wrap_for_run(model, opt, ctx: RunContext) -> None:
    """DDP around the trainable networks under torchrun (training), then --compile."""
    if model.isTrain:
        distributed.check_options_for_ddp(opt, ctx)
        note = distributed.norm_note_for_ddp(opt.norm, ctx)
        if note and ctx.is_main:
            print(note)

    def wrap(net):
        if model.isTrain:
            net = distributed.wrap_ddp(net, ctx)
        return compile_network(net, ctx.device) if getattr(opt, "compile", False) else net

    model.wrap_networks(wrap)


def record_options(opt, ctx: RunContext) -> Path | None:
    """Print the options and save them to checkpoints/NAME/{phase}_opt.txt (rank 0). Called once
    the dataset and the model are built: a run that fails to start keeps the record of the last
    run that did."""
    if not ctx.is_main:
        return None
    text = options_text(opt)
    print(text, end="")
    return atomic_write_text(Path(opt.checkpoints_dir) / opt.name / f"{opt.phase}_opt.txt", text)
