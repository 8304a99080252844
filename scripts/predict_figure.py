"""A side-by-side picture of HiPS views as Aladin Desktop shows them: a generated band next to the real one.

    python scripts/predict_figure.py --hips runs/gc data/sky_samples/DSS2Red runs/gc/uncertainty \
        --labels "generated DSS2Red" "real DSS2Red" "uncertainty" --ra 266.4 --dec -28.9 --fov 6 \
        --size 400 --out docs/fill-a-gap.png

Each HiPS is opened by Aladin Desktop (headless, under xvfb-run) and its view saved as PNG (the
docs' screenshot); without Aladin the project's own cutout engine draws the views instead.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from util.errors import UserError, exit_on_user_error  # noqa: E402


def aladin_views(folders: list[str], grid, work: Path) -> list[np.ndarray]:
    from PIL import Image

    from data.sky.aladin_backend import batch_script, mirror_hips, run_aladin
    from data.sky.engine import CutoutEngine
    from data.sky.source import open_survey

    jobs, pictures = [], []
    for k, folder in enumerate(folders):
        survey = open_survey(folder)
        fmt = "png" if "png" in survey.properties.formats else survey.properties.formats[0]
        mirror = mirror_hips(CutoutEngine(survey, fmt), work / f"hips{k}")
        pictures.append(work / f"view{k}.png")
        jobs.append((mirror, [(grid, pictures[-1].with_suffix(".fits"))]))
    run_aladin(batch_script(jobs), None, 120 + 10 * len(folders), work / "aladin.log")
    views = []
    for path in pictures:
        if not path.is_file():
            raise UserError(f"Aladin saved no {path.name} (see {work / 'aladin.log'})")
        with Image.open(path) as image:
            views.append(np.asarray(image.convert("RGB")))
    return views


def engine_views(folders: list[str], grid) -> list[np.ndarray]:
    from data.sky.engine import CutoutEngine
    from data.sky.source import open_survey

    views = []
    for folder in folders:
        survey = open_survey(folder)
        fmt = "png" if "png" in survey.properties.formats else survey.properties.formats[0]
        values = CutoutEngine(survey, fmt).cutout(grid).values
        views.append(np.rint(np.clip(np.nan_to_num(values, nan=0.0), 0, 255)).astype(np.uint8).repeat(
            3 // values.shape[2], axis=2))
    return views


def compose(views: list[np.ndarray], labels: list[str]) -> "Image":
    from PIL import Image, ImageDraw

    height, width = views[0].shape[:2]
    canvas = Image.new("RGB", (len(views) * (width + 8) - 8, height + 22), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (view, label) in enumerate(zip(views, labels)):
        canvas.paste(Image.fromarray(view), (k * (width + 8), 22))
        draw.text((k * (width + 8) + 4, 5), label, fill="black")
    return canvas


@exit_on_user_error
def main(argv=None) -> None:
    from data.sky.aladin_backend import find_aladin
    from data.sky.geometry import OutputGrid

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hips", nargs="+", required=True, help="HiPS folders, left to right")
    p.add_argument("--labels", nargs="+", help="one caption per HiPS")
    p.add_argument("--ra", type=float, required=True)
    p.add_argument("--dec", type=float, required=True)
    p.add_argument("--fov", type=float, required=True, help="view width, deg")
    p.add_argument("--size", type=int, default=400)
    p.add_argument("--engine", choices=("auto", "aladin", "builtin"), default="auto")
    p.add_argument("--out", required=True, help="PNG to write")
    args = p.parse_args(argv)
    labels = args.labels or [Path(h).name for h in args.hips]
    if len(labels) != len(args.hips):
        raise UserError("--labels: one per --hips folder")
    grid = OutputGrid(args.ra, args.dec, args.fov, args.size, args.size)
    use_aladin = args.engine == "aladin" or (args.engine == "auto" and find_aladin() is not None)
    with tempfile.TemporaryDirectory(prefix="predict-figure-") as tmp:
        views = aladin_views(args.hips, grid, Path(tmp)) if use_aladin else engine_views(args.hips, grid)
    from util.fileio import atomic_write_bytes
    import io

    buffer = io.BytesIO()
    compose(views, labels).quantize(256).save(buffer, format="PNG", optimize=True)  # a palette keeps docs small
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"wrote {args.out} ({'Aladin Desktop' if use_aladin else 'built-in engine'} views)")


if __name__ == "__main__":
    main(sys.argv[1:])
