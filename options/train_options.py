"""Training options (upstream's names and defaults)."""
from __future__ import annotations

import argparse
import math

from models import networks
from options.base_options import BaseOptions
from util.errors import UserError


class TrainOptions(BaseOptions):
    isTrain = True

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        # HTML visualization and logging
        parser.add_argument("--display_freq", type=int, default=400,
                            help="frequency of showing training results on screen / in the HTML page")
        parser.add_argument("--update_html_freq", type=int, default=1000,
                            help="frequency of saving training results to html")
        parser.add_argument("--print_freq", type=int, default=100,
                            help="frequency of showing training results on console")
        parser.add_argument("--no_html", action="store_true",
                            help="do not save intermediate training results to [checkpoints_dir]/[name]/web/")
        # network saving and loading
        parser.add_argument("--save_latest_freq", type=int, default=5000, help="frequency of saving the latest results")
        parser.add_argument("--save_epoch_freq", type=int, default=5,
                            help="frequency of saving checkpoints at the end of epochs")
        parser.add_argument("--save_by_iter", action="store_true", help="whether saves model by iteration")
        parser.add_argument("--continue_train", action="store_true",
                            help="continue training: load the latest model (and its optimizer/RNG state when saved)")
        parser.add_argument("--epoch_count", type=int, default=1,
                            help="the starting epoch count (taken from the saved train state when resuming)")
        parser.add_argument("--phase", type=str, default="train", help="train, val, test, etc")
        # training parameters
        parser.add_argument("--n_epochs", type=int, default=100, help="number of epochs with the initial learning rate")
        parser.add_argument("--n_epochs_decay", type=int, default=100,
                            help="number of epochs to linearly decay learning rate to zero")
        parser.add_argument("--beta1", type=float, default=0.5, help="momentum term of adam")
        parser.add_argument("--lr", type=float, default=0.0002, help="initial learning rate for adam")
        parser.add_argument("--gan_mode", type=str, default="lsgan", choices=networks.GAN_MODES,
                            help="the type of GAN objective (wgangp adds the gradient penalty here)")
        parser.add_argument("--pool_size", type=int, default=50,
                            help="the size of image buffer that stores previously generated images")
        parser.add_argument("--lr_policy", type=str, default="linear", choices=networks.LR_POLICIES,
                            help="learning rate policy")
        parser.add_argument("--lr_decay_iters", type=int, default=50,
                            help="multiply by a gamma every lr_decay_iters epochs (step policy)")
        return parser

    def finalize(self, opt: argparse.Namespace) -> argparse.Namespace:
        opt = super().finalize(opt)
        check_optimizer_options(opt)
        return opt


def check_optimizer_options(opt: argparse.Namespace) -> None:
    """Values Adam refuses with a traceback, or takes and diverges with (a rate beyond float32
    overflows in the first step), as one line each."""
    if not (math.isfinite(opt.lr) and 0 < opt.lr <= 1):
        raise UserError(f"--lr must be a positive learning rate of at most 1 (Adam's usual is 0.0002), got {opt.lr}")
    if not (math.isfinite(opt.beta1) and 0 <= opt.beta1 < 1):
        raise UserError(f"--beta1 must be in [0, 1) (Adam's momentum, usually 0.5), got {opt.beta1}")
