#!/usr/bin/env python3
"""Build multi-survey sky datasets (A|B|C|D PNG panels, FITS cubes) from HiPS surveys and FITS images;
see docs/sky-builder.md."""
import sys

from util.errors import exit_on_user_error


@exit_on_user_error
def main() -> int:
    from data.sky.cli import main as sky_main

    return sky_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
