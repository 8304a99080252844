"""Options shared by train.py and test.py, parsed in upstream's three passes.

Pass 1 reads the base options, pass 2 lets `--model` add options / change defaults, pass 3
lets `--dataset_mode` do the same; the final strict parse rejects unknown flags. Unlike
upstream, `--help` comes last, so it shows the chosen model's and dataset's options too.

Parsing changes nothing in the process and writes nothing: the engine picks the device when the
run starts (engine.context) and saves {phase}_opt.txt once the dataset and model are built
(options_text gives its content), so a failed start never overwrites a run's record.
"""
from __future__ import annotations

import argparse
from pathlib import PurePath
from typing import Sequence

import data
import models
from data import available_dataset_modes
from data.image_check import CHECK_MODES
from models import available_models, networks, physical_networks
from options.speed_options import add_speed_options
from util.cli import ArgumentParser, CommandLineError
from util.errors import UserError


def parse_gpu_ids(text: str) -> list[int]:
    """'0,1' -> [0, 1]; '-1' (the 2022 spelling of CPU) or '' -> []."""
    ids = [int(part) for part in str(text).split(",") if part.strip()]
    return [i for i in ids if i >= 0]


def check_run_name(name: str) -> None:
    """--name is a folder inside --checkpoints_dir (and --results_dir): upstream joined it as given, so
    '../x' or '/abs' wrote elsewhere. A sub-folder ('group/run') stays allowed. train.py and test.py check
    it before they write (engine); predict_sky.py only reads the checkpoint, so there it is not enforced."""
    parts = PurePath(name).parts
    if not parts or PurePath(name).is_absolute() or ".." in parts or parts == (".",):
        plain = PurePath(name).name
        example = plain if plain not in ("", ".", "..") else "my_run"
        raise UserError(f"--name {name!r} would put the run outside --checkpoints_dir (and --results_dir); give "
                        f"a plain name such as {example!r} (sub-folders like group/run are fine), and choose the "
                        f"folder with --checkpoints_dir")


def _int_or_inf(text: str) -> float | int:
    return float("inf") if text.strip().lower() in ("inf", "infinity") else int(text)


class BaseOptions:
    isTrain: bool = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        # basic parameters
        parser.add_argument("--dataroot", required=True,
                            help="path to images (aligned mode reads dataroot/phase, e.g. dataroot/train)")
        parser.add_argument("--name", type=str, default="experiment_name",
                            help="experiment name: where checkpoints and results are stored")
        parser.add_argument("--checkpoints_dir", type=str, default="./checkpoints", help="models are saved here")
        parser.add_argument("--gpu_ids", type=str, default="0",
                            help="2022-era flag: the GPU id, e.g. 0 or 2; -1 for the CPU. Without CUDA the CPU is "
                                 "used. One process drives one GPU: for several, start torchrun (each rank takes "
                                 "its LOCAL_RANK's GPU)")
        # model parameters
        parser.add_argument("--model", type=str, default="cycle_gan",
                            help="chooses which model to use: " + " | ".join(available_models()))
        parser.add_argument("--input_nc", type=int, default=3,
                            help="# of input image channels: 3 for RGB, 9 for three RGB input panels")
        parser.add_argument("--output_nc", type=int, default=3, help="# of output image channels")
        parser.add_argument("--ngf", type=int, default=64, help="# of gen filters in the last conv layer")
        parser.add_argument("--ndf", type=int, default=64, help="# of discrim filters in the first conv layer")
        parser.add_argument("--netD", type=str, default="basic", choices=networks.DISCRIMINATORS,
                            help="basic = 70x70 PatchGAN, n_layers = --n_layers_D layers, pixel = 1x1 PixelGAN")
        parser.add_argument("--netG", type=str, default="resnet_9blocks", choices=networks.GENERATORS,
                            help="generator architecture (unet_64 is for small crops; fullres_<N>blocks keeps the "
                                 "native resolution, for point sources in float data)")
        parser.add_argument("--output_head", type=str, default="tanh", choices=physical_networks.OUTPUT_HEADS,
                            help="the generator's last activation: tanh (upstream, pictures in [-1, 1]) or linear "
                                 "(float data: no ceiling, exactly invertible to the band's unit)")
        parser.add_argument("--n_layers_D", type=int, default=3, help="only used if netD==n_layers")
        parser.add_argument("--norm", type=str, default="instance", choices=networks.NORMS,
                            help="instance normalization or batch normalization")
        parser.add_argument("--init_type", type=str, default="normal", choices=networks.INIT_TYPES,
                            help="network initialization")
        parser.add_argument("--init_gain", type=float, default=0.02,
                            help="scaling factor for normal, xavier and orthogonal")
        parser.add_argument("--no_dropout", action="store_true", help="no dropout for the generator")
        # dataset parameters
        parser.add_argument("--dataset_mode", type=str, default="unaligned",
                            help="chooses how datasets are loaded: " + " | ".join(available_dataset_modes()))
        parser.add_argument("--direction", type=str, default="AtoB", choices=("AtoB", "BtoA"),
                            help="AtoB or BtoA (BtoA: the input panels B.. are the generator input)")
        parser.add_argument("--serial_batches", action="store_true",
                            help="if true, takes images in order to make batches, otherwise takes them randomly")
        parser.add_argument("--num_threads", default=4, type=int, help="# threads for loading data")
        parser.add_argument("--batch_size", type=int, default=1, help="input batch size")
        parser.add_argument("--load_size", type=int, default=286, help="scale images to this size")
        parser.add_argument("--crop_size", type=int, default=256, help="then crop to this size")
        parser.add_argument("--max_dataset_size", type=_int_or_inf, default=float("inf"),
                            help="maximum number of samples allowed per dataset")
        parser.add_argument("--preprocess", type=str, default="resize_and_crop",
                            help="resize_and_crop | crop | scale_width | scale_width_and_crop | none")
        parser.add_argument("--no_flip", action="store_true", help="if specified, do not flip the images")
        parser.add_argument("--check_images", type=str, default="header", choices=CHECK_MODES,
                            help="before the run: read every image's header (size, panel count), or with full "
                                 "also decode every image (finds truncated files)")
        parser.add_argument("--display_winsize", type=int, default=256, help="display window size (HTML width)")
        # 2022-era display flags (visdom). Default 0 = off: visdom is used only when asked.
        parser.add_argument("--display_id", type=int, default=0,
                            help="window id of the visdom display; <= 0 turns visdom off (default: off)")
        parser.add_argument("--display_server", type=str, default="http://localhost", help="visdom server")
        parser.add_argument("--display_env", type=str, default="main", help="visdom display environment name")
        parser.add_argument("--display_port", type=int, default=8097, help="visdom port of the web display")
        parser.add_argument("--display_ncols", type=int, default=4,
                            help="if positive, display all images in a single visdom panel with this many per row")
        # additional parameters
        parser.add_argument("--epoch", type=str, default="latest",
                            help="which epoch to load? set to latest to use latest cached model")
        parser.add_argument("--load_iter", type=int, default=0,
                            help="if > 0, load iter_{load_iter}_net_*.pth instead of --epoch")
        parser.add_argument("--verbose", action="store_true", help="print the network architectures")
        parser.add_argument("--suffix", default="", type=str,
                            help="customized suffix: opt.name = opt.name + '_' + suffix, e.g. {model}_{netG}_size{load_size}")
        # wandb parameters
        parser.add_argument("--use_wandb", action="store_true", help="log to wandb (WANDB_MODE=offline works)")
        parser.add_argument("--wandb_project_name", type=str, default="CycleGAN-and-pix2pix",
                            help="wandb project name")
        return add_speed_options(parser)

    # ------------------------------------------------------------------ parsing
    def _new_parser(self) -> argparse.ArgumentParser:
        """No abbreviations: with three passes, an abbreviated flag could bind to a first-pass
        option when a model/dataset option of a later pass was meant."""
        parser = ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter, add_help=False,
                                allow_abbrev=False)
        return self.initialize(parser)

    def parser_for(self, model: str, dataset_mode: str) -> argparse.ArgumentParser:
        """The complete parser of this --model and --dataset_mode (its defaults are the ones a
        command line with them starts from)."""
        parser = self._new_parser()
        parser = models.get_option_setter(model)(parser, self.isTrain)
        return data.get_option_setter(dataset_mode)(parser, self.isTrain)

    def gather_options(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """Three passes (base, model, dataset), then a strict parse; -h prints everything."""
        import sys

        args = list(sys.argv[1:] if argv is None else argv)
        wants_help = any(a in ("-h", "--help") for a in args)
        parser = self._new_parser()
        known = self._known(parser, args, wants_help)
        for registry, dest in ((models, "model"), (data, "dataset_mode")):
            try:
                parser = registry.get_option_setter(getattr(known, dest))(parser, self.isTrain)
            except UserError:
                if not wants_help:  # help still works with an unknown/unset model
                    raise
            known = self._known(parser, args, wants_help)
        parser.add_argument("-h", "--help", action="help", help="show this help message and exit")
        return parser.parse_args(args)

    @staticmethod
    def _known(parser: argparse.ArgumentParser, args, wants_help: bool) -> argparse.Namespace:
        """parse_known_args that tolerates a missing --dataroot when only help is wanted."""
        if not wants_help:
            return parser.parse_known_args(args)[0]
        required = [action for action in parser._actions if action.required]
        for action in required:
            action.required = False
        try:
            return parser.parse_known_args(args)[0]
        except CommandLineError:
            return argparse.Namespace(**{a.dest: a.default for a in parser._actions})
        finally:
            for action in required:
                action.required = True

    def finalize(self, opt: argparse.Namespace) -> argparse.Namespace:
        """Derived values: isTrain, name suffix, gpu_ids list (pure: no device is touched)."""
        opt.isTrain = self.isTrain
        if opt.suffix:
            try:
                opt.name = opt.name + "_" + opt.suffix.format(**vars(opt))
            except (KeyError, IndexError, ValueError) as err:
                raise UserError(f"--suffix {opt.suffix!r} names an unknown option: {err}") from None
        try:
            opt.gpu_ids = parse_gpu_ids(opt.gpu_ids)
        except ValueError:
            raise UserError(f"--gpu_ids must be comma-separated integers (-1 for CPU), got {opt.gpu_ids!r}") from None
        return opt

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """The options of a command line (default sys.argv[1:]), checked and completed."""
        return self.finalize(self.gather_options(argv))

    def format_options(self, opt: argparse.Namespace) -> str:
        """upstream's option listing: every value, with [default: X] where it differs."""
        parser = self.parser_for(opt.model, opt.dataset_mode)
        dests = {action.dest for action in parser._actions}
        lines = ["----------------- Options ---------------"]
        for key, value in sorted(vars(opt).items()):
            if key in ("device", "isTrain"):
                continue
            if key == "gpu_ids" and isinstance(value, list):
                value = ",".join(map(str, value)) or "-1"
            default = parser.get_default(key)
            comment = f"\t[default: {default}]" if value != default and key in dests else ""
            lines.append(f"{key:>25}: {str(value):<30}{comment}")
        lines.append("----------------- End -------------------")
        return "\n".join(lines) + "\n"
