"""Band ablation, the README's main job: does giving Pix2Pix more wavelengths improve the target band?

    python scripts/run_ablation.py                # bundled real sky, default budget (< 15 min on 2 CPU cores)
    python scripts/run_ablation.py --synthetic    # the same on a synthetic black-body sky (known truth)

Stages (each skipped when already done with the same settings, so a killed run resumes):
dataset (aladin_data.py on the bundled HiPS tiles, or the synthetic sky) -> train one pix2pix per
input-band set (same target, split and budget) -> test.py -> evaluate (metrics, the input-band baseline
and the flat image) -> report (OUT/report/index.html and metrics.json).
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation import ablation  # noqa: E402
from evaluation.ablation_run import run  # noqa: E402
from util.cli import ArgumentParser  # noqa: E402
from util.errors import exit_on_user_error  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=None,
                        help="everything goes under this folder (default: runs/ablation, or "
                             "runs/ablation_synthetic with --synthetic)")
    parser.add_argument("--synthetic", action="store_true", help="synthetic black-body sky instead of real tiles")
    parser.add_argument("--budget", default="small", choices=list(ablation.BUDGETS),
                        help="preset cost: tiny (tests), small (default demo), medium, large (GPU)")
    parser.add_argument("--surveys", nargs="+", default=list(ablation.DEFAULT_SURVEYS),
                        help="HiPS surveys for aladin_data.py: the target band first, then the input bands")
    parser.add_argument("--variants", default="1;1,2;1,2,3",
                        help="input panel sets to compare, ';'-separated (panel 0 is the target)")
    parser.add_argument("--fov", type=float, default=None,
                        help="field of view, deg (default: size x 51.5 arcsec, the tiles' native scale)")
    parser.add_argument("--split", default="0.75,0,0.25", help="train,val,test fractions (by sky region)")
    parser.add_argument("--min_coverage", type=float, default=0.99,
                        help="skip sky positions where any survey has less data (blank patches teach nothing)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sky sampling / synthetic sky and of the trainings (repeat r: seed + r - 1)")
    for key in ("n_samples", "n_test", "size", "ngf", "ndf", "crop_size", "n_epochs", "n_epochs_decay", "batch_size"):
        parser.add_argument(f"--{key}", type=int, default=None, help="overrides the budget preset")
    parser.add_argument("--netG", default=None, help="overrides the budget preset")
    parser.add_argument("--gpu_ids", default=None, help="passed to train.py/test.py (-1 = CPU)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="train each variant this many times; the verdict then weighs gains against "
                             "the retraining spread (costs N times the training time)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of each training/test process (OMP_NUM_THREADS; 0 = torch's choice). "
                             "2 threads gain only ~1.5x on a free 2-core machine but run many times slower "
                             "when other jobs share the cores, so 1 is the default")
    parser.add_argument("--force", action="store_true", help="redo every stage")
    return parser.parse_args(argv)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    signal.signal(signal.SIGTERM, _interrupt)  # a killed run stops its child too, then resumes next time
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
