"""Bookkeeping of a long HiPS-writing run: its settings file, shards, skipped tiles, resume, the folder lock.

OUT/predict.json holds the settings that decide a tile's content (model, checkpoint hash, inputs,
order, margin, uncertainty...). Every run and shard compares its own settings with it: equal ->
written tiles are kept and skipped; different -> refused unless --overwrite, which clears the tree
first. Values derived once (such as region-wide input cuts) are taken from the file, so every
shard and every resumed run uses the same ones. The file also lists every region asked for with its
shard count, so --finish can tell a HiPS with a shard still to run from a finished one.

Two lock files (util.locks) keep runs on one OUT apart: the settings are checked and written under an
exclusive claim lock (two runs started together cannot both find no predict.json and write their own),
and every run holds a shared run lock while it writes, so --overwrite (which needs it exclusively)
cannot clear a tree another run is still writing.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from util.errors import UserError
from util.fileio import atomic_write_text
from util.locks import FileLock

from .tile_grid import region_tiles

SETTINGS_FILE = "predict.json"
SETTINGS_VERSION = 1
OUR_FILES = ("Moc.fits", "properties", SETTINGS_FILE, "report.json", "calibration.json", "index.html")
CLAIM_LOCK = ".predict.claim.lock"  # held exclusively while a run checks and writes predict.json
RUN_LOCK = ".predict.run.lock"  # held shared by every run while it writes, exclusively to clear the tree


def shard_tiles(tiles: np.ndarray, shard: tuple[int, int] | None) -> np.ndarray:
    """Every N-th tile from I of the sorted list, as the dataset builder's --shard splits targets."""
    tiles = np.sort(np.asarray(tiles, dtype=np.int64))
    if shard is None:
        return tiles
    index, count = shard
    return tiles[index::count]


def skipped_name(shard: tuple[int, int] | None) -> str:
    return "skipped_tiles.txt" if shard is None else f"skipped_tiles.shard{shard[0]}of{shard[1]}.txt"


def read_skipped(out: Path, shard: tuple[int, int] | None | bool = False) -> dict[int, str]:
    """Tiles skipped (no input data) with the reason: by any run or shard, or (shard given, None for an
    unsharded run) by that one only."""
    skipped: dict[int, str] = {}
    paths = sorted(out.glob("skipped_tiles*.txt")) if shard is False else [out / skipped_name(shard)]
    for path in [p for p in paths if p.is_file()]:
        for line in path.read_text(encoding="utf-8").splitlines():
            number, _, reason = line.partition(" ")
            if number.isdigit():
                skipped[int(number)] = reason
    return skipped


def write_skipped(out: Path, shard: tuple[int, int] | None, skipped: dict[int, str]) -> None:
    lines = [f"{ipix} {reason}" for ipix, reason in sorted(skipped.items())]
    atomic_write_text(out / skipped_name(shard), "\n".join(lines) + ("\n" if lines else ""))


def _first_difference(old: dict, new: dict) -> str:
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"{key}: {old.get(key)!r} in the folder, {new.get(key)!r} now"
    return ""


def looks_like_hips(out: Path) -> bool:
    return (out / "properties").is_file() or any(out.glob("Norder*"))


def clear_tree(out: Path) -> None:
    """Remove what a previous predict run wrote there (only its own files and folders)."""
    for folder in list(out.glob("Norder*")) + [out / "uncertainty", out / "truth", out / "viewer"]:
        if folder.is_dir():
            shutil.rmtree(folder)
    for name in OUR_FILES:
        (out / name).unlink(missing_ok=True)
    for path in out.glob("skipped_tiles*.txt"):
        path.unlink()


def _plan(region: tuple[float, float, float] | None, shard: tuple[int, int] | None) -> dict | None:
    if region is None:
        return None
    return {"region": [float(v) for v in region], "shards": shard[1] if shard else 1}


class OutFolder:
    """A run's hold on --out: the settings claimed under the claim lock, the run lock held until release()."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.run_lock = FileLock(self.out / RUN_LOCK)

    def __enter__(self) -> "OutFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        self.run_lock.release()

    def _hold_shared(self) -> None:
        # only a run clearing the tree holds the run lock exclusively, and it holds the claim lock meanwhile:
        # under the claim lock this cannot fail (a guard, not a wait)
        if not self.run_lock.acquire("shared", wait=False):
            raise UserError(f"--out {self.out} is being cleared by another predict_sky.py run; try again")

    def claim(self, record: dict, overwrite: bool, region: tuple[float, float, float] | None = None,
              shard: tuple[int, int] | None = None, when_alone: Callable[[], None] | None = None) -> dict:
        """The record this run must use: the folder's when its settings equal ours, else ours (new folder or
        --overwrite). record = {'settings': {...}, ...derived values}; the folder's derived values win. The
        region and shard count are added to the folder's list of regions. when_alone() is called under the
        claim lock when no other run is writing in the folder (clean-ups that would hurt a running one)."""
        if not (self.out / SETTINGS_FILE).is_file() and looks_like_hips(self.out):  # (before any lock file)
            raise UserError(f"--out {self.out} already holds a HiPS that predict_sky.py did not write; "
                            f"choose another --out")
        with FileLock(self.out / CLAIM_LOCK) as claim:
            claim.acquire("exclusive")
            try:
                claimed = self._claim(record, overwrite, _plan(region, shard))
                if when_alone is not None:
                    self._alone(when_alone)
                return claimed
            except BaseException:
                self.release()
                raise

    def _alone(self, action: Callable[[], None]) -> bool:
        """action() when no other run holds the folder (the claim lock held by the caller); the shared hold
        is kept either way. True when it ran."""
        if self.run_lock.acquire("exclusive", wait=False):
            action()  # (the conversion back below cannot fail: no run starts without the claim lock)
            self._hold_shared()
            return True
        self._hold_shared()  # a failed conversion drops the lock: take the shared one again
        return False

    def when_alone(self, action: Callable[[], None]) -> bool:
        """action() under the claim lock if no other run writes in the folder now (a clean-up that would
        hurt a running one); True when it ran."""
        with FileLock(self.out / CLAIM_LOCK) as claim:
            claim.acquire("exclusive")
            return self._alone(action)

    def _claim(self, record: dict, overwrite: bool, plan: dict | None) -> dict:
        path = self.out / SETTINGS_FILE
        existing = None
        if path.is_file():
            try:
                existing = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                existing = None
            if existing is not None and existing.get("settings") == record["settings"]:
                self._hold_shared()
                return self._add_plan(existing, plan)
            if not overwrite:
                why = _first_difference(existing.get("settings", {}), record["settings"]) if existing else \
                    f"{path} is unreadable"
                raise UserError(f"--out {self.out} was written with other settings ({why}); "
                                f"use another --out, the same settings, or --overwrite")
            if not self.run_lock.acquire("exclusive", wait=False):
                raise UserError(f"--out {self.out}: another predict_sky.py run is writing there with the settings "
                                f"of its predict.json, so --overwrite cannot clear it now; wait until it ends, "
                                f"or choose another --out")
            clear_tree(self.out)
        elif looks_like_hips(self.out):
            raise UserError(f"--out {self.out} already holds a HiPS that predict_sky.py did not write; "
                            f"choose another --out")
        self._hold_shared()  # (converts the exclusive lock of a clearing run)
        return self._add_plan({"version": SETTINGS_VERSION, **record, "regions": []}, plan, write=True)

    def _add_plan(self, record: dict, plan: dict | None, write: bool = False) -> dict:
        regions = record.get("regions")
        if plan is not None and regions is not None and plan not in regions:
            record = {**record, "regions": [*regions, plan]}
            write = True
        if write:
            text = json.dumps(record, indent=1, sort_keys=True) + "\n"
            atomic_write_text(self.out / SETTINGS_FILE, text)
            return json.loads(text)  # as later runs will read it (tuples as lists)
        return record

    def hold_for_finish(self) -> dict:
        """The folder's record, with the run lock held shared (no --overwrite clears the tree meanwhile)."""
        with FileLock(self.out / CLAIM_LOCK) as claim:
            claim.acquire("exclusive")
            record = read_record(self.out)
            self._hold_shared()
        return record


def claim_settings(out: Path, record: dict, overwrite: bool) -> dict:
    """OutFolder.claim without keeping the run lock (tests, one-off checks)."""
    with OutFolder(out) as folder:
        return folder.claim(record, overwrite)


def unfinished_shards(out: Path, record: dict, written: np.ndarray) -> list[str]:
    """What is still to run before --finish: for every region recorded in predict.json, the shards with
    tiles neither written nor listed as skipped ('shard 1/2 of --region "RA DEC R" (3 of 6 tiles)')."""
    order = record["settings"]["order"]
    done = set(np.asarray(written).tolist()) | set(read_skipped(out))
    missing = []
    for plan in record.get("regions") or []:
        tiles = shard_tiles(region_tiles(*plan["region"], order), None)
        count = plan["shards"]
        for index in range(count):
            mine = tiles[index::count].tolist()
            left = [t for t in mine if t not in done]
            if left:
                what = f"shard {index}/{count} of" if count > 1 else "the run of"
                ra, dec, radius = plan["region"]
                missing.append(f"{what} --region \"{ra:g} {dec:g} {radius:g}\" ({len(left)} of {len(mine)} tiles)")
    return missing


def read_record(out: Path) -> dict:
    path = out / SETTINGS_FILE
    if not path.is_file():
        raise UserError(f"--finish: {path} not found; run predict_sky.py with --region into this --out first")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        record["settings"]["order"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"--finish: {path} is not a settings file of predict_sky.py; run the region again "
                        f"(with --overwrite)") from None
    return record
