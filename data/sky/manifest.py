"""manifest.csv: one row per written target; read back to resume and to merge shards."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from util.fileio import atomic_write_text

BASE_COLUMNS = ["file", "name", "ra", "dec", "fov", "size", "surveys", "split"]


def coverage_column(survey_name: str) -> str:
    return f"coverage_{survey_name}"


def columns(survey_names: list[str], with_fits: bool) -> list[str]:
    cols = BASE_COLUMNS + [coverage_column(n) for n in survey_names]
    return cols + ["fits"] if with_fits else cols


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of an existing manifest ([] when the file is absent)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_manifest(path: Path, rows: list[dict], cols: list[str]) -> None:
    """Rewrite the whole manifest atomically (a kill never leaves a half-written CSV)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    atomic_write_text(path, buffer.getvalue())


def shard_manifest_name(shard: tuple[int, int] | None) -> str:
    return "manifest.csv" if shard is None else f"manifest.shard{shard[0]}of{shard[1]}.csv"
