"""Bookkeeping of a long HiPS-writing run: its settings file, shards, skipped tiles, resume.

OUT/predict.json holds the settings that decide a tile's content (model, checkpoint hash, inputs,
order, margin, uncertainty...). Every run and shard compares its own settings with it: equal ->
written tiles are kept and skipped; different -> refused unless --overwrite, which clears the tree
first. Values derived once (such as region-wide input cuts) are taken from the file, so every
shard and every resumed run uses the same ones.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from util.errors import UserError
from util.fileio import atomic_write_text

SETTINGS_FILE = "predict.json"
SETTINGS_VERSION = 1
OUR_FILES = ("Moc.fits", "properties", SETTINGS_FILE, "report.json", "calibration.json", "index.html")


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


def claim_settings(out: Path, record: dict, overwrite: bool) -> dict:
    """The record this run must use: the folder's when its settings equal ours, else ours (new folder or
    --overwrite). record = {'settings': {...}, ...derived values}; the folder's derived values win."""
    path = out / SETTINGS_FILE
    if path.is_file():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            existing = None
        if existing is not None and existing.get("settings") == record["settings"]:
            return existing
        if not overwrite:
            why = _first_difference(existing.get("settings", {}), record["settings"]) if existing else \
                f"{path} is unreadable"
            raise UserError(f"--out {out} was written with other settings ({why}); "
                            f"use another --out, the same settings, or --overwrite")
        clear_tree(out)
    elif looks_like_hips(out):
        raise UserError(f"--out {out} already holds a HiPS that predict_sky.py did not write; choose another --out")
    full = {"version": SETTINGS_VERSION, **record}
    atomic_write_text(path, json.dumps(full, indent=1, sort_keys=True) + "\n")
    return json.loads(path.read_text(encoding="utf-8"))


def read_record(out: Path) -> dict:
    path = out / SETTINGS_FILE
    if not path.is_file():
        raise UserError(f"--finish: {path} not found; run predict_sky.py with --region into this --out first")
    return json.loads(path.read_text(encoding="utf-8"))
