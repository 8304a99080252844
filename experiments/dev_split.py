"""A development split of a built dataset, for choosing a recipe without ever looking at the test cells.

A recipe (generator, loss, normalisation, budget) chosen by its test figures would make those figures
optimistic. This split re-cuts only the training and validation cutouts of a dataset the builder made:
- dev-val ("test" of the new folder, so train.py/test.py and the report run on it unchanged) = the
  builder's validation cutouts plus the training cutouts of the northernmost `held_out` share of the
  training sky (by declination);
- dev-train ("train" of the new folder) = the other training cutouts, minus those closer than one
  field of view in declination to the held-out band, so no dev-train cutout overlaps a dev-val one.
The builder's test cutouts are not copied. Files are hard links where the file system allows it.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.sky.manifest import read_manifest
from util.errors import UserError
from util.fileio import atomic_write_text

DEV_RECORD = "dev_split.json"


@dataclass(frozen=True)
class DevSplit:
    train: list[str]  # manifest 'fits' paths, relative to the dataset
    val: list[str]
    dropped: int  # training cutouts inside the guard band
    dec_cut: float


def plan_dev_split(rows: list[dict[str, str]], held_out: float = 0.2) -> DevSplit:
    """Which cutouts go where (pure): see the module docstring."""
    if not 0.0 < held_out < 1.0:
        raise UserError(f"the held-out share of the development split must be in (0, 1), got {held_out}")
    train = [r for r in rows if r.get("split") == "train" and r.get("fits")]
    val = [r for r in rows if r.get("split") == "val" and r.get("fits")]
    if len(train) < 10:
        raise UserError(f"a development split needs at least 10 training cubes, the dataset has {len(train)}")
    dec = np.array([float(r["dec"]) for r in train])
    fov = max(float(r["fov"]) for r in train)
    cut = float(np.quantile(dec, 1.0 - held_out))
    held = [r["fits"] for r, d in zip(train, dec) if d >= cut]
    kept = [r["fits"] for r, d in zip(train, dec) if d < cut - fov]
    return DevSplit(kept, [r["fits"] for r in val] + held, len(train) - len(kept) - len(held), cut)


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_dev_split(dataset: Path, out: Path, held_out: float = 0.2) -> DevSplit:
    """OUT/train and OUT/test (= dev-val) from DATASET's train and val cubes, and OUT/dev_split.json."""
    manifest = dataset / "manifest.csv"
    if not manifest.is_file():
        raise UserError(f"{dataset} has no manifest.csv: build it with aladin_data.py --fits first")
    split = plan_dev_split(read_manifest(manifest), held_out)
    for folder in ("train", "test"):
        if (out / folder).is_dir():
            for old in (out / folder).glob("*.fits"):
                old.unlink()
    for phase, files in (("train", split.train), ("test", split.val)):
        for name in files:
            _link(dataset / name, out / phase / Path(name).name)
    record = {"source": str(dataset), "held_out": held_out, "dec_cut": split.dec_cut, "n_train": len(split.train),
              "n_val": len(split.val), "n_guard_dropped": split.dropped,
              "rule": "dev-val = builder's val + training cubes north of dec_cut; dev-train = training cubes "
                      "south of dec_cut - fov; the builder's test cubes are not used"}
    atomic_write_text(out / DEV_RECORD, json.dumps(record, indent=1) + "\n")
    return split
