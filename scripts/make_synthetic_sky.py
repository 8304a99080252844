"""Write a synthetic black-body star-field dataset (A|B|C|D aligned PNGs) with known truth.

    python scripts/make_synthetic_sky.py --out datasets/synthetic_sky --n_train 200 --n_test 20

Panel 0 (A, target): optical RGB from three optical sub-bands. Inputs: 1 = broad optical grey at low
resolution, 2 = UV grey, 3 = IR grey. Train with e.g. `--direction BtoA --input_panels 1,2 --input_nc 2
--output_nc 3`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.sky.synthetic_sky import SkySettings, write_dataset  # noqa: E402
from util.cli import ArgumentParser  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = SkySettings()
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="dataset folder (train/ and test/ go inside)")
    parser.add_argument("--n_train", type=int, default=200)
    parser.add_argument("--n_test", type=int, default=20)
    parser.add_argument("--size", type=int, default=defaults.size, help="panel size in px")
    parser.add_argument("--stars_per_kpx", type=float, default=defaults.stars_per_kpx,
                        help="mean number of stars per 1000 px")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    if args.n_train < 0 or args.n_test < 0 or args.n_train + args.n_test == 0:
        raise UserError("--n_train and --n_test must not be negative, and not both 0")
    if not 16 <= args.size <= 4096:
        raise UserError(f"--size must be between 16 and 4096 px, got {args.size}")
    if args.stars_per_kpx < 0:
        raise UserError("--stars_per_kpx must not be negative")
    settings = SkySettings(size=args.size, stars_per_kpx=args.stars_per_kpx)
    try:
        out = write_dataset(args.out, args.n_train, args.n_test, settings, seed=args.seed)
    except OSError as err:
        raise UserError(f"cannot write the dataset to {args.out}: {err.strerror or err}") from None
    print(f"wrote {args.n_train} train and {args.n_test} test images to {out}")
    return out


if __name__ == "__main__":
    main()
