"""Band ablation, the README's main job: does giving Pix2Pix more wavelengths improve the target band?

    python scripts/run_ablation.py                # real Galactic-centre field (bundled FITS), 2MASS Ks from
                                                  # J; J+H; J+H+MSX, float end to end, scored in physical units,
                                                  # the default recipe beside the seed's pix2pix
    python scripts/run_ablation.py --hips         # the earlier order-3 HiPS ablation (DSS2 Red from
                                                  # GLIMPSE360, Planck, Fermi; 8-bit pictures, 51.5"/px)
    python scripts/run_ablation.py --synthetic    # a synthetic black-body sky (known truth)

Every stage is skipped when it was already done with the same settings, so a killed run resumes.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments import ablation  # noqa: E402
from experiments.ablation_run import run  # noqa: E402
from experiments.field_plan import FIELD_BUDGETS  # noqa: E402
from experiments.field_run import run_field  # noqa: E402
from util.cli import ArgumentParser  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402
from util.fileio import output_folder  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=None,
                        help="everything goes under this folder (default: runs/ablation, runs/ablation_hips or "
                             "runs/ablation_synthetic)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--hips", action="store_true",
                       help="the order-3 HiPS ablation on the bundled tiles instead of the FITS field")
    which.add_argument("--synthetic", action="store_true", help="synthetic black-body sky instead of real data")
    parser.add_argument("--budget", default="small", choices=sorted(set(ablation.BUDGETS) | set(FIELD_BUDGETS)),
                        help="preset cost: tiny (tests), small (default demo), medium, large (HiPS/synthetic, GPU)")
    parser.add_argument("--surveys", nargs="+", default=None,
                        help="surveys for aladin_data.py, the target band first (default: the mode's bundled data); "
                             "FITS images for the default mode, HiPS for --hips")
    parser.add_argument("--variants", default=None,
                        help="input panel sets to compare, ';'-separated, panel 0 being the target (default 1;1,2;1,2,3)")
    parser.add_argument("--fov", type=float, default=None,
                        help="field of view, deg (--hips default: size x 51.5 arcsec, the tiles' native scale; "
                             "with your own --surveys the same as --pixel_arcsec = fov x 3600 / size)")
    parser.add_argument("--pixel_arcsec", type=float, default=None,
                        help="default mode with your own --surveys: the cutouts' pixel scale")
    parser.add_argument("--split", default=None,
                        help="train,val,test fractions by sky region (default 0.8,0.1,0.1; --hips 0.75,0,0.25)")
    parser.add_argument("--min_coverage", type=float, default=0.99,
                        help="skip sky positions where any survey has less data (blank patches teach nothing)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the sky sampling and of the trainings (repeat r trains with seed + r - 1)")
    for key in ("n_samples", "n_test", "size", "ngf", "ndf", "crop_size", "n_epochs", "n_epochs_decay", "batch_size"):
        parser.add_argument(f"--{key}", type=int, default=None, help="overrides the budget preset")
    parser.add_argument("--netG", default=None, help="overrides the budget preset")
    parser.add_argument("--lr", type=float, default=None, help="overrides the budget preset's learning rate")
    parser.add_argument("--model", default=None, choices=("regression", "pix2pix"),
                        help="default mode: the recipe's model (default: the preset's, regression)")
    parser.add_argument("--prior", default=None, choices=("none", "linear_fit", "normalised_fit"),
                        help="default mode: the generator corrects the linear colour fit (default: the preset's)")
    parser.add_argument("--pix2pix_row", action="store_true",
                        help="default mode: also train the seed's pix2pix on the most bands, same seeds, for "
                             "comparison in the same report (about 6 more minutes on 2 cores for the demo; the "
                             "finished stages of an earlier run are reused)")
    parser.add_argument("--dev", action="store_true",
                        help="default mode: train and score on a development split of the dataset (its validation "
                             "cells and a held-out part of the training sky; experiments.dev_split), never the test "
                             "cells: for choosing a recipe")
    parser.add_argument("--gpu_ids", default=None, help="passed to train.py/test.py (-1 = CPU)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="trainings of each variant, with seeds seed, seed+1, ...: the verdict weighs gains "
                             "against their spread (costs N times the training time)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="default mode: trainings run side by side (one per CPU core is fastest)")
    parser.add_argument("--reference_band", type=int, default=None,
                        help="default mode: the input panel of the 'input resampled' reference (default: the input "
                             "band that correlates best with the target on the training set)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of each training/test process (OMP_NUM_THREADS; 0 = torch's choice)")
    parser.add_argument("--force", action="store_true", help="redo every stage")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {args.repeats}")
    if args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    if args.threads < 0:
        raise UserError(f"--threads must be 0 (torch's choice) or more, got {args.threads}")
    if args.variants is not None and not args.variants.strip():
        raise UserError("--variants '' names no input-band set; give e.g. '1;1,2', or leave it out for the default")
    if args.pixel_arcsec is not None and not 0 < args.pixel_arcsec < math.inf:
        raise UserError(f"--pixel_arcsec {args.pixel_arcsec:g}: the cutouts' pixel scale must be a positive number "
                        f"of arcsec")
    if args.fov is not None and not 0 < args.fov <= 180:
        raise UserError(f"--fov {args.fov:g}: out of range (0, 180] deg")
    if args.hips or args.synthetic:
        args.surveys = args.surveys or list(ablation.DEFAULT_SURVEYS)
        args.split = args.split or "0.75,0,0.25"
        args.variants = args.variants or "1;1,2;1,2,3"
        if args.out is None:
            args.out = "runs/ablation_synthetic" if args.synthetic else "runs/ablation_hips"
    else:
        args.split = args.split or "0.8,0.1,0.1"
        args.out = args.out or "runs/ablation"
        if args.fov is not None:  # the cutouts' pixel scale, said as the builder says it
            size = args.size or FIELD_BUDGETS.get(args.budget, FIELD_BUDGETS["small"]).size
            from_fov = args.fov * 3600.0 / size
            if args.pixel_arcsec is not None and not math.isclose(from_fov, args.pixel_arcsec, rel_tol=1e-3):
                raise UserError(f"--fov {args.fov:g} at --size {size} is {from_fov:.4g}\"/px but --pixel_arcsec is "
                                f"{args.pixel_arcsec:g}: give one of them")
            args.pixel_arcsec = from_fov
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    signal.signal(signal.SIGTERM, _interrupt)  # a killed run stops its children too, then resumes next time
    args = parse_args(argv)
    with output_folder(args.out, "--out"):  # a refused run leaves no empty --out behind
        return run(args) if args.hips or args.synthetic else run_field(args)


if __name__ == "__main__":
    main()
