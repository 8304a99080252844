"""Combine folders of single-band images into aligned A|B|C|D panel images for training.

    python scripts/combine_panels.py --fold_A optical --fold_B uv --fold_C ir --fold_AB datasets/sky
    python scripts/combine_panels.py --folds optical uv ir --out datasets/sky

Folder k gives panel k (panel 0 = A, the target band). Files are matched by name (ignoring the
extension) in each split subfolder (train/, val/, test/ ...) or at the folders' top level, and
written as OUT/split/name.png. Panels of different sizes are refused unless --resize scales them
to panel A's size. With --use_AB files are named NAME_A.png, NAME_B.png ... as in upstream's
combine_A_and_B.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from data.sky.panel_combine import (PANEL_LETTERS, check_folders, check_sizes, plan_panel_sets,  # noqa: E402
                                    square_panel_note, summarize, write_panel_set)
from util.cli import ArgumentParser  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402
from util.progress import progress  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    for letter in PANEL_LETTERS:
        parser.add_argument(f"--fold_{letter}", type=Path, help=f"folder of panel {letter}")
    parser.add_argument("--folds", type=Path, nargs="+", help="the panel folders in order (instead of --fold_X)")
    parser.add_argument("--fold_AB", "--out", dest="out", type=Path, required=True, help="output folder")
    parser.add_argument("--num_imgs", type=int, default=None, help="at most this many images per split")
    parser.add_argument("--resize", action="store_true",
                        help="scale panels of another size to panel A's size (default: refuse them)")
    parser.add_argument("--use_AB", action="store_true", help="files are named NAME_A.ext, NAME_B.ext, ...")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def input_folders(args: argparse.Namespace) -> list[Path]:
    """--folds, or --fold_A, --fold_B ... without gaps."""
    lettered = [getattr(args, f"fold_{letter}") for letter in PANEL_LETTERS]
    if args.folds and any(lettered):
        raise UserError("give the folders either with --folds or with --fold_A/--fold_B/..., not both")
    if args.folds:
        return list(args.folds)
    given = [folder is not None for folder in lettered]
    count = sum(given)
    if given[:count] != [True] * count:
        missing = PANEL_LETTERS[given.index(False)]
        raise UserError(f"--fold_{missing} is missing: panels are filled in order A, B, C ...")
    return [folder for folder in lettered if folder is not None]


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    if args.num_imgs is not None and args.num_imgs < 1:
        raise UserError(f"--num_imgs must be at least 1, got {args.num_imgs}")
    folders = input_folders(args)
    check_folders(folders, args.out)
    limit = float("inf") if args.num_imgs is None else args.num_imgs
    sets, unmatched = plan_panel_sets(folders, use_suffix=args.use_AB, max_per_split=limit)
    quiet = args.no_progress
    check_sizes(progress(sets, desc="checking", unit="image", enabled=not quiet, leave=False, summary=False),
                args.resize)
    for panel_set in progress(sets, desc="combining", unit="image", enabled=not quiet):
        write_panel_set(panel_set, args.out)
    note = square_panel_note(sets)
    if note:
        print(note)
    print(summarize(sets, unmatched, args.out))
    return args.out


if __name__ == "__main__":
    main(sys.argv[1:])
