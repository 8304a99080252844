"""Run a trained generator: `python test.py --dataroot DATA --name NAME --model pix2pix [--eval]`.

Results go to results/NAME/{phase}_{epoch}/index.html and images/.
"""
from __future__ import annotations

import sys

from util.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    from options.test_options import TestOptions
    from engine.inference import run_test

    page = run_test(TestOptions().parse(argv))
    print(f"results: {page}")


if __name__ == "__main__":
    main(sys.argv[1:])
