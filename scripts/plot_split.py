"""Draw how aladin_data.py split a dataset's sky: blocks (small fields) or HEALPix cells, and every cutout.

    python scripts/plot_split.py DATASET [--out DATASET/split.png] [--band 0]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation.split_picture import draw_split  # noqa: E402
from util.cli import ArgumentParser  # noqa: E402
from util.errors import exit_on_user_error  # noqa: E402


@exit_on_user_error
def main(argv: list[str] | None = None) -> Path:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", help="a folder aladin_data.py wrote (dataset.json, manifest.csv)")
    parser.add_argument("--out", help="PNG to write (default: DATASET/split.png)")
    parser.add_argument("--band", type=int, default=0, help="the survey drawn under the split (0 = the target)")
    args = parser.parse_args(argv)
    png = draw_split(args.dataset, args.out or Path(args.dataset) / "split.png", args.band)
    print(f"wrote {png}")
    return png


if __name__ == "__main__":
    main()
