"""checkpoints/NAME/{phase}_opt.txt: the options as upstream prints and saves them. The engine
writes it when a run really starts (engine.setup.record_options)."""
from __future__ import annotations

import argparse

from options.test_options import TestOptions
from options.train_options import TrainOptions


def options_text(opt: argparse.Namespace) -> str:
    """The listing of parsed train or test options, [default: X] beside changed values."""
    return (TrainOptions() if opt.isTrain else TestOptions()).format_options(opt)
