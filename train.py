"""Train a model: `python train.py --dataroot DATA --name NAME --model pix2pix [--direction BtoA --input_nc 9]`."""
from __future__ import annotations

import sys

from util.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    from options.train_options import TrainOptions
    from engine.training import run_training

    run_training(TrainOptions().parse(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
