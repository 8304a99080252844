"""The demo report's sky viewer stage (experiments/field_viewer.py): which model, which sky, which outlines.
The stage itself runs in tests/scripts/test_run_ablation.py (the demo end to end)."""
import math
from types import SimpleNamespace

import numpy as np

from data.sky.manifest import write_manifest
from experiments.field_viewer import headline, held_out_cone, held_out_outlines

COLS = ["file", "ra", "dec", "fov", "split"]


def separation(ra1, dec1, ra2, dec2):
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    return math.degrees(math.acos(min(1.0, math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2)
                                      * math.cos(r1 - r2))))


def test_the_cone_holds_every_test_cutout_and_nothing_decides_it_but_them(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"file": f"test/{k}.fits", "ra": 359.8 + 0.4 * rng.random(), "dec": -1 + 0.5 * rng.random(),
             "fov": 0.09, "split": "test"} for k in range(12)]  # across RA 0: the mean is not the arithmetic one
    rows += [{"file": f"train/{k}.fits", "ra": 120.0, "dec": 40.0, "fov": 0.09, "split": "train"} for k in range(5)]
    write_manifest(tmp_path / "manifest.csv", rows, COLS)
    ra, dec, radius = held_out_cone(tmp_path)
    assert separation(ra, dec, 0.0, -0.75) < 0.3
    for row in rows[:12]:
        assert separation(ra, dec, row["ra"], row["dec"]) + 0.09 / math.sqrt(2) <= radius + 1e-9
    assert radius < 0.6  # the training rows far away do not count
    squares = held_out_outlines(tmp_path)
    assert len(squares) == 12 and all(len(corners) == 4 for corners in squares)
    (ra0, dec0), (ra2, dec2) = squares[0][0], squares[0][2]
    assert abs(dec2 - dec0 - 0.09) < 1e-9


def test_no_test_cutouts_no_viewer(tmp_path):
    write_manifest(tmp_path / "manifest.csv", [{"file": "a", "ra": 1, "dec": 2, "fov": 0.1, "split": "train"}], COLS)
    assert held_out_cone(tmp_path) is None


def test_the_headline_model_has_the_most_bands():
    trainings = [SimpleNamespace(inputs=inputs, name=name) for inputs, name in
                 (((1,), "bands_1"), ((1, 2), "bands_1-2"), ((1, 2), "bands_1-2_r2"), ((2,), "bands_2"))]
    assert headline(trainings).name == "bands_1-2"  # the most bands, first seed
