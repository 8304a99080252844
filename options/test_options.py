"""Test options (upstream's names and defaults) and test.py's fixed settings."""
from __future__ import annotations

import argparse

from options.base_options import BaseOptions

# test.py always runs like this (upstream set them after saving test_opt.txt; we set them before,
# so the saved options are the ones actually used).
FIXED_TEST_SETTINGS = {"num_threads": 0, "batch_size": 1, "serial_batches": True, "no_flip": True, "display_id": -1}


class TestOptions(BaseOptions):
    isTrain = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        parser.add_argument("--results_dir", type=str, default="./results/", help="saves results here.")
        parser.add_argument("--aspect_ratio", type=float, default=1.0, help="aspect ratio of result images")
        parser.add_argument("--phase", type=str, default="test", help="train, val, test, etc")
        parser.add_argument("--eval", action="store_true",
                            help="use eval mode during test time (BatchNorm running stats, no dropout)")
        parser.add_argument("--num_test", type=int, default=50, help="how many test images to run")
        parser.set_defaults(model="test")
        # upstream: load_size defaults to crop_size at test time, so resize+crop is a no-op
        parser.set_defaults(load_size=parser.get_default("crop_size"))
        return parser

    def finalize(self, opt: argparse.Namespace) -> argparse.Namespace:
        opt = super().finalize(opt)
        if "--load_size" not in self._given_flags:
            opt.load_size = opt.crop_size  # also when only --crop_size was given
        for key, value in FIXED_TEST_SETTINGS.items():
            setattr(opt, key, value)
        return opt

    def gather_options(self, argv=None) -> argparse.Namespace:
        import sys

        args = list(sys.argv[1:] if argv is None else argv)
        self._given_flags = {a.split("=", 1)[0] for a in args if a.startswith("--")}
        return super().gather_options(args)
