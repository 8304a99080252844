"""A redone stage deletes only what the run wrote, as its records list it (issue 19: B07, B11, B13).

The children here are tiny Python commands that write files like the real ones (aladin_data.py,
train.py, test.py), so the tests run in about a second.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.stages import FolderRecord, Stages
from util.errors import UserError


def writer(*paths: Path, sleep: float = 0.0) -> list[str]:
    """A child that writes these files, then sleeps."""
    code = (f"import pathlib, time\nfor path in map(pathlib.Path, {[str(p) for p in paths]!r}):\n"
            f"    path.parent.mkdir(parents=True, exist_ok=True)\n    path.write_text('run')\ntime.sleep({sleep})\n")
    return [sys.executable, "-c", code]


def build(stages: Stages, folder: Path, params: dict, *names: str) -> None:
    stages.build_folder("dataset", params, writer(*(folder / n for n in names)), folder, "*.png", "building")


def test_a_dataset_folder_holding_a_users_file_is_left_alone(tmp_path):
    """B07: OUT/dataset held the user's README; the stage was not stamped done, so the folder was rmtree'd."""
    out = tmp_path / "out"
    (out / "dataset").mkdir(parents=True)
    (out / "dataset" / "README_mine.txt").write_text("mine")
    stages = Stages(out, force=False)
    with pytest.raises(UserError, match=r"dataset holds 1 file\(s\) this run did not write \(README_mine.txt\).*"
                                        r"left alone"):
        build(stages, out / "dataset", {"n": 1}, "train/a.png", "test/b.png")
    assert (out / "dataset" / "README_mine.txt").read_text() == "mine"
    assert not (out / "dataset" / "train").exists()  # the child never ran


def test_a_symlinked_dataset_folder_is_one_line_not_a_traceback(tmp_path):
    """B11: OUT/dataset a link to a user folder: rmtree raised 'Cannot call rmtree on a symbolic link'."""
    users = tmp_path / "users_data"
    users.mkdir()
    (users / "k.fits").write_text("mine")
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset").symlink_to(users, target_is_directory=True)
    with pytest.raises(UserError, match=r"dataset is a link \(to .*users_data\)"):
        build(Stages(out, force=False), out / "dataset", {"n": 1}, "train/a.png", "test/b.png")
    assert (users / "k.fits").read_text() == "mine" and (out / "dataset").is_symlink()


def test_a_linked_folder_whose_files_have_the_runs_names_is_left_alone(tmp_path):
    """Independent check of issue 19: OUT/checkpoints/bands_1 replaced by a link to the user's backup of that
    model (the same file names): the redo overwrote the backup's files and deleted its web/images, because the
    record compares names only."""
    out = tmp_path / "out"
    folder = out / "checkpoints" / "bands_1"
    stages = Stages(out, force=False)
    stages.take_folder("train_bands_1", folder)
    stages.run("train_bands_1", writer(folder / "latest_net_G.pth", folder / "web" / "images" / "epoch003.png"))
    backup = tmp_path / "backup"
    folder.rename(backup)
    (backup / "latest_net_G.pth").write_text("the user's")
    folder.symlink_to(backup, target_is_directory=True)
    with pytest.raises(UserError, match=r"bands_1 is a link"):
        Stages(out, force=False).take_folder("train_bands_1", folder)
    assert (backup / "latest_net_G.pth").read_text() == "the user's"
    assert (backup / "web" / "images" / "epoch003.png").is_file()


def test_a_redo_replaces_the_runs_own_files_and_refuses_when_a_user_added_one(tmp_path):
    out = tmp_path / "out"
    folder = out / "dataset"
    stages = Stages(out, force=False)
    build(stages, folder, {"n": 1}, "train/a.png", "test/b.png", "old.txt")
    assert (folder / "old.txt").exists()
    build(stages, folder, {"n": 2}, "train/c.png", "test/d.png")  # other settings: the run's own files go
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == \
        ["test/d.png", "train/c.png"]
    (folder / "train" / "my_notes.txt").write_text("mine")  # added after the run: not in its record
    with pytest.raises(UserError, match="train/my_notes.txt"):
        build(stages, folder, {"n": 3}, "train/e.png", "test/f.png")
    assert (folder / "train" / "my_notes.txt").read_text() == "mine"
    assert (folder / "train" / "c.png").exists()  # refused: nothing of the run deleted either
    (folder / "train" / "my_notes.txt").unlink()
    build(stages, folder, {"n": 3}, "train/e.png", "test/f.png")
    assert not (folder / "train" / "c.png").exists() and (folder / "train" / "e.png").exists()


def test_a_killed_child_leaves_an_open_record_and_its_files_count_as_the_runs(tmp_path):
    out = tmp_path / "out"
    folder = out / "checkpoints" / "bands_1"
    folder.mkdir(parents=True)
    stages = Stages(out, force=False)
    stages.take_folder("train_bands_1", folder)
    child = subprocess.Popen(writer(folder / "latest_net_G.pth", folder / "web" / "index.html", sleep=60))
    record = FolderRecord(out, folder)
    record.open()  # as Stages.run does before starting the child
    deadline = time.monotonic() + 30
    while not (folder / "web" / "index.html").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)  # the whole run dies: the record stays open
    child.wait()
    assert json.loads(record.path.read_text())["open"] is True
    assert record.ours() == {"latest_net_G.pth", "web/index.html"}
    Stages(out, force=False).take_folder("train_bands_1", folder)  # the resumed run clears them
    assert not any(p.is_file() for p in folder.rglob("*"))


def test_files_another_stage_writes_into_the_folder_are_the_runs_too(tmp_path):
    """test.py writes test_opt.txt into checkpoints/NAME: a later retraining must not take it for a user's."""
    out = tmp_path / "out"
    checkpoints, results = out / "checkpoints" / "bands_1", out / "results" / "bands_1" / "test_latest"
    stages = Stages(out, force=False)
    stages.take_folder("train_bands_1", checkpoints)
    stages.run("train_bands_1", writer(checkpoints / "latest_net_G.pth", checkpoints / "train_opt.txt"))
    stages.take_folder("test_bands_1", results, also=[checkpoints])
    stages.run("test_bands_1", writer(results / "fits" / "x_fake_B.fits", results / "manifest.json",
                                      checkpoints / "test_opt.txt"))
    (results / "metrics.json").write_text("{}")  # written by the ablation process itself
    stages.adopt(results / "metrics.json")
    stages.take_folder("train_bands_1", checkpoints)  # no refusal: all three files are the run's
    assert not (checkpoints / "test_opt.txt").exists()
    assert FolderRecord(out, results).ours() == {"fits/x_fake_B.fits", "manifest.json", "metrics.json"}


def test_a_deleted_result_makes_its_stage_not_done(tmp_path):
    """B13: a result FITS deleted by hand; the stage counted as done and evaluation died on the missing file."""
    out = tmp_path / "out"
    results = out / "results" / "bands_1" / "test_latest"
    stages = Stages(out, force=False)
    stages.take_folder("test_bands_1", results)
    stages.run("test_bands_1", writer(results / "fits" / "a_fake_B.fits", results / "fits" / "b_fake_B.fits"))
    stages.mark("test_bands_1", {"p": 1})
    assert stages.done("test_bands_1", {"p": 1}, results)
    (results / "fits" / "a_fake_B.fits").unlink()
    assert not stages.done("test_bands_1", {"p": 1}, results)


def test_an_edited_record_cannot_delete_outside_its_folder(tmp_path):
    out = tmp_path / "out"
    folder = out / "dataset"
    folder.mkdir(parents=True)
    outside = tmp_path / "precious.txt"
    outside.write_text("mine")
    record = FolderRecord(out, folder)
    record.path.parent.mkdir(parents=True)
    record.path.write_text(json.dumps({"open": False, "ours": ["../../precious.txt", str(outside)]}))
    record.clear("the dataset stage")
    assert outside.read_text() == "mine"


def test_a_childs_error_reaches_a_text_only_stderr(tmp_path, monkeypatch):
    """Sweep B01, run from a notebook-like caller: sys.stderr without .buffer made the echo thread raise
    AttributeError, and the child's error line never showed."""
    import io

    text_only = io.StringIO()
    monkeypatch.setattr(sys, "stderr", text_only)
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('error: field too small\\n'); sys.exit(2)"]
    with pytest.raises(UserError, match="field too small"):
        Stages(tmp_path / "out", force=False).run("dataset", failing)
    assert "error: field too small" in text_only.getvalue()


def test_a_users_file_added_after_a_kill_is_not_taken_for_the_childs(tmp_path):
    """Independent check of issue 19: run_ablation SIGKILLed during a training, then the user added
    checkpoints/bands_1/my_notes.txt; the rerun deleted it, because an open record counted every file that
    appeared since as the killed child's."""
    out = tmp_path / "out"
    folder = out / "checkpoints" / "bands_1"
    stages = Stages(out, force=False)
    stages.take_folder("train_bands_1", folder)
    FolderRecord(out, folder).open()  # as Stages.run does before the child starts
    child = subprocess.Popen(writer(folder / "train_opt.txt", folder / "latest_net_G.pth", sleep=60))
    deadline = time.monotonic() + 30
    while not (folder / "latest_net_G.pth").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child.kill()  # (the record stays open: nobody closes it)
    child.wait()
    (folder / "my_notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds 1 file\(s\) this run did not write \(my_notes.txt\)"):
        Stages(out, force=False).take_folder("train_bands_1", folder)
    assert (folder / "my_notes.txt").read_text() == "mine" and (folder / "latest_net_G.pth").exists()
    (folder / "my_notes.txt").unlink()  # moved away: the killed child's files are replaced
    Stages(out, force=False).take_folder("train_bands_1", folder)
    assert not (folder / "latest_net_G.pth").exists() and not (folder / "train_opt.txt").exists()


def test_a_refusal_on_one_folder_clears_none_of_the_others(tmp_path):
    """Independent check of issue 19: a redo of two trainings emptied checkpoints/bands_1, then refused on
    bands_1-2 (a user's file there): the user was left with neither the old model nor a new one."""
    out = tmp_path / "out"
    first, second = out / "checkpoints" / "bands_1", out / "checkpoints" / "bands_1-2"
    stages = Stages(out, force=False)
    for name, folder in (("bands_1", first), ("bands_1-2", second)):
        stages.take_folder(f"train_{name}", folder)
        stages.run(f"train_{name}", writer(folder / "latest_net_G.pth"))
    (second / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"bands_1-2 holds 1 file\(s\) this run did not write \(notes.txt\)"):
        Stages(out, force=False).take_folders([("train_bands_1", first, ()), ("train_bands_1-2", second, ())])
    assert (first / "latest_net_G.pth").is_file() and (second / "latest_net_G.pth").is_file()
