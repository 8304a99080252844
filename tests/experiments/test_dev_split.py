"""The development split: only the builder's train and val cutouts, held-out sky apart from dev-train."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from experiments.dev_split import plan_dev_split, write_dev_split
from util.errors import UserError

FOV = 0.05


def manifest_rows(n=200, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        dec = rng.uniform(-1.0, 1.0)
        split = "test" if dec < -0.7 else "val" if dec > 0.8 else "train"
        rows.append({"name": f"s{i}", "ra": f"{rng.uniform(10, 12):.6f}", "dec": f"{dec:.6f}", "fov": str(FOV),
                     "split": split, "fits": f"{split}/s{i}.fits"})
    return rows


def test_the_dev_split_holds_out_northern_training_sky_and_never_uses_test_cutouts():
    rows = manifest_rows()
    split = plan_dev_split(rows, held_out=0.2)
    by_file = {r["fits"]: r for r in rows}
    train = [by_file[f] for f in split.train]
    val = [by_file[f] for f in split.val]
    assert all(r["split"] == "train" for r in train)
    assert {r["split"] for r in val} == {"train", "val"}
    assert not any(r["split"] == "test" for r in train + val)
    assert sum(r["split"] == "val" for r in rows) == sum(r["split"] == "val" for r in val)  # every val cutout
    held = [r for r in val if r["split"] == "train"]
    n_train = sum(r["split"] == "train" for r in rows)
    assert abs(len(held) - 0.2 * n_train) <= 1
    # the guard: no dev-train cutout within one field of the held-out band
    assert max(float(r["dec"]) for r in train) < min(float(r["dec"]) for r in held) - FOV
    assert split.dropped == n_train - len(train) - len(held) > 0


def test_write_dev_split_links_the_cubes_and_records_the_rule(tmp_path):
    dataset = tmp_path / "dataset"
    rows = manifest_rows(60)
    for row in rows:
        (dataset / row["fits"]).parent.mkdir(parents=True, exist_ok=True)
        (dataset / row["fits"]).write_bytes(row["name"].encode())
    with open(dataset / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    split = write_dev_split(dataset, tmp_path / "dev")
    assert sorted(p.name for p in (tmp_path / "dev" / "train").iterdir()) == sorted(f.split("/")[1] for f in split.train)
    assert len(list((tmp_path / "dev" / "test").iterdir())) == len(split.val)
    record = json.loads((tmp_path / "dev" / "dev_split.json").read_text())
    assert record["n_train"] == len(split.train) and "test cubes are not used" in record["rule"]
    with pytest.raises(UserError, match="manifest.csv"):
        write_dev_split(tmp_path / "nothing", tmp_path / "dev2")
