"""A side-by-side picture of HiPS views as Aladin Desktop shows them: a generated band next to the real one.

    python scripts/predict_figure.py --hips runs/gc data/sky_samples/DSS2Red runs/gc/uncertainty \
        --labels "generated DSS2Red" "real DSS2Red" "uncertainty" --ra 266.4 --dec -28.9 --fov 6 \
        --size 400 --out docs/fill-a-gap.png

Each HiPS is opened by Aladin Desktop (headless, under xvfb-run) and its view saved as PNG (the
docs' screenshot); without Aladin the project's own cutout engine draws the views instead. A FITS
image may stand in a HiPS's place: Aladin opens it with its own cuts.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from util.errors import UserError, exit_on_user_error  # noqa: E402

FITS_CUT = "log"  # Aladin's transfer function for FITS images (script command cm)


def aladin_views(folders: list[str], grids: list, work: Path) -> list[list[np.ndarray]]:
    """One row of views per grid, left to right as the folders."""
    from PIL import Image

    from data.sky.aladin_backend import batch_script, mirror_hips, run_aladin
    from data.sky.engine import CutoutEngine
    from data.sky.source import open_survey

    jobs, pictures = [], []
    for k, folder in enumerate(folders):
        if Path(folder).is_file():  # a FITS image: Aladin opens it as it is (its own cuts)
            shown = Path(folder).resolve()
        else:
            survey = open_survey(folder)
            fmt = "png" if "png" in survey.properties.formats else survey.properties.formats[0]
            shown = mirror_hips(CutoutEngine(survey, fmt), work / f"hips{k}")
        names = [work / f"view{k}_{row}.png" for row in range(len(grids))]
        pictures.append(names)
        # one load per view: after a crop, Aladin's view shows the crop plane, not the survey
        jobs += [(shown, [(grid, name.with_suffix(".fits"))]) for grid, name in zip(grids, names)]
    script = batch_script(jobs)
    for shown, _ in jobs:
        if Path(shown).is_file():  # Aladin's linear autocut shows a star field black: a log transfer
            script = script.replace(f"load {shown}\nsync\n", f"load {shown}\nsync\ncm {FITS_CUT}\n")
    run_aladin(script, None, 120 + 10 * len(folders) * len(grids), work / "aladin.log")
    rows = []
    for row in range(len(grids)):
        views = []
        for names in pictures:
            if not names[row].is_file():
                raise UserError(f"Aladin saved no {names[row].name} (see {work / 'aladin.log'})")
            with Image.open(names[row]) as image:
                views.append(np.asarray(image.convert("RGB")))
        rows.append(views)
    return rows


def engine_views(folders: list[str], grids: list) -> list[list[np.ndarray]]:
    from data.sky.engine import CutoutEngine
    from data.sky.source import open_survey
    from data.sky.stretch import StretchSettings, to_uint8
    from data.sky.surveys import open_engine

    rows = []
    for grid in grids:
        views = []
        for folder in folders:
            if Path(folder).is_file():  # a FITS image: the builder's 8-bit stretch (0.5-99.5 percentiles)
                level = to_uint8(open_engine(folder).cutout(grid).values, False, StretchSettings())
                views.append(np.repeat(level, 3, axis=2))
                continue
            survey = open_survey(folder)
            fmt = "png" if "png" in survey.properties.formats else survey.properties.formats[0]
            values = CutoutEngine(survey, fmt).cutout(grid).values
            views.append(np.rint(np.clip(np.nan_to_num(values, nan=0.0), 0, 255)).astype(np.uint8).repeat(
                3 // values.shape[2], axis=2))
        rows.append(views)
    return rows


def compose(rows: list[list[np.ndarray]], labels: list[list[str]]) -> "Image":
    from PIL import Image, ImageDraw

    height, width = rows[0][0].shape[:2]
    canvas = Image.new("RGB", (len(rows[0]) * (width + 8) - 8, len(rows) * (height + 22)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (views, captions) in enumerate(zip(rows, labels)):
        top = r * (height + 22)
        for k, (view, label) in enumerate(zip(views, captions)):
            canvas.paste(Image.fromarray(view), (k * (width + 8), top + 22))
            draw.text((k * (width + 8) + 4, top + 5), label, fill="black")
    return canvas


@exit_on_user_error
def main(argv=None) -> None:
    from data.sky.aladin_backend import find_aladin
    from data.sky.geometry import OutputGrid

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hips", nargs="+", required=True, help="HiPS folders (or FITS images), left to right")
    p.add_argument("--labels", nargs="+", help="one caption per HiPS")
    p.add_argument("--ra", type=float, nargs="+", required=True, help="view centre(s): one row of views each")
    p.add_argument("--dec", type=float, nargs="+", required=True)
    p.add_argument("--fov", type=float, nargs="+", required=True, help="view width(s), deg")
    p.add_argument("--size", type=int, default=400)
    p.add_argument("--engine", choices=("auto", "aladin", "builtin"), default="auto")
    p.add_argument("--out", required=True, help="PNG to write")
    args = p.parse_args(argv)
    labels = args.labels or [Path(h).name for h in args.hips]
    if len(labels) != len(args.hips):
        raise UserError("--labels: one per --hips folder")
    if not len(args.ra) == len(args.dec) == len(args.fov):
        raise UserError("--ra, --dec, --fov: one value each per row of views")
    grids = [OutputGrid(ra, dec, fov, args.size, args.size) for ra, dec, fov in zip(args.ra, args.dec, args.fov)]
    captions = [[f"{label} ({grid.fov:g} deg)" if len(grids) > 1 else label for label in labels] for grid in grids]
    use_aladin = args.engine == "aladin" or (args.engine == "auto" and find_aladin() is not None)
    with tempfile.TemporaryDirectory(prefix="predict-figure-") as tmp:
        rows = aladin_views(args.hips, grids, Path(tmp)) if use_aladin else engine_views(args.hips, grids)
    from util.fileio import atomic_write_bytes
    import io

    buffer = io.BytesIO()
    compose(rows, captions).quantize(256).save(buffer, format="PNG", optimize=True)  # a palette keeps docs small
    atomic_write_bytes(args.out, buffer.getvalue())
    print(f"wrote {args.out} ({'Aladin Desktop' if use_aladin else 'built-in engine'} views)")


if __name__ == "__main__":
    main(sys.argv[1:])
