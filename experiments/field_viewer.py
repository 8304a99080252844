"""The demo report's sky viewer: the headline model's band over the test region, in the browser, offline.

The variant with the most input bands (the one the report's verdict compares with the references; the
first seed's training) generates its band over a cone around the test cutouts with
scripts/predict_sky.py --region and --truth (the real target band): a HiPS in OUT/report/sky/ with its
viewer page (prediction.viewer_page), drawn with the report's asinh stretch, the figures per kind of
sky (training, validation and test cells) in its panel and the test cutouts outlined. One child
process, a resumable stage like the others, started when the trainings are done so that it runs on
the second core while the main process scores (about 20 s of one core on the demo).
"""
from __future__ import annotations

import math
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from data.sky.hips_out import DisplayStretch
from data.sky.manifest import read_manifest
from experiments import field_plan
from experiments.stages import Stages
from prediction.viewer_page import customise
from util.errors import UserError

VIEWER_DIR = "sky"  # under the report folder


def held_out_cone(dataset: Path) -> tuple[float, float, float] | None:
    """(ra, dec, radius) in deg of the smallest cone about the test cutouts' mean direction holding them all."""
    rows = [r for r in read_manifest(dataset / "manifest.csv") if r.get("split") == "test" and r.get("ra")]
    if not rows:
        return None
    ra = np.radians([float(r["ra"]) for r in rows])
    dec = np.radians([float(r["dec"]) for r in rows])
    vectors = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    centre = vectors.mean(axis=1)
    centre /= np.linalg.norm(centre)
    spread = math.degrees(float(np.arccos(np.clip(centre @ vectors, -1.0, 1.0)).max()))
    half_diagonal = max(float(r.get("fov") or 0) for r in rows) / math.sqrt(2)
    return (math.degrees(math.atan2(centre[1], centre[0])) % 360.0, math.degrees(math.asin(centre[2])),
            spread + half_diagonal)


def held_out_outlines(dataset: Path) -> list[list[list[float]]]:
    """Corners (ra, dec) of every test cutout (north up, the builder's fields), for the page's overlay."""
    squares = []
    for r in read_manifest(dataset / "manifest.csv"):
        if r.get("split") != "test" or not r.get("ra"):
            continue
        ra, dec, half = float(r["ra"]), float(r["dec"]), float(r.get("fov") or 0) / 2
        stretch = 1 / max(math.cos(math.radians(dec)), 1e-6)
        squares.append([[ra + sx * half * stretch, dec + sy * half] for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
    return squares


def headline(trainings: list) -> object:
    """The variant with the most input bands, first seed (experiments.field_run.Training): the report's
    verdict calls it the best and weighs it against the references."""
    return max(trainings, key=lambda t: (len(t.inputs), -trainings.index(t)))


class PendingViewer:
    """The viewer stage running in a thread (its work is a child process); result() waits for it."""

    def __init__(self, work, stages: Stages, out: Path, dataset: Path, report_dir: Path):
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._future = self._pool.submit(work)
        self.stages, self.out, self.dataset, self.report_dir = stages, out, dataset, report_dir

    def result(self, stretch) -> tuple[Path, str] | None:
        """(the page, a sentence for the report), drawn with the report's asinh `stretch`
        (evaluation.science.AsinhStretch) and the test cutouts outlined; a failure is told, not raised
        (the report is worth having without its viewer)."""
        try:
            label = self._future.result()
        except UserError as err:
            self.stages.say(f"viewer: failed ({err}); the report is written without it")
            return None
        finally:
            self._pool.shutdown()
        if label is None:
            return None
        display = DisplayStretch("asinh", stretch.low, stretch.high, stretch.softening)
        page = customise(self.out, ("test cutouts", held_out_outlines(self.dataset)), display)
        return page, (f"{label} (the variant with the most bands) generated over the test cutouts as a HiPS, with "
                      f"the real band, its inputs and the agreement per kind of sky: serve the report with "
                      f"'python scripts/serve.py {self.report_dir}' and open {VIEWER_DIR}/.")


def start_viewer(stages: Stages, trainings: list, field: field_plan.Field, dataset: Path, report_dir: Path,
                 gpu_ids: str | None = None) -> PendingViewer:
    """Start predict_sky.py for the headline variant over the test cone into report_dir/sky (skipped when
    done with the same command and weights); its result() gives None without test cutouts."""
    out = report_dir / VIEWER_DIR
    best = headline(trainings)
    checkpoints = stages.out / "checkpoints"

    def work() -> str | None:
        cone = held_out_cone(dataset)
        if cone is None:
            return None
        surveys = [field_plan.absolute(field.surveys[p]) for p in best.inputs]
        command = [sys.executable, str(field_plan.REPO / "scripts" / "predict_sky.py"), "--name", best.name,
                   "--checkpoints_dir", str(checkpoints), "--surveys", *surveys,
                   "--region", f"{cone[0]:.6f} {cone[1]:.6f} {cone[2]:.6f}",
                   "--truth", field_plan.absolute(field.surveys[0]), "--out", str(out), "--overwrite",
                   "--no_progress", *(["--gpu_ids", gpu_ids] if gpu_ids is not None else [])]
        weights = checkpoints / best.name / "latest_net_G.pth"
        params = {"command": command[1:], "weights_mtime": weights.stat().st_mtime}
        if stages.done("viewer", params) and (out / "index.html").is_file():
            stages.say(f"viewer: already made in {out}")
        else:
            stages.say(f"viewer: {best.label} over the test cutouts (cone of {cone[2]:.2f} deg) with predict_sky.py")
            stages.run("viewer", command)
            stages.mark("viewer", params)
        return best.label

    return PendingViewer(work, stages, out, dataset, report_dir)
