"""What evaluation reads: the results manifest (schema round trip, versions) and the one adapter
for older folders (file-name suffixes, loss_log.txt)."""
import json

import numpy as np
import pytest
from PIL import Image

from evaluation.results import legacy_manifest, load_results, loss_history, parse_loss_log
from util.errors import UserError
from util.loss_history import LossRecord, append_record
from util.results_manifest import (Generated, InputFile, Item, ResultsManifest, RunInfo, Target, read_manifest,
                                   write_manifest)


def test_loss_log_parser_reads_both_eras():
    text = ("================ Training Loss (x) ================\n"
            "(epoch: 2, iters: 100, time: 0.1, data: 0.2) G_GAN: 1.000 G_L1: 3.500 \n"
            "[Rank 0] (epoch: 3, iters: 50, time: 0.100, data: 0.200) , D_real: nan, D_fake: -0.25\n\nnoise\n")
    records = parse_loss_log(text)
    assert [(r.epoch, r.iters, list(r.losses)) for r in records] == [
        (2, 100, ["G_GAN", "G_L1"]), (3, 50, ["D_real", "D_fake"])]
    assert records[0].losses["G_L1"] == 3.5 and records[1].losses["D_fake"] == -0.25


def test_loss_history_prefers_the_jsonl_and_falls_back_to_the_text_log(tmp_path):
    (tmp_path / "loss_log.txt").write_text("(epoch: 1, iters: 4, time: 0.1, data: 0.2) G_L1: 3.000\n")
    assert [r.losses for r in loss_history(tmp_path)] == [{"G_L1": 3.0}]  # an older run: parsed
    append_record(tmp_path / "loss_log.jsonl", LossRecord(1, 4, {"G_L1": 2.5, "D": float("nan")}, 4))
    with open(tmp_path / "loss_log.jsonl", "a") as handle:
        handle.write('{"format": 1, "epoch": 1, "it')  # a torn last line of a killed run
    records = loss_history(tmp_path)
    assert [(r.epoch, r.iters, r.total_iters) for r in records] == [(1, 4, 4)]
    assert records[0].losses["G_L1"] == 2.5 and np.isnan(records[0].losses["D"])


def _png(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)


def test_legacy_folder_becomes_the_same_structure(tmp_path):
    images = tmp_path / "images"
    for name in ("x10_fake_B", "x10_real_B", "x10_real_A_p2", "x10_real_A_p1", "x9_fake_B", "x9_real_B",
                 "x9_real_A", "lonely_fake_B"):
        _png(images / f"{name}.png")
    manifest = load_results(tmp_path)
    assert [item.stem for item in manifest.items] == ["x9", "x10"]  # natural order, pairs only
    x9, x10 = manifest.items
    assert x10.generated == Generated("images/x10_fake_B.png") and x10.target == Target("images/x10_real_B.png")
    assert [(f.file, f.panel) for f in x10.inputs] == [("images/x10_real_A_p1.png", 1), ("images/x10_real_A_p2.png", 2)]
    assert [(f.file, f.panel) for f in x9.inputs] == [("images/x9_real_A.png", 1)]
    flat = tmp_path / "flat"
    _png(flat / "a_fake_B.png")
    _png(flat / "a_real_B.png")
    assert legacy_manifest(flat).items[0].target.png == "a_real_B.png"  # PNGs in the folder itself
    with pytest.raises(UserError, match="no manifest.json and no matching"):
        legacy_manifest(_only_fakes(tmp_path / "fakes"))


def _only_fakes(folder):
    _png(folder / "a_fake_B.png")
    return folder


def test_manifest_round_trip_and_version_check(tmp_path):
    manifest = ResultsManifest(
        run=RunInfo(name="sky", model="pix2pix", epoch="latest", kind="planes", input=[1, 2], target=[0],
                    bands={0: "DSS2Red", 1: "GLIMPSE360"}, units={0: "MJy/sr"}, norm_file="ck/sky/fits_norm.json"),
        items=[Item("a", [InputFile("images/a_real_A_p1.png", 1, "GLIMPSE360")],
                    Generated("images/a_fake_B.png", "fits/a_fake_B.fits"),
                    Target("images/a_real_B.png", "data/test/a.fits", [0], [3, 4, 64, 64], True),
                    {"rec_A": "images/a_rec_A.png"})])
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    assert load_results(tmp_path) == manifest  # a manifest wins over any file names
    body = json.loads((tmp_path / "manifest.json").read_text())
    assert (body["format"], body["version"]) == ("skytrans-results", 1)
    assert body["run"]["bands"] == {"0": "DSS2Red", "1": "GLIMPSE360"}
    body["version"] = 2
    (tmp_path / "manifest.json").write_text(json.dumps(body))
    with pytest.raises(UserError, match="version 2 is not the version 1"):
        read_manifest(tmp_path)
    assert read_manifest(tmp_path / "nowhere") is None
