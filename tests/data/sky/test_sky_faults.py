"""Builder faults of issue 13: re-runs with other settings, targets without target data, killed parents,
full disks, long names, sizes beyond memory. Each test failed on the code before its fix."""
from __future__ import annotations

import csv
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.sky.cli import main as cli_main
from util.errors import UserError

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data" / "sky_samples"
DSS, PLANCK = str(SAMPLES / "DSS2Red"), str(SAMPLES / "Planck-HFI143")
INSIDE = [(266.4, -28.9), (272.6, -31.0), (265.4, -29.6), (272.5, -19.2), (258.0, -35.9), (267.5, -24.0)]
PLANCK_ONLY = (256.19, -20.78)  # in the Planck sample's tiles, outside DSS2Red's
IN_FITS_TILES = [(267.8, -22.78), (262.8, -28.55), (265.23, -28.52), (268.45, -30.05), (266.34, -28.04),
                 (267.13, -24.67)]  # 0.5 deg fields inside DSS2Red's two FITS tiles (the --fits cube's values)


def build(*args: str) -> int:
    return cli_main([*args, "--no_progress", "--quiet"])


def write_coords(path: Path, positions, names=None) -> Path:
    names = names or [f"t{i}" for i in range(len(positions))]
    path.write_text("name,ra,dec\n" + "".join(f"{n},{ra},{dec}\n" for n, (ra, dec) in zip(names, positions)))
    return path


def manifest(out: Path) -> list[dict]:
    with (out / "manifest.csv").open() as handle:
        return list(csv.DictReader(handle))


def pngs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.png"))}


# ---- case 2: re-runs into the same --out ------------------------------------------------------------
def test_rerun_with_other_settings_is_refused_and_more_targets_append(tmp_path):
    out = tmp_path / "ds"
    first = write_coords(tmp_path / "first.csv", INSIDE[:3])
    base = ["--surveys", DSS, "--fov", "1", "--size", "16", "--out", str(out)]
    assert build(*base, "--coords", str(first)) == 0
    before, rows_before = pngs(out), manifest(out)
    assert len(before) == 3 and (out / "dataset.json").is_file()
    for changed, message in ((["--size", "24"], "size 16, now 24"), (["--fov", "0.5"], "fov 1.0, now 0.5"),
                             (["--surveys", DSS, PLANCK], "surveys")):
        argv = base + changed + ["--coords", str(first)]
        with pytest.raises(UserError, match=f"other settings \\({message}.*--overwrite"):
            build(*argv)
        assert pngs(out) == before and manifest(out) == rows_before  # nothing touched
    more = write_coords(tmp_path / "more.csv", INSIDE)
    assert build(*base, "--coords", str(more)) == 0
    rows = manifest(out)
    assert len(rows) == 6 and all(row in rows for row in rows_before)  # appended, earlier rows kept
    assert {k: v for k, v in pngs(out).items() if k in before} == before
    later = write_coords(tmp_path / "later.csv", INSIDE[3:], names=["t3", "t4", "t5"])
    assert build(*base, "--coords", str(later)) == 0
    assert manifest(out) == rows  # a run with other targets keeps the earlier rows
    assert build(*base[:-4], "--size", "24", "--out", str(out), "--coords", str(later), "--overwrite") == 0
    assert len(manifest(out)) == 3 and all(Image.open(out / r["file"]).size == (24, 24) for r in manifest(out))
    assert len(pngs(out)) == 3  # the earlier dataset was replaced, not mixed


def test_overwrite_removes_only_the_files_its_manifest_lists(tmp_path, caplog):
    """Issue 19 A20b: --overwrite removed every PNG and FITS of train/ val/ test/, the user's own among them."""
    out = tmp_path / "ds"
    coords = write_coords(tmp_path / "c.csv", INSIDE[:3])
    assert build("--surveys", DSS, "--fov", "1", "--size", "16", "--fits", "--out", str(out), "--coords", str(coords)) == 0
    earlier = [out / row[key] for row in manifest(out) for key in ("file", "fits")]
    mine = {out / "train" / "my_own_image.png": b"png of mine", out / "test" / "my_own.fits": b"fits of mine",
            out / "train" / "notes.txt": b"notes"}
    for path, data in mine.items():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    caplog.set_level("INFO")
    assert cli_main(["--surveys", DSS, "--fov", "1", "--size", "24", "--fits", "--out", str(out), "--coords",
                     str(coords), "--overwrite", "--no_progress"]) == 0
    assert all(path.read_bytes() == data for path, data in mine.items())
    assert all(Image.open(path).size == (24, 24) for path in out.rglob("*.png") if path not in mine)
    line = next(r.getMessage() for r in caplog.records if "--overwrite: removed" in r.getMessage())
    assert f"removed {len(earlier) + 2} files" in line and "kept 3 that no manifest lists" in line
    assert "train/my_own_image.png" in line and "test/my_own.fits" in line


def test_a_users_files_of_the_builders_names_are_never_written_over(tmp_path):
    """Independent check of issue 19: user files named like the builder's targets were overwritten: with
    --overwrite after 'kept N that no manifest lists', and by a plain run into a folder the builder never made
    (no dataset.json, no manifest). Both now stop before anything is written or removed."""
    coords = write_coords(tmp_path / "c.csv", INSIDE[:3])
    out = tmp_path / "ds"
    assert build("--surveys", DSS, "--fov", "1", "--size", "16", "--fits", "--out", str(out), "--coords", str(coords)) == 0
    listed = sorted(p for p in out.rglob("*") if p.is_file())
    (out / "manifest.csv").write_text((out / "manifest.csv").read_text().splitlines()[0] + "\n")  # rows lost
    before = {p: p.read_bytes() for p in listed}
    with pytest.raises(UserError, match=r"holds 4 file\(s\) that this builder did not write but would write again "
                                        r"under the same names \(train/t0.fits"):
        build("--surveys", DSS, "--fov", "1", "--size", "24", "--fits", "--out", str(out), "--coords", str(coords),
              "--overwrite")
    assert all(p.read_bytes() == data for p, data in before.items())  # nothing removed, nothing written
    users = tmp_path / "photos"
    mine = {name: f"mine {name}".encode() for name in ("train/1.png", "train/t0.png", "val/t0.png", "test/t0.png")}
    for name, data in mine.items():
        (users / name).parent.mkdir(parents=True, exist_ok=True)
        (users / name).write_bytes(data)
    with pytest.raises(UserError, match=r"holds 1 file\(s\) that this builder did not write .* \((train|val|test)/t0.png\)"):
        build("--surveys", DSS, "--fov", "1", "--size", "16", "--out", str(users), "--coords", str(coords))
    assert {p.relative_to(users).as_posix(): p.read_bytes() for p in users.rglob("*") if p.is_file()} == mine


def test_dataset_without_record_is_checked_against_its_manifest(tmp_path):
    """A folder built before dataset.json existed: its manifest's size and surveys are compared."""
    out = tmp_path / "old"
    coords = write_coords(tmp_path / "c.csv", INSIDE[:2])
    assert build("--surveys", DSS, "--fov", "1", "--size", "16", "--out", str(out), "--coords", str(coords)) == 0
    (out / "dataset.json").unlink()
    with pytest.raises(UserError, match="size 16, now 32"):
        build("--surveys", DSS, "--fov", "1", "--size", "32", "--out", str(out), "--coords", str(coords))


def test_earlier_targets_keep_their_split_when_the_list_grows():
    """More targets give other cell counts, so a fresh assignment may move a cell to another split: the
    cells of written targets keep theirs, and no new cutout overlaps one of another split."""
    from data.sky.config import BuildConfig
    from data.sky.planning import Summary, plan_items
    from data.sky.split import assign_cells, cells_of, footprint_cells
    from data.sky.targets import Target

    rng = np.random.default_rng(4)
    targets = [Target(f"p{i}", float(ra), float(dec)) for i, (ra, dec) in
               enumerate(zip(rng.uniform(262, 272, 120), rng.uniform(-32, -20, 120)))]
    order = 5
    config = BuildConfig(surveys=(DSS,), out=Path("unused"), fov=1.0, size=16, split=(0.5, 0.25, 0.25), seed=1)
    fresh = assign_cells(cells_of(np.array([t.ra for t in targets]), np.array([t.dec for t in targets]), order),
                         config.split, config.seed)
    # an earlier run wrote p0 into a split this list's fresh assignment would not give its cell
    cell = int(cells_of(targets[0].ra, targets[0].dec, order)[0])
    other = next(s for s in ("val", "test", "train") if s != fresh[cell])
    earlier = [{"name": "p0", "ra": f"{targets[0].ra:.6f}", "dec": f"{targets[0].dec:.6f}", "fov": "1",
                "split": other, "file": f"{other}/p0.png"}]
    items = plan_items(config, targets, order, False, None, Summary(), earlier)
    by_name = {item.target.name: item for item in items}
    assert by_name["p0"].split == other
    reached = set(footprint_cells(targets[0].ra, targets[0].dec, 1.0, 1.0, order).tolist())
    for item in items:
        own = int(cells_of(item.target.ra, item.target.dec, order)[0])
        if own in reached:
            assert item.split == other  # nothing of another split where p0's cutout lies


# ---- case 3: no data in the target survey --------------------------------------------------------
def test_target_without_target_data_is_skipped_and_inputs_only_is_explicit(tmp_path, capsys):
    out = tmp_path / "a"
    with pytest.raises(UserError, match="target survey DSS2Red has no data there.*--inputs_only"):
        build("--surveys", DSS, PLANCK, "--ra", str(PLANCK_ONLY[0]), "--dec", str(PLANCK_ONLY[1]), "--fov", "1",
              "--size", "16", "--out", str(out))
    assert not list(out.rglob("*.png"))
    coords = write_coords(tmp_path / "c.csv", [PLANCK_ONLY, INSIDE[0]], names=["no_dss", "both"])
    assert build("--surveys", DSS, PLANCK, "--coords", str(coords), "--fov", "1", "--size", "16", "--out",
                 str(out)) == 0
    assert "skipped 1 without data in the target survey DSS2Red (panel A" in capsys.readouterr().err
    assert [r["name"] for r in manifest(out)] == ["both"]
    # inference: every survey an input, B|C items in test/ that single mode feeds whole to the generator
    infer = tmp_path / "infer"
    assert build("--surveys", PLANCK, DSS, "--coords", str(coords), "--fov", "1", "--size", "16", "--out",
                 str(infer), "--inputs_only") == 0
    rows = manifest(infer)
    assert sorted(r["file"] for r in rows) == ["test/both.png", "test/no_dss.png"]
    import argparse

    from data import create_dataset

    opt = argparse.Namespace(dataroot=str(infer / "test"), phase="test", dataset_mode="single",
                             max_dataset_size=float("inf"), input_nc=2, output_nc=1, direction="BtoA",
                             preprocess="none", load_size=16, crop_size=16, no_flip=True, serial_batches=True,
                             num_threads=0, batch_size=1, n_panels=0, input_panels="", panel_nc="")
    dataset = create_dataset(opt).dataset
    assert dataset.panel_indices == ([0, 1], []) and dataset[0]["A"].shape == (2, 16, 16)


# ---- case 9: workers outlive a killed parent ------------------------------------------------------
def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc (Linux)")
def test_workers_exit_when_the_parent_is_killed(tmp_path):
    out = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, str(REPO / "aladin_data.py"), "--surveys", DSS, PLANCK, "--sample",
                             "400", "--fov", "1.8", "--size", "96", "--out", str(out), "--workers", "2",
                             "--no_progress", "--quiet"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid)
            if len(workers) >= 2 and list(out.rglob("*.png")):
                break
            time.sleep(0.1)
        assert len(workers) >= 2 and proc.poll() is None, "the run must be mid-way with its workers"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)], "workers outlived their killed parent"
    finally:
        for pid in workers:  # only the processes this test started
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# ---- case 11: full disk, long names --------------------------------------------------------------
def test_full_disk_is_one_line_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    """ENOSPC at the write of the third PNG (mocked at fsync, where a full disk reports it)."""
    import util.fileio

    real_fsync = os.fsync
    pngs_synced = []

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if ".png." in Path(name).name:
            if len(pngs_synced) >= 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            pngs_synced.append(name)
        return real_fsync(fd)

    monkeypatch.setattr(util.fileio.os, "fsync", fsync)
    out = tmp_path / "ds"
    coords = write_coords(tmp_path / "c.csv", IN_FITS_TILES)
    argv = ["--surveys", DSS, "--coords", str(coords), "--fov", "0.5", "--size", "16", "--out", str(out),
            "--fits", "--split", "1,0,0"]
    with pytest.raises(UserError, match=r"disk is full \(No space left on device\) writing train/t2\.png.*re-run"):
        build(*argv)
    assert not [p for p in out.rglob("*") if p.suffix == ".tmp"]
    written = {p.stem for p in out.rglob("*.png")}
    assert len(written) == 2 and {p.stem for p in out.rglob("*.fits")} == written  # no cube without its PNG
    assert sorted(Path(r["file"]).stem for r in manifest(out)) == sorted(written)  # what is done is recorded
    monkeypatch.setattr(util.fileio.os, "fsync", real_fsync)
    assert build(*argv) == 0 and len(manifest(out)) == 6


def test_300_character_names_get_short_file_names(tmp_path):
    long_name = "Galaxy " + "very" * 70 + " long"
    coords = write_coords(tmp_path / "c.csv", INSIDE[:2], names=[long_name, "short"])
    out = tmp_path / "ds"
    assert build("--surveys", DSS, "--coords", str(coords), "--fov", "1", "--size", "16", "--out", str(out)) == 0
    rows = {r["name"]: r for r in manifest(out)}
    assert set(rows) == {long_name, "short"}
    stem = Path(rows[long_name]["file"]).stem
    assert len(stem) <= 100 and stem.startswith("Galaxy_veryvery") and (out / rows[long_name]["file"]).is_file()
    single = tmp_path / "one"
    assert build("--surveys", DSS, "--ra", "266.4", "--dec", "-28.9", "--name", long_name, "--fov", "1", "--size",
                 "16", "--out", str(single)) == 0
    assert [Path(r["file"]).stem for r in manifest(single)] == [stem]


# ---- case 14: sizes beyond the machine's memory ----------------------------------------------------
def test_size_beyond_available_memory_is_refused_with_the_figures(tmp_path, monkeypatch):
    import data.sky.resources

    monkeypatch.setattr(data.sky.resources, "available_memory", lambda: 50_000_000, raising=False)
    with pytest.raises(UserError, match=r"--size 1024: one target needs about 0\.\d GB of memory.* 0\.1 GB is "
                                        r"available"):
        build("--surveys", DSS, "--ra", "266.4", "--dec", "-28.9", "--fov", "1", "--size", "1024", "--out",
              str(tmp_path / "big"))
    assert not list((tmp_path / "big").rglob("*.png"))
